#include <doctest/doctest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "device.hpp"
#include "fakes.hpp"

using nlohmann::json;

namespace {

struct Rig {
  es_test::FakeClock clock;
  es_test::FakeTransport mqtt;
  es::SplitMix rng;
  es_test::CountingSensors sensors;
  es_test::RecordingActuators actuators;
  es_test::EventLog events;
  es::EntityRegistry entities;
  es::CoreOptions options;
  std::unique_ptr<es::DeviceCore> core;

  // The cases start sampling at begin(), but for the one about the random first sample.
  explicit Rig(size_t buffer = 100, uint32_t batch = 1, bool randomFirstSample = false,
               uint64_t seed = 3)
      : rng(seed) {
    es::addDefaultEntities(entities);
    options.randomFirstSample = randomFirstSample;
    options.deviceId = "dev-1";
    options.username = "dev-1";
    options.password = "pw";
    options.info = {"Test", "compressor", es::kFirmwareVersion};
    options.intervalMs = 1000;
    options.bufferCapacity = buffer;
    options.batch = batch;
    options.backoffBaseMs = 100;
    options.backoffCapMs = 1000;
    options.maxInflight = 4;
    core.reset(new es::DeviceCore(options, entities, mqtt, clock, rng, sensors, &actuators,
                                  &events));
  }
  // Sensor state messages (value numbers) in publish order.
  std::vector<double> sensorValues() const {
    std::vector<double> v;
    for (const auto& p : mqtt.published) {
      if (p.topic.find("/state") == std::string::npos) continue;
      if (p.topic.find("temperature") == std::string::npos &&
          p.topic.find("pressure") == std::string::npos &&
          p.topic.find("vibration") == std::string::npos) {
        continue;
      }
      v.push_back(json::parse(p.payload)["value"].get<double>());
    }
    return v;
  }
};

}  // namespace

TEST_CASE("connect handshake: LWT, retained online, retained discovery, subscription") {
  Rig r;
  r.core->begin();
  r.core->loop();  // connect() issued
  CHECK(r.mqtt.connectCalls == 1);
  CHECK(r.mqtt.lastOptions.clientId == "dev-1");
  CHECK(r.mqtt.lastOptions.username == "dev-1");
  CHECK(r.mqtt.lastOptions.willTopic == "devices/dev-1/status");
  CHECK(r.mqtt.lastOptions.willPayload == "offline");
  CHECK(r.mqtt.lastOptions.willRetain);
  r.core->loop();  // CONNACK
  REQUIRE(r.core->online());
  auto status = r.mqtt.onTopic("devices/dev-1/status");
  REQUIRE(status.size() == 1);
  CHECK(status[0].payload == "online");
  CHECK(status[0].retain);
  auto disc = r.mqtt.onTopic("devices/dev-1/discovery");
  REQUIRE(disc.size() == 1);
  CHECK(disc[0].retain);
  CHECK(json::parse(disc[0].payload)["entities"].size() == 6);
  // A state message per reading, a round a second: never more than a second apart.
  CHECK(json::parse(disc[0].payload)["report_interval_s"] == 1);
  CHECK(r.mqtt.subscriptions == std::vector<std::string>{"devices/dev-1/+/set"});
  // current actuator states are announced
  auto relay = r.mqtt.onTopic("devices/dev-1/relay_main/state");
  REQUIRE(relay.size() == 1);
  CHECK(json::parse(relay[0].payload)["value"] == true);
  CHECK(r.mqtt.onTopic("devices/dev-1/setpoint/state").size() == 1);
  CHECK(r.mqtt.onTopic("devices/dev-1/label/state").size() == 1);
  CHECK(r.events.contains(R"("event":"connected")"));
}

TEST_CASE("devices powered up together take their first samples spread over the interval") {
  std::set<uint32_t> firstAt;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Rig r(100, 1, true, seed);
    r.mqtt.refuse = true;  // offline: every sample stays in the buffer, three readings each
    const uint32_t poweredUp = r.clock.monotonicMs();
    r.core->begin();
    uint32_t first = 0;
    uint32_t second = 0;
    for (uint32_t step = 0; step <= 2 * r.options.intervalMs / 10; ++step) {
      r.core->loop();
      if (first == 0 && r.core->buffered() == 3) first = r.clock.monotonicMs();
      if (second == 0 && r.core->buffered() == 6) second = r.clock.monotonicMs();
      r.clock.advance(10);
    }
    REQUIRE(first != 0);
    CHECK(first - poweredUp <= r.options.intervalMs);
    // Then every interval from there, as before.
    CHECK(second - first == r.options.intervalMs);
    firstAt.insert(first - poweredUp);
  }
  CHECK(firstAt.size() >= 15);
  CHECK(*firstAt.rbegin() - *firstAt.begin() >= 500);
}

TEST_CASE("without the random first sample, the first is taken at power-up") {
  Rig r(100, 1, false);
  r.mqtt.refuse = true;
  r.core->begin();
  r.core->loop();
  CHECK(r.core->buffered() == 3);
}

TEST_CASE("readings are published as state messages and removed only when acked") {
  Rig r;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  // the first sampling happened in the first loop: three sensors
  CHECK(r.core->buffered() == 3);
  auto temp = r.mqtt.onTopic("devices/dev-1/temperature/state");
  REQUIRE(temp.size() == 1);
  json j = json::parse(temp[0].payload);
  CHECK(j["value"] == 0.0);
  CHECK(j["timestamp"].get<double>() == doctest::Approx(1700000001.0));
  CHECK(j["unit"] == "\xC2\xB0" "C");
  CHECK(temp[0].qos == 1);
  CHECK_FALSE(temp[0].retain);
  r.mqtt.ackAll();
  CHECK(r.core->buffered() == 0);
  CHECK(r.core->sent() == 3);
}

TEST_CASE("offline readings are buffered and flushed oldest first exactly once") {
  Rig r;
  r.mqtt.refuse = true;
  r.core->begin();
  for (int i = 0; i < 10; ++i) {
    r.core->loop();
    r.clock.advance(1000);
  }
  CHECK(r.mqtt.published.empty());
  CHECK(r.core->buffered() == 30);
  CHECK(r.events.contains(R"("event":"connect_failed")"));

  r.mqtt.refuse = false;
  // drive until connected and drained, acking as the broker would
  for (int i = 0; i < 200 && !(r.core->online() && r.core->buffered() == 0); ++i) {
    r.core->loop();
    r.mqtt.ackAll();
    r.clock.advance(50);
  }
  REQUIRE(r.core->online());
  const auto values = r.sensorValues();
  REQUIRE(values.size() >= 30);
  for (size_t i = 0; i < values.size(); ++i) CHECK(values[i] == static_cast<double>(i));
  CHECK(r.core->sent() == values.size());
  CHECK(r.core->dropped() == 0);
}

TEST_CASE("a disconnect before the ack re-sends unacknowledged readings, in order") {
  Rig r;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  REQUIRE(r.core->online());
  CHECK(r.core->inflight() == 3);
  // ack only the first reading, then lose the connection
  for (auto& p : r.mqtt.published) {
    if (p.topic == "devices/dev-1/temperature/state") {
      r.core->onPublishAcked(p.ackId);
      p.ackId = -p.ackId;
    }
  }
  CHECK(r.core->buffered() == 2);
  r.mqtt.published.clear();
  r.mqtt.dropConnection();
  CHECK_FALSE(r.core->online());
  CHECK(r.core->inflight() == 0);
  CHECK(r.events.contains(R"("event":"disconnected")"));
  for (int i = 0; i < 100 && !r.core->online(); ++i) {
    r.core->loop();
    r.clock.advance(20);
  }
  REQUIRE(r.core->online());
  const auto values = r.sensorValues();
  REQUIRE(values.size() >= 2);
  CHECK(values[0] == 1.0);  // pressure, the oldest unacked
  CHECK(values[1] == 2.0);
  r.mqtt.ackAll();
  CHECK(r.core->sent() >= 3);
}

TEST_CASE("acks arriving out of order complete the buffer in order") {
  Rig r;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  std::vector<int> ids;
  for (const auto& p : r.mqtt.published) {
    if (p.topic.find("temperature/state") != std::string::npos ||
        p.topic.find("pressure/state") != std::string::npos ||
        p.topic.find("vibration/state") != std::string::npos) {
      ids.push_back(p.ackId);
    }
  }
  REQUIRE(ids.size() == 3);
  r.core->onPublishAcked(ids[2]);
  CHECK(r.core->buffered() == 3);
  r.core->onPublishAcked(ids[0]);
  CHECK(r.core->buffered() == 2);
  r.core->onPublishAcked(ids[1]);
  CHECK(r.core->buffered() == 0);
  r.core->onPublishAcked(ids[1]);  // duplicate ack is ignored
  r.core->onPublishAcked(9999);     // unknown ack is ignored
  CHECK(r.core->sent() == 3);
}

TEST_CASE("overflow while offline keeps the newest readings and counts drops") {
  Rig r(10);
  r.mqtt.refuse = true;
  r.core->begin();
  for (int i = 0; i < 10; ++i) {
    r.core->loop();
    r.clock.advance(1000);
  }
  CHECK(r.core->buffered() == 10);
  CHECK(r.core->dropped() == 20);
  CHECK(r.core->buffer().front().value == 20.0);
  r.core->emitStats();
  CHECK(r.events.contains(R"("dropped":20)"));
}

TEST_CASE("batch mode sends telemetry arrays grouped by sampling round") {
  Rig r(100, 6);
  r.mqtt.refuse = true;
  r.core->begin();
  for (int i = 0; i < 2; ++i) {
    r.core->loop();
    r.clock.advance(1000);
  }
  r.mqtt.refuse = false;
  for (int i = 0; i < 100 && !r.core->online(); ++i) {
    r.core->loop();
    r.clock.advance(10);
  }
  auto tele = r.mqtt.onTopic("devices/dev-1/telemetry");
  REQUIRE(tele.size() >= 1);
  json j = json::parse(tele[0].payload);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  CHECK(j[0]["values"]["temperature"] == 0.0);
  CHECK(j[0]["values"]["vibration"] == 2.0);
  CHECK(j[1]["values"]["temperature"] == 3.0);
  CHECK(j[1]["timestamp"].get<double>() - j[0]["timestamp"].get<double>() == doctest::Approx(1.0));
  r.mqtt.ackAll();
  CHECK(r.core->sent() >= 6);
}

TEST_CASE("by default readings wait for a full telemetry batch") {
  Rig r;
  r.options.batch = es::CoreOptions().batch;
  r.options.batchMaxAgeMs = es::CoreOptions().batchMaxAgeMs;
  REQUIRE(r.options.batch == es::kDefaultBatchReadings);
  REQUIRE(r.options.batch > 1);
  r.core.reset(new es::DeviceCore(r.options, r.entities, r.mqtt, r.clock, r.rng, r.sensors,
                                  &r.actuators, &r.events));
  r.core->begin();
  // Three sensors a second: the batch fills before it is old enough to go out partial.
  const uint32_t rounds = es::kDefaultBatchReadings / 3;
  REQUIRE(rounds * r.options.intervalMs < es::kDefaultBatchMaxAgeMs);
  for (uint32_t i = 0; i < rounds - 1; ++i) {
    r.core->loop();
    r.clock.advance(r.options.intervalMs);
  }
  CHECK(r.core->buffered() == es::kDefaultBatchReadings - 3);
  CHECK(r.mqtt.onTopic("devices/dev-1/telemetry").empty());
  CHECK(r.mqtt.onTopic("devices/dev-1/temperature/state").empty());
  r.core->loop();  // the last round fills the batch
  auto tele = r.mqtt.onTopic("devices/dev-1/telemetry");
  REQUIRE(tele.size() == 1);
  json j = json::parse(tele[0].payload);
  REQUIRE(j.size() == rounds);
  CHECK(j[0]["values"].size() == 3);
  CHECK(j[rounds - 1]["values"]["vibration"] == static_cast<double>(es::kDefaultBatchReadings - 1));
  r.mqtt.ackAll();
  CHECK(r.core->sent() == es::kDefaultBatchReadings);
}

TEST_CASE("discovery announces the longest silence between messages, and the device keeps to it") {
  struct Case {
    uint32_t intervalMs;
    uint32_t expectedS;
  };
  // Three sensors, batches of 60 readings or 60 s: a second's rounds fill a batch in 20 s;
  // at one round in 10 s the batch age sends it first, 60 s after its oldest reading.
  for (const Case c : {Case{1000, 20}, Case{10000, 70}}) {
    INFO(c.intervalMs);
    Rig r;
    r.options.intervalMs = c.intervalMs;
    r.options.batch = es::kDefaultBatchReadings;
    r.options.batchMaxAgeMs = es::kDefaultBatchMaxAgeMs;
    r.core.reset(new es::DeviceCore(r.options, r.entities, r.mqtt, r.clock, r.rng, r.sensors,
                                    &r.actuators, &r.events));
    r.core->begin();
    r.core->loop();  // connect() issued
    r.core->loop();  // CONNACK
    REQUIRE(r.core->online());
    auto disc = r.mqtt.onTopic("devices/dev-1/discovery");
    REQUIRE(disc.size() == 1);
    CHECK(json::parse(disc[0].payload)["report_interval_s"] == c.expectedS);
    size_t messages = r.mqtt.onTopic("devices/dev-1/telemetry").size();
    uint32_t lastAt = r.clock.mono;
    uint32_t longest = 0;
    for (uint32_t t = 0; t < 600000; t += 100) {
      r.clock.advance(100);
      r.core->loop();
      r.mqtt.ackAll();
      const size_t now = r.mqtt.onTopic("devices/dev-1/telemetry").size();
      if (now != messages) {
        longest = std::max(longest, r.clock.mono - lastAt);
        lastAt = r.clock.mono;
        messages = now;
      }
    }
    CHECK(messages > 5);
    CHECK(longest <= c.expectedS * 1000);
  }
}

TEST_CASE("a partial batch goes out when its oldest reading reaches the batch age") {
  Rig r(100, 60);
  r.options.batchMaxAgeMs = 5000;
  r.core.reset(new es::DeviceCore(r.options, r.entities, r.mqtt, r.clock, r.rng, r.sensors,
                                  &r.actuators, &r.events));
  r.core->begin();
  r.core->loop();  // first round sampled, connect started
  const uint32_t firstReadingAt = r.core->buffer().front().monoMs;
  while (r.clock.mono - firstReadingAt < 5000 - 1) {
    r.clock.advance(1);
    r.core->loop();
  }
  CHECK(r.mqtt.onTopic("devices/dev-1/telemetry").empty());
  r.clock.advance(1);
  r.core->loop();
  auto tele = r.mqtt.onTopic("devices/dev-1/telemetry");
  REQUIRE(tele.size() == 1);
  // Rounds at 0, 1, ..., 5 s after the first: six rounds of three sensors.
  CHECK(json::parse(tele[0].payload).size() == 6);
  r.mqtt.ackAll();
  CHECK(r.core->sent() == 18);
}

TEST_CASE("batch age 0 sends whatever is waiting at once") {
  Rig r(100, 60);
  r.options.batchMaxAgeMs = 0;
  r.core.reset(new es::DeviceCore(r.options, r.entities, r.mqtt, r.clock, r.rng, r.sensors,
                                  &r.actuators, &r.events));
  r.core->begin();
  r.core->loop();
  r.core->loop();
  auto tele = r.mqtt.onTopic("devices/dev-1/telemetry");
  REQUIRE(tele.size() == 1);
  // One sampling round: a single telemetry object.
  CHECK(json::parse(tele[0].payload)["values"].size() == 3);
}

TEST_CASE("shutdown sends a partial batch before announcing offline") {
  Rig r(100, 60);
  r.options.batchMaxAgeMs = 60000;
  r.core.reset(new es::DeviceCore(r.options, r.entities, r.mqtt, r.clock, r.rng, r.sensors,
                                  &r.actuators, &r.events));
  r.core->begin();
  r.core->loop();
  r.core->loop();
  r.clock.advance(1000);
  r.core->loop();
  CHECK(r.mqtt.onTopic("devices/dev-1/telemetry").empty());
  r.core->shutdown(0);
  REQUIRE(r.mqtt.published.size() >= 2);
  const auto& last = r.mqtt.published.back();
  const auto& beforeLast = r.mqtt.published[r.mqtt.published.size() - 2];
  CHECK(beforeLast.topic == "devices/dev-1/telemetry");
  CHECK(json::parse(beforeLast.payload).size() == 2);
  CHECK(last.topic == "devices/dev-1/status");
  CHECK(last.payload == "offline");
}

TEST_CASE("clients without acknowledgements complete on acceptance") {
  Rig r;
  r.mqtt.acksEnabled = false;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  CHECK(r.core->buffered() == 0);
  CHECK(r.core->sent() == 3);
  CHECK(r.core->inflight() == 0);
}

TEST_CASE("a refused publish keeps the reading for later") {
  Rig r;
  r.core->begin();
  r.mqtt.acceptPublishes = false;
  r.core->loop();
  r.core->loop();
  CHECK(r.core->buffered() == 3);
  CHECK(r.core->inflight() == 0);
  r.mqtt.acceptPublishes = true;
  r.core->loop();
  r.mqtt.ackAll();
  CHECK(r.core->buffered() == 0);
}

TEST_CASE("readings taken before NTP are dated once the clock is known") {
  Rig r;
  r.clock.epochKnown = false;
  r.mqtt.refuse = true;
  r.core->begin();
  r.core->loop();  // sample at mono 1000 with no wall clock
  r.clock.advance(5000);
  r.clock.epochKnown = true;
  r.mqtt.refuse = false;
  for (int i = 0; i < 100 && !r.core->online(); ++i) {
    r.core->loop();
    r.clock.advance(10);
  }
  auto temp = r.mqtt.onTopic("devices/dev-1/temperature/state");
  REQUIRE(!temp.empty());
  CHECK(json::parse(temp[0].payload)["timestamp"].get<double>() ==
        doctest::Approx(1700000001.0).epsilon(1e-12));
}

TEST_CASE("non-finite or failed sensor readings are never buffered") {
  Rig r;
  r.sensors.nonFinite = true;
  r.mqtt.refuse = true;
  r.core->begin();
  r.core->loop();
  CHECK(r.core->buffered() == 0);
  r.core->emitStats();
  CHECK(r.events.contains(R"("invalid_readings":3)"));
}

TEST_CASE("commands are applied and confirmed with the command id") {
  Rig r;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  r.mqtt.published.clear();
  r.core->onMessage("devices/dev-1/relay_main/set", R"({"value":false,"command_id":"abc"})");
  REQUIRE(r.actuators.applied.size() == 1);
  CHECK(r.actuators.applied[0].first == "relay_main");
  CHECK(r.actuators.applied[0].second == es::Value::boolean(false));
  auto st = r.mqtt.onTopic("devices/dev-1/relay_main/state");
  REQUIRE(st.size() == 1);
  json j = json::parse(st[0].payload);
  CHECK(j["value"] == false);
  CHECK(j["command_id"] == "abc");
  CHECK(j.contains("timestamp"));
  CHECK(r.events.contains(R"({"event":"command","entity_id":"relay_main","value":false,"command_id":"abc"})"));

  r.core->onMessage("devices/dev-1/setpoint/set", R"({"value":55.5})");
  st = r.mqtt.onTopic("devices/dev-1/setpoint/state");
  REQUIRE(st.size() == 1);
  CHECK(json::parse(st[0].payload)["value"] == 55.5);
  CHECK(r.entities.value(static_cast<size_t>(r.entities.indexOf("setpoint"))).n == 55.5);

  r.core->onMessage("devices/dev-1/label/set", R"({"value":"Pump \"7\""})");
  st = r.mqtt.onTopic("devices/dev-1/label/state");
  REQUIRE(st.size() == 1);
  CHECK(json::parse(st[0].payload)["value"] == "Pump \"7\"");
}

TEST_CASE("bad commands are rejected, counted and change nothing") {
  Rig r;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  r.mqtt.published.clear();
  r.core->onMessage("devices/dev-1/setpoint/set", R"({"value":1000,"command_id":"big"})");
  r.core->onMessage("devices/dev-1/relay_main/set", "not json");
  r.core->onMessage("devices/dev-1/temperature/set", R"({"value":3})");
  r.core->onMessage("devices/other/relay_main/set", R"({"value":false})");
  r.core->onMessage("devices/dev-1/relay_main/state", R"({"value":false})");
  r.core->onMessage("garbage", "");
  CHECK(r.actuators.applied.empty());
  CHECK(r.mqtt.published.empty());
  CHECK(r.core->rejectedCommands() == 3);
  CHECK(r.events.contains(R"("reason":"out_of_range","command_id":"big")"));
  CHECK(r.events.contains(R"("reason":"read_only_entity")"));
  CHECK(r.entities.value(0).b == true);
}

TEST_CASE("reconnection uses growing jittered delays and resets after a stable session") {
  Rig r;
  r.mqtt.refuse = true;
  r.core->begin();
  int attempts = 0;
  uint32_t elapsed = 0;
  while (attempts < 6) {
    const int before = r.mqtt.connectCalls;
    r.core->loop();
    if (r.mqtt.connectCalls != before) ++attempts;
    r.clock.advance(10);
    elapsed += 10;
  }
  // bounds 100,200,400,800,1000: five waits of at most ~2.5 s total
  CHECK(elapsed <= 2600);
  CHECK(r.events.contains(R"("attempt":5)"));

  r.mqtt.refuse = false;
  for (int i = 0; i < 200 && !r.core->online(); ++i) {
    r.core->loop();
    r.clock.advance(10);
  }
  REQUIRE(r.core->online());
  r.clock.advance(11000);
  r.mqtt.dropConnection();
  CHECK(r.events.lines.back().find(R"("attempt":1)") != std::string::npos);
}

TEST_CASE("a connection without CONNACK times out") {
  Rig r;
  r.mqtt.autoConnack = false;
  r.options.connectTimeoutMs = 15000;
  r.core->begin();
  r.core->loop();
  CHECK(r.mqtt.connectCalls == 1);
  r.clock.advance(14000);
  r.core->loop();
  CHECK_FALSE(r.events.contains("connect_timeout"));
  r.clock.advance(2000);
  r.core->loop();
  CHECK(r.events.contains("connect_timeout"));
}

TEST_CASE("shutdown announces offline before disconnecting") {
  Rig r;
  r.mqtt.acksEnabled = false;
  r.core->begin();
  r.core->loop();
  r.core->loop();
  r.core->shutdown(100);
  auto status = r.mqtt.onTopic("devices/dev-1/status");
  REQUIRE(status.size() == 2);
  CHECK(status[1].payload == "offline");
  CHECK(status[1].retain);
  CHECK_FALSE(r.mqtt.isConnected);
  CHECK(r.events.contains(R"("event":"stopped")"));
}
