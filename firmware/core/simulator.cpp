#include "simulator.hpp"

#include <cmath>

namespace es {

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

bool parseFaultKind(const std::string& text, FaultKind& out) {
  if (text == "none") out = FaultKind::None;
  else if (text == "spike") out = FaultKind::Spike;
  else if (text == "drift") out = FaultKind::Drift;
  else if (text == "stuck") out = FaultKind::Stuck;
  else return false;
  return true;
}

const char* faultKindName(FaultKind k) {
  switch (k) {
    case FaultKind::None: return "none";
    case FaultKind::Spike: return "spike";
    case FaultKind::Drift: return "drift";
    case FaultKind::Stuck: return "stuck";
  }
  return "none";
}

Simulator::Simulator(Random& rng, double startEpoch) : rng_(rng), start_(startEpoch) {
  //          base  relay  daily  noise  walk  spike  drift/min
  temperature_ = {21.0, 14.0, 3.0, 0.08, 0.4, 18.0, 0.5};
  pressure_ = {1.0, 5.2, 0.12, 0.015, 0.05, 3.5, 0.08};
  vibration_ = {0.15, 1.9, 0.05, 0.06, 0.08, 6.0, 0.2};
}

void Simulator::setFault(FaultKind kind, double faultStartEpoch, const std::string& entity) {
  fault_ = kind;
  faultStart_ = faultStartEpoch;
  faultEntity_ = entity;
}

Simulator::Channel* Simulator::channel(const std::string& entity) {
  if (entity == "temperature") return &temperature_;
  if (entity == "pressure") return &pressure_;
  if (entity == "vibration") return &vibration_;
  return nullptr;
}

double Simulator::uniform() { return (static_cast<double>(rng_.nextU32()) + 1.0) / 4294967296.0; }

double Simulator::gaussian() {
  const double u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

bool Simulator::sample(const std::string& entity, double epoch, double& out) {
  Channel* c = channel(entity);
  if (!c) return false;
  const bool fault = faultActive(epoch) && entity == faultEntity_;
  if (fault && fault_ == FaultKind::Stuck && c->started) {
    out = c->last;
    return true;
  }

  const double target = relayOn_ ? 1.0 : 0.0;
  // A device booting next to a machine finds it in steady state, not mid warm-up.
  if (!c->started) c->lag = target;
  const double dt = c->started ? std::fmax(0.0, epoch - c->lastEpoch) : 0.0;
  c->lastEpoch = epoch;
  c->started = true;

  // The machine warms up and cools down with a time constant of about two minutes
  // rather than stepping the instant the relay switches.
  const double tau = 120.0;
  c->lag += (target - c->lag) * (1.0 - std::exp(-dt / tau));

  // Ornstein-Uhlenbeck: slowly wandering, mean-reverting (10 min), like real ambient
  // conditions, so consecutive readings are correlated instead of independent noise.
  const double theta = 600.0;
  const double decay = std::exp(-dt / theta);
  c->ou = c->ou * decay + c->walk * std::sqrt(1.0 - decay * decay) * gaussian();

  // Warmest mid-afternoon (15:00 UTC), coolest around 03:00.
  const double dayFraction = std::fmod(epoch, 86400.0) / 86400.0;
  const double cycle = std::sin(2.0 * kPi * (dayFraction - 0.375));

  double v = c->base + c->relayDelta * c->lag + c->daily * cycle + c->ou + c->noise * gaussian();

  if (c == &vibration_) {
    // Bearing wear grows with running hours and accelerates as it progresses; a stopped
    // machine barely vibrates, so wear shows in proportion to the relay lag.
    const double hours = std::fmax(0.0, epoch - start_) / 3600.0;
    v += wearPerHour_ * hours * (1.0 + hours / 48.0) * c->lag;
    if (v < 0.01) v = 0.01;
  }
  if (c == &pressure_ && v < 0) v = 0;

  if (fault) {
    if (fault_ == FaultKind::Spike && uniform() < 0.08) {
      v += (uniform() < 0.5 ? -0.5 : 1.0) * c->spike * (0.7 + 0.6 * uniform());
    } else if (fault_ == FaultKind::Drift) {
      v += c->driftPerMin * (epoch - faultStart_) / 60.0;
    }
  }
  // Real transducers resolve about three decimals; more digits would only be noise on
  // the wire.
  v = std::round(v * 1000.0) / 1000.0;
  c->last = v;
  out = v;
  return true;
}

}  // namespace es
