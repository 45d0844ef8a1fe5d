#include "edge_detector.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace es {

namespace {

constexpr double kDayMs = 86400000.0;
constexpr double kPi = 3.141592653589793;
constexpr int kBasicFeatures = 7;  // the six tails and "stuck"
constexpr int kFeatures = 10;      // + forecast, forecastShift, range
enum Feature { kStuck = 6, kForecast = 7, kForecastShift = 8, kRange = 9 };
const char* const kFeatureNames[kFeatures] = {
    "spike", "shift", "change", "volatility", "seasonal", "seasonalShift",
    "stuck", "forecast", "forecastShift", "range"};

// JavaScript's Math.max/Math.min, NaN and signed zeros included: readings near the limits
// of a double overflow the statistics to infinities and NaN on both sides alike.
double jsMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}
double jsMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}

void updateEwm(Ewm& s, double value, double alpha) {
  if (s.count == 0) {
    s.mean = value;
    s.variance = 0;
  } else {
    double a = jsMax(alpha, 1 / (s.count + 1));
    double delta = value - s.mean;
    s.mean += a * delta;
    s.variance = (1 - a) * (s.variance + a * delta * delta);
  }
  if (s.count < 1e9) s.count += 1;
}

double tailSurprise(const Tail& s, const TailConfig& c, double x) {
  if (!(x > s.threshold)) return 0;
  double excess = jsMax(s.meanExcess, c.minExcess);
  return -std::log(1 - c.quantile) + (x - s.threshold) / excess;
}

void updateTail(Tail& s, const TailConfig& c, double x) {
  if (!std::isfinite(x)) return;
  double step = c.step * jsMax(s.meanExcess, c.minExcess);
  if (x > s.threshold) {
    double excess = x - s.threshold;
    double clipped = jsMin(excess, 10 * jsMax(s.meanExcess, c.minExcess));
    s.meanExcess += c.excessAlpha * (clipped - s.meanExcess);
    s.threshold += step * c.quantile;
  } else {
    s.threshold -= step * (1 - c.quantile);
    if (s.threshold < 0) s.threshold = 0;
  }
  if (s.count < 1e9) s.count += 1;
}

double floorScale(double scale, double level) {
  return jsMax(jsMax(scale, 1e-9 * jsMax(1, std::fabs(level))), 1e-12);
}

double medianOfSorted(const std::vector<double>& v) {
  size_t n = v.size();
  if (n == 0) return 0;
  size_t mid = n >> 1;
  return n % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

double dayFraction(double timeMs) {
  return std::fmod(std::fmod(timeMs, kDayMs) + kDayMs, kDayMs) / kDayMs;
}

}  // namespace

EdgeDetector::EdgeDetector(const EdgeModel& model) : EdgeDetector(model, DetectorState(model.state)) {}

EdgeDetector::EdgeDetector(const EdgeModel& model, DetectorState&& state)
    : model_(model), state_(std::move(state)) {
  input_.resize(model.windowSize + 1u);
  for (size_t l = 0; l < model.layers.size(); ++l) layerOut_[l].resize(model.layers[l].units);
  sorted_.reserve(model.config.window);
}

float EdgeDetector::floatAt(size_t offset) const {
  float f;
  std::memcpy(&f, &model_.bytes[offset], 4);
  return f;
}

double EdgeDetector::weight(const DenseLayer& layer, size_t index) const {
  switch (layer.encoding) {
    case WeightEncoding::F32: return floatAt(layer.kernelAt + 4 * index);
    case WeightEncoding::I16: {
      int16_t q;
      std::memcpy(&q, &model_.bytes[layer.kernelAt + 2 * index], 2);
      // float(scale * q), as the platform dequantises (exact product, rounded once).
      return static_cast<float>(floatAt(layer.scalesAt + 4 * (index % layer.units)) *
                                static_cast<float>(q));
    }
    case WeightEncoding::I8: {
      int8_t q = static_cast<int8_t>(model_.bytes[layer.kernelAt + index]);
      return static_cast<float>(floatAt(layer.scalesAt + 4 * (index % layer.units)) *
                                static_cast<float>(q));
    }
  }
  return 0;
}

double EdgeDetector::predict(double timeMs) {
  const EdgeModel& m = model_;
  size_t n = m.windowSize;
  const double* window = state_.recent.data() + (state_.recent.size() - n);
  double last = window[n - 1];
  for (size_t i = 0; i + 1 < n; ++i) input_[i] = (window[i] - last) / m.normStd;
  double angle = dayFraction(timeMs) * 2 * kPi;
  input_[n - 1] = std::sin(angle);
  input_[n] = std::cos(angle);
  const std::vector<double>* x = &input_;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DenseLayer& layer = m.layers[l];
    std::vector<double>& y = layerOut_[l];
    for (size_t j = 0; j < layer.units; ++j) {
      double sum = floatAt(layer.biasAt + 4 * j);
      for (size_t i = 0; i < layer.inputs; ++i) sum += (*x)[i] * weight(layer, i * layer.units + j);
      y[j] = layer.activation == Activation::Relu   ? jsMax(0, sum)
             : layer.activation == Activation::Tanh ? std::tanh(sum)
                                                    : sum;
    }
    x = &y;
  }
  return last + (*x)[0] * m.normStd;
}

double EdgeDetector::forecast(double timeMs) {
  if (state_.recent.size() < model_.windowSize || !std::isfinite(timeMs)) return NAN;
  return predict(timeMs);
}

EdgeScore EdgeDetector::score(double timeMs, double value) {
  EdgeScore out;
  if (!std::isfinite(timeMs) || !std::isfinite(value)) return out;
  const DetectorConfig& c = model_.config;
  DetectorState& s = state_;
  double features[kFeatures] = {0};
  double stats[kBasicTails] = {0};

  // --- the basic statistics (observeBasic) ---
  size_t binIndex = static_cast<size_t>(
      jsMin(c.dailyBins - 1.0, std::floor(dayFraction(timeMs) * c.dailyBins)));
  Ewm& bin = s.daily[binIndex];
  double residual = bin.count > 0 ? value - bin.mean : 0;
  double residualFast = s.dailyResidualFast + c.fastAlpha * (residual - s.dailyResidualFast);
  double step = s.hasLast ? value - s.last : 0;
  double slowStd = floorScale(std::sqrt(s.slow.variance), s.slow.mean);

  if (s.count > 0 && s.hasLast) {
    sorted_.assign(s.window.begin(), s.window.end());
    std::sort(sorted_.begin(), sorted_.end());
    double median = medianOfSorted(sorted_);
    for (double& v : sorted_) v = std::fabs(v - median);
    std::sort(sorted_.begin(), sorted_.end());
    double mad = medianOfSorted(sorted_);
    double robustScale = floorScale(jsMax(1.4826 * mad, 0.25 * slowStd), median);
    stats[kSpike] = std::fabs(value - median) / robustScale;

    double fastMean = s.fast.mean + c.fastAlpha * (value - s.fast.mean);
    stats[kShift] = std::fabs(fastMean - s.slow.mean) / slowStd;

    double typicalStep = floorScale(s.diff.mean, slowStd * 0.01);
    stats[kChange] = std::fabs(step) / typicalStep;

    double volFast = s.volFast.mean + c.volatilityAlpha * (step * step - s.volFast.mean);
    double volSlow = floorScale(s.volSlow.mean, slowStd * slowStd * 1e-4);
    stats[kVolatility] = std::fabs(std::log((volFast + volSlow * 1e-3) / volSlow));

    if (bin.count > 0) {
      double residualScale = floorScale(
          jsMax(std::sqrt(s.dailyResidual.variance), 0.05 * slowStd), s.slow.mean);
      stats[kSeasonal] = std::fabs(residual) / residualScale;
      stats[kSeasonalShift] = std::fabs(residualFast) / residualScale;
    }
    for (int k = 0; k < kBasicTails; ++k) features[k] = tailSurprise(s.tails[k], c.tail, stats[k]);

    if (step == 0) {
      double rate = jsMax(s.repeatRate.mean, c.minRepeatRate);
      if (rate < 0.5) features[kStuck] = -(s.run + 1) * std::log(rate) - std::log(20.0);
      if (features[kStuck] < 0) features[kStuck] = 0;
    }
  }
  double surprise = 0;
  for (int k = 0; k < kBasicFeatures; ++k) surprise = jsMax(surprise, features[k]);
  surprise = jsMax(0, surprise - std::log(static_cast<double>(kBasicFeatures)));

  if (s.count > 0) {
    for (int k = 0; k < kBasicTails; ++k) updateTail(s.tails[k], c.tail, stats[k]);
    updateEwm(s.diff, std::fabs(step), c.slowAlpha);
    updateEwm(s.volFast, step * step, c.volatilityAlpha);
    updateEwm(s.volSlow, step * step, c.slowAlpha);
    updateEwm(s.repeatRate, step == 0 ? 1 : 0, c.slowAlpha);
    s.run = step == 0 ? s.run + 1 : 0;
  }
  double clipped = s.slow.count > 10 ? jsMin(jsMax(value, s.slow.mean - 6 * slowStd),
                                             s.slow.mean + 6 * slowStd)
                                     : value;
  updateEwm(s.slow, clipped, c.slowAlpha);
  updateEwm(s.fast, value, c.fastAlpha);
  if (bin.count > 0) {
    updateEwm(s.dailyResidual, residual, c.slowAlpha);
    s.dailyResidualFast = residualFast;
  }
  updateEwm(bin, value, c.dailyAlpha);
  if (s.window.size() < c.window) {
    s.window.push_back(value);
    s.windowNext = static_cast<uint16_t>(s.window.size() % c.window);
  } else {
    s.window[s.windowNext] = value;
    s.windowNext = static_cast<uint16_t>((s.windowNext + 1) % c.window);
  }
  s.last = value;
  s.hasLast = true;
  s.count += 1;

  // --- the model's signals and the range (observeAdvanced) ---
  if (s.recent.size() >= model_.windowSize) {
    double predicted = predict(timeMs);
    double standardised =
        ((value - predicted) / model_.normStd - model_.residualMean) / model_.residualStd;
    double deviation = std::fabs(standardised);
    double fast = s.residualFast + c.shiftAlpha * (standardised - s.residualFast);
    double shift = std::fabs(fast) / std::sqrt(c.shiftAlpha / (2 - c.shiftAlpha));
    features[kForecast] = c.modelWeight * tailSurprise(s.forecastTail, c.modelTail, deviation);
    features[kForecastShift] = c.modelWeight * tailSurprise(s.shiftTail, c.modelTail, shift);
    updateTail(s.forecastTail, c.modelTail, jsMin(deviation, 1e6));
    updateTail(s.shiftTail, c.modelTail, jsMin(shift, 1e6));
    s.residualFast = jsMax(-1e6, jsMin(1e6, fast));
    double best = 0;
    for (int k = 0; k < kRange; ++k) best = jsMax(best, features[k]);
    surprise = jsMax(0, best - std::log(static_cast<double>(kRange)));
  }
  if (s.rangeCount >= c.warmup && s.rangeMax > s.rangeMin) {
    double margin = c.rangeMargin * (s.rangeMax - s.rangeMin);
    if (value > s.rangeMax + margin || value < s.rangeMin - margin) {
      features[kRange] = c.rangeSurprise;
      surprise = jsMax(surprise, c.rangeSurprise);
    }
  }
  if (s.rangeCount == 0) {
    s.rangeMin = value;
    s.rangeMax = value;
  } else {
    s.rangeMin = jsMin(s.rangeMin, value);
    s.rangeMax = jsMax(s.rangeMax, value);
  }
  s.rangeCount = jsMin(1e9, s.rangeCount + 1);
  s.recent.push_back(value);
  size_t keep = std::max<size_t>(model_.windowSize, c.recentCapacity);
  if (s.recent.size() > keep) s.recent.erase(s.recent.begin(), s.recent.end() - keep);

  // --- warm-up and refractory (postProcess) ---
  if (s.count <= c.warmup) return out;
  double score = 1 - std::exp(-jsMax(0, surprise) / c.surpriseScale);
  if (s.quiet > 0) {
    s.quiet -= 1;
    score *= c.refractoryDamping;
  }
  out.score = score;
  out.anomalous = score >= c.alarmScore;
  if (out.anomalous) {
    s.quiet = c.refractory;
    double bestValue = 0;
    for (int k = 0; k < kFeatures; ++k) {
      if (features[k] > bestValue) {
        bestValue = features[k];
        out.reason = kFeatureNames[k];
      }
    }
  }
  return out;
}

}  // namespace es
