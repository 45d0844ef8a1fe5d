// The platform's advanced anomaly detector (shared/ml/advanced-detector.ts and
// basic-detector.ts), run on the device from an edge model. Every operation follows the
// TypeScript in the same order and in double precision, so both give the same scores on
// the same readings (test/edge-parity.test.ts holds them to 1e-4). On an ESP32 doubles are
// emulated in software; a reading costs well under a millisecond at the sizes allowed.
#pragma once

#include <string>
#include <vector>

#include "edge_model.hpp"

namespace es {

struct EdgeScore {
  double score = 0;       // in [0, 1)
  bool anomalous = false;  // at or above the alarm score, after warm-up and refractory
  const char* reason = nullptr;  // the strongest signal when anomalous, else nullptr
};

class EdgeDetector {
 public:
  // Continues from the model's statistics. The model must outlive the detector.
  explicit EdgeDetector(const EdgeModel& model);
  // Continues from `state` (the model's statistics, moved here rather than copied).
  EdgeDetector(const EdgeModel& model, DetectorState&& state);

  // timeMs: epoch milliseconds; value must be finite (a NaN would poison the statistics),
  // otherwise nothing changes and the score is 0.
  EdgeScore score(double timeMs, double value);

  // The network's forecast of a reading at timeMs from the recent readings (needs at least
  // the model's window of them; NaN otherwise).
  double forecast(double timeMs);

  const EdgeModel& model() const { return model_; }
  const DetectorState& state() const { return state_; }

 private:
  double predict(double timeMs);
  double weight(const DenseLayer& layer, size_t index) const;
  float floatAt(size_t offset) const;

  const EdgeModel& model_;
  DetectorState state_;
  std::vector<double> input_;
  std::vector<double> layerOut_[kEdgeMaxLayers];
  std::vector<double> sorted_;
};

}  // namespace es
