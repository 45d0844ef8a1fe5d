#include <doctest/doctest.h>

#include "entity.hpp"
#include "topics.hpp"

using es::ParsedTopic;

TEST_CASE("topics are built per the contract") {
  es::Topics t("COMP_001");
  CHECK(t.status() == "devices/COMP_001/status");
  CHECK(t.discovery() == "devices/COMP_001/discovery");
  CHECK(t.telemetry() == "devices/COMP_001/telemetry");
  CHECK(t.state("relay_main") == "devices/COMP_001/relay_main/state");
  CHECK(t.set("relay_main") == "devices/COMP_001/relay_main/set");
  CHECK(t.commandFilter() == "devices/COMP_001/+/set");
}

TEST_CASE("topic parsing recognises every contract topic") {
  auto p = es::parseTopic("devices/a:b_c-1/relay_main/set");
  CHECK(p.kind == ParsedTopic::Kind::Set);
  CHECK(p.deviceId == "a:b_c-1");
  CHECK(p.entityId == "relay_main");
  CHECK(es::parseTopic("devices/d/temperature/state").kind == ParsedTopic::Kind::State);
  CHECK(es::parseTopic("devices/d/status").kind == ParsedTopic::Kind::Status);
  CHECK(es::parseTopic("devices/d/discovery").kind == ParsedTopic::Kind::Discovery);
  CHECK(es::parseTopic("devices/d/telemetry").kind == ParsedTopic::Kind::Telemetry);
}

TEST_CASE("topic parsing rejects anything else") {
  const char* bad[] = {"",
                       "devices",
                       "devices/",
                       "devices/d",
                       "devices//x/set",
                       "devices/d//set",
                       "devices/d/x/set/extra",
                       "devices/d/x/get",
                       "devices/d/status/set",
                       "devices/d/telemetry/state",
                       "devices/d/discovery/set",
                       "devices/+/x/set",
                       "devices/#",
                       "devices/d/+/set",
                       "devices/d/x y/set",
                       "Devices/d/x/set",
                       "/devices/d/x/set",
                       "devices/d/unknown",
                       "devices/d/x/set/"};
  for (const char* topic : bad) {
    INFO(topic);
    CHECK(es::parseTopic(topic).kind == ParsedTopic::Kind::Invalid);
  }
  const std::string longId(129, 'a');
  CHECK(es::parseTopic("devices/" + longId + "/status").kind == ParsedTopic::Kind::Invalid);
  const std::string maxId(128, 'a');
  CHECK(es::parseTopic("devices/" + maxId + "/status").kind == ParsedTopic::Kind::Status);
}

TEST_CASE("device id rule is [a-zA-Z0-9:_-]{1,128}") {
  CHECK(es::isValidDeviceId("COMP_001"));
  CHECK(es::isValidDeviceId("a:b-c_d9"));
  CHECK(es::isValidDeviceId(std::string(128, 'x')));
  CHECK_FALSE(es::isValidDeviceId(""));
  CHECK_FALSE(es::isValidDeviceId(std::string(129, 'x')));
  CHECK_FALSE(es::isValidDeviceId("a/b"));
  CHECK_FALSE(es::isValidDeviceId("a b"));
  CHECK_FALSE(es::isValidDeviceId("a.b"));
  CHECK_FALSE(es::isValidDeviceId("\xC3\xA9"));
}

TEST_CASE("reserved entity ids") {
  CHECK(es::isReservedEntityId("status"));
  CHECK(es::isReservedEntityId("discovery"));
  CHECK(es::isReservedEntityId("telemetry"));
  CHECK(es::isReservedEntityId("model"));
  CHECK_FALSE(es::isValidEntityId("status"));
  CHECK(es::isValidEntityId("statuses"));
}
