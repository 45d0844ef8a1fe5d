// Device configuration as stored in NVS (Preferences on the ESP32) and edited through
// the serial console or the first-boot portal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "batching.hpp"
#include "interfaces.hpp"

namespace es {

struct BrokerUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
};

// mqtt://host[:port] (default 1883) or mqtts://host[:port] (default 8883); IPv6 hosts in
// brackets. A trailing "/" is tolerated because people paste URLs from browsers.
bool parseBrokerUrl(const std::string& url, BrokerUrl& out);

struct ConfigKey {
  const char* key;  // NVS keys are limited to 15 characters
  const char* help;
  bool secret;      // never echoed back by "show"
  bool multiline;   // PEM blocks, entered as several lines
};

const std::vector<ConfigKey>& configKeys();
const ConfigKey* findConfigKey(const std::string& key);

struct DeviceConfig {
  std::string deviceId;
  std::string name;
  std::string wifiSsid;
  std::string wifiPass;
  std::string mqttUrl;
  std::string mqttUser;
  std::string mqttPass;
  std::string caCert;
  std::string clientCert;
  std::string clientKey;
  // A bulk registration's claim (AWS IoT fleet provisioning): until the device has its own
  // certificate it connects with this one only to obtain it (claim.hpp).
  std::string claimCert;
  std::string claimKey;
  std::string claimTemplate;
  uint32_t intervalMs = 5000;
  uint32_t batch = kDefaultBatchReadings;
  uint32_t batchAgeMs = kDefaultBatchMaxAgeMs;
  uint32_t buffer = 500;
  std::string sensors = "sim";
};

// Reads every key, falling back to defaults for missing or unparsable numbers.
DeviceConfig loadConfig(KeyValueStore& store);

// Checks one value before it is stored, so a typo is reported at the console instead of
// at the next boot. Returns an empty string when valid, otherwise the reason.
std::string validateConfigValue(const std::string& key, const std::string& value);

// Whether the configuration is complete enough to go online; reason explains what is
// missing (first problem only).
bool configReady(const DeviceConfig& c, bool needWifi, std::string& reason);

// Whether the device must first obtain its own certificate with its batch's claim: it has a
// claim and no certificate of its own.
bool needsClaim(const DeviceConfig& c);

}  // namespace es
