#include "heap_meter.hpp"

#include <cstdlib>
#include <new>

namespace {

// Every block carries its size in front of it; 16 bytes keep the block itself aligned as
// malloc's own blocks are.
constexpr std::size_t kHeader = 16;
long long held = 0;
long long highest = 0;

void* allocate(std::size_t n) {
  void* block = std::malloc(n + kHeader);
  if (!block) return nullptr;
  *static_cast<std::size_t*>(block) = n;
  held += static_cast<long long>(n);
  if (held > highest) highest = held;
  return static_cast<char*>(block) + kHeader;
}

void release(void* p) {
  if (!p) return;
  void* block = static_cast<char*>(p) - kHeader;
  held -= static_cast<long long>(*static_cast<std::size_t*>(block));
  std::free(block);
}

void* allocateOrThrow(std::size_t n) {
  void* p = allocate(n);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return allocateOrThrow(n); }
void* operator new[](std::size_t n) { return allocateOrThrow(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }

namespace es_test {

HeapMeter::HeapMeter() : base_(held) { highest = held; }
long long HeapMeter::current() const { return held - base_; }
long long HeapMeter::peak() const { return highest - base_; }

}  // namespace es_test
