#pragma once
// What the benchmarks that compare a kernel with the machine share: their timing, and the
// machine's two roofs, the read bandwidth and the FP32 (SGEMM) rate. Both are measured again before every point, because on a
// shared machine they move with the neighbours.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "kernels/gemm.h"

namespace kvtie::bench {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The shortest of calls to f() adding up to at least `seconds` (and at least 3): on a shared machine
// the fastest call is the one the neighbours disturbed least.
template <class F>
double best_seconds(F&& f, double seconds = 0.3) {
  double best = 1e30, spent = 0;
  for (int rep = 0; rep < 3 || spent < seconds; rep++) {
    const auto t = Clock::now();
    f();
    const double s = since(t);
    best = std::min(best, s), spent += s;
  }
  return best;
}

// Read bandwidth: the best of several threaded sums over a buffer far larger than the caches. Each
// thread reads its share as 8 streams at once, as the decode kernel reads the K and V rows of
// several heads: on this machine one stream per thread leaves ~20% of the bandwidth unused, and a
// roofline from it would be too low. Measured again before every point, so that the roofline
// follows the machine's bandwidth as neighbours come and go.
inline double read_bandwidth_gbs() {
  constexpr int kStreams = 8, kLanes = 16;
  static const std::vector<float> buf(size_t{256} << 20 >> 2, 1.0f);  // 256 MiB
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    const auto t = Clock::now();
    float total = 0;
    int64_t bytes = 0;
#pragma omp parallel reduction(+ : total, bytes)
    {
      const int64_t share = static_cast<int64_t>(buf.size()) / omp_get_num_threads();
      const int64_t len = share / kStreams / kLanes * kLanes;
      const float* base = buf.data() + share * omp_get_thread_num();
      float acc[kStreams][kLanes] = {};
      for (int64_t i = 0; i < len; i += kLanes)
        for (int s = 0; s < kStreams; s++) {
          const float* p = base + s * len + i;
#pragma omp simd
          for (int l = 0; l < kLanes; l++) acc[s][l] += p[l];
        }
      for (auto& a : acc)
        for (float x : a) total += x;
      bytes += len * kStreams * 4;
    }
    const double s = since(t);
    if (total < 0) fmt::print("");  // keep the sum alive
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

// The FP32 rate of this machine now: the best of a few 512³ OpenBLAS SGEMMs (all threads), the
// compute roof of the roofline.
inline double sgemm_gflops() {
  constexpr int n = 512;
  static std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  double best = 0;
  for (int rep = 0; rep < 8; rep++) {
    const auto t = Clock::now();
    gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    if (rep > 0) best = std::max(best, 2.0 * n * n * n / since(t) / 1e9);  // the first call starts threads
  }
  return best;
}

}  // namespace kvtie::bench
