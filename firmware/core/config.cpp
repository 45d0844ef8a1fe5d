#include "config.hpp"

#include <cstdlib>

#include "entity.hpp"

namespace es {

bool parseBrokerUrl(const std::string& url, BrokerUrl& out) {
  BrokerUrl r;
  std::string rest;
  if (url.compare(0, 7, "mqtt://") == 0) {
    rest = url.substr(7);
    r.port = 1883;
  } else if (url.compare(0, 8, "mqtts://") == 0) {
    rest = url.substr(8);
    r.tls = true;
    r.port = 8883;
  } else {
    return false;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find('@') != std::string::npos) return false;
  std::string portText;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return false;
    r.host = rest.substr(1, close - 1);
    const std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return false;
      portText = after.substr(1);
      if (portText.empty()) return false;
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos) {
      r.host = rest.substr(0, colon);
      portText = rest.substr(colon + 1);
      if (portText.empty()) return false;
    } else {
      r.host = rest;
    }
  }
  if (r.host.empty()) return false;
  const bool bracketed = rest[0] == '[';
  for (char c : r.host) {
    if (c == ' ' || (c == ':' && !bracketed)) return false;
  }
  if (!portText.empty()) {
    if (portText.size() > 5) return false;
    unsigned long p = 0;
    for (char c : portText) {
      if (c < '0' || c > '9') return false;
      p = p * 10 + static_cast<unsigned long>(c - '0');
    }
    if (p == 0 || p > 65535) return false;
    r.port = static_cast<uint16_t>(p);
  }
  out = r;
  return true;
}

const std::vector<ConfigKey>& configKeys() {
  static const std::vector<ConfigKey> keys = {
      {"device_id", "device id registered on the platform ([a-zA-Z0-9:_-]{1,128})", false,
       false},
      {"name", "human-readable name announced in discovery", false, false},
      {"wifi_ssid", "Wi-Fi network name", false, false},
      {"wifi_pass", "Wi-Fi password", true, false},
      {"mqtt_url", "broker, mqtt://host:1883 or mqtts://host:8883", false, false},
      {"mqtt_user", "MQTT username (Mosquitto; leave unset for AWS IoT)", false, false},
      {"mqtt_pass", "MQTT password", true, false},
      {"ca_cert", "PEM CA certificate for mqtts:// (AWS: Amazon Root CA 1)", false, true},
      {"client_cert", "PEM device certificate (AWS IoT)", false, true},
      {"client_key", "PEM device private key (AWS IoT)", true, true},
      {"claim_cert", "PEM claim certificate of a bulk registration (AWS IoT)", false, true},
      {"claim_key", "PEM claim private key of a bulk registration (AWS IoT)", true, true},
      {"claim_template", "provisioning template of a bulk registration (AWS IoT)", false,
       false},
      {"interval_ms", "sampling interval in ms (100..3600000)", false, false},
      {"batch", "readings per telemetry message, 1 = one state message each (1..100)", false,
       false},
      {"batch_age_ms", "longest a reading waits for its telemetry message (0..3600000 ms)",
       false, false},
      {"buffer", "readings kept while offline (10..5000, applied at boot)", false, false},
      {"sensors", "hw (wired sensors) or sim (simulated machine, for demos)", false, false},
  };
  return keys;
}

const ConfigKey* findConfigKey(const std::string& key) {
  for (const auto& k : configKeys()) {
    if (key == k.key) return &k;
  }
  return nullptr;
}

namespace {

bool parseUint(const std::string& s, uint32_t lo, uint32_t hi, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v < lo || v > hi) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// AWS IoT's provisioning template names: [0-9A-Za-z_-]{1,36}.
bool isTemplateName(const std::string& s) {
  if (s.empty() || s.size() > 36) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool looksLikePem(const std::string& s) {
  return s.find("-----BEGIN ") != std::string::npos && s.find("-----END ") != std::string::npos;
}

}  // namespace

std::string validateConfigValue(const std::string& key, const std::string& value) {
  uint32_t n;
  if (!findConfigKey(key)) return "unknown key";
  if (key == "device_id" && !isValidDeviceId(value)) {
    return "device id must match [a-zA-Z0-9:_-]{1,128}";
  }
  if (key == "mqtt_url") {
    BrokerUrl u;
    if (!parseBrokerUrl(value, u)) return "expected mqtt://host[:port] or mqtts://host[:port]";
  }
  if (key == "interval_ms" && !parseUint(value, 100, 3600000, n)) return "expected 100..3600000";
  if (key == "batch" && !parseUint(value, 1, kMaxBatchReadings, n)) return "expected 1..100";
  if (key == "batch_age_ms" && !parseUint(value, 0, kMaxBatchAgeMs, n)) {
    return "expected 0..3600000";
  }
  if (key == "buffer" && !parseUint(value, 10, 5000, n)) return "expected 10..5000";
  if ((key == "ca_cert" || key == "client_cert" || key == "client_key" || key == "claim_cert" ||
       key == "claim_key") &&
      !looksLikePem(value)) {
    return "expected a PEM block (-----BEGIN ... -----END ...)";
  }
  if (key == "claim_template" && !isTemplateName(value)) return "expected [0-9A-Za-z_-]{1,36}";
  if (key == "sensors" && value != "hw" && value != "sim") return "expected hw or sim";
  if (key == "wifi_ssid" && value.size() > 32) return "an SSID has at most 32 bytes";
  if (key == "wifi_pass" && !value.empty() && (value.size() < 8 || value.size() > 63)) {
    return "a WPA2 passphrase has 8..63 characters";
  }
  return "";
}

DeviceConfig loadConfig(KeyValueStore& store) {
  DeviceConfig c;
  std::string v;
  const auto str = [&](const char* k, std::string& dst) {
    if (store.get(k, v)) dst = v;
  };
  str("device_id", c.deviceId);
  str("name", c.name);
  str("wifi_ssid", c.wifiSsid);
  str("wifi_pass", c.wifiPass);
  str("mqtt_url", c.mqttUrl);
  str("mqtt_user", c.mqttUser);
  str("mqtt_pass", c.mqttPass);
  str("ca_cert", c.caCert);
  str("client_cert", c.clientCert);
  str("client_key", c.clientKey);
  str("claim_cert", c.claimCert);
  str("claim_key", c.claimKey);
  str("claim_template", c.claimTemplate);
  if (store.get("sensors", v) && (v == "hw" || v == "sim")) c.sensors = v;
  uint32_t n;
  if (store.get("interval_ms", v) && parseUint(v, 100, 3600000, n)) c.intervalMs = n;
  if (store.get("batch", v) && parseUint(v, 1, kMaxBatchReadings, n)) c.batch = n;
  if (store.get("batch_age_ms", v) && parseUint(v, 0, kMaxBatchAgeMs, n)) c.batchAgeMs = n;
  if (store.get("buffer", v) && parseUint(v, 10, 5000, n)) c.buffer = n;
  return c;
}

bool configReady(const DeviceConfig& c, bool needWifi, std::string& reason) {
  BrokerUrl u;
  if (!isValidDeviceId(c.deviceId)) reason = "device_id is not set or invalid";
  else if (needWifi && c.wifiSsid.empty()) reason = "wifi_ssid is not set";
  else if (!parseBrokerUrl(c.mqttUrl, u)) reason = "mqtt_url is not set or invalid";
  else if (u.tls && c.caCert.empty()) reason = "mqtts:// needs ca_cert";
  else if (c.clientCert.empty() != c.clientKey.empty()) {
    reason = "client_cert and client_key go together";
  } else if (c.claimCert.empty() != c.claimKey.empty() ||
             c.claimCert.empty() != c.claimTemplate.empty()) {
    reason = "claim_cert, claim_key and claim_template go together";
  } else if (!c.claimCert.empty() && !u.tls) {
    reason = "a claim (AWS IoT) needs mqtts://";
  } else {
    reason.clear();
    return true;
  }
  return false;
}

bool needsClaim(const DeviceConfig& c) { return c.clientCert.empty() && !c.claimCert.empty(); }

}  // namespace es
