#include "core/aligned_block.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <utility>

namespace kvtie {
namespace {
std::atomic<int64_t> g_live_bytes{0};
}

AlignedBlock::AlignedBlock(int64_t bytes, int64_t align, bool huge_pages) {
  void* p = nullptr;
  // posix_memalign, unlike aligned_alloc, takes any size: nothing is rounded up.
  if (bytes <= 0 || posix_memalign(&p, static_cast<size_t>(align), static_cast<size_t>(bytes)) != 0)
    throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge_pages) madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);  // advice only: failure is harmless
#else
  (void)huge_pages;
#endif
  data_ = static_cast<std::byte*>(p);
  bytes_ = bytes;
  g_live_bytes += bytes;
}

AlignedBlock::~AlignedBlock() { release(); }

AlignedBlock::AlignedBlock(AlignedBlock&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

AlignedBlock& AlignedBlock::operator=(AlignedBlock&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void AlignedBlock::release() {
  if (!data_) return;
  std::free(data_);
  g_live_bytes -= bytes_;
  data_ = nullptr;
  bytes_ = 0;
}

int64_t AlignedBlock::live_bytes() { return g_live_bytes.load(); }

}  // namespace kvtie
