// Edge deployment on the device: receives an edge model in chunks on
// devices/<id>/model/set, installs it only when it is complete, matches its announced size,
// checksum and version and parses cleanly (a refused or half-received model never replaces
// the running one), keeps it across reboots through ModelStorage, scores the model's entity
// as readings are taken, and reports on devices/<id>/model/state: the confirmation (or the
// refusal and why) and the anomalies found, which wait in a buffer while the broker is
// unreachable and go out, oldest first, after the next connect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edge_detector.hpp"
#include "edge_model.hpp"
#include "interfaces.hpp"
#include "ring_buffer.hpp"

namespace es {

// Where the last confirmed model is kept (NVS on the ESP32, a file on the host).
class ModelStorage {
 public:
  virtual ~ModelStorage() = default;
  virtual bool load(std::vector<uint8_t>& out) = 0;
  virtual bool save(const std::vector<uint8_t>& bytes) = 0;
};

struct EdgeAnomaly {
  double timeMs = 0;
  double value = 0;
  double score = 0;
  const char* reason = nullptr;
};

// Sizes of the runtime's buffers: the readings kept per sensor so a model that arrives a
// little after the platform exported it first catches up on what it missed, and the
// anomalies kept while offline (the oldest are dropped and counted beyond that).
constexpr size_t kEdgeHistory = 64;
constexpr size_t kEdgeAnomalyBuffer = 64;
constexpr size_t kEdgeAnomaliesPerMessage = 16;

class EdgeRuntime {
 public:
  EdgeRuntime(const std::string& deviceId, MqttTransport& mqtt, EventSink* events);

  void setStorage(ModelStorage* storage) { storage_ = storage; }
  // Declares a numeric sensor the model may score (before begin()).
  void addSensor(const std::string& entityId);
  // Loads the last confirmed model, if one was stored and is still intact.
  void begin();

  // A chunk published on devices/<id>/model/set.
  void onChunk(const std::string& payload);
  // A reading as taken: `epoch` in seconds (NaN while the clock is unknown: not scored).
  void observe(const std::string& entityId, double epoch, double value);
  void onConnected();
  void onDisconnected();
  void onPublishAcked(int ackId);
  // Sends what waits (the state, anomalies) while online.
  void flush();

  bool running() const { return model_ != nullptr; }
  const EdgeModel* model() const { return model_.get(); }
  const EdgeDetector* detector() const { return detector_.get(); }
  size_t pendingAnomalies() const { return anomalies_.size(); }
  uint64_t droppedAnomalies() const { return anomalies_.dropped(); }

 private:
  struct Sample {
    double timeMs = 0;
    double value = 0;
  };
  struct Staging {
    std::string version;
    std::string checksum;
    size_t size = 0;
    std::vector<uint8_t> bytes;
    bool active = false;
  };

  // Adds a chunk to the model being received; true once that model is complete. Refusals
  // are sent from here.
  bool stage(const std::string& payload, std::string& version, std::string& checksum);
  bool install(std::vector<uint8_t>&& bytes, const std::string& announcedVersion,
               const std::string& announcedChecksum, std::string& reason, bool persist);
  void score(double timeMs, double value);
  void refuse(const std::string& version, const std::string& checksum, const std::string& reason);
  void publishState(const std::string& version, const std::string& checksum, const char* status,
                    const std::string& reason);
  void emit(const std::string& line);
  RingBuffer<Sample>* historyOf(const std::string& entityId);

  std::string stateTopic_;
  MqttTransport& mqtt_;
  EventSink* events_;
  ModelStorage* storage_ = nullptr;
  std::vector<std::pair<std::string, RingBuffer<Sample>>> history_;
  Staging staging_;
  std::unique_ptr<EdgeModel> model_;
  std::unique_ptr<EdgeDetector> detector_;
  double lastScoredMs_ = -1;
  RingBuffer<EdgeAnomaly> anomalies_;
  bool online_ = false;
  bool stateDue_ = false;  // the running model's state is announced once per connection
  int anomalyAckId_ = -1;  // >0: a report is waiting for its PUBACK
  size_t anomaliesInFlight_ = 0;
};

// Standard base64 (RFC 4648, with padding); false on any other character or length.
bool decodeBase64(const std::string& text, std::vector<uint8_t>& out);

}  // namespace es
