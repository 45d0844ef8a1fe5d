#include <doctest/doctest.h>

#include "command.hpp"
#include "device.hpp"

namespace {
es::EntityRegistry defaults() {
  es::EntityRegistry r;
  es::addDefaultEntities(r);
  return r;
}
}  // namespace

TEST_CASE("switch commands accept booleans, 0/1 and on/off words") {
  auto reg = defaults();
  auto o = es::evaluateCommand(reg, "relay_main", R"({"value":false,"command_id":"c1"})");
  REQUIRE(o.ok);
  CHECK(o.value == es::Value::boolean(false));
  CHECK(o.commandId == "c1");
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":1})").value == es::Value::boolean(true));
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":0})").value == es::Value::boolean(false));
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":"ON"})").value == es::Value::boolean(true));
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":"off"})").value == es::Value::boolean(false));
  // relay_main starts on, so toggle turns it off
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":"toggle"})").value ==
        es::Value::boolean(false));
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":true})").commandId.empty());
}

TEST_CASE("switch commands reject other values") {
  auto reg = defaults();
  for (const char* p : {R"({"value":2})", R"({"value":"maybe"})", R"({"value":null})",
                        R"({"value":[true]})", R"({"value":{}})", R"({"value":0.5})"}) {
    INFO(p);
    auto o = es::evaluateCommand(reg, "relay_main", p);
    CHECK_FALSE(o.ok);
    CHECK(o.error == "invalid_value_type");
  }
}

TEST_CASE("number commands are range and step checked") {
  auto reg = defaults();
  auto o = es::evaluateCommand(reg, "setpoint", R"({"value":42.5,"command_id":"n1"})");
  REQUIRE(o.ok);
  CHECK(o.value == es::Value::number(42.5));
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":0})").ok);
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":100})").ok);
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":1e2})").ok);
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":100.5})").error == "out_of_range");
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":-0.5})").error == "out_of_range");
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":42.3})").error == "step_mismatch");
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":"42"})").error == "invalid_value_type");
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":true})").error == "invalid_value_type");
  CHECK(es::evaluateCommand(reg, "setpoint", R"({"value":1e400})").error == "invalid_json");
}

TEST_CASE("decimal steps tolerate binary rounding and snap to the grid") {
  es::EntityRegistry reg;
  es::EntitySpec n;
  n.id = "level";
  n.kind = es::EntityKind::Number;
  n.min = 0;
  n.max = 1;
  n.step = 0.1;
  REQUIRE(reg.add(n));
  auto o = es::evaluateCommand(reg, "level", R"({"value":0.3})");
  REQUIRE(o.ok);
  CHECK(o.value.n == doctest::Approx(0.3));
  CHECK(es::evaluateCommand(reg, "level", R"({"value":0.7})").ok);
  CHECK(es::evaluateCommand(reg, "level", R"({"value":1})").ok);
  CHECK_FALSE(es::evaluateCommand(reg, "level", R"({"value":0.35})").ok);
}

TEST_CASE("text commands are length and character checked") {
  auto reg = defaults();
  auto o = es::evaluateCommand(reg, "label", R"({"value":"Line 3 \u00e9"})");
  REQUIRE(o.ok);
  CHECK(o.value.s == "Line 3 \xC3\xA9");
  CHECK(es::evaluateCommand(reg, "label", R"({"value":""})").ok);
  const std::string max = "{\"value\":\"" + std::string(64, 'x') + "\"}";
  CHECK(es::evaluateCommand(reg, "label", max).ok);
  const std::string tooLong = "{\"value\":\"" + std::string(65, 'x') + "\"}";
  CHECK(es::evaluateCommand(reg, "label", tooLong).error == "too_long");
  CHECK(es::evaluateCommand(reg, "label", R"({"value":"a\nb"})").error == "invalid_characters");
  CHECK(es::evaluateCommand(reg, "label", R"({"value":5})").error == "invalid_value_type");
}

TEST_CASE("malformed and misaddressed commands are rejected with a reason") {
  auto reg = defaults();
  CHECK(es::evaluateCommand(reg, "relay_main", "").error == "invalid_json");
  CHECK(es::evaluateCommand(reg, "relay_main", "{").error == "invalid_json");
  CHECK(es::evaluateCommand(reg, "relay_main", "true").error == "not_an_object");
  CHECK(es::evaluateCommand(reg, "relay_main", "[1]").error == "not_an_object");
  CHECK(es::evaluateCommand(reg, "relay_main", "{}").error == "missing_value");
  CHECK(es::evaluateCommand(reg, "nope", R"({"value":1})").error == "unknown_entity");
  CHECK(es::evaluateCommand(reg, "temperature", R"({"value":1})").error == "read_only_entity");
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":true,"command_id":7})").error ==
        "invalid_command_id");
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":true,"command_id":""})").error ==
        "invalid_command_id");
  const std::string longId = R"({"value":true,"command_id":")" + std::string(129, 'c') + "\"}";
  CHECK(es::evaluateCommand(reg, "relay_main", longId).error == "invalid_command_id");
  CHECK(es::evaluateCommand(reg, "relay_main", R"({"value":true,"value":false})").error ==
        "invalid_json");
  const std::string huge = "{\"value\":\"" + std::string(5000, 'x') + "\"}";
  CHECK(es::evaluateCommand(reg, "label", huge).error == "payload_too_large");
  std::string deep = "{\"value\":";
  for (int i = 0; i < 50; ++i) deep += "[";
  for (int i = 0; i < 50; ++i) deep += "]";
  deep += "}";
  CHECK(es::evaluateCommand(reg, "relay_main", deep).error == "invalid_json");
  // A rejected command with a valid id still reports the id so the platform can match it.
  auto o = es::evaluateCommand(reg, "setpoint", R"({"value":500,"command_id":"x9"})");
  CHECK_FALSE(o.ok);
  CHECK(o.commandId == "x9");
}

TEST_CASE("random garbage never crashes the command path") {
  auto reg = defaults();
  es::SplitMix rng(42);
  const std::string alphabet = "{}[]\":,\\ 0123456789.eE+-truefalsnvalucommand_id\x01\xC3\xA9\xFF";
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const size_t len = rng.nextU32() % 60;
    for (size_t k = 0; k < len; ++k) s += alphabet[rng.nextU32() % alphabet.size()];
    if (i % 3 == 0) s = "{\"value\":" + s + "}";
    auto o = es::evaluateCommand(reg, i % 2 ? "label" : "setpoint", s);
    if (!o.ok) CHECK_FALSE(o.error.empty());
  }
}
