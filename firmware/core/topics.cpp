#include "topics.hpp"

#include <vector>

#include "entity.hpp"

namespace es {

ParsedTopic parseTopic(const std::string& topic) {
  ParsedTopic r;
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t slash = topic.find('/', start);
    parts.push_back(topic.substr(start, slash == std::string::npos ? std::string::npos
                                                                   : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
    if (parts.size() > 4) return r;
  }
  if (parts.size() < 3 || parts.size() > 4 || parts[0] != "devices") return r;
  if (!isValidDeviceId(parts[1])) return r;
  if (parts.size() == 3) {
    if (parts[2] == "status") r.kind = ParsedTopic::Kind::Status;
    else if (parts[2] == "discovery") r.kind = ParsedTopic::Kind::Discovery;
    else if (parts[2] == "telemetry") r.kind = ParsedTopic::Kind::Telemetry;
    else return r;
  } else {
    if (!isValidEntityId(parts[2])) return r;
    if (parts[3] == "state") r.kind = ParsedTopic::Kind::State;
    else if (parts[3] == "set") r.kind = ParsedTopic::Kind::Set;
    else return r;
    r.entityId = parts[2];
  }
  r.deviceId = parts[1];
  return r;
}

}  // namespace es
