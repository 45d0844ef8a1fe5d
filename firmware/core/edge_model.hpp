// The edge model: the platform's advanced anomaly detector for one entity (its trained
// network, settings and streaming statistics) in the binary layout written by
// shared/edge/domain/model-format.ts. Change both together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace es {

constexpr uint16_t kEdgeFormat = 1;
constexpr size_t kEdgeHeaderBytes = 16;

// What this device accepts; the platform refuses to export anything larger (EDGE_LIMITS).
// The file is held twice at most (the running model and one being received), with one
// parsed copy of each one's statistics: test/test_edge_memory.cpp holds the runtime to 36 KB
// of heap while it runs the largest model and 64 KB while it replaces it.
constexpr size_t kEdgeMaxBytes = 16384;
constexpr size_t kEdgeMaxLayers = 4;
constexpr size_t kEdgeMaxUnits = 64;
constexpr size_t kEdgeMaxWindowSize = 64;
constexpr size_t kEdgeMaxStatWindow = 128;
constexpr size_t kEdgeMaxDailyBins = 288;
constexpr size_t kEdgeMaxRecent = 128;
constexpr size_t kEdgeMaxVersionBytes = 96;
constexpr size_t kEdgeMaxEntityIdBytes = 128;

uint32_t crc32(const uint8_t* data, size_t length, uint32_t crc = 0);
// A model's checksum is the CRC-32 of its body, as its header carries it: the platform
// announces it with every chunk and the device confirms with it.
// Eight lowercase hex digits, as the platform shows checksums.
std::string crc32Hex(uint32_t crc);

struct TailConfig {
  double quantile = 0, step = 0, excessAlpha = 0, minExcess = 0, initialThreshold = 0,
         initialExcess = 0;
};

struct DetectorConfig {
  // Basic statistics.
  uint32_t warmup = 0;
  uint32_t window = 0;
  double fastAlpha = 0, slowAlpha = 0, volatilityAlpha = 0;
  TailConfig tail;
  double surpriseScale = 0, alarmScore = 0;
  uint32_t refractory = 0;
  double refractoryDamping = 0;
  uint32_t dailyBins = 0;
  double dailyAlpha = 0, minRepeatRate = 0;
  // Model signals and range.
  TailConfig modelTail;
  double shiftAlpha = 0, modelWeight = 0;
  uint32_t recentCapacity = 0;
  double rangeMargin = 0, rangeSurprise = 0;
};

struct Ewm {
  double mean = 0, variance = 0, count = 0;
};

struct Tail {
  double threshold = 0, meanExcess = 0, count = 0;
};

enum class Activation : uint8_t { Relu = 0, Tanh = 1, Linear = 2 };
enum class WeightEncoding : uint8_t { F32 = 0, I16 = 1, I8 = 2 };

struct DenseLayer {
  uint16_t inputs = 0;
  uint16_t units = 0;
  Activation activation = Activation::Linear;
  WeightEncoding encoding = WeightEncoding::F32;
  // Offsets into the model file: weights stay where they arrived instead of being copied.
  size_t scalesAt = 0, kernelAt = 0, biasAt = 0;
};

// The six tail-calibrated basic statistics, in the platform's order.
enum BasicTail { kSpike, kShift, kChange, kVolatility, kSeasonal, kSeasonalShift, kBasicTails };

struct DetectorState {
  // Basic.
  double count = 0;
  bool hasLast = false;
  double last = 0;
  std::vector<double> window;  // ring: `windowNext` is the oldest once full
  uint16_t windowNext = 0;
  Ewm fast, slow, diff, volFast, volSlow, repeatRate;
  double run = 0;
  std::vector<Ewm> daily;
  Ewm dailyResidual;
  double dailyResidualFast = 0;
  Tail tails[kBasicTails];
  double quiet = 0;
  // Advanced.
  std::vector<double> recent;  // oldest first
  Tail forecastTail, shiftTail;
  double residualFast = 0;
  double rangeMin = 0, rangeMax = 0, rangeCount = 0;
};

struct EdgeModel {
  std::vector<uint8_t> bytes;  // the whole file, header included
  std::string version;
  std::string entityId;
  double lastTimeMs = -1;
  uint32_t checksum = 0;
  DetectorConfig config;
  uint16_t windowSize = 0;
  double normMean = 0, normStd = 1, residualMean = 0, residualStd = 1;
  double threshold = 0, tailExcess = 0;
  std::vector<DenseLayer> layers;
  // The statistics as delivered; the device's runtime moves them into its detector.
  DetectorState state;
};

enum class EdgeModelError {
  None,
  BadMagic,
  UnsupportedFormat,
  ChecksumMismatch,
  Truncated,
  TooLarge,
  Malformed,
};

// The word the device reports (and the platform's EdgeFormatError uses) for an error.
const char* edgeModelErrorName(EdgeModelError error);

// Checks and parses a complete file. On any error `out` is left untouched, so a bad file
// can never replace a working model.
EdgeModelError parseEdgeModel(const uint8_t* data, size_t length, EdgeModel& out);
// The same, keeping the file's own buffer on success instead of a copy of it (a file of up
// to 16 KB held twice would cost the device that much more heap while installing).
EdgeModelError parseEdgeModel(std::vector<uint8_t>&& bytes, EdgeModel& out);

}  // namespace es
