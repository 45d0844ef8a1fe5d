// Payloads of the MQTT contract. Every builder returns false instead of emitting a
// document with a non-finite number, so a faulty sensor cannot poison ingestion.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "entity.hpp"

namespace es {

// NaN as a timestamp means "unknown": the field is omitted and the platform uses its
// receive time, as the contract allows.
constexpr double kNoTimestamp = NAN;

struct DeviceInfo {
  std::string name;
  std::string type;
  std::string firmware;
  // Announced as report_interval_s when above 0 (see reportIntervalMs in batching.hpp).
  uint32_t reportIntervalS = 0;
};

// {"value":..,"timestamp":..,"unit"?:..,"command_id"?:..}
bool buildStatePayload(const Value& value, double timestamp, const std::string& unit,
                       const std::string& commandId, std::string& out);

struct TelemetrySample {
  double timestamp = kNoTimestamp;
  std::vector<std::pair<std::string, double>> values;
};

// One sample gives {"timestamp":..,"values":{..}}; several give an array of those.
bool buildTelemetryPayload(const std::vector<TelemetrySample>& samples, std::string& out);

// {"name","type","firmware","report_interval_s","entities":[...]}; a number entity carries
// "config":{"min","max","step"} and a text entity "config":{"max_length"}.
bool buildDiscoveryPayload(const DeviceInfo& info, const EntityRegistry& entities,
                           std::string& out);

}  // namespace es
