#pragma once
// When a kernel is worth threads. A parallel region costs a fork and a barrier — microseconds
// when cores are free, a scheduler time slice when they are not — so loops over fewer elements
// than this run on the calling thread. Every kernel sums in an order that does not depend on the
// thread count, so this choice never changes a result.
#include <cstdint>

namespace kvtie {

constexpr int64_t kParallelMinWork = int64_t{1} << 15;

inline bool worth_threads(int64_t work) { return work >= kParallelMinWork; }

}  // namespace kvtie
