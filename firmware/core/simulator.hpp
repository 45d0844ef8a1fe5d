// Simulated machine for the virtual device (and for an ESP32 with no sensors wired):
// a motor-driven compressor whose temperature and pressure follow a daily cycle, react
// to the main relay, carry correlated and white noise, and whose vibration slowly rises
// as a bearing wears. Faults can be injected to exercise anomaly detection.
#pragma once

#include <string>

#include "interfaces.hpp"

namespace es {

enum class FaultKind { None, Spike, Drift, Stuck };

bool parseFaultKind(const std::string& text, FaultKind& out);
const char* faultKindName(FaultKind k);

class Simulator {
 public:
  // startEpoch anchors wear (hours of operation) and fault timing.
  Simulator(Random& rng, double startEpoch);

  // From faultStartEpoch on, entity's readings are corrupted by kind.
  void setFault(FaultKind kind, double faultStartEpoch, const std::string& entity);
  // Extra wear per hour of operation in mm/s (vibration).
  void setDegradationPerHour(double mmPerSecondPerHour) { wearPerHour_ = mmPerSecondPerHour; }
  void setRelay(bool on) { relayOn_ = on; }
  bool faultActive(double epoch) const { return fault_ != FaultKind::None && epoch >= faultStart_; }

  // Produces the reading of a simulated sensor ("temperature", "pressure", "vibration") at
  // epoch. Returns false for an entity it does not model.
  bool sample(const std::string& entity, double epoch, double& out);

 private:
  struct Channel {
    double base;        // value at the daily mean with the relay off
    double relayDelta;  // added (after a first-order lag) while the relay is on
    double daily;       // amplitude of the 24 h cycle
    double noise;       // white measurement noise, 1 sigma
    double walk;        // 1 sigma of the slow Ornstein-Uhlenbeck component
    double spike;       // typical spike height
    double driftPerMin; // drift fault slope
    double lag = 0;     // current lagged relay contribution (0..1)
    double ou = 0;      // current slow component
    double lastEpoch = 0;
    double last = 0;    // last reading, frozen by the stuck fault
    bool started = false;
  };
  Channel* channel(const std::string& entity);
  double uniform();   // (0, 1]
  double gaussian();  // standard normal

  Random& rng_;
  double start_;
  bool relayOn_ = true;
  double wearPerHour_ = 0.05;
  FaultKind fault_ = FaultKind::None;
  double faultStart_ = 0;
  std::string faultEntity_;
  Channel temperature_;
  Channel pressure_;
  Channel vibration_;
};

}  // namespace es
