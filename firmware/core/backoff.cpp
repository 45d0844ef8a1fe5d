#include "backoff.hpp"

namespace es {

Backoff::Backoff(uint32_t baseMs, uint32_t capMs, Random& rng)
    : baseMs_(baseMs > 0 ? baseMs : 1), capMs_(capMs >= baseMs ? capMs : baseMs), rng_(rng) {}

uint32_t Backoff::currentBoundMs() const {
  uint64_t bound = baseMs_;
  for (uint32_t i = 0; i < attempt_ && bound < capMs_; ++i) bound *= 2;
  return bound > capMs_ ? capMs_ : static_cast<uint32_t>(bound);
}

uint32_t Backoff::nextDelayMs() {
  const uint32_t bound = currentBoundMs();
  if (attempt_ < 64) ++attempt_;
  // Inclusive range [0, bound]; the modulo bias is irrelevant at these magnitudes.
  return static_cast<uint32_t>(rng_.nextU32() % (static_cast<uint64_t>(bound) + 1));
}

}  // namespace es
