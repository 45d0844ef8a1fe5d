// MQTT topic layout of the platform contract (DESIGN.md section 4).
#pragma once

#include <string>

namespace es {

class Topics {
 public:
  explicit Topics(std::string deviceId) : base_("devices/" + deviceId + "/") {}

  std::string status() const { return base_ + "status"; }
  std::string discovery() const { return base_ + "discovery"; }
  std::string telemetry() const { return base_ + "telemetry"; }
  std::string state(const std::string& entityId) const { return base_ + entityId + "/state"; }
  std::string set(const std::string& entityId) const { return base_ + entityId + "/set"; }
  // Edge models: chunks in, confirmations and anomaly reports out ("model" is reserved).
  std::string modelSet() const { return base_ + "model/set"; }
  std::string modelState() const { return base_ + "model/state"; }
  // Subscription filter for commands addressed to any of this device's entities.
  std::string commandFilter() const { return base_ + "+/set"; }

 private:
  std::string base_;
};

struct ParsedTopic {
  enum class Kind { Invalid, Status, Discovery, Telemetry, State, Set };
  Kind kind = Kind::Invalid;
  std::string deviceId;
  std::string entityId;  // State and Set only
};

// Classifies any topic of the contract. Anything else, including wildcards, empty levels,
// invalid ids and reserved ids used as entity ids, is Invalid.
ParsedTopic parseTopic(const std::string& topic);

}  // namespace es
