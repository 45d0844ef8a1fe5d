// Validation of commands received on devices/<id>/<entity>/set.
#pragma once

#include <cstddef>
#include <string>

#include "entity.hpp"

namespace es {

constexpr size_t kMaxCommandPayload = 4096;
constexpr size_t kMaxCommandIdLength = 128;

struct CommandOutcome {
  bool ok = false;
  // Machine-readable rejection reason: payload_too_large, invalid_json, not_an_object,
  // unknown_entity, read_only_entity, invalid_command_id, missing_value,
  // invalid_value_type, out_of_range, step_mismatch, too_long, invalid_characters.
  std::string error;
  int entityIndex = -1;
  std::string commandId;
  Value value;  // the value to apply, already normalised (switch words -> bool, snapped step)
};

// Decides what a command would do without applying it. Never throws and never trusts the
// payload: any malformed input yields ok == false with a reason.
CommandOutcome evaluateCommand(const EntityRegistry& entities, const std::string& entityId,
                               const std::string& payload);

}  // namespace es
