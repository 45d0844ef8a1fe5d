#include "edge_runtime.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "json.hpp"
#include "topics.hpp"

namespace es {

namespace {

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Milliseconds as the platform computes them from the timestamp the device sends
// (formatTimestamp's text, read back and rounded), so both score the same instant.
double platformTimeMs(double epoch) {
  std::string text;
  if (!formatTimestamp(epoch, text)) return NAN;
  return std::floor(std::strtod(text.c_str(), nullptr) * 1000 + 0.5);
}

}  // namespace

bool decodeBase64(const std::string& text, std::vector<uint8_t>& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = base64Value(c)) < 0) {
        return false;
      }
    }
    uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                 (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<uint8_t>(n >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<uint8_t>(n & 0xff));
  }
  return true;
}

EdgeRuntime::EdgeRuntime(const std::string& deviceId, MqttTransport& mqtt, EventSink* events)
    : stateTopic_(Topics(deviceId).modelState()),
      mqtt_(mqtt),
      events_(events),
      anomalies_(kEdgeAnomalyBuffer) {}

void EdgeRuntime::emit(const std::string& line) {
  if (events_) events_->emit(line);
}

void EdgeRuntime::addSensor(const std::string& entityId) {
  history_.emplace_back(entityId, RingBuffer<Sample>(kEdgeHistory));
}

RingBuffer<EdgeRuntime::Sample>* EdgeRuntime::historyOf(const std::string& entityId) {
  for (auto& h : history_) {
    if (h.first == entityId) return &h.second;
  }
  return nullptr;
}

void EdgeRuntime::begin() {
  std::vector<uint8_t> bytes;
  if (!storage_ || !storage_->load(bytes) || bytes.empty()) return;
  std::string reason;
  if (!install(std::move(bytes), "", "", reason, false)) {
    JsonWriter w;
    w.beginObject().key("event").value("model_discarded").key("reason").value(reason).endObject();
    emit(w.str());
  }
}

bool EdgeRuntime::install(std::vector<uint8_t>&& bytes, const std::string& announcedVersion,
                          const std::string& announcedChecksum, std::string& reason,
                          bool persist) {
  std::unique_ptr<EdgeModel> model(new EdgeModel());
  const EdgeModelError error = parseEdgeModel(std::move(bytes), *model);
  if (error != EdgeModelError::None) {
    reason = edgeModelErrorName(error);
    return false;
  }
  if (!announcedChecksum.empty() && crc32Hex(model->checksum) != announcedChecksum) {
    reason = "checksum_mismatch";
    return false;
  }
  if (!announcedVersion.empty() && model->version != announcedVersion) {
    reason = "version_mismatch";
    return false;
  }
  if (!historyOf(model->entityId)) {
    reason = "unknown_entity";
    return false;
  }
  if (persist && storage_ && !storage_->save(model->bytes)) {
    reason = "storage_failed";
    return false;
  }
  detector_.reset();
  model_ = std::move(model);
  // The detector takes the delivered statistics over: one copy of them on the heap, not two.
  detector_.reset(new EdgeDetector(*model_, std::move(model_->state)));
  model_->state = DetectorState();
  lastScoredMs_ = model_->lastTimeMs;
  // Readings the platform had not scored yet when it exported the model: score them now, in
  // order, so the device's statistics are the platform's from here on.
  RingBuffer<Sample>* history = historyOf(model_->entityId);
  for (size_t i = 0; i < history->size(); ++i) score(history->at(i).timeMs, history->at(i).value);
  JsonWriter w;
  w.beginObject()
      .key("event").value("model_installed")
      .key("version").value(model_->version)
      .key("checksum").value(crc32Hex(model_->checksum))
      .key("entity_id").value(model_->entityId)
      .key("bytes").value(static_cast<unsigned long long>(model_->bytes.size()))
      .endObject();
  emit(w.str());
  return true;
}

void EdgeRuntime::refuse(const std::string& version, const std::string& checksum,
                         const std::string& reason) {
  staging_ = Staging();
  JsonWriter w;
  w.beginObject()
      .key("event").value("model_refused")
      .key("version").value(version)
      .key("reason").value(reason)
      .key("running").value(model_ ? model_->version : std::string())
      .endObject();
  emit(w.str());
  publishState(version, checksum, "failed", reason);
}

void EdgeRuntime::onChunk(const std::string& payload) {
  // The chunk's message and data are released before the model is parsed: at that moment
  // the device holds the running model and the new one, and nothing else it can spare.
  std::string v, c;
  if (!stage(payload, v, c)) return;
  std::vector<uint8_t> complete = std::move(staging_.bytes);
  staging_ = Staging();
  std::string reason;
  if (!install(std::move(complete), v, c, reason, true)) return refuse(v, c, reason);
  publishState(v, c, "confirmed", "");
}

bool EdgeRuntime::stage(const std::string& payload, std::string& v, std::string& c) {
  JsonValue doc;
  if (!parseJson(payload, doc).ok || !doc.isObject()) {
    refuse("", "", "bad_chunk");
    return false;
  }
  const JsonValue* version = doc.find("version");
  const JsonValue* checksum = doc.find("checksum");
  const JsonValue* size = doc.find("size");
  const JsonValue* offset = doc.find("offset");
  const JsonValue* data = doc.find("data");
  if (!version || !version->isString() || version->asString().empty() ||
      version->asString().size() > kEdgeMaxVersionBytes || !checksum || !checksum->isString() ||
      checksum->asString().size() != 8) {
    refuse("", "", "bad_chunk");
    return false;
  }
  v = version->asString();
  c = checksum->asString();
  if (!size || !size->isNumber() || !offset || !offset->isNumber() || !data || !data->isString() ||
      size->asNumber() < 1 || offset->asNumber() < 0 ||
      std::floor(size->asNumber()) != size->asNumber() ||
      std::floor(offset->asNumber()) != offset->asNumber()) {
    refuse(v, c, "bad_chunk");
    return false;
  }
  if (size->asNumber() > static_cast<double>(kEdgeMaxBytes)) {
    refuse(v, c, "too_large");
    return false;
  }
  const size_t total = static_cast<size_t>(size->asNumber());
  const size_t at = static_cast<size_t>(offset->asNumber());
  std::vector<uint8_t> bytes;
  if (!decodeBase64(data->asString(), bytes) || bytes.empty()) {
    refuse(v, c, "bad_chunk");
    return false;
  }

  if (at == 0 || !staging_.active || staging_.version != v || staging_.checksum != c) {
    if (at != 0) {
      refuse(v, c, "missing_chunk");
      return false;
    }
    staging_ = Staging();
    staging_.active = true;
    staging_.version = v;
    staging_.checksum = c;
    staging_.size = total;
    staging_.bytes.reserve(total);
  }
  if (total != staging_.size) {
    refuse(v, c, "bad_chunk");
    return false;
  }
  // A redelivered chunk (QoS 1) is already in; a gap means a chunk was lost.
  if (at + bytes.size() <= staging_.bytes.size()) return false;
  if (at != staging_.bytes.size()) {
    refuse(v, c, "missing_chunk");
    return false;
  }
  if (at + bytes.size() > total) {
    refuse(v, c, "bad_chunk");
    return false;
  }
  staging_.bytes.insert(staging_.bytes.end(), bytes.begin(), bytes.end());
  return staging_.bytes.size() == total;
}

void EdgeRuntime::publishState(const std::string& version, const std::string& checksum,
                               const char* status, const std::string& reason) {
  if (!online_) return;
  JsonWriter w;
  w.beginObject().key("version").value(version).key("checksum").value(checksum);
  w.key("status").value(status);
  if (!reason.empty()) w.key("reason").value(reason);
  w.endObject();
  mqtt_.publish(stateTopic_, w.str(), 1, false);
}

void EdgeRuntime::observe(const std::string& entityId, double epoch, double value) {
  RingBuffer<Sample>* history = historyOf(entityId);
  if (!history || !std::isfinite(value)) return;
  const double timeMs = platformTimeMs(epoch);
  if (std::isnan(timeMs)) return;
  Sample s;
  s.timeMs = timeMs;
  s.value = value;
  history->push(s);
  if (model_ && model_->entityId == entityId) score(timeMs, value);
}

void EdgeRuntime::score(double timeMs, double value) {
  // As the platform: a reading not newer than the last one scored is not scored again.
  if (!(timeMs > lastScoredMs_)) return;
  lastScoredMs_ = timeMs;
  const EdgeScore s = detector_->score(timeMs, value);
  if (!s.anomalous) return;
  EdgeAnomaly a;
  a.timeMs = timeMs;
  a.value = value;
  a.score = s.score;
  a.reason = s.reason;
  anomalies_.push(a);
  JsonWriter w;
  w.beginObject()
      .key("event").value("anomaly")
      .key("entity_id").value(model_->entityId)
      .key("timestamp").timestamp(timeMs / 1000)
      .key("time_ms").value(timeMs)
      .key("value").value(value)
      .key("score").value(s.score)
      .key("reason").value(s.reason ? s.reason : "")
      .key("online").value(online_)
      .endObject();
  emit(w.str());
  flush();
}

void EdgeRuntime::onConnected() {
  online_ = true;
  stateDue_ = model_ != nullptr;
  anomalyAckId_ = -1;
  anomaliesInFlight_ = 0;
  flush();
}

void EdgeRuntime::onDisconnected() {
  online_ = false;
  // A report without its PUBACK is sent again on the next connection.
  anomalyAckId_ = -1;
  anomaliesInFlight_ = 0;
}

void EdgeRuntime::onPublishAcked(int ackId) {
  if (ackId <= 0 || ackId != anomalyAckId_) return;
  for (size_t i = 0; i < anomaliesInFlight_; ++i) anomalies_.popFront();
  anomalyAckId_ = -1;
  anomaliesInFlight_ = 0;
  flush();
}

void EdgeRuntime::flush() {
  if (!online_ || !model_) return;
  if (stateDue_) {
    stateDue_ = false;
    publishState(model_->version, crc32Hex(model_->checksum), "confirmed", "");
  }
  if (anomalyAckId_ > 0 || anomalies_.empty()) return;
  const size_t count = std::min(anomalies_.size(), kEdgeAnomaliesPerMessage);
  JsonWriter w;
  w.beginObject()
      .key("version").value(model_->version)
      .key("checksum").value(crc32Hex(model_->checksum))
      .key("status").value("confirmed")
      .key("anomalies").beginArray();
  for (size_t i = 0; i < count; ++i) {
    const EdgeAnomaly& a = anomalies_.at(i);
    w.beginObject()
        .key("entity_id").value(model_->entityId)
        .key("timestamp").timestamp(a.timeMs / 1000)
        .key("value").value(a.value)
        .key("score").value(a.score)
        .key("reason").value(a.reason ? a.reason : "")
        .endObject();
  }
  w.endArray().endObject();
  const PublishResult r = mqtt_.publish(stateTopic_, w.str(), 1, false);
  if (!r.accepted) return;
  if (r.ackId == 0) {
    // No acknowledgement from this client library: accepted is as good as it gets.
    for (size_t i = 0; i < count; ++i) anomalies_.popFront();
    return;
  }
  anomalyAckId_ = r.ackId;
  anomaliesInFlight_ = count;
}

}  // namespace es
