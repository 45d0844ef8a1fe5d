// Fixed-capacity FIFO for readings taken while they cannot be sent yet. Memory is
// allocated once, up front, because an ESP32 that fragments its heap during a long
// outage is worse off than one that forgets its oldest readings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace es {

template <typename T>
class RingBuffer {
 public:
  explicit RingBuffer(size_t capacity) : slots_(capacity > 0 ? capacity : 1) {}

  size_t capacity() const { return slots_.size(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == slots_.size(); }
  // Items evicted to make room since construction.
  uint64_t dropped() const { return dropped_; }

  // Appends item. When full, the oldest item is evicted (and counted) so that the newest
  // data, which matters most after an outage, is kept. Returns false when it evicted.
  bool push(const T& item) {
    bool evicted = false;
    if (full()) {
      head_ = (head_ + 1) % slots_.size();
      --size_;
      ++dropped_;
      evicted = true;
    }
    slots_[(head_ + size_) % slots_.size()] = item;
    ++size_;
    return !evicted;
  }

  // i-th oldest item; i must be < size().
  const T& at(size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
  const T& front() const { return at(0); }

  void popFront() {
    if (size_ == 0) return;
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }

  void clear() {
    head_ = 0;
    size_ = 0;
  }

 private:
  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace es
