// How many readings a telemetry message carries by default, and how long the oldest of them
// may wait. The one source of these defaults: the device options, the configuration, the
// virtual device and the platform's cost model (bench/) all read them from here.
//
// Why these numbers: AWS IoT Core bills each message in 5 KB increments, and the rules
// engine, the stream and the ingest function are billed per message or record too, so the
// cost of a reading falls with the readings per message until a message passes 5 KB. The
// sizing fleet (1,000 devices x 10 entities every 10 s: one reading per device per second)
// fills 60 readings in 60 s, about 1.5 KB of JSON (six sampling rounds), one billed message:
// 16,667 messages per million readings, about $0.02 of messaging and rules, within the
// platform's target of $0.05 per million readings. A 10 s age would send 10 readings a
// message, six times the messages and over the target. A slower device is bounded by the
// age: its readings reach the platform at most a minute late. Devices that need every
// reading at once set batch 1 (one state message per reading) or a shorter batch age.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace es {

constexpr uint32_t kDefaultBatchReadings = 60;
constexpr uint32_t kDefaultBatchMaxAgeMs = 60000;
// A telemetry message of this many readings stays well under the ESP32 client's 4 KB
// buffer (about 30 bytes a reading with the reference entities) and under one 5 KB unit.
constexpr uint32_t kMaxBatchReadings = 100;
constexpr uint32_t kMaxBatchAgeMs = 3600000;

// The longest a working, connected device goes without publishing, in milliseconds: one
// sampling interval, plus what a partial telemetry batch waits (until it fills with the
// rounds' readings or its oldest reaches the batch age, whichever is sooner). The device
// announces it (rounded up to seconds) as its discovery's report_interval_s, so the platform
// takes a longer silence for a device gone.
inline uint64_t reportIntervalMs(uint32_t intervalMs, uint32_t batch, uint32_t batchMaxAgeMs,
                                 size_t readingsPerRound) {
  if (batch <= 1 || readingsPerRound == 0) return intervalMs;
  const uint64_t rounds = (batch + readingsPerRound - 1) / readingsPerRound;
  const uint64_t untilFull = (rounds - 1) * static_cast<uint64_t>(intervalMs);
  return static_cast<uint64_t>(intervalMs) + std::min<uint64_t>(untilFull, batchMaxAgeMs);
}

}  // namespace es
