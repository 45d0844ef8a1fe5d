#include "edge_model.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

namespace es {

uint32_t crc32(const uint8_t* data, size_t length, uint32_t crc) {
  // Bitwise, without a table: 1 KB of RAM matters more here than speed on a 16 KB file.
  crc = ~crc;
  for (size_t i = 0; i < length; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

std::string crc32Hex(uint32_t crc) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
  return buf;
}

const char* edgeModelErrorName(EdgeModelError error) {
  switch (error) {
    case EdgeModelError::None: return "none";
    case EdgeModelError::BadMagic: return "bad_magic";
    case EdgeModelError::UnsupportedFormat: return "unsupported_format";
    case EdgeModelError::ChecksumMismatch: return "checksum_mismatch";
    case EdgeModelError::Truncated: return "truncated";
    case EdgeModelError::TooLarge: return "too_large";
    case EdgeModelError::Malformed: return "malformed";
  }
  return "malformed";
}

namespace {

// Bounds-checked little-endian reads; the first failure sticks, so parsing code reads on
// and checks once where it matters.
class Reader {
 public:
  Reader(const uint8_t* data, size_t length) : data_(data), length_(length) {}

  EdgeModelError error() const { return error_; }
  size_t offset() const { return pos_; }
  void fail(EdgeModelError e) {
    if (error_ == EdgeModelError::None) error_ = e;
  }

  uint8_t u8() {
    uint8_t v = 0;
    take(&v, 1);
    return v;
  }
  uint16_t u16() {
    uint8_t b[2] = {0, 0};
    take(b, 2);
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
  }
  uint32_t u32() {
    uint8_t b[4] = {0, 0, 0, 0};
    take(b, 4);
    return static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
           (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  double f64() {
    uint8_t b[8] = {0};
    take(b, 8);
    uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = (bits << 8) | b[i];
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v)) {
      fail(EdgeModelError::Malformed);
      return 0;
    }
    return v;
  }
  bool text(size_t max, std::string& out) {
    size_t n = u8();
    if (n == 0 || n > max) {
      fail(EdgeModelError::Malformed);
      return false;
    }
    if (!need(n)) return false;
    out.assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return true;
  }
  // Skips n bytes and returns where they start.
  size_t skip(size_t n) {
    size_t at = pos_;
    if (need(n)) pos_ += n;
    return at;
  }

 private:
  bool need(size_t n) {
    if (error_ != EdgeModelError::None) return false;
    if (n > length_ - pos_) {
      fail(EdgeModelError::Truncated);
      return false;
    }
    return true;
  }
  void take(uint8_t* out, size_t n) {
    if (!need(n)) return;
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
  }

  const uint8_t* data_;
  size_t length_;
  size_t pos_ = 0;
  EdgeModelError error_ = EdgeModelError::None;
};

// The largest magnitude among a quantised layer's weights, each float(scale * q) as the
// detector computes it (infinite when one overflows).
float largestQuantisedWeight(const uint8_t* file, const DenseLayer& layer) {
  float largest = 0;
  for (size_t k = 0; k < static_cast<size_t>(layer.inputs) * layer.units; ++k) {
    float scale;
    std::memcpy(&scale, file + layer.scalesAt + 4 * (k % layer.units), 4);
    float q;
    if (layer.encoding == WeightEncoding::I16) {
      int16_t v;
      std::memcpy(&v, file + layer.kernelAt + 2 * k, 2);
      q = static_cast<float>(v);
    } else {
      q = static_cast<float>(static_cast<int8_t>(file[layer.kernelAt + k]));
    }
    const float w = std::fabs(static_cast<float>(scale * q));
    if (!std::isfinite(w)) return w;
    if (w > largest) largest = w;
  }
  return largest;
}

bool isCount(double v, double min, double max) {
  return v >= min && v <= max && std::floor(v) == v;
}

TailConfig readTailConfig(Reader& r) {
  TailConfig t;
  t.quantile = r.f64();
  t.step = r.f64();
  t.excessAlpha = r.f64();
  t.minExcess = r.f64();
  t.initialThreshold = r.f64();
  t.initialExcess = r.f64();
  return t;
}

constexpr uint8_t kConfigValues = 29;

bool readConfig(Reader& r, DetectorConfig& c) {
  if (r.u8() != kConfigValues) return false;
  double warmup = r.f64(), window = r.f64();
  c.fastAlpha = r.f64();
  c.slowAlpha = r.f64();
  c.volatilityAlpha = r.f64();
  c.tail = readTailConfig(r);
  c.surpriseScale = r.f64();
  c.alarmScore = r.f64();
  double refractory = r.f64();
  c.refractoryDamping = r.f64();
  double bins = r.f64();
  c.dailyAlpha = r.f64();
  c.minRepeatRate = r.f64();
  c.modelTail = readTailConfig(r);
  c.shiftAlpha = r.f64();
  c.modelWeight = r.f64();
  double recent = r.f64();
  c.rangeMargin = r.f64();
  c.rangeSurprise = r.f64();
  if (!isCount(warmup, 0, 1e6) || !isCount(window, 1, kEdgeMaxStatWindow) ||
      !isCount(refractory, 0, 1e6) || !isCount(bins, 1, kEdgeMaxDailyBins) ||
      !isCount(recent, 1, kEdgeMaxRecent) || !(c.surpriseScale > 0) ||
      !(c.tail.quantile > 0 && c.tail.quantile < 1)) {
    return false;
  }
  c.warmup = static_cast<uint32_t>(warmup);
  c.window = static_cast<uint32_t>(window);
  c.refractory = static_cast<uint32_t>(refractory);
  c.dailyBins = static_cast<uint32_t>(bins);
  c.recentCapacity = static_cast<uint32_t>(recent);
  return true;
}

Ewm readEwm(Reader& r) {
  Ewm e;
  e.mean = r.f64();
  e.variance = r.f64();
  e.count = r.f64();
  return e;
}

Tail readTail(Reader& r) {
  Tail t;
  t.threshold = r.f64();
  t.meanExcess = r.f64();
  t.count = r.f64();
  return t;
}

bool readState(Reader& r, const DetectorConfig& c, DetectorState& s) {
  s.count = r.f64();
  s.hasLast = r.u8() != 0;
  s.last = r.f64();
  uint16_t windowLength = r.u16();
  s.windowNext = r.u16();
  if (windowLength > c.window || s.windowNext >= c.window || s.windowNext > windowLength) {
    return false;
  }
  s.window.resize(windowLength);
  for (auto& v : s.window) v = r.f64();
  for (Ewm* e : {&s.fast, &s.slow, &s.diff, &s.volFast, &s.volSlow, &s.repeatRate}) {
    *e = readEwm(r);
  }
  s.run = r.f64();
  s.daily.resize(c.dailyBins);
  for (auto& e : s.daily) e = readEwm(r);
  s.dailyResidual = readEwm(r);
  s.dailyResidualFast = r.f64();
  for (auto& t : s.tails) t = readTail(r);
  s.quiet = r.f64();
  uint16_t recentLength = r.u16();
  if (recentLength > c.recentCapacity) return false;
  s.recent.resize(recentLength);
  for (auto& v : s.recent) v = r.f64();
  s.forecastTail = readTail(r);
  s.shiftTail = readTail(r);
  s.residualFast = r.f64();
  s.rangeMin = r.f64();
  s.rangeMax = r.f64();
  s.rangeCount = r.f64();
  return true;
}

}  // namespace

namespace {

// Everything but keeping the file's bytes: `m` is a fresh model, filled only on success.
EdgeModelError parseInto(const uint8_t* data, size_t length, EdgeModel& m) {
  if (length > kEdgeMaxBytes) return EdgeModelError::TooLarge;
  if (length < kEdgeHeaderBytes) return EdgeModelError::Truncated;
  if (std::memcmp(data, "ESAM", 4) != 0) return EdgeModelError::BadMagic;
  Reader header(data, kEdgeHeaderBytes);
  header.skip(4);
  if (header.u16() != kEdgeFormat) return EdgeModelError::UnsupportedFormat;
  header.u16();  // flags: none defined in format 1
  uint32_t bodyLength = header.u32();
  uint32_t checksum = header.u32();
  if (bodyLength != length - kEdgeHeaderBytes) return EdgeModelError::Truncated;
  const uint8_t* body = data + kEdgeHeaderBytes;
  if (crc32(body, bodyLength) != checksum) return EdgeModelError::ChecksumMismatch;

  m.checksum = checksum;
  Reader r(body, bodyLength);
  auto malformed = [&r]() {
    r.fail(EdgeModelError::Malformed);
    return r.error();
  };
  if (!r.text(kEdgeMaxVersionBytes, m.version)) return malformed();
  if (!r.text(kEdgeMaxEntityIdBytes, m.entityId)) return malformed();
  m.lastTimeMs = r.f64();
  if (!readConfig(r, m.config)) return malformed();
  m.windowSize = r.u16();
  if (m.windowSize < 2 || m.windowSize > kEdgeMaxWindowSize ||
      m.windowSize > m.config.recentCapacity) {
    return malformed();
  }
  m.normMean = r.f64();
  m.normStd = r.f64();
  m.residualMean = r.f64();
  m.residualStd = r.f64();
  m.threshold = r.f64();
  m.tailExcess = r.f64();
  if (!(m.normStd > 0) || !(m.residualStd > 0)) return malformed();
  uint8_t layerCount = r.u8();
  if (layerCount < 1 || layerCount > kEdgeMaxLayers) return malformed();
  size_t inputs = m.windowSize + 1u;
  for (uint8_t l = 0; l < layerCount; ++l) {
    DenseLayer layer;
    layer.inputs = static_cast<uint16_t>(inputs);
    layer.units = r.u16();
    uint8_t activation = r.u8();
    uint8_t encoding = r.u8();
    if (layer.units < 1 || layer.units > kEdgeMaxUnits || activation > 2 || encoding > 2) {
      return malformed();
    }
    layer.activation = static_cast<Activation>(activation);
    layer.encoding = static_cast<WeightEncoding>(encoding);
    size_t weights = inputs * layer.units;
    size_t bytesPerWeight = layer.encoding == WeightEncoding::F32   ? 4
                            : layer.encoding == WeightEncoding::I16 ? 2
                                                                    : 1;
    if (layer.encoding != WeightEncoding::F32) layer.scalesAt = r.skip(4u * layer.units);
    layer.kernelAt = r.skip(weights * bytesPerWeight);
    layer.biasAt = r.skip(4u * layer.units);
    // Offsets are kept relative to the whole file.
    layer.scalesAt += kEdgeHeaderBytes;
    layer.kernelAt += kEdgeHeaderBytes;
    layer.biasAt += kEdgeHeaderBytes;
    m.layers.push_back(layer);
    inputs = layer.units;
  }
  if (inputs != 1) return malformed();
  if (!readState(r, m.config, m.state)) return malformed();
  if (r.error() != EdgeModelError::None) return r.error();
  if (r.offset() != bodyLength) return malformed();
  // Weights and scales must be finite (read in place: every supported target is little-endian): a NaN would poison every later score.
  for (const DenseLayer& layer : m.layers) {
    size_t floats = layer.units * (layer.encoding == WeightEncoding::F32 ? layer.inputs + 1u : 2u);
    size_t starts[2] = {layer.encoding == WeightEncoding::F32 ? layer.kernelAt : layer.scalesAt,
                        layer.biasAt};
    size_t counts[2] = {floats - layer.units, layer.units};
    for (int part = 0; part < 2; ++part) {
      for (size_t k = 0; k < counts[part]; ++k) {
        float f;
        std::memcpy(&f, data + starts[part] + 4 * k, 4);
        if (!std::isfinite(f)) return EdgeModelError::Malformed;
      }
    }
    // So must the weights a quantised layer stands for: a finite scale times the largest
    // integer can still overflow a float.
    if (layer.encoding != WeightEncoding::F32 &&
        !std::isfinite(largestQuantisedWeight(data, layer))) {
      return EdgeModelError::Malformed;
    }
  }
  return EdgeModelError::None;
}

}  // namespace

EdgeModelError parseEdgeModel(const uint8_t* data, size_t length, EdgeModel& out) {
  EdgeModel m;
  const EdgeModelError error = parseInto(data, length, m);
  if (error != EdgeModelError::None) return error;
  m.bytes.assign(data, data + length);
  out = std::move(m);
  return EdgeModelError::None;
}

EdgeModelError parseEdgeModel(std::vector<uint8_t>&& bytes, EdgeModel& out) {
  EdgeModel m;
  const EdgeModelError error = parseInto(bytes.data(), bytes.size(), m);
  if (error != EdgeModelError::None) return error;
  m.bytes = std::move(bytes);
  out = std::move(m);
  return EdgeModelError::None;
}

}  // namespace es
