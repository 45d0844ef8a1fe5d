#include "scheduler.hpp"

namespace es {

namespace {
// Wrap-safe "a is at or after b" for 32-bit millisecond counters.
bool reached(uint32_t now, uint32_t due) { return static_cast<int32_t>(now - due) >= 0; }
}  // namespace

int Scheduler::every(uint32_t intervalMs, uint32_t nowMs, Task task, uint32_t firstDelayMs) {
  entries_.push_back(Entry{intervalMs > 0 ? intervalMs : 1, nowMs + firstDelayMs,
                           std::move(task)});
  return static_cast<int>(entries_.size()) - 1;
}

void Scheduler::setInterval(int handle, uint32_t intervalMs) {
  if (handle < 0 || static_cast<size_t>(handle) >= entries_.size()) return;
  entries_[static_cast<size_t>(handle)].intervalMs = intervalMs > 0 ? intervalMs : 1;
}

void Scheduler::tick(uint32_t nowMs) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (!reached(nowMs, e.nextDue)) continue;
    e.nextDue += e.intervalMs;
    if (reached(nowMs, e.nextDue)) e.nextDue = nowMs + e.intervalMs;
    Task t = e.task;  // the task may add entries and invalidate e
    t();
  }
}

uint32_t Scheduler::msUntilNext(uint32_t nowMs) const {
  uint32_t best = UINT32_MAX;
  for (const auto& e : entries_) {
    if (reached(nowMs, e.nextDue)) return 0;
    const uint32_t d = e.nextDue - nowMs;
    if (d < best) best = d;
  }
  return best;
}

}  // namespace es
