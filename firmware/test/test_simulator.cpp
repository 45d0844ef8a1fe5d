#include <doctest/doctest.h>

#include <cmath>

#include "simulator.hpp"

namespace {
double mean(es::Simulator& s, const char* e, double from, int n, double step) {
  double sum = 0, v = 0;
  for (int i = 0; i < n; ++i) {
    REQUIRE(s.sample(e, from + i * step, v));
    sum += v;
  }
  return sum / n;
}
}  // namespace

TEST_CASE("simulated sensors produce finite, plausible values") {
  es::SplitMix rng(11);
  const double t0 = 1700000000;
  es::Simulator sim(rng, t0);
  double v;
  CHECK_FALSE(sim.sample("unknown", t0, v));
  for (int i = 0; i < 2000; ++i) {
    for (const char* e : {"temperature", "pressure", "vibration"}) {
      REQUIRE(sim.sample(e, t0 + i * 5.0, v));
      CHECK(std::isfinite(v));
      CHECK(v > -10);
      CHECK(v < 60);
    }
  }
}

TEST_CASE("vibration trends up as the component wears") {
  es::SplitMix rng(5);
  const double t0 = 1700000000;
  es::Simulator sim(rng, t0);
  sim.setDegradationPerHour(0.1);
  const double early = mean(sim, "vibration", t0 + 600, 200, 1);
  const double late = mean(sim, "vibration", t0 + 48 * 3600, 200, 1);
  CHECK(late > early + 5);
}

TEST_CASE("the relay drives the machine's temperature with a lag") {
  es::SplitMix rng(6);
  const double t0 = 1700000000;
  es::Simulator sim(rng, t0);
  const double running = mean(sim, "temperature", t0 + 1000, 100, 1);
  sim.setRelay(false);
  const double stopped = mean(sim, "temperature", t0 + 3000, 100, 1);
  CHECK(running - stopped > 8);
}

TEST_CASE("faults: stuck freezes, drift climbs, spike jumps") {
  const double t0 = 1700000000;
  {
    es::SplitMix rng(1);
    es::Simulator sim(rng, t0);
    sim.setFault(es::FaultKind::Stuck, t0 + 10, "temperature");
    double before, a, b;
    sim.sample("temperature", t0 + 9, before);
    sim.sample("temperature", t0 + 11, a);
    sim.sample("temperature", t0 + 500, b);
    CHECK(a == before);
    CHECK(b == before);
    double p1, p2;
    sim.sample("pressure", t0 + 11, p1);
    sim.sample("pressure", t0 + 12, p2);
    CHECK(p1 != p2);  // other channels unaffected
  }
  {
    es::SplitMix rng(2);
    es::Simulator sim(rng, t0);
    sim.setFault(es::FaultKind::Drift, t0, "temperature");
    const double first = mean(sim, "temperature", t0, 30, 1);
    const double later = mean(sim, "temperature", t0 + 1800, 30, 1);
    CHECK(later - first > 10);
  }
  {
    es::SplitMix rng(3);
    es::Simulator sim(rng, t0);
    sim.setFault(es::FaultKind::Spike, t0, "pressure");
    double v, prev = 0;
    int jumps = 0;
    sim.sample("pressure", t0, prev);
    for (int i = 1; i < 500; ++i) {
      sim.sample("pressure", t0 + i, v);
      if (std::fabs(v - prev) > 1.5) ++jumps;
      prev = v;
    }
    CHECK(jumps > 10);
  }
  es::FaultKind k;
  CHECK(es::parseFaultKind("spike", k));
  CHECK(k == es::FaultKind::Spike);
  CHECK_FALSE(es::parseFaultKind("explode", k));
}
