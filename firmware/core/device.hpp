// The device itself, independent of the hardware: connection management with backoff,
// the online/discovery handshake, scheduled sampling into the offline buffer, flushing
// that buffer oldest-first, and command handling. Platform code only supplies the
// interfaces and calls loop() as often as it can.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backoff.hpp"
#include "batching.hpp"
#include "edge_runtime.hpp"
#include "entity.hpp"
#include "interfaces.hpp"
#include "payloads.hpp"
#include "ring_buffer.hpp"
#include "scheduler.hpp"
#include "topics.hpp"

namespace es {

constexpr const char* kFirmwareVersion = "1.0.0";

// The entities of the reference device: a relay, three sensors, a setpoint and a label.
void addDefaultEntities(EntityRegistry& entities);

struct Reading {
  uint64_t seq = 0;
  uint32_t monoMs = 0;
  double epoch = kNoTimestamp;  // NaN: taken before the wall clock was known
  uint16_t entity = 0;
  double value = 0;
};

class SensorSource {
 public:
  virtual ~SensorSource() = default;
  // Returns false when the sensor could not be read this time.
  virtual bool read(const EntitySpec& spec, double epoch, double& out) = 0;
};

class ActuatorSink {
 public:
  virtual ~ActuatorSink() = default;
  // Drives the hardware to a validated value. Called before the state is confirmed.
  virtual void apply(const EntitySpec& spec, const Value& value) = 0;
};

struct CoreOptions {
  std::string deviceId;
  DeviceInfo info;
  std::string username;
  std::string password;
  uint32_t intervalMs = 5000;
  // The first sample after begin() at a random point of the first interval rather than at
  // once: devices powered up together (a site after a power cut, a fleet started at once)
  // would otherwise sample, and report, in the same instant every interval for as long as
  // they run. false: the first sample at begin().
  bool randomFirstSample = true;
  // 1: one state message per reading. >1: telemetry messages of up to `batch` readings,
  // sent when that many are waiting or the oldest has waited batchMaxAgeMs, whichever first.
  uint32_t batch = kDefaultBatchReadings;
  uint32_t batchMaxAgeMs = kDefaultBatchMaxAgeMs;
  size_t bufferCapacity = 500;
  uint32_t backoffBaseMs = 1000;
  uint32_t backoffCapMs = 60000;
  uint32_t connectTimeoutMs = 15000;
  uint32_t statsIntervalMs = 0;  // 0: no periodic stats events
  size_t maxInflight = 16;       // unacknowledged reading messages at any time
  uint16_t keepAliveSeconds = 15;
};

class DeviceCore : public MqttListener {
 public:
  DeviceCore(const CoreOptions& options, EntityRegistry& entities, MqttTransport& mqtt,
             Clock& clock, Random& rng, SensorSource& sensors, ActuatorSink* actuators,
             EventSink* events);

  // Schedules sampling and statistics; the first connection attempt happens in loop().
  void begin();
  void loop();
  // Announces "offline" (a clean disconnect does not trigger the LWT), waits up to maxWaitMs
  // for it to be acknowledged, then disconnects.
  void shutdown(uint32_t maxWaitMs);

  // Takes one reading of every sensor into the buffer.
  void sampleNow();
  void emitStats();

  bool online() const { return state_ == State::Online; }
  uint64_t sent() const { return sent_; }
  size_t buffered() const { return buffer_.size(); }
  uint64_t dropped() const { return buffer_.dropped(); }
  uint64_t rejectedCommands() const { return rejected_; }
  size_t inflight() const { return inflight_.size(); }
  const RingBuffer<Reading>& buffer() const { return buffer_; }
  // Edge deployment: set its storage before begin() so the last confirmed model is loaded.
  EdgeRuntime& edge() { return edge_; }

  void onConnected() override;
  void onDisconnected(const std::string& reason) override;
  void onMessage(const std::string& topic, const std::string& payload) override;
  void onPublishAcked(int ackId) override;

 private:
  enum class State { Idle, Offline, Connecting, Online };
  struct Inflight {
    int ackId;
    uint64_t lastSeq;
    bool acked;
  };

  void attemptConnect();
  void connectFailed(const std::string& reason);
  void scheduleReconnect(const char* event, const std::string& reason);
  // force: send a partial batch now instead of waiting for it to fill or age (shutdown).
  void flush(bool force = false);
  bool publishReadings(size_t from, size_t count);
  void completeUpTo(uint64_t lastSeq);
  void drainCompleted();
  void handleCommand(const std::string& entityId, const std::string& payload);
  bool publishState(size_t entity, const std::string& commandId);
  double readingEpoch(const Reading& r);
  void emit(const std::string& line);

  CoreOptions opt_;
  EntityRegistry& entities_;
  MqttTransport& mqtt_;
  Clock& clock_;
  Random& rng_;
  SensorSource& sensors_;
  ActuatorSink* actuators_;
  EventSink* events_;
  Topics topics_;
  Backoff backoff_;
  Scheduler scheduler_;
  RingBuffer<Reading> buffer_;
  std::vector<Inflight> inflight_;
  EdgeRuntime edge_;

  State state_ = State::Idle;
  uint32_t nextAttemptMs_ = 0;
  uint32_t connectStartedMs_ = 0;
  uint32_t connectedAtMs_ = 0;
  uint64_t nextSeq_ = 1;
  uint64_t nextToSend_ = 0;  // seq of the first buffered reading not yet in flight
  uint64_t sent_ = 0;
  uint64_t rejected_ = 0;
  uint64_t invalidReadings_ = 0;
  uint64_t connections_ = 0;
  int offlineAckId_ = -1;
};

}  // namespace es
