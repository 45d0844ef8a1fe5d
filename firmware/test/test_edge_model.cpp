#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <vector>

#include "edge_detector.hpp"
#include "edge_model.hpp"
#include "edge_model_builder.hpp"

using es::EdgeModelError;
using es_test::ModelBuilder;

namespace {

EdgeModelError parse(const std::vector<uint8_t>& bytes, es::EdgeModel& out) {
  return es::parseEdgeModel(bytes.data(), bytes.size(), out);
}

// The body of a built file, to corrupt and wrap again with a valid header.
std::vector<uint8_t> bodyOf(const std::vector<uint8_t>& file) {
  return std::vector<uint8_t>(file.begin() + es::kEdgeHeaderBytes, file.end());
}

// The forecast at midnight of a one-layer network over the recent readings 10 and 14: its
// inputs are (10 - 14) / 1, sin 0 = 0 and cos 0 = 1.
double forecastWith(const es_test::LayerSpec& layer) {
  ModelBuilder b;
  b.layers[0] = layer;
  b.recent = {10, 14};
  es::EdgeModel m;
  REQUIRE(parse(b.build(), m) == EdgeModelError::None);
  es::EdgeDetector d(m);
  return d.forecast(0);
}

}  // namespace

TEST_CASE("crc32 is the IEEE/zlib checksum") {
  const char* text = "123456789";
  CHECK(es::crc32(reinterpret_cast<const uint8_t*>(text), 9) == 0xCBF43926u);
  CHECK(es::crc32Hex(0xCBF43926u) == "cbf43926");
  CHECK(es::crc32Hex(0x1u) == "00000001");
}

TEST_CASE("a well-formed edge model parses with its identity, settings and network") {
  ModelBuilder b;
  es::EdgeModel m;
  REQUIRE(parse(b.build(), m) == EdgeModelError::None);
  CHECK(m.version == b.version);
  CHECK(m.entityId == "temperature");
  CHECK(m.lastTimeMs == 1.7e12);
  CHECK(m.windowSize == 2);
  CHECK(m.config.warmup == 5);
  CHECK(m.config.dailyBins == 4);
  CHECK(m.config.alarmScore == doctest::Approx(0.48));
  REQUIRE(m.layers.size() == 1);
  CHECK(m.layers[0].inputs == 3);
  CHECK(m.state.daily.size() == 4);
  CHECK(m.checksum == es::crc32(m.bytes.data() + 16, m.bytes.size() - 16));
}

TEST_CASE("a damaged or foreign file is refused and leaves the model it was given untouched") {
  ModelBuilder b;
  std::vector<uint8_t> good = b.build();
  es::EdgeModel kept;
  REQUIRE(parse(good, kept) == EdgeModelError::None);
  const std::string version = kept.version;

  std::vector<uint8_t> flipped = good;
  flipped[40] ^= 0x01;
  CHECK(parse(flipped, kept) == EdgeModelError::ChecksumMismatch);

  std::vector<uint8_t> magic = good;
  magic[0] = 'X';
  CHECK(parse(magic, kept) == EdgeModelError::BadMagic);

  CHECK(parse(ModelBuilder::wrap(bodyOf(good), 2), kept) == EdgeModelError::UnsupportedFormat);

  std::vector<uint8_t> cut(good.begin(), good.end() - 1);
  CHECK(parse(cut, kept) == EdgeModelError::Truncated);
  std::vector<uint8_t> header(good.begin(), good.begin() + 10);
  CHECK(parse(header, kept) == EdgeModelError::Truncated);

  // A consistent header around a body that ends early or runs on.
  std::vector<uint8_t> shortBody = bodyOf(good);
  shortBody.resize(shortBody.size() - 8);
  CHECK(parse(ModelBuilder::wrap(shortBody), kept) == EdgeModelError::Truncated);
  std::vector<uint8_t> longBody = bodyOf(good);
  longBody.push_back(0);
  CHECK(parse(ModelBuilder::wrap(longBody), kept) == EdgeModelError::Malformed);

  std::vector<uint8_t> huge(es::kEdgeMaxBytes + 1, 0);
  CHECK(parse(huge, kept) == EdgeModelError::TooLarge);

  CHECK(kept.version == version);
  CHECK(kept.bytes == good);
}

TEST_CASE("structural limits: layer shapes, sizes and non-finite numbers are refused") {
  es::EdgeModel m;
  {
    ModelBuilder b;  // the network must end in one output
    b.layers[0].units = 2;
    b.layers[0].kernel = {1, 0, 0, 0, 0, 0};
    b.layers[0].bias = {0, 0};
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
  {
    ModelBuilder b;
    b.layers[0].bias = {NAN};
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
  {
    ModelBuilder b;  // a window the device cannot hold
    b.windowSize = 65;
    b.recentCapacity = 128;
    b.layers[0].kernel.assign(66, 0);
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
  {
    ModelBuilder b;
    b.dailyBins = 289;
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
  {
    ModelBuilder b;
    b.normStd = 0;
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
  {
    ModelBuilder b;
    b.layers[0].activation = 7;
    CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
  }
}

TEST_CASE("the forecast follows the network: float32, int16 and int8 weights") {
  // One linear unit over [(x0 - x1) / std, sin, cos]: forecast = x1 + w * (x0 - x1) + b.
  es_test::LayerSpec f;
  f.kernel = {0.5, 0, 2};
  f.bias = {-1};
  CHECK(forecastWith(f) == doctest::Approx(14 + 0.5 * -4 + 2 - 1));

  es_test::LayerSpec i16;
  i16.encoding = 1;
  i16.scales = {0.5f / 32767};
  i16.kernel = {32767, 0, -32767};  // 0.5, 0, -0.5
  i16.bias = {0};
  CHECK(forecastWith(i16) == doctest::Approx(14 + 0.5 * -4 - 0.5).epsilon(1e-6));

  es_test::LayerSpec i8;
  i8.encoding = 2;
  i8.scales = {0.25f};
  i8.kernel = {-128, 127, 0};  // the full int8 range is read, -128 included
  i8.bias = {0};
  CHECK(forecastWith(i8) == doctest::Approx(14 + -32.0 * -4));

  es_test::LayerSpec zero;  // an all-zero column quantises to scale 0
  zero.encoding = 2;
  zero.scales = {0.0f};
  zero.kernel = {127, -127, 5};
  zero.bias = {1.5f};
  CHECK(forecastWith(zero) == doctest::Approx(14 + 1.5));

  es_test::LayerSpec nanScale = zero;
  nanScale.scales = {NAN};
  ModelBuilder b;
  b.layers[0] = nanScale;
  es::EdgeModel m;
  CHECK(parse(b.build(), m) == EdgeModelError::Malformed);
}

TEST_CASE("quantisation edge cases: infinite scales, weights and biases, and a scale that overflows, are refused") {
  es::EdgeModel m;
  auto parseWith = [&m](const es_test::LayerSpec& layer) {
    ModelBuilder b;
    b.layers[0] = layer;
    return parse(b.build(), m);
  };
  es_test::LayerSpec i8;
  i8.encoding = 2;
  i8.scales = {0.25f};
  i8.kernel = {1, 2, 3};
  i8.bias = {0};
  REQUIRE(parseWith(i8) == EdgeModelError::None);

  for (float bad : {INFINITY, -INFINITY, NAN}) {
    es_test::LayerSpec scale = i8;
    scale.scales = {bad};
    CHECK(parseWith(scale) == EdgeModelError::Malformed);
    es_test::LayerSpec bias = i8;
    bias.bias = {bad};
    CHECK(parseWith(bias) == EdgeModelError::Malformed);
    es_test::LayerSpec f32;
    f32.kernel = {0.5, static_cast<double>(bad), 0};
    f32.bias = {0};
    CHECK(parseWith(f32) == EdgeModelError::Malformed);
  }
  // Finite scale, finite integers, but float(scale * q) overflows: refused, as the platform
  // refuses to export it.
  es_test::LayerSpec overflow = i8;
  overflow.scales = {3e38f};
  overflow.kernel = {0, 127, 0};
  CHECK(parseWith(overflow) == EdgeModelError::Malformed);
  es_test::LayerSpec i16 = overflow;
  i16.encoding = 1;
  i16.scales = {FLT_MAX / 32767 * 1.001f};
  i16.kernel = {32767, 0, 0};
  CHECK(parseWith(i16) == EdgeModelError::Malformed);
  // The largest product that stays finite is taken.
  overflow.kernel = {0, 1, 0};
  CHECK(parseWith(overflow) == EdgeModelError::None);
}

TEST_CASE("quantisation edge cases: the full int16 range, a subnormal scale and a negative scale") {
  es_test::LayerSpec i16;
  i16.encoding = 1;
  i16.scales = {1.0f / 32768};
  i16.kernel = {-32768, 32767, 32767};  // -1, ~1 (times 0), ~1
  i16.bias = {0};
  CHECK(forecastWith(i16) == doctest::Approx(14 + 4 + 32767.0 / 32768));

  es_test::LayerSpec tiny = i16;  // subnormal weights: the forecast is the last reading
  tiny.scales = {1e-45f};
  CHECK(forecastWith(tiny) == doctest::Approx(14).epsilon(1e-12));

  es_test::LayerSpec negative;  // a negative scale flips every weight of its unit
  negative.encoding = 2;
  negative.scales = {-0.5f};
  negative.kernel = {2, 0, 2};  // -1 and -1
  negative.bias = {0};
  CHECK(forecastWith(negative) == doctest::Approx(14 + 4 - 1));
}

TEST_CASE("readings at the limits of a double never yield a score outside [0, 1] or a NaN alarm") {
  ModelBuilder b;
  b.recent = {20, 20};
  es::EdgeModel m;
  REQUIRE(parse(b.build(), m) == EdgeModelError::None);
  es::EdgeDetector d(m);
  double t = 1.7e12;
  const double extremes[] = {DBL_MAX, -DBL_MAX, 1e300, -1e300, DBL_MIN, -DBL_TRUE_MIN, 0};
  for (int i = 0; i < 40; ++i) d.score(t += 60000, 20 + (i % 2) * 0.1);
  for (double x : extremes) {
    for (double v : {x, 20.0, 20.1, 20.0}) {
      es::EdgeScore s = d.score(t += 60000, v);
      CHECK_FALSE(s.score < 0);
      CHECK_FALSE(s.score > 1);
      if (s.anomalous) {
        CHECK(std::isfinite(s.score));
        CHECK(s.reason != nullptr);
      }
    }
  }
  CHECK(d.state().count == 40 + 4 * 7);
}

TEST_CASE("the detector warms up, then flags a spike once and names it") {
  ModelBuilder b;
  es::EdgeModel m;
  REQUIRE(parse(b.build(), m) == EdgeModelError::None);
  es::EdgeDetector d(m);
  double t = 1.7e12;
  for (int i = 0; i < 5; ++i) {
    es::EdgeScore s = d.score(t += 60000, 20 + (i % 2) * 0.1);
    CHECK(s.score == 0);  // warm-up: no scores yet
  }
  for (int i = 0; i < 60; ++i) d.score(t += 60000, 20 + (i % 2) * 0.1);
  es::EdgeScore spike = d.score(t += 60000, 80);
  CHECK(spike.anomalous);
  REQUIRE(spike.reason != nullptr);
  // Refractory: the next readings are damped.
  es::EdgeScore after = d.score(t += 60000, 20);
  CHECK_FALSE(after.anomalous);
}

TEST_CASE("a non-finite reading changes nothing") {
  ModelBuilder b;
  es::EdgeModel m;
  REQUIRE(parse(b.build(), m) == EdgeModelError::None);
  es::EdgeDetector d(m);
  d.score(1.7e12, 20);
  double count = d.state().count;
  for (double bad : {NAN, INFINITY, -INFINITY}) {
    es::EdgeScore s = d.score(1.7e12 + 1000, bad);
    CHECK(s.score == 0);
    CHECK_FALSE(s.anomalous);
    CHECK(d.state().count == count);
    d.score(bad, 1);
    CHECK(d.state().count == count);
  }
  CHECK(d.state().recent.back() == 20);
}
