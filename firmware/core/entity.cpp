#include "entity.hpp"

#include <cmath>

namespace es {

const char* entityKindName(EntityKind k) {
  switch (k) {
    case EntityKind::Switch: return "switch";
    case EntityKind::Sensor: return "sensor";
    case EntityKind::Number: return "number";
    case EntityKind::Text: return "text";
  }
  return "sensor";
}

namespace {
bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

bool isValidDeviceId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!isAlnum(c) && c != ':' && c != '_' && c != '-') return false;
  }
  return true;
}

bool isReservedEntityId(const std::string& id) {
  // "model": devices/<id>/model/set and .../model/state carry edge models, not an entity.
  return id == "status" || id == "discovery" || id == "telemetry" || id == "model";
}

bool isValidEntityId(const std::string& id) {
  if (id.empty() || id.size() > 100 || isReservedEntityId(id)) return false;
  for (char c : id) {
    if (!isAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

bool EntityRegistry::add(const EntitySpec& spec, const Value& initial) {
  if (!isValidEntityId(spec.id) || indexOf(spec.id) >= 0) return false;
  Value v = initial;
  switch (spec.kind) {
    case EntityKind::Number:
      if (!std::isfinite(spec.min) || !std::isfinite(spec.max) || !std::isfinite(spec.step) ||
          spec.min > spec.max || spec.step < 0) {
        return false;
      }
      if (v.type != Value::Type::Number) v = Value::number(spec.min);
      break;
    case EntityKind::Switch:
      if (v.type != Value::Type::Bool) v = Value::boolean(false);
      break;
    case EntityKind::Text:
      if (v.type != Value::Type::String) v = Value::text("");
      break;
    case EntityKind::Sensor:
      break;
  }
  specs_.push_back(spec);
  values_.push_back(v);
  return true;
}

int EntityRegistry::indexOf(const std::string& id) const {
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace es
