#pragma once
// One aligned allocation of exactly the bytes asked for, counted process-wide. The memory figures
// that kvtie prints (the KV cache's "what it holds", the profiler's measured bytes) are checked
// against this count, not against the formula that predicted them.
#include <cstddef>
#include <cstdint>

namespace kvtie {

class AlignedBlock {
 public:
  AlignedBlock() = default;
  // `bytes` > 0, starting at a multiple of `align` (a power of two ≥ sizeof(void*));
  // std::bad_alloc when the system has no room. With `huge_pages` the range is advised for
  // transparent huge pages.
  AlignedBlock(int64_t bytes, int64_t align, bool huge_pages = false);
  ~AlignedBlock();
  AlignedBlock(AlignedBlock&& o) noexcept;
  AlignedBlock& operator=(AlignedBlock&& o) noexcept;
  AlignedBlock(const AlignedBlock&) = delete;
  AlignedBlock& operator=(const AlignedBlock&) = delete;

  std::byte* data() const { return data_; }
  int64_t bytes() const { return bytes_; }  // exactly what the allocator was asked for

  // Bytes of all AlignedBlocks alive now, in this process.
  static int64_t live_bytes();

 private:
  void release();
  std::byte* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace kvtie
