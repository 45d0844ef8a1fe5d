#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "edge_chunks.hpp"
#include "edge_model_builder.hpp"
#include "edge_runtime.hpp"
#include "heap_meter.hpp"
#include "json.hpp"

namespace {

// What the ESP32 gives edge models (firmware/README.md, "Edge models"): of its 520 KB of
// SRAM, roughly 150 KB of heap is left once Wi-Fi, a TLS session and the MQTT client are up;
// the edge runtime may hold 36 KB while it runs a model and 64 KB while it replaces one.
constexpr long long kEdgeRunningBudget = 36 * 1024;
constexpr long long kEdgeHeapBudget = 64 * 1024;

// A broker and a store that keep nothing, so the meter sees only what the runtime holds
// (NVS keeps the stored model in flash, not in RAM).
class NullTransport : public es::MqttTransport {
 public:
  void setListener(es::MqttListener*) override {}
  bool connect(const es::ConnectOptions&, std::string&) override { return true; }
  void disconnect() override {}
  es::PublishResult publish(const std::string&, const std::string&, int, bool) override {
    return {true, ++id_};
  }
  bool subscribe(const std::string&, int) override { return true; }
  void poll() override {}

 private:
  int id_ = 0;
};

class FlashStorage : public es::ModelStorage {
 public:
  bool load(std::vector<uint8_t>&) override { return false; }
  bool save(const std::vector<uint8_t>&) override { return true; }
};

// The largest model the device takes: every statistic at its limit (a full window of 128,
// 128 recent readings, 288 daily bins), a window of 64 readings, and the widest float32
// hidden layer that still fits in the file's 16 KB.
std::vector<uint8_t> largestModel(const std::string& version) {
  std::vector<uint8_t> best;
  for (uint16_t units = 1; units <= es::kEdgeMaxUnits; ++units) {
    es_test::ModelBuilder b;
    b.version = version;
    b.windowSize = 64;
    b.statWindow = 128;
    b.recentCapacity = 128;
    b.dailyBins = 288;
    b.recent.assign(128, 20);
    b.window.assign(128, 20);
    es_test::LayerSpec hidden;
    hidden.units = units;
    hidden.activation = 0;
    hidden.kernel.assign(65u * units, 0.01);
    hidden.bias.assign(units, 0);
    es_test::LayerSpec out;
    out.kernel.assign(units, 0.01);
    out.bias = {0};
    b.layers = {hidden, out};
    std::vector<uint8_t> file = b.build();
    if (file.size() > es::kEdgeMaxBytes) break;
    best = file;
  }
  return best;
}

}  // namespace

TEST_CASE("RAM: the largest model running, and replaced by another, stays within the ESP32 heap budget") {
  const auto v1 = largestModel("v1");
  const auto v2 = largestModel("v2");
  REQUIRE(v1.size() > 15 * 1024);
  es::EdgeModel parsed;
  REQUIRE(es::parseEdgeModel(v1.data(), v1.size(), parsed) == es::EdgeModelError::None);
  const auto first = es_test::chunksOf(v1, "v1", es_test::checksumOf(v1), 1024);
  const auto second = es_test::chunksOf(v2, "v2", es_test::checksumOf(v2), 1024);

  es_test::HeapMeter meter;
  long long running = 0;
  {
    NullTransport mqtt;
    FlashStorage storage;
    es::EdgeRuntime runtime("DEV_1", mqtt, nullptr);
    runtime.setStorage(&storage);
    // The reference device's three sensors.
    for (const char* id : {"temperature", "pressure", "vibration"}) runtime.addSensor(id);
    runtime.begin();
    runtime.onConnected();
    for (const auto& c : first) runtime.onChunk(c);
    REQUIRE(runtime.running());
    double epoch = 1.7e9;
    for (int i = 0; i < 200; ++i) {
      for (const char* id : {"temperature", "pressure", "vibration"}) {
        runtime.observe(id, epoch += 1, 20 + (i % 3) * 0.1);
      }
    }
    running = meter.current();
    for (const auto& c : second) runtime.onChunk(c);
    REQUIRE(runtime.model()->version == "v2");
    for (int i = 0; i < 200; ++i) runtime.observe("temperature", epoch += 1, 20 + (i % 3) * 0.1);
  }
  const long long left = meter.current();
  const long long peak = meter.peak();
  MESSAGE("edge runtime heap: model file " << v1.size() << " bytes; running " << running
          << " bytes; peak while replacing it " << peak << " bytes");
  CHECK(left == 0);
  CHECK(running <= kEdgeRunningBudget);
  CHECK(peak <= kEdgeHeapBudget);
}
