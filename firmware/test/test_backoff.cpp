#include <doctest/doctest.h>

#include "backoff.hpp"
#include "fakes.hpp"
#include "scheduler.hpp"

TEST_CASE("backoff bound doubles up to the cap") {
  es_test::ScriptedRandom rng;
  rng.values = {0xFFFFFFFFu};
  es::Backoff b(100, 1000, rng);
  CHECK(b.currentBoundMs() == 100);
  std::vector<uint32_t> bounds;
  for (int i = 0; i < 7; ++i) {
    bounds.push_back(b.currentBoundMs());
    b.nextDelayMs();
  }
  CHECK(bounds == std::vector<uint32_t>{100, 200, 400, 800, 1000, 1000, 1000});
  b.reset();
  CHECK(b.currentBoundMs() == 100);
  CHECK(b.attempts() == 0);
}

TEST_CASE("full jitter draws uniformly from zero to the bound") {
  es_test::ScriptedRandom rng;
  rng.values = {0};
  es::Backoff zero(100, 1000, rng);
  CHECK(zero.nextDelayMs() == 0);

  es_test::ScriptedRandom top;
  top.values = {400};  // 400 % (400 + 1) at the third attempt
  es::Backoff b(100, 1000, top);
  b.nextDelayMs();
  b.nextDelayMs();
  CHECK(b.nextDelayMs() == 400);

  es::SplitMix real(7);
  es::Backoff j(100, 1000, real);
  for (int i = 0; i < 4; ++i) j.nextDelayMs();
  double sum = 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    // stay at the cap: bound 1000
    const uint32_t d = j.nextDelayMs();
    CHECK(d <= 1000);
    sum += d;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(sum / 2000 == doctest::Approx(500).epsilon(0.08));
  CHECK(lo < 50);
  CHECK(hi > 950);
}

TEST_CASE("backoff never overflows after many attempts") {
  es::SplitMix rng(1);
  es::Backoff b(1000, 60000, rng);
  for (int i = 0; i < 500; ++i) CHECK(b.nextDelayMs() <= 60000);
  CHECK(b.currentBoundMs() == 60000);
}

TEST_CASE("scheduler runs tasks on their period without catch-up bursts") {
  es::Scheduler s;
  int a = 0, b = 0;
  s.every(100, 0, [&] { ++a; });
  s.every(250, 0, [&] { ++b; }, 250);
  s.tick(0);
  CHECK(a == 1);
  CHECK(b == 0);
  CHECK(s.msUntilNext(0) == 100);
  s.tick(99);
  CHECK(a == 1);
  s.tick(100);
  CHECK(a == 2);
  s.tick(250);
  CHECK(a == 3);
  CHECK(b == 1);
  // A long stall runs each task once, then re-aligns to the current time.
  s.tick(5000);
  CHECK(a == 4);
  CHECK(b == 2);
  s.tick(5050);
  CHECK(a == 4);
  s.tick(5100);
  CHECK(a == 5);
}

TEST_CASE("scheduler survives the 32-bit millisecond wrap") {
  es::Scheduler s;
  int n = 0;
  const uint32_t start = UINT32_MAX - 150;
  s.every(100, start, [&] { ++n; });
  s.tick(start);
  s.tick(start + 100);
  s.tick(start + 200);  // wrapped
  CHECK(n == 3);
}
