// Minimal JSON support shared by the ESP32 firmware and the host builds.
// The writer only emits valid UTF-8 and finite numbers, so a payload built here can never
// be rejected by the platform's parser for syntax reasons. The reader is small on purpose:
// devices only ever parse short command payloads, so it favours strictness and bounded
// recursion over speed.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace es {

// Formats a finite double with the fewest significant digits that read back to the same
// value. Returns false (and leaves out untouched) for NaN or infinity.
bool formatNumber(double v, std::string& out);

// Formats epoch seconds with millisecond resolution, dropping trailing zeros
// ("1700000000.12"), because the platform stores timestamps at ms precision.
bool formatTimestamp(double epochSeconds, std::string& out);

// Appends s as a quoted JSON string. Invalid UTF-8 sequences become U+FFFD.
void appendJsonString(std::string& out, const std::string& s);

bool isValidUtf8(const std::string& s);

// Builds one JSON document into a string. Structural misuse (a value where a key is
// expected) is a programming error, but a non-finite number is a data error: it marks the
// writer failed instead of producing invalid JSON, and callers check ok().
class JsonWriter {
 public:
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(const std::string& k);
  JsonWriter& value(const std::string& s);
  JsonWriter& value(const char* s);
  JsonWriter& value(double d);
  JsonWriter& value(int i) { return value(static_cast<long long>(i)); }
  JsonWriter& value(long i) { return value(static_cast<long long>(i)); }
  JsonWriter& value(long long i);
  JsonWriter& value(unsigned long long i);
  JsonWriter& value(unsigned i) { return value(static_cast<unsigned long long>(i)); }
  JsonWriter& value(unsigned long i) { return value(static_cast<unsigned long long>(i)); }
  JsonWriter& value(bool b);
  JsonWriter& timestamp(double epochSeconds);
  JsonWriter& null();
  // Inserts an already-serialised JSON value verbatim.
  JsonWriter& raw(const std::string& json);

  bool ok() const { return ok_; }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separator();
  std::string out_;
  std::vector<bool> first_;  // one entry per open container: nothing written in it yet
  bool afterKey_ = false;
  bool ok_ = true;
};

class JsonValue {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }

  bool asBool() const { return bool_; }
  double asNumber() const { return number_; }
  const std::string& asString() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // Object member lookup; nullptr when absent or when this is not an object.
  const JsonValue* find(const std::string& key) const;

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

struct JsonParseResult {
  bool ok = false;
  std::string error;  // short machine-friendly reason when !ok
  size_t offset = 0;  // where parsing stopped
};

// Parses a complete JSON document (RFC 8259) with nesting limited to maxDepth. Objects
// with duplicate keys are rejected: for a command, "which value wins" must never be a
// guess.
JsonParseResult parseJson(const std::string& text, JsonValue& out, int maxDepth = 16);

}  // namespace es
