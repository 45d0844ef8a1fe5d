#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "edge_chunks.hpp"
#include "edge_model_builder.hpp"
#include "edge_runtime.hpp"
#include "fakes.hpp"
#include "json.hpp"

namespace {

using es_test::checksumOf;
using es_test::chunksOf;

const char* kStateTopic = "devices/DEV_1/model/state";

class MemoryModelStorage : public es::ModelStorage {
 public:
  std::vector<uint8_t> bytes;
  int saves = 0;
  bool load(std::vector<uint8_t>& out) override {
    out = bytes;
    return !bytes.empty();
  }
  bool save(const std::vector<uint8_t>& b) override {
    bytes = b;
    ++saves;
    return true;
  }
};

// Forwards the fake broker's callbacks to the runtime alone.
class RuntimeListener : public es::MqttListener {
 public:
  explicit RuntimeListener(es::EdgeRuntime& r) : r_(r) {}
  void onConnected() override { r_.onConnected(); }
  void onDisconnected(const std::string&) override { r_.onDisconnected(); }
  void onMessage(const std::string&, const std::string& p) override { r_.onChunk(p); }
  void onPublishAcked(int id) override { r_.onPublishAcked(id); }

 private:
  es::EdgeRuntime& r_;
};

struct Fixture {
  es_test::FakeTransport mqtt;
  es_test::EventLog events;
  MemoryModelStorage storage;
  es::EdgeRuntime runtime{"DEV_1", mqtt, &events};
  RuntimeListener listener{runtime};

  Fixture() {
    mqtt.setListener(&listener);
    runtime.setStorage(&storage);
    runtime.addSensor("temperature");
    runtime.addSensor("pressure");
    runtime.begin();
    connect();
  }
  void connect() {
    mqtt.isConnected = true;
    runtime.onConnected();
  }
  void deliver(const std::vector<std::string>& chunks) {
    for (const auto& c : chunks) runtime.onChunk(c);
  }
  es::JsonValue lastState() {
    auto states = mqtt.onTopic(kStateTopic);
    REQUIRE_FALSE(states.empty());
    es::JsonValue v;
    REQUIRE(es::parseJson(states.back().payload, v).ok);
    return v;
  }
};

std::vector<uint8_t> modelFile(const std::string& version, double lastTimeMs = 1.7e12) {
  es_test::ModelBuilder b;
  b.version = version;
  b.lastTimeMs = lastTimeMs;
  return b.build();
}

}  // namespace

TEST_CASE("base64 decoding accepts padding and refuses anything else") {
  std::vector<uint8_t> out;
  CHECK(es::decodeBase64("TWFu", out));
  CHECK(out == std::vector<uint8_t>{'M', 'a', 'n'});
  CHECK(es::decodeBase64("TWE=", out));
  CHECK(out.size() == 2);
  CHECK(es::decodeBase64("TQ==", out));
  CHECK(out.size() == 1);
  CHECK_FALSE(es::decodeBase64("TQ=", out));
  CHECK_FALSE(es::decodeBase64("T=Q=", out));
  CHECK_FALSE(es::decodeBase64("TW!u", out));
  CHECK_FALSE(es::decodeBase64("TQ==TWFu", out));
}

TEST_CASE("a model delivered in chunks is installed, stored and confirmed with its checksum") {
  Fixture f;
  const auto file = modelFile("v1");
  const std::string sum = checksumOf(file);
  auto chunks = chunksOf(file, "v1", sum);
  REQUIRE(chunks.size() > 2);
  // A redelivered chunk (QoS 1) changes nothing.
  chunks.insert(chunks.begin() + 1, chunks[0]);
  f.deliver(chunks);
  REQUIRE(f.runtime.running());
  CHECK(f.runtime.model()->version == "v1");
  CHECK(f.storage.bytes == file);
  es::JsonValue state = f.lastState();
  CHECK(state.find("status")->asString() == "confirmed");
  CHECK(state.find("version")->asString() == "v1");
  CHECK(state.find("checksum")->asString() == sum);
  CHECK(f.events.contains("\"event\":\"model_installed\""));
}

TEST_CASE("a corrupted chunk, a wrong checksum, a lost chunk and an oversized model are refused; the running model stays") {
  Fixture f;
  const auto v1 = modelFile("v1");
  f.deliver(chunksOf(v1, "v1", checksumOf(v1)));
  REQUIRE(f.runtime.model()->version == "v1");
  const auto v2 = modelFile("v2");

  SUBCASE("corrupted chunk") {
    auto bad = v2;
    bad[200] ^= 0x40;
    f.deliver(chunksOf(bad, "v2", checksumOf(v2)));
    CHECK(f.lastState().find("reason")->asString() == "checksum_mismatch");
  }
  SUBCASE("announced checksum does not match") {
    f.deliver(chunksOf(v2, "v2", "0badc0de"));
    CHECK(f.lastState().find("reason")->asString() == "checksum_mismatch");
  }
  SUBCASE("announced version does not match the file") {
    f.deliver(chunksOf(v2, "v3", checksumOf(v2)));
    CHECK(f.lastState().find("reason")->asString() == "version_mismatch");
  }
  SUBCASE("a chunk is missing") {
    auto chunks = chunksOf(v2, "v2", checksumOf(v2));
    chunks.erase(chunks.begin() + 1);
    f.deliver(chunks);
    CHECK(f.lastState().find("reason")->asString() == "missing_chunk");
  }
  SUBCASE("larger than the device takes") {
    f.deliver(chunksOf(v2, "v2", checksumOf(v2), 300, es::kEdgeMaxBytes + 1.0));
    CHECK(f.lastState().find("reason")->asString() == "too_large");
  }
  SUBCASE("a half-received model") {
    auto chunks = chunksOf(v2, "v2", checksumOf(v2));
    chunks.pop_back();
    f.deliver(chunks);
  }
  CHECK(f.runtime.model()->version == "v1");
  CHECK(f.storage.bytes == v1);
  CHECK(f.storage.saves == 1);
}

TEST_CASE("a reboot keeps the last confirmed model; a damaged stored file is discarded") {
  MemoryModelStorage storage;
  {
    Fixture f;
    const auto v1 = modelFile("v1");
    f.deliver(chunksOf(v1, "v1", checksumOf(v1)));
    storage.bytes = f.storage.bytes;
  }
  es_test::FakeTransport mqtt;
  es_test::EventLog events;
  es::EdgeRuntime rebooted("DEV_1", mqtt, &events);
  rebooted.setStorage(&storage);
  rebooted.addSensor("temperature");
  rebooted.begin();
  REQUIRE(rebooted.running());
  CHECK(rebooted.model()->version == "v1");
  // On connect it says what it runs.
  mqtt.isConnected = true;
  rebooted.onConnected();
  REQUIRE(mqtt.onTopic(kStateTopic).size() == 1);
  CHECK(mqtt.onTopic(kStateTopic)[0].payload.find("\"status\":\"confirmed\"") != std::string::npos);

  storage.bytes[100] ^= 1;
  es::EdgeRuntime damaged("DEV_1", mqtt, &events);
  damaged.setStorage(&storage);
  damaged.addSensor("temperature");
  damaged.begin();
  CHECK_FALSE(damaged.running());
  CHECK(events.contains("\"event\":\"model_discarded\""));
}

TEST_CASE("anomalies found while the broker is unreachable are reported after the reconnect") {
  Fixture f;
  const auto v1 = modelFile("v1", 1.7e12);
  f.deliver(chunksOf(v1, "v1", checksumOf(v1)));
  f.mqtt.ackAll();
  f.mqtt.isConnected = false;
  f.runtime.onDisconnected();
  const size_t before = f.mqtt.published.size();
  double epoch = 1.7e9;
  for (int i = 0; i < 80; ++i) f.runtime.observe("temperature", epoch += 60, 20 + (i % 2) * 0.1);
  f.runtime.observe("temperature", epoch += 60, 95);
  CHECK(f.runtime.pendingAnomalies() == 1);
  CHECK(f.events.contains("\"event\":\"anomaly\""));
  CHECK(f.mqtt.published.size() == before);  // nothing went out while offline

  f.connect();
  const auto states = f.mqtt.onTopic(kStateTopic);
  es::JsonValue report;
  REQUIRE(es::parseJson(states.back().payload, report).ok);
  const es::JsonValue* anomalies = report.find("anomalies");
  REQUIRE(anomalies != nullptr);
  REQUIRE(anomalies->items().size() == 1);
  CHECK(anomalies->items()[0].find("value")->asNumber() == 95);
  CHECK(anomalies->items()[0].find("entity_id")->asString() == "temperature");
  // Kept until the broker acknowledges the report.
  CHECK(f.runtime.pendingAnomalies() == 1);
  f.mqtt.ackAll();
  CHECK(f.runtime.pendingAnomalies() == 0);
}

TEST_CASE("readings taken after the export and before the install are scored on install") {
  Fixture f;
  double epoch = 1.7e9;
  // Three readings the platform's statistics already include, four it had not seen.
  for (int i = 0; i < 7; ++i) f.runtime.observe("temperature", epoch += 60, 20 + i);
  const auto v1 = modelFile("v1", (1.7e9 + 3 * 60) * 1000);
  f.deliver(chunksOf(v1, "v1", checksumOf(v1)));
  REQUIRE(f.runtime.running());
  CHECK(f.runtime.detector()->state().count == 4);
  CHECK(f.runtime.detector()->state().last == 26);
  f.runtime.observe("pressure", epoch += 60, 1);  // another entity: not scored
  CHECK(f.runtime.detector()->state().count == 4);
  f.runtime.observe("temperature", epoch, 30);
  CHECK(f.runtime.detector()->state().count == 5);
}
