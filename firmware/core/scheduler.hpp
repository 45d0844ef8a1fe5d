// Cooperative periodic tasks driven from the main loop, so sampling, flushing and
// statistics share one thread with the MQTT client and need no locking.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace es {

class Scheduler {
 public:
  using Task = std::function<void()>;

  // Runs task every intervalMs, first at now + firstDelayMs. Returns a handle.
  int every(uint32_t intervalMs, uint32_t nowMs, Task task, uint32_t firstDelayMs = 0);
  void setInterval(int handle, uint32_t intervalMs);
  // Runs every task that is due. A task that fell behind by more than one period (a long
  // blocking connect, say) runs once and is re-aligned instead of firing a burst of
  // catch-up runs whose readings would all carry nearly the same timestamp.
  void tick(uint32_t nowMs);
  // Milliseconds until the next task is due (0 if one is due now).
  uint32_t msUntilNext(uint32_t nowMs) const;

 private:
  struct Entry {
    uint32_t intervalMs;
    uint32_t nextDue;
    Task task;
  };
  std::vector<Entry> entries_;
};

}  // namespace es
