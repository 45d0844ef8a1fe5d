// Test doubles for the core's platform interfaces.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "device.hpp"
#include "interfaces.hpp"

namespace es_test {

class FakeClock : public es::Clock {
 public:
  uint32_t mono = 1000;
  double epoch = 1700000000.0;
  bool epochKnown = true;
  uint32_t monotonicMs() override { return mono; }
  double epochSeconds() override { return epochKnown ? epoch + mono / 1000.0 : NAN; }
  void advance(uint32_t ms) { mono += ms; }
};

// Returns a fixed sequence, so backoff tests can assert exact delays.
class ScriptedRandom : public es::Random {
 public:
  std::vector<uint32_t> values;
  size_t i = 0;
  uint32_t nextU32() override { return values.empty() ? 0 : values[i++ % values.size()]; }
};

class MemoryStore : public es::KeyValueStore {
 public:
  std::map<std::string, std::string> data;
  bool get(const std::string& k, std::string& out) override {
    auto it = data.find(k);
    if (it == data.end()) return false;
    out = it->second;
    return true;
  }
  bool put(const std::string& k, const std::string& v) override {
    data[k] = v;
    return true;
  }
  bool remove(const std::string& k) override { return data.erase(k) > 0; }
};

struct Published {
  std::string topic;
  std::string payload;
  int qos;
  bool retain;
  int ackId;
};

// A broker in a box: connect succeeds on the next poll() unless refused, publishes are
// recorded and acknowledged only when the test says so.
class FakeTransport : public es::MqttTransport {
 public:
  es::MqttListener* listener = nullptr;
  bool refuse = false;            // connect() fails outright
  bool autoConnack = true;        // CONNACK on the next poll
  bool acksEnabled = true;        // false: behave like a QoS 0 only client (ackId 0)
  bool acceptPublishes = true;
  bool pendingConnack = false;
  bool isConnected = false;
  int connectCalls = 0;
  int nextId = 1;
  es::ConnectOptions lastOptions;
  std::vector<Published> published;
  std::vector<std::string> subscriptions;

  void setListener(es::MqttListener* l) override { listener = l; }
  bool connect(const es::ConnectOptions& o, std::string& error) override {
    ++connectCalls;
    lastOptions = o;
    if (refuse) {
      error = "connection_refused";
      return false;
    }
    pendingConnack = autoConnack;
    return true;
  }
  void disconnect() override {
    isConnected = false;
    pendingConnack = false;
  }
  es::PublishResult publish(const std::string& t, const std::string& p, int qos,
                            bool retain) override {
    es::PublishResult r;
    if (!isConnected || !acceptPublishes) return r;
    r.accepted = true;
    r.ackId = acksEnabled ? nextId++ : 0;
    published.push_back(Published{t, p, qos, retain, r.ackId});
    return r;
  }
  bool subscribe(const std::string& f, int) override {
    subscriptions.push_back(f);
    return true;
  }
  void poll() override {
    if (pendingConnack) {
      pendingConnack = false;
      isConnected = true;
      listener->onConnected();
    }
  }
  // Test helpers
  void dropConnection() {
    isConnected = false;
    listener->onDisconnected("connection_lost");
  }
  void ackAll() {
    for (auto& p : published) {
      if (p.ackId > 0) {
        const int id = p.ackId;
        p.ackId = -id;  // acknowledged once
        listener->onPublishAcked(id);
      }
    }
  }
  std::vector<Published> onTopic(const std::string& topic) const {
    std::vector<Published> r;
    for (const auto& p : published) {
      if (p.topic == topic) r.push_back(p);
    }
    return r;
  }
};

class CountingSensors : public es::SensorSource {
 public:
  double next = 0;
  bool fail = false;
  bool nonFinite = false;
  bool read(const es::EntitySpec&, double, double& out) override {
    if (fail) return false;
    out = nonFinite ? NAN : next;
    next += 1;
    return true;
  }
};

class RecordingActuators : public es::ActuatorSink {
 public:
  std::vector<std::pair<std::string, es::Value>> applied;
  void apply(const es::EntitySpec& s, const es::Value& v) override { applied.emplace_back(s.id, v); }
};

class EventLog : public es::EventSink {
 public:
  std::vector<std::string> lines;
  void emit(const std::string& l) override { lines.push_back(l); }
  bool contains(const std::string& needle) const {
    for (const auto& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

}  // namespace es_test
