#include "command.hpp"

#include <cmath>

#include "json.hpp"

namespace es {

namespace {

std::string lower(const std::string& s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

CommandOutcome reject(CommandOutcome o, const char* why) {
  o.ok = false;
  o.error = why;
  return o;
}

// Dashboards and scripts send relays booleans, 0/1 or words; all of them mean the same.
bool switchValue(const JsonValue& v, bool current, bool& out) {
  if (v.isBool()) {
    out = v.asBool();
    return true;
  }
  if (v.isNumber()) {
    if (v.asNumber() == 1) out = true;
    else if (v.asNumber() == 0) out = false;
    else return false;
    return true;
  }
  if (v.isString()) {
    const std::string w = lower(v.asString());
    if (w == "on" || w == "true") out = true;
    else if (w == "off" || w == "false") out = false;
    else if (w == "toggle") out = !current;
    else return false;
    return true;
  }
  return false;
}

}  // namespace

CommandOutcome evaluateCommand(const EntityRegistry& entities, const std::string& entityId,
                               const std::string& payload) {
  CommandOutcome o;
  if (payload.size() > kMaxCommandPayload) return reject(o, "payload_too_large");
  JsonValue doc;
  if (!parseJson(payload, doc, 8).ok) return reject(o, "invalid_json");
  if (!doc.isObject()) return reject(o, "not_an_object");

  const int idx = entities.indexOf(entityId);
  if (idx < 0) return reject(o, "unknown_entity");
  o.entityIndex = idx;
  const EntitySpec& spec = entities.spec(static_cast<size_t>(idx));

  if (const JsonValue* cid = doc.find("command_id")) {
    if (!cid->isString() || cid->asString().empty() ||
        cid->asString().size() > kMaxCommandIdLength) {
      return reject(o, "invalid_command_id");
    }
    o.commandId = cid->asString();
  }
  if (spec.kind == EntityKind::Sensor) return reject(o, "read_only_entity");

  const JsonValue* v = doc.find("value");
  if (!v) return reject(o, "missing_value");

  switch (spec.kind) {
    case EntityKind::Switch: {
      bool b;
      const Value& cur = entities.value(static_cast<size_t>(idx));
      if (!switchValue(*v, cur.type == Value::Type::Bool && cur.b, b)) {
        return reject(o, "invalid_value_type");
      }
      o.value = Value::boolean(b);
      break;
    }
    case EntityKind::Number: {
      if (!v->isNumber()) return reject(o, "invalid_value_type");
      double n = v->asNumber();
      if (n < spec.min || n > spec.max) return reject(o, "out_of_range");
      if (spec.step > 0) {
        const double k = (n - spec.min) / spec.step;
        const double nearest = std::round(k);
        // Decimal steps such as 0.1 are not exact in binary, so "on the grid" has to
        // allow rounding error relative to the number of steps.
        if (std::fabs(k - nearest) > 1e-6 * std::fmax(1.0, std::fabs(nearest))) {
          return reject(o, "step_mismatch");
        }
        n = spec.min + nearest * spec.step;
        if (n > spec.max) n = spec.max;
      }
      o.value = Value::number(n);
      break;
    }
    case EntityKind::Text: {
      if (!v->isString()) return reject(o, "invalid_value_type");
      const std::string& s = v->asString();
      if (s.size() > spec.maxLength) return reject(o, "too_long");
      for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7F) return reject(o, "invalid_characters");
      }
      o.value = Value::text(s);
      break;
    }
    case EntityKind::Sensor:
      break;
  }
  o.ok = true;
  return o;
}

}  // namespace es
