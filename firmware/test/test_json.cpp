#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "json.hpp"

using es::JsonValue;
using es::JsonWriter;

TEST_CASE("numbers are formatted shortest round-trip and only when finite") {
  std::string s;
  CHECK(es::formatNumber(21.5, s));
  CHECK(s == "21.5");
  CHECK(es::formatNumber(0.1, s));
  CHECK(s == "0.1");
  CHECK(es::formatNumber(-0.0, s));
  CHECK(s == "0");
  CHECK(es::formatNumber(1e300, s));
  CHECK(std::strtod(s.c_str(), nullptr) == 1e300);
  const double third = 1.0 / 3.0;
  CHECK(es::formatNumber(third, s));
  CHECK(std::strtod(s.c_str(), nullptr) == third);
  s = "unchanged";
  CHECK_FALSE(es::formatNumber(NAN, s));
  CHECK_FALSE(es::formatNumber(INFINITY, s));
  CHECK_FALSE(es::formatNumber(-INFINITY, s));
  CHECK(s == "unchanged");
}

TEST_CASE("timestamps keep milliseconds and drop trailing zeros") {
  std::string s;
  CHECK(es::formatTimestamp(1700000000.0, s));
  CHECK(s == "1700000000");
  CHECK(es::formatTimestamp(1700000000.25, s));
  CHECK(s == "1700000000.25");
  CHECK(es::formatTimestamp(1700000000.1234, s));
  CHECK(s == "1700000000.123");
  CHECK_FALSE(es::formatTimestamp(NAN, s));
  CHECK_FALSE(es::formatTimestamp(-1, s));
}

TEST_CASE("strings are escaped so any input yields valid JSON") {
  std::string out;
  es::appendJsonString(out, std::string("a\"b\\c\n\t\x01\x7f/", 10));
  CHECK(out == "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f/\"");
  CHECK(nlohmann::json::parse(out).get<std::string>() == std::string("a\"b\\c\n\t\x01\x7f/", 10));

  out.clear();
  es::appendJsonString(out, "\xC2\xB0" "C \xF0\x9F\x94\xA5");  // °C and an emoji pass through
  CHECK(out == "\"\xC2\xB0" "C \xF0\x9F\x94\xA5\"");

  out.clear();
  es::appendJsonString(out, std::string("bad\xFF\xC0\x80" "end"));  // invalid and overlong
  CHECK(out == "\"bad\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "end\"");
  CHECK(nlohmann::json::accept(out));

  out.clear();
  es::appendJsonString(out, std::string("nul\0inside", 10));
  CHECK(out == "\"nul\\u0000inside\"");
}

TEST_CASE("writer builds nested documents and refuses non-finite numbers") {
  JsonWriter w;
  w.beginObject().key("a").value(1).key("b").beginArray().value(true).value("x").null().endArray();
  w.key("c").beginObject().endObject().key("d").value(2.5).endObject();
  CHECK(w.ok());
  CHECK(w.str() == R"({"a":1,"b":[true,"x",null],"c":{},"d":2.5})");

  JsonWriter bad;
  bad.beginObject().key("v").value(std::nan("")).endObject();
  CHECK_FALSE(bad.ok());
  JsonWriter inf;
  inf.beginArray().value(std::numeric_limits<double>::infinity()).endArray();
  CHECK_FALSE(inf.ok());
}

TEST_CASE("parser accepts valid JSON") {
  JsonValue v;
  auto r = es::parseJson(R"( {"value": -12.5e1, "s": "a\u00e9\ud83d\ude00\n", "t": true,
                              "n": null, "arr": [1, [2], {}], "o": {"x": false}} )", v);
  REQUIRE(r.ok);
  REQUIRE(v.isObject());
  CHECK(v.find("value")->asNumber() == -125.0);
  CHECK(v.find("s")->asString() == "a\xC3\xA9\xF0\x9F\x98\x80\n");
  CHECK(v.find("t")->asBool());
  CHECK(v.find("n")->isNull());
  CHECK(v.find("arr")->items().size() == 3);
  CHECK(v.find("o")->find("x")->isBool());
  CHECK(v.find("missing") == nullptr);

  CHECK(es::parseJson("0", v).ok);
  CHECK(es::parseJson("\"\"", v).ok);
  CHECK(es::parseJson("[]", v).ok);
}

TEST_CASE("parser rejects malformed input without crashing") {
  const char* bad[] = {"",        "{",          "}",         "{\"a\"}",     "{\"a\":}",
                       "{a:1}",   "[1,]",       "{\"a\":1,}", "01",          "1.",
                       ".5",      "-",          "1e",        "+1",          "NaN",
                       "Infinity", "tru",       "nul",       "\"abc",       "\"\\x\"",
                       "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "{\"a\":1} x", "1e999",
                       "\"\x01\"", "\"\xFF\"",   "[1 2]",     "{\"a\":1 \"b\":2}"};
  for (const char* text : bad) {
    JsonValue v;
    INFO(text);
    CHECK_FALSE(es::parseJson(text, v).ok);
  }
}

TEST_CASE("parser rejects duplicate keys and excessive nesting") {
  JsonValue v;
  auto r = es::parseJson(R"({"value":1,"value":2})", v);
  CHECK_FALSE(r.ok);
  CHECK(r.error == "duplicate_key");

  std::string deep(100, '[');
  deep += std::string(100, ']');
  r = es::parseJson(deep, v, 16);
  CHECK_FALSE(r.ok);
  CHECK(r.error == "too_deep");
  std::string ok(16, '[');
  ok += std::string(16, ']');
  CHECK(es::parseJson(ok, v, 16).ok);
}

TEST_CASE("utf8 validation") {
  CHECK(es::isValidUtf8("plain"));
  CHECK(es::isValidUtf8("\xE2\x82\xAC"));
  CHECK_FALSE(es::isValidUtf8("\xE2\x82"));
  CHECK_FALSE(es::isValidUtf8("\xED\xA0\x80"));  // encoded surrogate
  CHECK_FALSE(es::isValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}
