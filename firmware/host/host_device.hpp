// The host's side of a simulated device, shared by the virtual device (one device per
// process) and the fleet (many per process): the host clock and the simulated machine
// behind the core's sensor and actuator interfaces.
#pragma once

#include <chrono>
#include <cmath>
#include <string>

#include "device.hpp"
#include "simulator.hpp"

namespace es_host {

class HostClock : public es::Clock {
 public:
  uint32_t monotonicMs() override {
    using namespace std::chrono;
    return static_cast<uint32_t>(
        duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
  }
  // The host is assumed to keep its clock in sync (NTP via systemd-timesyncd or chrony),
  // which is what NTP gives the ESP32.
  double epochSeconds() override {
    using namespace std::chrono;
    return static_cast<double>(
               duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()) /
           1000.0;
  }
};

// Reads the simulated machine. A sensor id with a numeric suffix ("temperature_2") is a
// second probe of the same quantity: it reads that channel with its own measurement noise.
class SimulatedSensors : public es::SensorSource {
 public:
  explicit SimulatedSensors(es::Simulator& sim) : sim_(sim) {}
  bool read(const es::EntitySpec& spec, double epoch, double& out) override {
    if (std::isnan(epoch)) return false;
    if (sim_.sample(spec.id, epoch, out)) return true;
    const size_t cut = spec.id.rfind('_');
    if (cut == std::string::npos || cut + 1 == spec.id.size() ||
        spec.id.find_first_not_of("0123456789", cut + 1) != std::string::npos) {
      return false;
    }
    return sim_.sample(spec.id.substr(0, cut), epoch, out);
  }

 private:
  es::Simulator& sim_;
};

class SimulatedActuators : public es::ActuatorSink {
 public:
  explicit SimulatedActuators(es::Simulator& sim) : sim_(sim) {}
  void apply(const es::EntitySpec& spec, const es::Value& v) override {
    if (spec.id == "relay_main" && v.type == es::Value::Type::Bool) sim_.setRelay(v.b);
  }

 private:
  es::Simulator& sim_;
};

}  // namespace es_host
