#pragma once
// The order in which a decode kernel reads an item's tiles: its positions split into runs, a tile
// of each in turn. A thread then has that many streams of the cache in flight instead of one. On
// the AVX-512 machine one stream per thread read at ~45 GB/s where four read 60–75, and the K=V
// fp32 attention, one stream per item, ran 1.19–1.24× faster from memory in four runs, asking
// for the tile it reads next as it reads one (bench/RESULTS.md, 2026-12-07, late). Each run is
// read forwards; the online softmax takes its tiles in any order, and the order depends on
// nothing but the item, so the results do not depend on the thread count.
#include <algorithm>
#include <cstdint>

#include "kernels/prefetch.h"

namespace kvtie {

// Two runs read 1.07× slower than four, eight as fast as four.
inline constexpr int kReadStreams = 4;

class TileOrder {
 public:
  // The tiles of `tile` positions over [begin, end); only the last may be shorter.
  TileOrder(int begin, int end, int tile, int runs = kReadStreams)
      : begin_(begin),
        tile_(tile),
        tiles_((end - begin + tile - 1) / tile),
        runs_(std::clamp(tiles_, 1, runs)),
        per_run_(tiles_ / runs_),
        longer_(tiles_ % runs_) {}

  // An index rather than an iterator: over a range-for iterator GCC 12 compiled a kernel's tile
  // loop 1.45× slower, in the same order.
  int size() const { return tiles_; }
  // The first position of the k-th tile read. Rounds 0 … per_run − 1 read a tile of every run in
  // turn; the last round reads the last tiles of the runs that are a tile longer (the first ones).
  int operator[](int k) const {
    const int all = per_run_ * runs_;
    const int round = k < all ? k / runs_ : per_run_, run = k < all ? k % runs_ : k - all;
    return begin_ + tile_ * (run_start(run) + round);
  }

  // Asks for the first rows of every run but the first, which the kernels ask for as they start an
  // item: `keys`, `values` (null: K=V) are position 0's rows, `row_bytes` apart.
  void ask_run_starts(const uint8_t* keys, const uint8_t* values, int64_t row_bytes) const {
    for (int r = 1; r < runs_; r++) {
      const int64_t at = static_cast<int64_t>(begin_ + tile_ * run_start(r)) * row_bytes;
      prefetch_bytes(keys + at, kCacheAhead);
      if (values) prefetch_bytes(values + at, kValueAhead);
    }
  }

 private:
  int run_start(int r) const { return r * per_run_ + std::min(r, longer_); }  // in tiles
  int begin_, tile_, tiles_, runs_, per_run_, longer_;
};

}  // namespace kvtie
