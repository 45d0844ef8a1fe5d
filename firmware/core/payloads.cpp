#include "payloads.hpp"

#include "json.hpp"

namespace es {

namespace {
void writeValue(JsonWriter& w, const Value& v) {
  switch (v.type) {
    case Value::Type::Bool: w.value(v.b); break;
    case Value::Type::Number: w.value(v.n); break;
    case Value::Type::String: w.value(v.s); break;
  }
}
}  // namespace

bool buildStatePayload(const Value& value, double timestamp, const std::string& unit,
                       const std::string& commandId, std::string& out) {
  JsonWriter w;
  w.beginObject().key("value");
  writeValue(w, value);
  if (!std::isnan(timestamp)) w.key("timestamp").timestamp(timestamp);
  if (!unit.empty()) w.key("unit").value(unit);
  if (!commandId.empty()) w.key("command_id").value(commandId);
  w.endObject();
  if (!w.ok()) return false;
  out = w.take();
  return true;
}

bool buildTelemetryPayload(const std::vector<TelemetrySample>& samples, std::string& out) {
  if (samples.empty()) return false;
  JsonWriter w;
  const bool array = samples.size() > 1;
  if (array) w.beginArray();
  for (const auto& s : samples) {
    if (s.values.empty()) return false;
    w.beginObject();
    if (!std::isnan(s.timestamp)) w.key("timestamp").timestamp(s.timestamp);
    w.key("values").beginObject();
    for (const auto& kv : s.values) w.key(kv.first).value(kv.second);
    w.endObject().endObject();
  }
  if (array) w.endArray();
  if (!w.ok()) return false;
  out = w.take();
  return true;
}

bool buildDiscoveryPayload(const DeviceInfo& info, const EntityRegistry& entities,
                           std::string& out) {
  JsonWriter w;
  w.beginObject();
  if (!info.name.empty()) w.key("name").value(info.name);
  if (!info.type.empty()) w.key("type").value(info.type);
  if (!info.firmware.empty()) w.key("firmware").value(info.firmware);
  if (info.reportIntervalS > 0) {
    w.key("report_interval_s").value(static_cast<unsigned long long>(info.reportIntervalS));
  }
  w.key("entities").beginArray();
  for (size_t i = 0; i < entities.size(); ++i) {
    const EntitySpec& e = entities.spec(i);
    w.beginObject();
    w.key("entity_id").value(e.id);
    w.key("entity_type").value(entityKindName(e.kind));
    w.key("name").value(e.name.empty() ? e.id : e.name);
    if (!e.unit.empty()) w.key("unit").value(e.unit);
    if (!e.icon.empty()) w.key("icon").value(e.icon);
    if (e.kind == EntityKind::Number) {
      w.key("config").beginObject();
      w.key("min").value(e.min).key("max").value(e.max);
      if (e.step > 0) w.key("step").value(e.step);
      w.endObject();
    } else if (e.kind == EntityKind::Text) {
      w.key("config").beginObject().key("max_length").value(
          static_cast<unsigned long long>(e.maxLength));
      w.endObject();
    }
    w.endObject();
  }
  w.endArray().endObject();
  if (!w.ok()) return false;
  out = w.take();
  return true;
}

}  // namespace es
