#include <doctest/doctest.h>

#include "ring_buffer.hpp"

TEST_CASE("ring buffer is FIFO") {
  es::RingBuffer<int> rb(3);
  CHECK(rb.empty());
  CHECK(rb.capacity() == 3);
  CHECK(rb.push(1));
  CHECK(rb.push(2));
  CHECK(rb.size() == 2);
  CHECK(rb.front() == 1);
  CHECK(rb.at(1) == 2);
  rb.popFront();
  CHECK(rb.front() == 2);
  rb.popFront();
  CHECK(rb.empty());
  rb.popFront();  // popping an empty buffer is harmless
  CHECK(rb.size() == 0);
}

TEST_CASE("ring buffer overflow drops the oldest and counts it") {
  es::RingBuffer<int> rb(3);
  for (int i = 1; i <= 3; ++i) CHECK(rb.push(i));
  CHECK(rb.full());
  CHECK_FALSE(rb.push(4));
  CHECK_FALSE(rb.push(5));
  CHECK(rb.dropped() == 2);
  CHECK(rb.size() == 3);
  CHECK(rb.at(0) == 3);
  CHECK(rb.at(1) == 4);
  CHECK(rb.at(2) == 5);
}

TEST_CASE("ring buffer wraps around many times and keeps order") {
  es::RingBuffer<int> rb(5);
  int next = 0;
  int expect = 0;
  for (int round = 0; round < 100; ++round) {
    for (int k = 0; k < 3; ++k) rb.push(next++);
    for (int k = 0; k < 3; ++k) {
      CHECK(rb.front() == expect++);
      rb.popFront();
    }
  }
  CHECK(rb.empty());
  CHECK(rb.dropped() == 0);
  rb.push(1);
  rb.clear();
  CHECK(rb.empty());
}

TEST_CASE("ring buffer of capacity one") {
  es::RingBuffer<int> rb(0);  // clamped to one slot rather than dividing by zero
  CHECK(rb.capacity() == 1);
  rb.push(1);
  rb.push(2);
  CHECK(rb.front() == 2);
  CHECK(rb.dropped() == 1);
}
