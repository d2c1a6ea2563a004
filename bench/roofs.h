#pragma once
// What the benchmarks that compare a kernel with the machine share: their timing, and the
// machine's two roofs, the read bandwidth and the FP32 (SGEMM) rate. Both are measured again at
// every point, because on a shared machine they move with the neighbours.
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

// The rate of back-to-back calls to f() (each returns the work it did: bytes, FLOPs) over a window
// lasting at least `seconds`, at least one call: the same statistic as a timed step that long.
template <class F>
double window_rate(F&& f, double seconds) {
  const auto t = Clock::now();
  double work = 0;
  do work += static_cast<double>(f());
  while (since(t) < seconds);
  return work / since(t);
}

// One threaded sum over a buffer far larger than the caches; returns the bytes read. Each thread
// reads its share as 4 streams at once, each a few lines off a page boundary from the others, and
// asks for the lines 1 KiB ahead of each stream, as the decode kernels ask for their rows: on this
// kind of machine a plain read of one stream per thread gets ~30% less, of 8 streams spaced by a
// power of two ~25% less (51 against 64–68 GB/s), and a roofline from them is too low: the
// decode kernels beat it.
inline int64_t read_pass() {
  constexpr int kStreams = 4, kLanes = 16, kAhead = 1024 / 4, kSkew = 16 * 5;  // floats
  static const std::vector<float> buf(size_t{256} << 20 >> 2, 1.0f);  // 256 MiB
  float total = 0;
  int64_t bytes = 0;
#pragma omp parallel reduction(+ : total, bytes)
  {
    const int64_t share = static_cast<int64_t>(buf.size()) / omp_get_num_threads();
    const int64_t len = (share - kStreams * kSkew) / kStreams / kLanes * kLanes;
    const float* base = buf.data() + share * omp_get_thread_num();
    float acc[kStreams][kLanes] = {};
    for (int64_t i = 0; i < len; i += kLanes)
      for (int s = 0; s < kStreams; s++) {
        const float* p = base + s * (len + kSkew) + i;
        __builtin_prefetch(p + kAhead);
#pragma omp simd
        for (int l = 0; l < kLanes; l++) acc[s][l] += p[l];
      }
    for (auto& a : acc)
      for (float x : a) total += x;
    bytes += len * kStreams * 4;
  }
  if (total < 0) fmt::print("");  // keep the sum alive
  return bytes;
}

// Read bandwidth now: the best of 3 passes.
inline double read_bandwidth_gbs() {
  int64_t bytes = 0;
  const double s = best_seconds([&] { bytes = read_pass(); }, 0.0);
  return static_cast<double>(bytes) / s / 1e9;
}

// Read bandwidth over a window of passes lasting at least `seconds`, for a roofline of a step.
inline double read_window_gbs(double seconds) { return window_rate(read_pass, seconds) / 1e9; }

// One 512³ OpenBLAS SGEMM (all threads); returns its FLOPs.
inline double sgemm_call() {
  constexpr int n = 512;
  static std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  return 2.0 * n * n * n;
}

// The FP32 rate of this machine now: the best of a few SGEMMs (after one that starts the threads),
// the compute roof of the roofline.
inline double sgemm_gflops() {
  double flops = sgemm_call();
  return flops / best_seconds([&] { flops = sgemm_call(); }, 0.02) / 1e9;
}

// The FP32 rate over a window of SGEMMs lasting at least `seconds`, for a roofline of a step.
inline double sgemm_window_gflops(double seconds) { return window_rate(sgemm_call, seconds) / 1e9; }

}  // namespace kvtie::bench
