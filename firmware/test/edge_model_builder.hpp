// Writes edge model files for the tests, in the layout of shared/edge/domain/model-format.ts:
// a tiny network and settings small enough to reason about by hand.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "edge_model.hpp"

namespace es_test {

struct LayerSpec {
  uint16_t units = 1;
  uint8_t activation = 2;  // linear
  uint8_t encoding = 0;    // f32
  std::vector<float> scales;
  std::vector<double> kernel;  // float values, or the quantised integers
  std::vector<float> bias;
};

class ModelBuilder {
 public:
  std::string version = "dense-forecaster-1-test";
  std::string entityId = "temperature";
  double lastTimeMs = 1.7e12;
  uint16_t windowSize = 2;
  double normStd = 1, residualStd = 1, threshold = 3, tailExcess = 1;
  uint32_t warmup = 5, statWindow = 8, dailyBins = 4, recentCapacity = 4, refractory = 3;
  std::vector<LayerSpec> layers;
  std::vector<double> recent;
  std::vector<double> window;  // the statistics window, oldest first (at most statWindow)

  ModelBuilder() {
    LayerSpec out;
    out.kernel = {1, 0, 0};  // forecast = last + (first - last): the older reading
    out.bias = {0};
    layers.push_back(out);
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> b;
    text(b, version);
    text(b, entityId);
    f64(b, lastTimeMs);
    b.push_back(29);
    const double tail[6] = {0.98, 0.05, 0.05, 0.25, 3, 1};
    const double head[5] = {double(warmup), double(statWindow), 0.25, 0.004, 0.1};
    for (double v : head) f64(b, v);
    for (double v : tail) f64(b, v);
    const double mid[7] = {8, 0.48, double(refractory), 0.1, double(dailyBins), 0.1, 0.01};
    for (double v : mid) f64(b, v);
    for (double v : tail) f64(b, v);
    const double rest[5] = {0.1, 1, double(recentCapacity), 0.05, 24};
    for (double v : rest) f64(b, v);
    u16(b, windowSize);
    const double net[6] = {0, normStd, 0, residualStd, threshold, tailExcess};
    for (double v : net) f64(b, v);
    b.push_back(static_cast<uint8_t>(layers.size()));
    for (const LayerSpec& l : layers) {
      u16(b, l.units);
      b.push_back(l.activation);
      b.push_back(l.encoding);
      for (float s : l.scales) f32(b, s);
      for (double k : l.kernel) {
        if (l.encoding == 0) f32(b, static_cast<float>(k));
        if (l.encoding == 1) u16(b, static_cast<uint16_t>(static_cast<int16_t>(k)));
        if (l.encoding == 2) b.push_back(static_cast<uint8_t>(static_cast<int8_t>(k)));
      }
      for (float v : l.bias) f32(b, v);
    }
    // A fresh detector state (initial tails), with the windows the test gives.
    f64(b, 0);
    b.push_back(0);
    f64(b, 0);
    u16(b, static_cast<uint16_t>(window.size()));
    u16(b, static_cast<uint16_t>(window.size() % statWindow));
    for (double v : window) f64(b, v);
    for (int i = 0; i < 6; ++i) ewm(b);
    f64(b, 0);
    for (uint32_t i = 0; i < dailyBins; ++i) ewm(b);
    ewm(b);
    f64(b, 0);
    for (int i = 0; i < 6; ++i) initialTail(b);
    f64(b, 0);
    u16(b, static_cast<uint16_t>(recent.size()));
    for (double v : recent) f64(b, v);
    initialTail(b);
    initialTail(b);
    f64(b, 0);
    for (int i = 0; i < 3; ++i) f64(b, 0);
    return wrap(b);
  }

  static std::vector<uint8_t> wrap(const std::vector<uint8_t>& body, uint16_t format = 1) {
    std::vector<uint8_t> out = {'E', 'S', 'A', 'M'};
    u16(out, format);
    u16(out, 0);
    u32(out, static_cast<uint32_t>(body.size()));
    u32(out, es::crc32(body.data(), body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
  }

  static void u16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(v & 0xff);
    b.push_back(v >> 8);
  }
  static void u32(std::vector<uint8_t>& b, uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back((v >> (8 * i)) & 0xff);
  }
  static void f32(std::vector<uint8_t>& b, float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    u32(b, bits);
  }
  static void f64(std::vector<uint8_t>& b, double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; ++i) b.push_back((bits >> (8 * i)) & 0xff);
  }

 private:
  static void text(std::vector<uint8_t>& b, const std::string& s) {
    b.push_back(static_cast<uint8_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  }
  static void ewm(std::vector<uint8_t>& b) {
    for (int i = 0; i < 3; ++i) f64(b, 0);
  }
  static void initialTail(std::vector<uint8_t>& b) {
    f64(b, 3);
    f64(b, 1);
    f64(b, 0);
  }
};

}  // namespace es_test
