// ESP32 entry point: adapts the Arduino platform (Wi-Fi, NVS, PubSubClient, GPIO, serial,
// web server) to the portable core's interfaces. Behaviour belongs in core/; this file
// should only translate.
#include <Arduino.h>
#include <ArduinoJson.h>
#include <DNSServer.h>
#include <Preferences.h>
#include <PubSubClient.h>
#include <WebServer.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>
#include <esp_system.h>
#include <sys/time.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "claim.hpp"
#include "config.hpp"
#include "console.hpp"
#include "device.hpp"
#include "portal.hpp"
#include "simulator.hpp"

namespace {

constexpr const char* kNamespace = "easysmart";
// Anything before 2023 means SNTP has not answered yet (the RTC starts at 1970).
constexpr time_t kValidEpoch = 1672531200;

class NvsStore : public es::KeyValueStore {
 public:
  bool begin() { return prefs_.begin(kNamespace, false); }
  bool get(const std::string& key, std::string& out) override {
    if (!prefs_.isKey(key.c_str())) return false;
    out = prefs_.getString(key.c_str(), "").c_str();
    return true;
  }
  bool put(const std::string& key, const std::string& value) override {
    return prefs_.putString(key.c_str(), value.c_str()) == value.size();
  }
  bool remove(const std::string& key) override { return prefs_.remove(key.c_str()); }

 private:
  Preferences prefs_;
};

// The last confirmed edge model, as one NVS blob in a namespace of its own (NVS writes the
// new blob before it drops the old one, so a power cut keeps one of them intact).
class NvsModelStorage : public es::ModelStorage {
 public:
  bool load(std::vector<uint8_t>& out) override {
    Preferences prefs;
    if (!prefs.begin("es-edge", true)) return false;
    const size_t length = prefs.getBytesLength("model");
    bool ok = length > 0 && length <= es::kEdgeMaxBytes;
    if (ok) {
      out.resize(length);
      ok = prefs.getBytes("model", out.data(), length) == length;
    }
    prefs.end();
    return ok;
  }
  bool save(const std::vector<uint8_t>& bytes) override {
    Preferences prefs;
    if (!prefs.begin("es-edge", false)) return false;
    const bool ok = prefs.putBytes("model", bytes.data(), bytes.size()) == bytes.size();
    prefs.end();
    return ok;
  }
};

class EspClock : public es::Clock {
 public:
  uint32_t monotonicMs() override { return millis(); }
  double epochSeconds() override {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    if (tv.tv_sec < kValidEpoch) return NAN;
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec / 1000) / 1000.0;
  }
  bool synced() { return !std::isnan(epochSeconds()); }
};

class EspRandom : public es::Random {
 public:
  // Hardware RNG: with the radio on it is true random, so a fleet's jitter is independent.
  uint32_t nextU32() override { return esp_random(); }
};

class SerialSink : public es::EventSink {
 public:
  void emit(const std::string& line) override { Serial.println(line.c_str()); }
};

class PubSubTransport : public es::MqttTransport {
 public:
  // The PEM strings must outlive the client (WiFiClientSecure keeps the pointers, not
  // copies): they are the global configuration's. The certificate is the device's own, or
  // its batch's claim while it obtains one.
  PubSubTransport(const es::BrokerUrl& url, const std::string& caCert,
                  const std::string& certificate, const std::string& privateKey,
                  EspClock& clock, uint16_t bufferBytes)
      : url_(url), clock_(clock) {
    instance_ = this;
    if (url_.tls) {
      secure_.setCACert(caCert.c_str());
      if (!certificate.empty()) {
        secure_.setCertificate(certificate.c_str());
        secure_.setPrivateKey(privateKey.c_str());
      }
      client_.setClient(secure_);
    } else {
      client_.setClient(plain_);
    }
    client_.setServer(url_.host.c_str(), url_.port);
    client_.setBufferSize(bufferBytes);
    client_.setSocketTimeout(10);
    client_.setCallback(&PubSubTransport::onMessageThunk);
  }

  void setListener(es::MqttListener* l) override { listener_ = l; }

  bool connect(const es::ConnectOptions& o, std::string& error) override {
    if (WiFi.status() != WL_CONNECTED) {
      error = "wifi_not_connected";
      return false;
    }
    // Certificate validity cannot be checked without the date, and AWS IoT rejects an
    // untrusted session anyway, so TLS waits for SNTP.
    if (url_.tls && !clock_.synced()) {
      error = "waiting_for_ntp";
      return false;
    }
    client_.setKeepAlive(o.keepAliveSeconds);
    // PubSubClient sets the will flag for any non-null topic: none means nullptr (a claim
    // session has no will, and its policy allows none).
    const bool ok = client_.connect(o.clientId.c_str(),
                                    o.username.empty() ? nullptr : o.username.c_str(),
                                    o.password.empty() ? nullptr : o.password.c_str(),
                                    o.willTopic.empty() ? nullptr : o.willTopic.c_str(),
                                    static_cast<uint8_t>(o.willQos), o.willRetain,
                                    o.willTopic.empty() ? nullptr : o.willPayload.c_str(), true);
    if (!ok) {
      error = "mqtt_state_" + std::to_string(client_.state());
      return false;
    }
    connected_ = true;
    if (listener_) listener_->onConnected();
    return true;
  }

  void disconnect() override {
    connected_ = false;
    client_.disconnect();
  }

  es::PublishResult publish(const std::string& topic, const std::string& payload, int,
                            bool retain) override {
    // PubSubClient only publishes at QoS 0: "accepted" means written to the TCP socket,
    // which is the strongest guarantee this client can give (ackId stays 0).
    es::PublishResult r;
    if (!connected_) return r;
    r.accepted = client_.publish(topic.c_str(), reinterpret_cast<const uint8_t*>(payload.data()),
                                 payload.size(), retain);
    return r;
  }

  bool subscribe(const std::string& filter, int qos) override {
    return connected_ && client_.subscribe(filter.c_str(), static_cast<uint8_t>(qos));
  }

  void poll() override {
    if (!connected_) return;
    if (!client_.loop()) {
      connected_ = false;
      if (listener_) listener_->onDisconnected("connection_lost_" + std::to_string(client_.state()));
    }
  }

 private:
  static void onMessageThunk(char* topic, uint8_t* payload, unsigned int length) {
    if (instance_ && instance_->listener_) {
      instance_->listener_->onMessage(topic,
                                      std::string(reinterpret_cast<char*>(payload), length));
    }
  }

  static PubSubTransport* instance_;
  es::BrokerUrl url_;
  EspClock& clock_;
  WiFiClient plain_;
  WiFiClientSecure secure_;
  PubSubClient client_;
  es::MqttListener* listener_ = nullptr;
  bool connected_ = false;
};
PubSubTransport* PubSubTransport::instance_ = nullptr;

// Reference wiring (README): NTC 10k/B3950 thermistor with a 10k resistor to 3.3 V, a
// 0.5-4.5 V pressure transducer through a 2:3 divider, an analog accelerometer
// (ADXL335-class, 300 mV/g) on one axis.
class WiredSensors : public es::SensorSource {
 public:
  bool read(const es::EntitySpec& spec, double, double& out) override {
    if (spec.id == "temperature") return temperature(out);
    if (spec.id == "pressure") return pressure(out);
    if (spec.id == "vibration") return vibration(out);
    return false;
  }

 private:
  static bool temperature(double& out) {
    const double v = analogReadMilliVolts(ES_TEMP_PIN) / 1000.0;
    if (v <= 0.05 || v >= 3.25) return false;  // open or shorted thermistor
    const double r = 10000.0 * v / (3.3 - v);
    out = 1.0 / (1.0 / 298.15 + std::log(r / 10000.0) / 3950.0) - 273.15;
    return true;
  }
  static bool pressure(double& out) {
    const double sensorV = analogReadMilliVolts(ES_PRESSURE_PIN) / 1000.0 * 1.5;
    if (sensorV < 0.3) return false;  // below the live-zero: wire broken
    out = std::max(0.0, (sensorV - 0.5) / 4.0 * 10.0);
    return true;
  }
  // RMS velocity estimated from acceleration at the machine's running frequency
  // (v = a / 2*pi*f), which is how handheld vibration meters approximate ISO 10816 values.
  static bool vibration(double& out) {
    constexpr int n = 128;
    constexpr double runningHz = 50.0;
    double sum = 0, sumSq = 0;
    for (int i = 0; i < n; ++i) {
      const double g = analogReadMilliVolts(ES_VIBRATION_PIN) / 300.0;
      sum += g;
      sumSq += g * g;
      delayMicroseconds(500);
    }
    const double mean = sum / n;
    const double aRms = std::sqrt(std::max(0.0, sumSq / n - mean * mean)) * 9.80665;
    out = aRms / (2.0 * M_PI * runningHz) * 1000.0;
    return std::isfinite(out);
  }
};

class SimulatedSensors : public es::SensorSource {
 public:
  explicit SimulatedSensors(es::Simulator& sim) : sim_(sim) {}
  bool read(const es::EntitySpec& spec, double epoch, double& out) override {
    // Before SNTP the simulation runs on uptime; only the daily cycle's phase is off.
    const double t = std::isnan(epoch) ? millis() / 1000.0 : epoch;
    return sim_.sample(spec.id, t, out);
  }

 private:
  es::Simulator& sim_;
};

class Actuators : public es::ActuatorSink {
 public:
  explicit Actuators(es::Simulator* sim) : sim_(sim) {}
  void apply(const es::EntitySpec& spec, const es::Value& v) override {
    if (spec.id == "relay_main" && v.type == es::Value::Type::Bool) {
      setRelay(v.b);
      if (sim_) sim_->setRelay(v.b);
    }
  }
  static void setRelay(bool on) { digitalWrite(ES_RELAY_PIN, (on == (ES_RELAY_ACTIVE_HIGH != 0)) ? HIGH : LOW); }

 private:
  es::Simulator* sim_;
};

NvsStore store;
EspClock espClock;
EspRandom espRandom;
SerialSink serialSink;
es::DeviceConfig config;
std::unique_ptr<es::Console> console;
std::string serialLine;

// Online mode
es::EntityRegistry entities;
std::unique_ptr<es::SplitMix> simRng;
std::unique_ptr<es::Simulator> simulator;
std::unique_ptr<es::SensorSource> sensors;
std::unique_ptr<Actuators> actuators;
std::unique_ptr<PubSubTransport> transport;
std::unique_ptr<es::DeviceCore> core;
NvsModelStorage modelStorage;

// Claim mode: a device registered in bulk on AWS IoT obtains its own certificate first.
std::unique_ptr<es::ClaimRunner> claim;

// Portal mode
bool portalMode = false;
std::unique_ptr<WebServer> web;
std::unique_ptr<DNSServer> dns;
std::string apName;

void pollSerial() {
  while (Serial.available() > 0) {
    const int c = Serial.read();
    if (c == '\n') {
      for (const auto& out : console->handleLine(serialLine)) Serial.println(out.c_str());
      serialLine.clear();
      if (console->rebootRequested()) {
        if (core) core->shutdown(500);
        delay(200);
        ESP.restart();
      }
    } else if (serialLine.size() < 4096) {
      serialLine += static_cast<char>(c);
    }
  }
}

bool portalButtonHeld() {
  pinMode(ES_PORTAL_BUTTON_PIN, INPUT_PULLUP);
  const uint32_t start = millis();
  while (digitalRead(ES_PORTAL_BUTTON_PIN) == LOW) {
    if (millis() - start > 3000) return true;
    delay(10);
  }
  return false;
}

void startPortal(const std::string& reason) {
  portalMode = true;
  char suffix[7];
  const uint64_t mac = ESP.getEfuseMac();
  snprintf(suffix, sizeof suffix, "%06llX", static_cast<unsigned long long>(mac >> 24) & 0xFFFFFF);
  apName = std::string("EasySmart-") + suffix;
  WiFi.mode(WIFI_AP);
  WiFi.softAP(apName.c_str());
  dns.reset(new DNSServer());
  dns->start(53, "*", WiFi.softAPIP());  // captive: every name resolves to the portal
  web.reset(new WebServer(80));
  const std::string hint = "Setup needed: " + reason;
  web->on("/", HTTP_GET, [hint] {
    web->send(200, "text/html; charset=utf-8", es::renderPortalPage(store, hint, {}).c_str());
  });
  web->on("/save", HTTP_POST, [hint] {
    const auto problems = es::applyPortalForm(store, [](const std::string& k, std::string& out) {
      if (!web->hasArg(k.c_str())) return false;
      out = web->arg(k.c_str()).c_str();
      return true;
    });
    if (!problems.empty()) {
      web->send(400, "text/html; charset=utf-8", es::renderPortalPage(store, hint, problems).c_str());
      return;
    }
    web->send(200, "text/html; charset=utf-8",
              "<!doctype html><meta charset=\"utf-8\"><p>Saved. The device restarts and joins "
              "your network.</p>");
    delay(1500);
    ESP.restart();
  });
  web->on("/status", HTTP_GET, [reason] {
    JsonDocument doc;
    doc["mode"] = "portal";
    doc["reason"] = reason.c_str();
    doc["firmware"] = es::kFirmwareVersion;
    std::string id;
    doc["device_id"] = store.get("device_id", id) ? id.c_str() : nullptr;
    String body;
    serializeJson(doc, body);
    web->send(200, "application/json", body);
  });
  web->onNotFound([] {
    web->sendHeader("Location", String("http://") + WiFi.softAPIP().toString() + "/");
    web->send(302, "text/plain", "");
  });
  web->begin();
  Serial.printf("portal: join Wi-Fi \"%s\" and open http://%s/ (%s)\n", apName.c_str(),
                WiFi.softAPIP().toString().c_str(), reason.c_str());
}

void startNetwork() {
  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(true);
  WiFi.begin(config.wifiSsid.c_str(), config.wifiPass.empty() ? nullptr : config.wifiPass.c_str());
  configTime(0, 0, "pool.ntp.org", "time.google.com", "time.cloudflare.com");
}

void startClaim() {
  es::BrokerUrl url;
  es::parseBrokerUrl(config.mqttUrl, url);
  startNetwork();
  // The certificate answer carries a certificate, its private key and an ownership token
  // (about 4 KB of JSON): more than the device's own session ever receives.
  transport.reset(new PubSubTransport(url, config.caCert, config.claimCert, config.claimKey,
                                      espClock, 8192));
  es::ClaimSettings settings;
  settings.deviceId = config.deviceId;
  settings.templateName = config.claimTemplate;
  claim.reset(new es::ClaimRunner(settings, *transport, store, espClock, espRandom, &serialSink));
  Serial.printf("device %s: obtaining its certificate with the claim (template %s), broker %s\n",
                config.deviceId.c_str(), config.claimTemplate.c_str(), config.mqttUrl.c_str());
}

void startDevice() {
  es::BrokerUrl url;
  es::parseBrokerUrl(config.mqttUrl, url);
  startNetwork();

  es::addDefaultEntities(entities);
  es::Simulator* sim = nullptr;
  if (config.sensors == "sim") {
    simRng.reset(new es::SplitMix((static_cast<uint64_t>(esp_random()) << 32) | esp_random()));
    simulator.reset(new es::Simulator(*simRng, millis() / 1000.0));
    sim = simulator.get();
    sensors.reset(new SimulatedSensors(*simulator));
  } else {
    analogReadResolution(12);
    sensors.reset(new WiredSensors());
  }
  actuators.reset(new Actuators(sim));
  pinMode(ES_RELAY_PIN, OUTPUT);
  Actuators::setRelay(entities.value(static_cast<size_t>(entities.indexOf("relay_main"))).b);

  es::CoreOptions opt;
  opt.deviceId = config.deviceId;
  opt.info.name = config.name.empty() ? config.deviceId : config.name;
  opt.info.type = "esp32";
  opt.info.firmware = es::kFirmwareVersion;
  opt.username = config.mqttUser;
  opt.password = config.mqttPass;
  opt.intervalMs = config.intervalMs;
  opt.batch = config.batch;
  opt.batchMaxAgeMs = config.batchAgeMs;
  opt.bufferCapacity = config.buffer;
  opt.backoffBaseMs = 1000;
  opt.backoffCapMs = 60000;
  opt.statsIntervalMs = 60000;
  opt.keepAliveSeconds = 30;
  // Discovery is ~1 KB; commands are capped at 4 KB.
  transport.reset(new PubSubTransport(url, config.caCert, config.clientCert, config.clientKey,
                                      espClock, 4096));
  core.reset(new es::DeviceCore(opt, entities, *transport, espClock, espRandom, *sensors,
                                actuators.get(), &serialSink));
  core->edge().setStorage(&modelStorage);
  core->begin();
  Serial.printf("device %s: connecting to Wi-Fi \"%s\", broker %s\n", config.deviceId.c_str(),
                config.wifiSsid.c_str(), config.mqttUrl.c_str());
}

}  // namespace

void setup() {
  Serial.begin(115200);
  delay(200);
  Serial.printf("\nEasySmart firmware %s - type 'help' for the console\n", es::kFirmwareVersion);
  store.begin();
  console.reset(new es::Console(store));
  config = es::loadConfig(store);
  std::string reason;
  if (!es::configReady(config, true, reason)) {
    startPortal(reason);
  } else if (portalButtonHeld()) {
    startPortal("portal requested with the BOOT button");
  } else if (es::needsClaim(config)) {
    startClaim();
  } else {
    startDevice();
  }
}

void loop() {
  pollSerial();
  if (portalMode) {
    dns->processNextRequest();
    web->handleClient();
    delay(2);
    return;
  }
  if (claim) {
    if (claim->loop()) {
      // The certificate and key are in NVS: the next start connects with them.
      Serial.println("claim: certificate obtained, restarting");
      delay(200);
      ESP.restart();
    }
    delay(1);
    return;
  }
  core->loop();
  delay(1);  // lets the idle task feed the watchdog
}
