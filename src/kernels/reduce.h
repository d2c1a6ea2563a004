#pragma once
// Reductions whose summation order depends on neither the thread count nor the schedule, so that
// a seed gives bit-identical results.
#include <algorithm>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// dst[c] += Σ_n src[n, c] for src [N, C]. Threads own column ranges; each sums rows in order.
// A reduction over rows other threads wrote: fenced inside a team (see parallel.h).
template <typename T>
void accumulate_column_sums(T* dst, const T* src, int64_t N, int64_t C) {
  constexpr int64_t kCols = 64;
  team_reduce((C + kCols - 1) / kCols, N * C, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const int64_t c0 = k * kCols, c1 = std::min(C, c0 + kCols);
      T acc[kCols] = {};
      for (int64_t n = 0; n < N; n++) {
        const T* row = src + n * C;
        for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
      }
      for (int64_t c = c0; c < c1; c++) dst[c] += acc[c - c0];
    }
  });
}

// Σ x[i]² in double: 64 fixed stripes summed in order, whatever the thread count.
template <typename T>
double sum_of_squares(const T* x, int64_t n) {
  constexpr int kStripes = 64;
  double part[kStripes];
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int k = 0; k < kStripes; k++) {
    const int64_t begin = n * k / kStripes, end = n * (k + 1) / kStripes;
    double acc = 0.0;
    for (int64_t i = begin; i < end; i++) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    part[k] = acc;
  }
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}

}  // namespace kvtie
