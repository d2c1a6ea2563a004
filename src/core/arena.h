#pragma once
// One aligned allocation carved into named buffers. Users declare every buffer first (plan),
// then allocate once; nothing is allocated afterwards, so a training step never touches malloc.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/aligned_block.h"

namespace kvtie {

class Arena {
 public:
  static constexpr size_t kAlign = 64;

  // Reserves room for `count` elements of T and arranges for *slot to point at them after
  // allocate(). Returns the byte offset inside the arena.
  template <typename T>
  size_t plan(T** slot, size_t count) {
    const size_t offset = bytes_;
    bytes_ += round_up(count * sizeof(T));
    slots_.push_back({reinterpret_cast<void**>(slot), offset});
    return offset;
  }

  void allocate() {
    if (bytes_ == 0) bytes_ = kAlign;
    memory_ = AlignedBlock(static_cast<int64_t>(bytes_), kAlign);
    for (const auto& s : slots_) *s.slot = memory_.data() + s.offset;
  }

  size_t bytes() const { return bytes_; }
  std::byte* data() const { return memory_.data(); }

 private:
  static size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
  struct Slot {
    void** slot;
    size_t offset;
  };
  size_t bytes_ = 0;
  std::vector<Slot> slots_;
  AlignedBlock memory_;
};

}  // namespace kvtie
