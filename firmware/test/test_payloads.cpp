#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "device.hpp"
#include "payloads.hpp"

using nlohmann::json;

TEST_CASE("state payload carries value, timestamp, unit and command id") {
  std::string out;
  REQUIRE(es::buildStatePayload(es::Value::number(21.5), 1700000000.123, "\xC2\xB0" "C", "", out));
  json j = json::parse(out);
  CHECK(j["value"] == 21.5);
  CHECK(j["timestamp"].get<double>() == doctest::Approx(1700000000.123));
  CHECK(j["unit"] == "\xC2\xB0" "C");
  CHECK_FALSE(j.contains("command_id"));

  REQUIRE(es::buildStatePayload(es::Value::boolean(true), 1700000000, "", "cmd-\"1\"", out));
  j = json::parse(out);
  CHECK(j["value"] == true);
  CHECK(j["timestamp"] == 1700000000);
  CHECK(j["command_id"] == "cmd-\"1\"");
  CHECK_FALSE(j.contains("unit"));

  REQUIRE(es::buildStatePayload(es::Value::text("line\nbreak"), es::kNoTimestamp, "", "", out));
  j = json::parse(out);
  CHECK(j["value"] == "line\nbreak");
  CHECK_FALSE(j.contains("timestamp"));
}

TEST_CASE("state payload refuses non-finite values") {
  std::string out = "untouched";
  CHECK_FALSE(es::buildStatePayload(es::Value::number(NAN), 1700000000, "", "", out));
  CHECK_FALSE(es::buildStatePayload(es::Value::number(INFINITY), 1700000000, "", "", out));
  CHECK(out == "untouched");
}

TEST_CASE("telemetry payload: single object or array") {
  es::TelemetrySample a;
  a.timestamp = 1700000000.5;
  a.values = {{"temperature", 21.5}, {"pressure", 6.1}};
  std::string out;
  REQUIRE(es::buildTelemetryPayload({a}, out));
  json j = json::parse(out);
  CHECK(j.is_object());
  CHECK(j["timestamp"] == 1700000000.5);
  CHECK(j["values"]["temperature"] == 21.5);
  CHECK(j["values"]["pressure"] == 6.1);

  es::TelemetrySample b;
  b.timestamp = 1700000001.5;
  b.values = {{"vibration", 2.0}};
  REQUIRE(es::buildTelemetryPayload({a, b}, out));
  j = json::parse(out);
  REQUIRE(j.is_array());
  CHECK(j.size() == 2);
  CHECK(j[1]["values"]["vibration"] == 2.0);

  b.values.push_back({"bad", NAN});
  CHECK_FALSE(es::buildTelemetryPayload({a, b}, out));
  CHECK_FALSE(es::buildTelemetryPayload({}, out));
}

TEST_CASE("discovery payload lists every entity with kind-specific config") {
  es::EntityRegistry reg;
  es::addDefaultEntities(reg);
  es::DeviceInfo info{"Compressor \"A\"", "compressor", es::kFirmwareVersion};
  std::string out;
  REQUIRE(es::buildDiscoveryPayload(info, reg, out));
  json j = json::parse(out);
  CHECK(j["name"] == "Compressor \"A\"");
  CHECK(j["type"] == "compressor");
  CHECK(j["firmware"] == es::kFirmwareVersion);
  // Announced only when the device knows it (the minimal payload below has none).
  CHECK_FALSE(j.contains("report_interval_s"));
  info.reportIntervalS = 65;
  REQUIRE(es::buildDiscoveryPayload(info, reg, out));
  CHECK(json::parse(out)["report_interval_s"] == 65);
  REQUIRE(j["entities"].is_array());
  std::map<std::string, json> byId;
  for (const auto& e : j["entities"]) {
    byId[e["entity_id"].get<std::string>()] = e;
    const std::string type = e["entity_type"];
    CHECK((type == "switch" || type == "sensor" || type == "number" || type == "text"));
    CHECK(e.contains("name"));
    const std::string id = e["entity_id"];
    CHECK(id != "status");
    CHECK(id != "discovery");
    CHECK(id != "telemetry");
  }
  CHECK(byId.size() == 6);
  CHECK(byId["relay_main"]["entity_type"] == "switch");
  CHECK_FALSE(byId["relay_main"].contains("config"));
  CHECK(byId["temperature"]["unit"] == "\xC2\xB0" "C");
  CHECK(byId["vibration"]["entity_type"] == "sensor");
  CHECK(byId["pressure"]["icon"] == "mdi:gauge");
  CHECK(byId["setpoint"]["entity_type"] == "number");
  CHECK(byId["setpoint"]["config"]["min"] == 0);
  CHECK(byId["setpoint"]["config"]["max"] == 100);
  CHECK(byId["setpoint"]["config"]["step"] == 0.5);
  CHECK(byId["label"]["entity_type"] == "text");
  CHECK(byId["label"]["config"]["max_length"] == 64);
  CHECK_FALSE(byId["label"].contains("unit"));
}

TEST_CASE("discovery omits empty optional device fields") {
  es::EntityRegistry reg;
  es::EntitySpec s;
  s.id = "t";
  reg.add(s);
  std::string out;
  REQUIRE(es::buildDiscoveryPayload(es::DeviceInfo{}, reg, out));
  CHECK(out == R"({"entities":[{"entity_id":"t","entity_type":"sensor","name":"t"}]})");
}

TEST_CASE("registry refuses reserved, invalid and duplicate ids and bad number ranges") {
  es::EntityRegistry reg;
  es::EntitySpec s;
  for (const char* id : {"status", "discovery", "telemetry", "", "a/b", "a+b", "#", "a b"}) {
    s.id = id;
    INFO(id);
    CHECK_FALSE(reg.add(s));
  }
  s.id = std::string(101, 'a');
  CHECK_FALSE(reg.add(s));
  s.id = "ok_id-1";
  CHECK(reg.add(s));
  CHECK_FALSE(reg.add(s));
  es::EntitySpec n;
  n.id = "n";
  n.kind = es::EntityKind::Number;
  n.min = 5;
  n.max = 1;
  CHECK_FALSE(reg.add(n));
  n.max = NAN;
  CHECK_FALSE(reg.add(n));
  CHECK(reg.size() == 1);
}
