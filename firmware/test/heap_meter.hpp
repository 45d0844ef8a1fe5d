// Counts the bytes the program holds on the heap (every operator new of the test binary goes
// through the counter in heap_meter.cpp), so a test can state what a piece of the core costs
// in RAM at its peak.
#pragma once

#include <cstddef>

namespace es_test {

class HeapMeter {
 public:
  // Starts a measurement: the peak is counted from the bytes held now.
  HeapMeter();
  // Bytes held now beyond those held at the start.
  long long current() const;
  // The most bytes held at once since the start, beyond those held at the start.
  long long peak() const;

 private:
  long long base_;
};

}  // namespace es_test
