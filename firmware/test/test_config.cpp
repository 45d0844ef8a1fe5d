#include <doctest/doctest.h>

#include "config.hpp"
#include "console.hpp"
#include "fakes.hpp"

TEST_CASE("broker URLs") {
  es::BrokerUrl u;
  REQUIRE(es::parseBrokerUrl("mqtt://127.0.0.1:1883", u));
  CHECK_FALSE(u.tls);
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 1883);
  REQUIRE(es::parseBrokerUrl("mqtts://abc-ats.iot.eu-west-1.amazonaws.com", u));
  CHECK(u.tls);
  CHECK(u.port == 8883);
  REQUIRE(es::parseBrokerUrl("mqtt://broker.local/", u));
  CHECK(u.port == 1883);
  REQUIRE(es::parseBrokerUrl("mqtt://[::1]:1884", u));
  CHECK(u.host == "::1");
  CHECK(u.port == 1884);
  for (const char* bad : {"", "http://x", "mqtt://", "mqtt://:1883", "mqtt://h:0", "mqtt://h:65536",
                          "mqtt://h:abc", "mqtt://h:", "mqtt://u:p@h", "mqtt://h/path", "mqtt://a b",
                          "mqtt://[::1", "mqtt://::1"}) {
    INFO(bad);
    CHECK_FALSE(es::parseBrokerUrl(bad, u));
  }
}

TEST_CASE("console sets, shows, masks secrets and validates") {
  es_test::MemoryStore store;
  es::Console c(store);
  CHECK(c.handleLine("set device_id COMP_001")[0].rfind("ok:", 0) == 0);
  CHECK(c.handleLine("set wifi_ssid My Home Net\r")[0].rfind("ok:", 0) == 0);
  CHECK(store.data["wifi_ssid"] == "My Home Net");
  CHECK(c.handleLine("set wifi_pass s3cret-pass")[0].rfind("ok:", 0) == 0);
  CHECK(c.handleLine("set device_id bad/id")[0].rfind("error:", 0) == 0);
  CHECK(store.data["device_id"] == "COMP_001");
  CHECK(c.handleLine("set mqtt_url http://x")[0].rfind("error:", 0) == 0);
  CHECK(c.handleLine("set interval_ms 50")[0].rfind("error:", 0) == 0);
  CHECK(c.handleLine("set interval_ms 2000")[0].rfind("ok:", 0) == 0);
  CHECK(c.handleLine("set nonsense 1")[0].rfind("error:", 0) == 0);
  CHECK(c.handleLine("set mqtt_user")[0].rfind("error:", 0) == 0);
  CHECK(c.handleLine("frobnicate")[0].rfind("error:", 0) == 0);
  CHECK(c.handleLine("").empty());

  const auto shown = c.handleLine("show");
  bool sawId = false, sawPass = false;
  for (const auto& l : shown) {
    if (l == "device_id = COMP_001") sawId = true;
    if (l == "wifi_pass = (set, hidden)") sawPass = true;
    CHECK(l.find("s3cret") == std::string::npos);
  }
  CHECK(sawId);
  CHECK(sawPass);

  CHECK(c.handleLine("unset wifi_pass")[0].rfind("ok:", 0) == 0);
  CHECK(store.data.count("wifi_pass") == 0);
  CHECK_FALSE(c.rebootRequested());
  c.handleLine("reboot");
  CHECK(c.rebootRequested());
  CHECK(c.handleLine("help").size() > 5);
}

TEST_CASE("console collects multi-line PEM values") {
  es_test::MemoryStore store;
  es::Console c(store);
  auto out = c.handleLine("set ca_cert");
  CHECK(c.collecting());
  CHECK(c.handleLine("-----BEGIN CERTIFICATE-----").empty());
  CHECK(c.handleLine("MIIB  ").empty());
  out = c.handleLine("-----END CERTIFICATE-----\r");
  CHECK_FALSE(c.collecting());
  REQUIRE(out.size() == 1);
  CHECK(out[0].rfind("ok:", 0) == 0);
  CHECK(store.data["ca_cert"] ==
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  CHECK(c.handleLine("show").size() == es::configKeys().size());
  CHECK(c.handleLine("set ca_cert not a pem")[0].rfind("error:", 0) == 0);
}

TEST_CASE("loadConfig applies defaults and readiness checks") {
  es_test::MemoryStore store;
  auto cfg = es::loadConfig(store);
  CHECK(cfg.intervalMs == 5000);
  CHECK(cfg.batch == es::kDefaultBatchReadings);
  CHECK(cfg.batchAgeMs == es::kDefaultBatchMaxAgeMs);
  std::string why;
  CHECK_FALSE(es::configReady(cfg, true, why));
  CHECK(why.find("device_id") != std::string::npos);
  store.data = {{"device_id", "d1"}, {"wifi_ssid", "n"}, {"mqtt_url", "mqtts://h"},
                {"interval_ms", "oops"}, {"batch", "10"}, {"batch_age_ms", "0"}};
  cfg = es::loadConfig(store);
  CHECK(cfg.intervalMs == 5000);
  CHECK(cfg.batch == 10);
  CHECK(cfg.batchAgeMs == 0);
  store.data["batch"] = "101";
  store.data["batch_age_ms"] = "3600001";
  cfg = es::loadConfig(store);
  CHECK(cfg.batch == es::kDefaultBatchReadings);
  CHECK(cfg.batchAgeMs == es::kDefaultBatchMaxAgeMs);
  CHECK(es::validateConfigValue("batch", "100").empty());
  CHECK(es::validateConfigValue("batch", "101") == "expected 1..100");
  CHECK(es::validateConfigValue("batch", "0") == "expected 1..100");
  CHECK(es::validateConfigValue("batch_age_ms", "0").empty());
  CHECK(es::validateConfigValue("batch_age_ms", "3600001") == "expected 0..3600000");
  store.data.erase("batch");
  store.data.erase("batch_age_ms");
  CHECK_FALSE(es::configReady(cfg, true, why));
  CHECK(why.find("ca_cert") != std::string::npos);
  store.data["ca_cert"] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  store.data["client_cert"] = store.data["ca_cert"];
  cfg = es::loadConfig(store);
  CHECK_FALSE(es::configReady(cfg, true, why));
  CHECK(why.find("client_key") != std::string::npos);
  store.data["client_key"] = store.data["ca_cert"];
  cfg = es::loadConfig(store);
  CHECK(es::configReady(cfg, true, why));
}

TEST_CASE("a bulk registration's claim: validated, complete or absent, only over mqtts://") {
  es_test::MemoryStore store;
  const std::string pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  store.data = {{"device_id", "PUMP_0001"}, {"wifi_ssid", "n"}, {"mqtt_url", "mqtts://h"},
                {"ca_cert", pem}, {"claim_cert", pem}};
  std::string why;
  auto cfg = es::loadConfig(store);
  CHECK_FALSE(es::configReady(cfg, true, why));
  CHECK(why == "claim_cert, claim_key and claim_template go together");
  store.data["claim_key"] = pem;
  store.data["claim_template"] = "easysmart-prod-fleet";
  cfg = es::loadConfig(store);
  CHECK(es::configReady(cfg, true, why));
  // No certificate of its own yet: the device claims one first.
  CHECK(es::needsClaim(cfg));
  store.data["client_cert"] = pem;
  store.data["client_key"] = pem;
  cfg = es::loadConfig(store);
  CHECK(es::configReady(cfg, true, why));
  CHECK_FALSE(es::needsClaim(cfg));
  // AWS IoT is TLS only; a claim on a plain broker is a configuration mistake.
  store.data["mqtt_url"] = "mqtt://h";
  cfg = es::loadConfig(store);
  CHECK_FALSE(es::configReady(cfg, true, why));
  CHECK(why == "a claim (AWS IoT) needs mqtts://");
  CHECK(es::validateConfigValue("claim_template", "easysmart-prod_fleet1").empty());
  CHECK(es::validateConfigValue("claim_template", "a/b") == "expected [0-9A-Za-z_-]{1,36}");
  CHECK(es::validateConfigValue("claim_template", std::string(37, 'a')) ==
        "expected [0-9A-Za-z_-]{1,36}");
  CHECK(es::validateConfigValue("claim_key", "not a key") ==
        "expected a PEM block (-----BEGIN ... -----END ...)");
  CHECK(es::findConfigKey("claim_key")->secret);
}

#include "portal.hpp"

TEST_CASE("portal page escapes values and never reveals secrets") {
  es_test::MemoryStore store;
  store.data = {{"name", "<script>alert(\"x\")</script>"}, {"wifi_pass", "topsecret1"}};
  const std::string page = es::renderPortalPage(store, "AP EasySmart-1234", {"bad & worse"});
  CHECK(page.find("<script>alert") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(&quot;x&quot;)") != std::string::npos);
  CHECK(page.find("topsecret1") == std::string::npos);
  CHECK(page.find("bad &amp; worse") != std::string::npos);
  for (const auto& k : es::configKeys()) CHECK(page.find(std::string("name=\"") + k.key) != std::string::npos);
}

TEST_CASE("portal form is validated as a whole and keeps empty fields") {
  es_test::MemoryStore store;
  store.data = {{"wifi_pass", "old-password"}};
  std::map<std::string, std::string> form = {{"device_id", "COMP_9"},
                                             {"wifi_ssid", "Plant WiFi "},
                                             {"wifi_pass", ""},
                                             {"mqtt_url", "mqtt://10.0.0.2:1883"},
                                             {"ca_cert", "-----BEGIN CERTIFICATE-----\r\nAA\r\n-----END CERTIFICATE-----"}};
  auto field = [&](const std::string& k, std::string& out) {
    auto it = form.find(k);
    if (it == form.end()) return false;
    out = it->second;
    return true;
  };
  CHECK(es::applyPortalForm(store, field).empty());
  CHECK(store.data["device_id"] == "COMP_9");
  CHECK(store.data["wifi_ssid"] == "Plant WiFi");
  CHECK(store.data["wifi_pass"] == "old-password");
  CHECK(store.data["ca_cert"] == "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n");

  form = {{"device_id", "NEW"}, {"mqtt_url", "ftp://nope"}};
  const auto problems = es::applyPortalForm(store, field);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("mqtt_url") == 0);
  CHECK(store.data["device_id"] == "COMP_9");  // nothing applied
}
