// The seams between the portable core and a platform (ESP32 Arduino or the host). Each
// is deliberately small so an adapter is a few lines and a test double is trivial.
#pragma once

#include <cstdint>
#include <string>

namespace es {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds; may wrap on 32-bit platforms, so the core only ever
  // compares differences.
  virtual uint32_t monotonicMs() = 0;
  // Wall-clock epoch seconds with sub-second precision, or NaN while unknown
  // (before NTP has synchronised).
  virtual double epochSeconds() = 0;
};

class Random {
 public:
  virtual ~Random() = default;
  virtual uint32_t nextU32() = 0;
};

// Small deterministic generator for tests and simulations (splitmix64).
class SplitMix : public Random {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint32_t nextU32() override {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);
  }

 private:
  uint64_t state_;
};

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  virtual bool get(const std::string& key, std::string& out) = 0;
  virtual bool put(const std::string& key, const std::string& value) = 0;
  virtual bool remove(const std::string& key) = 0;
};

struct PublishResult {
  bool accepted = false;
  // Non-zero: the client will report completion through onPublishAcked(id) once the
  // broker has acknowledged it. Zero with accepted: the client library has taken the
  // message and will never report more (PubSubClient's QoS 0 publish).
  int ackId = 0;
};

struct ConnectOptions {
  std::string clientId;
  std::string username;
  std::string password;
  std::string willTopic;
  std::string willPayload;
  bool willRetain = true;
  int willQos = 1;
  uint16_t keepAliveSeconds = 15;
};

class MqttListener {
 public:
  virtual ~MqttListener() = default;
  virtual void onConnected() = 0;
  virtual void onDisconnected(const std::string& reason) = 0;
  virtual void onMessage(const std::string& topic, const std::string& payload) = 0;
  virtual void onPublishAcked(int ackId) = 0;
};

// An MQTT session. connect() always starts a fresh clean session: the core owns
// retransmission of its buffered readings, so a client library that silently replayed
// old in-flight messages after a reconnect would produce duplicates.
class MqttTransport {
 public:
  virtual ~MqttTransport() = default;
  virtual void setListener(MqttListener* listener) = 0;
  // Starts connecting. Returns false if the attempt failed outright; otherwise the
  // listener later receives onConnected or onDisconnected.
  virtual bool connect(const ConnectOptions& options, std::string& error) = 0;
  virtual void disconnect() = 0;
  virtual PublishResult publish(const std::string& topic, const std::string& payload, int qos,
                                bool retain) = 0;
  virtual bool subscribe(const std::string& filter, int qos) = 0;
  // Pumps network I/O; listener callbacks are only ever invoked from here or connect().
  virtual void poll() = 0;
};

// Receives one JSON object per line describing what the device did (connected,
// command, stats, ...): the host prints them on stdout, the ESP32 on the serial port.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void emit(const std::string& jsonLine) = 0;
};

}  // namespace es
