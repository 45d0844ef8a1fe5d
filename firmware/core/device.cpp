#include "device.hpp"

#include <algorithm>
#include <cmath>

#include "command.hpp"
#include "json.hpp"

namespace es {

namespace {

bool reached(uint32_t now, uint32_t due) { return static_cast<int32_t>(now - due) >= 0; }

// A connection that survived this long is considered healthy, so the next outage starts
// again from the shortest backoff; a broker that accepts and then immediately drops us
// keeps growing the delay instead.
constexpr uint32_t kStableConnectionMs = 10000;

void writeValue(JsonWriter& w, const Value& v) {
  switch (v.type) {
    case Value::Type::Bool: w.value(v.b); break;
    case Value::Type::Number: w.value(v.n); break;
    case Value::Type::String: w.value(v.s); break;
  }
}

}  // namespace

void addDefaultEntities(EntityRegistry& e) {
  EntitySpec relay;
  relay.id = "relay_main";
  relay.kind = EntityKind::Switch;
  relay.name = "Main relay";
  relay.icon = "mdi:power";
  e.add(relay, Value::boolean(true));

  EntitySpec temperature;
  temperature.id = "temperature";
  temperature.kind = EntityKind::Sensor;
  temperature.name = "Temperature";
  temperature.unit = "°C";
  temperature.icon = "mdi:thermometer";
  e.add(temperature);

  EntitySpec pressure;
  pressure.id = "pressure";
  pressure.kind = EntityKind::Sensor;
  pressure.name = "Pressure";
  pressure.unit = "bar";
  pressure.icon = "mdi:gauge";
  e.add(pressure);

  EntitySpec vibration;
  vibration.id = "vibration";
  vibration.kind = EntityKind::Sensor;
  vibration.name = "Vibration (RMS)";
  vibration.unit = "mm/s";
  vibration.icon = "mdi:vibrate";
  e.add(vibration);

  EntitySpec setpoint;
  setpoint.id = "setpoint";
  setpoint.kind = EntityKind::Number;
  setpoint.name = "Temperature setpoint";
  setpoint.unit = "°C";
  setpoint.icon = "mdi:thermostat";
  setpoint.min = 0;
  setpoint.max = 100;
  setpoint.step = 0.5;
  e.add(setpoint, Value::number(40));

  EntitySpec label;
  label.id = "label";
  label.kind = EntityKind::Text;
  label.name = "Label";
  label.icon = "mdi:label";
  label.maxLength = 64;
  e.add(label, Value::text(""));
}

DeviceCore::DeviceCore(const CoreOptions& options, EntityRegistry& entities, MqttTransport& mqtt,
                       Clock& clock, Random& rng, SensorSource& sensors, ActuatorSink* actuators,
                       EventSink* events)
    : opt_(options),
      entities_(entities),
      mqtt_(mqtt),
      clock_(clock),
      rng_(rng),
      sensors_(sensors),
      actuators_(actuators),
      events_(events),
      topics_(options.deviceId),
      backoff_(options.backoffBaseMs, options.backoffCapMs, rng),
      buffer_(options.bufferCapacity),
      edge_(options.deviceId, mqtt, events) {
  if (opt_.batch == 0) opt_.batch = 1;
  if (opt_.maxInflight == 0) opt_.maxInflight = 1;
  mqtt_.setListener(this);
}

void DeviceCore::emit(const std::string& line) {
  if (events_) events_->emit(line);
}

void DeviceCore::begin() {
  const uint32_t now = clock_.monotonicMs();
  const uint32_t firstSampleMs =
      opt_.randomFirstSample && opt_.intervalMs > 1 ? rng_.nextU32() % opt_.intervalMs : 0;
  scheduler_.every(opt_.intervalMs, now, [this] { sampleNow(); }, firstSampleMs);
  if (opt_.statsIntervalMs > 0) {
    scheduler_.every(opt_.statsIntervalMs, now, [this] { emitStats(); }, opt_.statsIntervalMs);
  }
  state_ = State::Offline;
  nextAttemptMs_ = now;
  for (size_t i = 0; i < entities_.size(); ++i) {
    if (entities_.spec(i).kind == EntityKind::Sensor) edge_.addSensor(entities_.spec(i).id);
  }
  edge_.begin();
}

void DeviceCore::loop() {
  mqtt_.poll();
  const uint32_t now = clock_.monotonicMs();
  if (state_ == State::Offline && reached(now, nextAttemptMs_)) {
    attemptConnect();
  } else if (state_ == State::Connecting && reached(now, connectStartedMs_ + opt_.connectTimeoutMs)) {
    // No CONNACK in time: abandon this session so a half-open TCP connection cannot
    // wedge the device forever.
    mqtt_.disconnect();
    connectFailed("connect_timeout");
  }
  scheduler_.tick(clock_.monotonicMs());
  if (state_ == State::Online) flush();
}

void DeviceCore::attemptConnect() {
  ConnectOptions co;
  co.clientId = opt_.deviceId;
  co.username = opt_.username;
  co.password = opt_.password;
  co.willTopic = topics_.status();
  co.willPayload = "offline";
  co.willRetain = true;
  co.willQos = 1;
  co.keepAliveSeconds = opt_.keepAliveSeconds;
  state_ = State::Connecting;
  connectStartedMs_ = clock_.monotonicMs();
  std::string error;
  const bool started = mqtt_.connect(co, error);
  // A synchronous client may already have reported the outcome through the listener.
  if (!started && state_ == State::Connecting) connectFailed(error.empty() ? "connect_failed" : error);
}

void DeviceCore::scheduleReconnect(const char* event, const std::string& reason) {
  const uint32_t delay = backoff_.nextDelayMs();
  nextAttemptMs_ = clock_.monotonicMs() + delay;
  state_ = State::Offline;
  JsonWriter w;
  w.beginObject()
      .key("event").value(event)
      .key("reason").value(reason)
      .key("attempt").value(static_cast<unsigned long long>(backoff_.attempts()))
      .key("retry_in_ms").value(static_cast<unsigned long long>(delay))
      .key("buffered").value(static_cast<unsigned long long>(buffer_.size()))
      .endObject();
  emit(w.str());
}

void DeviceCore::connectFailed(const std::string& reason) {
  scheduleReconnect("connect_failed", reason);
}

void DeviceCore::onConnected() {
  if (state_ != State::Connecting) return;
  state_ = State::Online;
  connectedAtMs_ = clock_.monotonicMs();
  ++connections_;
  inflight_.clear();
  nextToSend_ = 0;
  {
    JsonWriter w;
    w.beginObject()
        .key("event").value("connected")
        .key("connections").value(static_cast<unsigned long long>(connections_))
        .key("buffered").value(static_cast<unsigned long long>(buffer_.size()))
        .endObject();
    emit(w.str());
  }
  mqtt_.publish(topics_.status(), "online", 1, true);
  std::string discovery;
  DeviceInfo info = opt_.info;
  size_t sensors = 0;
  for (size_t i = 0; i < entities_.size(); ++i) {
    if (entities_.spec(i).kind == EntityKind::Sensor) ++sensors;
  }
  // The payload contract's ceiling is a day.
  const uint64_t intervalMs =
      reportIntervalMs(opt_.intervalMs, opt_.batch, opt_.batchMaxAgeMs, sensors);
  info.reportIntervalS =
      static_cast<uint32_t>(std::min<uint64_t>((intervalMs + 999) / 1000, 86400));
  if (info.reportIntervalS == 0) info.reportIntervalS = 1;
  if (buildDiscoveryPayload(info, entities_, discovery)) {
    mqtt_.publish(topics_.discovery(), discovery, 1, true);
  }
  mqtt_.subscribe(topics_.commandFilter(), 1);
  // Actuator states are not buffered: the platform learns the current ones on every
  // (re)connect instead of a backlog of stale ones.
  for (size_t i = 0; i < entities_.size(); ++i) {
    if (entities_.spec(i).kind != EntityKind::Sensor) publishState(i, "");
  }
  flush();
  edge_.onConnected();
}

void DeviceCore::onDisconnected(const std::string& reason) {
  if (state_ == State::Connecting) {
    connectFailed(reason);
    return;
  }
  if (state_ != State::Online) return;
  // Whatever was in flight stays in the buffer and is re-sent from the oldest unacked
  // reading on the next session.
  inflight_.clear();
  nextToSend_ = 0;
  edge_.onDisconnected();
  if (reached(clock_.monotonicMs(), connectedAtMs_ + kStableConnectionMs)) backoff_.reset();
  scheduleReconnect("disconnected", reason);
}

void DeviceCore::onMessage(const std::string& topic, const std::string& payload) {
  // Edge model chunks arrive through the command subscription (devices/<id>/+/set).
  if (topic == topics_.modelSet()) return edge_.onChunk(payload);
  const ParsedTopic t = parseTopic(topic);
  if (t.kind != ParsedTopic::Kind::Set || t.deviceId != opt_.deviceId) return;
  handleCommand(t.entityId, payload);
}

void DeviceCore::handleCommand(const std::string& entityId, const std::string& payload) {
  const CommandOutcome o = evaluateCommand(entities_, entityId, payload);
  if (!o.ok) {
    ++rejected_;
    JsonWriter w;
    w.beginObject().key("event").value("command_rejected").key("entity_id").value(entityId);
    w.key("reason").value(o.error);
    if (!o.commandId.empty()) w.key("command_id").value(o.commandId);
    w.endObject();
    emit(w.str());
    return;
  }
  const size_t idx = static_cast<size_t>(o.entityIndex);
  entities_.setValue(idx, o.value);
  if (actuators_) actuators_->apply(entities_.spec(idx), o.value);
  JsonWriter w;
  w.beginObject().key("event").value("command").key("entity_id").value(entityId).key("value");
  writeValue(w, o.value);
  if (!o.commandId.empty()) w.key("command_id").value(o.commandId);
  w.endObject();
  emit(w.str());
  publishState(idx, o.commandId);
}

bool DeviceCore::publishState(size_t entity, const std::string& commandId) {
  const EntitySpec& spec = entities_.spec(entity);
  std::string payload;
  if (!buildStatePayload(entities_.value(entity), clock_.epochSeconds(), spec.unit, commandId,
                         payload)) {
    return false;
  }
  return mqtt_.publish(topics_.state(spec.id), payload, 1, false).accepted;
}

void DeviceCore::sampleNow() {
  const double epoch = clock_.epochSeconds();
  const uint32_t mono = clock_.monotonicMs();
  for (size_t i = 0; i < entities_.size(); ++i) {
    const EntitySpec& spec = entities_.spec(i);
    if (spec.kind != EntityKind::Sensor) continue;
    double v;
    if (!sensors_.read(spec, epoch, v) || !std::isfinite(v)) {
      ++invalidReadings_;
      continue;
    }
    Reading r;
    r.seq = nextSeq_++;
    r.monoMs = mono;
    r.epoch = epoch;
    r.entity = static_cast<uint16_t>(i);
    r.value = v;
    buffer_.push(r);
    edge_.observe(spec.id, epoch, v);
  }
}

double DeviceCore::readingEpoch(const Reading& r) {
  if (!std::isnan(r.epoch)) return r.epoch;
  // Taken before NTP answered: now that the clock is known, date it by its age.
  const double now = clock_.epochSeconds();
  if (std::isnan(now)) return kNoTimestamp;
  return now - static_cast<double>(clock_.monotonicMs() - r.monoMs) / 1000.0;
}

void DeviceCore::flush(bool force) {
  while (state_ == State::Online && inflight_.size() < opt_.maxInflight && !buffer_.empty()) {
    const uint64_t frontSeq = buffer_.front().seq;
    const size_t from = nextToSend_ > frontSeq ? static_cast<size_t>(nextToSend_ - frontSeq) : 0;
    if (from >= buffer_.size()) break;
    const size_t waiting = buffer_.size() - from;
    // A partial batch waits for more readings until its oldest reading is old enough;
    // readings buffered while offline are old already, so a backlog goes out at once.
    if (opt_.batch > 1 && waiting < opt_.batch && !force &&
        !reached(clock_.monotonicMs(), buffer_.at(from).monoMs + opt_.batchMaxAgeMs)) {
      break;
    }
    const size_t count = opt_.batch > 1 ? std::min<size_t>(opt_.batch, waiting) : 1;
    if (!publishReadings(from, count)) break;
  }
}

bool DeviceCore::publishReadings(size_t from, size_t count) {
  std::string topic;
  std::string payload;
  const Reading& first = buffer_.at(from);
  if (count == 1 && opt_.batch <= 1) {
    const EntitySpec& spec = entities_.spec(first.entity);
    topic = topics_.state(spec.id);
    if (!buildStatePayload(Value::number(first.value), readingEpoch(first), spec.unit, "",
                           payload)) {
      return false;
    }
  } else {
    // Readings of one sampling round share a timestamp and become one telemetry object.
    std::vector<TelemetrySample> samples;
    uint64_t lastRoundSeq = 0;
    uint32_t lastMono = 0;
    for (size_t i = from; i < from + count; ++i) {
      const Reading& r = buffer_.at(i);
      if (samples.empty() || r.monoMs != lastMono || r.seq != lastRoundSeq + 1) {
        samples.emplace_back();
        samples.back().timestamp = readingEpoch(r);
      }
      samples.back().values.emplace_back(entities_.spec(r.entity).id, r.value);
      lastRoundSeq = r.seq;
      lastMono = r.monoMs;
    }
    topic = topics_.telemetry();
    if (!buildTelemetryPayload(samples, payload)) return false;
  }
  const PublishResult res = mqtt_.publish(topic, payload, 1, false);
  if (!res.accepted) return false;
  const uint64_t lastSeq = buffer_.at(from + count - 1).seq;
  nextToSend_ = lastSeq + 1;
  if (res.ackId == 0) {
    // The client library gives no acknowledgement: accepted is as good as it gets.
    inflight_.push_back(Inflight{0, lastSeq, true});
  } else {
    inflight_.push_back(Inflight{res.ackId, lastSeq, false});
  }
  drainCompleted();
  return true;
}

void DeviceCore::onPublishAcked(int ackId) {
  if (ackId == offlineAckId_ && offlineAckId_ > 0) offlineAckId_ = 0;
  for (auto& f : inflight_) {
    if (ackId > 0 && f.ackId == ackId) f.acked = true;
  }
  drainCompleted();
  edge_.onPublishAcked(ackId);
}

void DeviceCore::drainCompleted() {
  // Completion is strictly in order so the buffer only ever loses its oldest entries.
  size_t done = 0;
  while (done < inflight_.size() && inflight_[done].acked) {
    completeUpTo(inflight_[done].lastSeq);
    ++done;
  }
  if (done > 0) inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<long>(done));
}

void DeviceCore::completeUpTo(uint64_t lastSeq) {
  while (!buffer_.empty() && buffer_.front().seq <= lastSeq) {
    buffer_.popFront();
    ++sent_;
  }
}

void DeviceCore::emitStats() {
  JsonWriter w;
  w.beginObject()
      .key("event").value("stats")
      .key("sent").value(static_cast<unsigned long long>(sent_))
      .key("buffered").value(static_cast<unsigned long long>(buffer_.size()))
      .key("dropped").value(static_cast<unsigned long long>(buffer_.dropped()))
      .key("inflight").value(static_cast<unsigned long long>(inflight_.size()))
      .key("rejected_commands").value(static_cast<unsigned long long>(rejected_))
      .key("invalid_readings").value(static_cast<unsigned long long>(invalidReadings_))
      .key("connected").value(state_ == State::Online)
      .endObject();
  emit(w.str());
}

void DeviceCore::shutdown(uint32_t maxWaitMs) {
  if (state_ == State::Online) {
    // Readings waiting for their batch to fill would die with the process: send them first
    // (in order, so the acknowledgement of "offline" below follows theirs).
    flush(true);
    const PublishResult r = mqtt_.publish(topics_.status(), "offline", 1, true);
    if (r.accepted && r.ackId > 0) {
      offlineAckId_ = r.ackId;
      const uint32_t start = clock_.monotonicMs();
      while (offlineAckId_ > 0 && state_ == State::Online &&
             !reached(clock_.monotonicMs(), start + maxWaitMs)) {
        mqtt_.poll();
      }
    }
    mqtt_.disconnect();
  }
  state_ = State::Idle;
  JsonWriter w;
  w.beginObject()
      .key("event").value("stopped")
      .key("sent").value(static_cast<unsigned long long>(sent_))
      .key("buffered").value(static_cast<unsigned long long>(buffer_.size()))
      .key("dropped").value(static_cast<unsigned long long>(buffer_.dropped()))
      .endObject();
  emit(w.str());
}

}  // namespace es
