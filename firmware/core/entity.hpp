// Entities a device exposes, as announced in its discovery payload.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace es {

enum class EntityKind { Switch, Sensor, Number, Text };

const char* entityKindName(EntityKind k);

// The current value of an actuator entity. Sensors carry plain doubles in the reading
// buffer instead, so this only needs the three shapes the MQTT contract allows.
struct Value {
  enum class Type { Bool, Number, String };
  Type type = Type::Number;
  bool b = false;
  double n = 0;
  std::string s;

  static Value boolean(bool v) {
    Value x;
    x.type = Type::Bool;
    x.b = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.type = Type::Number;
    x.n = v;
    return x;
  }
  static Value text(std::string v) {
    Value x;
    x.type = Type::String;
    x.s = std::move(v);
    return x;
  }
  bool operator==(const Value& o) const {
    if (type != o.type) return false;
    switch (type) {
      case Type::Bool: return b == o.b;
      case Type::Number: return n == o.n;
      case Type::String: return s == o.s;
    }
    return false;
  }
};

struct EntitySpec {
  std::string id;
  EntityKind kind = EntityKind::Sensor;
  std::string name;
  std::string unit;  // empty: omitted from discovery
  std::string icon;  // empty: omitted from discovery
  // Number entities: accepted range and granularity of commands.
  double min = 0;
  double max = 0;
  double step = 0;  // 0: any value in range
  // Text entities: longest accepted value in bytes (UTF-8).
  size_t maxLength = 64;
};

// Platform-wide device id rule (AWS IoT thing names): [a-zA-Z0-9:_-]{1,128}.
bool isValidDeviceId(const std::string& id);

// Entity ids become one MQTT topic level and an InfluxDB tag, so they must not contain
// '/', wildcards or anything needing escaping: [a-zA-Z0-9_-]{1,100}, and not one of the
// reserved ids.
bool isValidEntityId(const std::string& id);
bool isReservedEntityId(const std::string& id);

class EntityRegistry {
 public:
  // Returns false (and adds nothing) for an invalid or reserved id, a duplicate, or an
  // inconsistent number range.
  bool add(const EntitySpec& spec, const Value& initial = Value());

  size_t size() const { return specs_.size(); }
  const EntitySpec& spec(size_t i) const { return specs_[i]; }
  const Value& value(size_t i) const { return values_[i]; }
  void setValue(size_t i, const Value& v) { values_[i] = v; }
  // Index of the entity or -1.
  int indexOf(const std::string& id) const;

 private:
  std::vector<EntitySpec> specs_;
  std::vector<Value> values_;
};

}  // namespace es
