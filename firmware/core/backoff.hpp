// Reconnection delays: exponential backoff with "full jitter" (a uniformly random delay
// between 0 and the exponential bound), which spreads a fleet of devices that lost the
// broker at the same moment instead of having them reconnect in lockstep.
#pragma once

#include <cstdint>

#include "interfaces.hpp"

namespace es {

class Backoff {
 public:
  Backoff(uint32_t baseMs, uint32_t capMs, Random& rng);

  // Delay before the next attempt; each call doubles the bound up to the cap.
  uint32_t nextDelayMs();
  // Upper bound the next call will draw from.
  uint32_t currentBoundMs() const;
  void reset() { attempt_ = 0; }
  uint32_t attempts() const { return attempt_; }

 private:
  uint32_t baseMs_;
  uint32_t capMs_;
  Random& rng_;
  uint32_t attempt_ = 0;
};

}  // namespace es
