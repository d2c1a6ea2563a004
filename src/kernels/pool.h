#pragma once
// Pooling over the sequence, for sequence-level classification heads: the mean over positions,
// or the first position (a class token's output).
#include <algorithm>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out[B,d] = mean_t inp[B,T,d]
template <typename T>
void mean_pool_forward(T* out, const T* inp, int B, int Tn, int d) {
#pragma omp parallel for schedule(static) if (worth_threads(static_cast<int64_t>(B) * Tn * d))
  for (int b = 0; b < B; b++) {
    T* o = out + static_cast<int64_t>(b) * d;
    for (int i = 0; i < d; i++) o[i] = 0;
    for (int t = 0; t < Tn; t++) {
      const T* x = inp + (static_cast<int64_t>(b) * Tn + t) * d;
      for (int i = 0; i < d; i++) o[i] += x[i];
    }
    for (int i = 0; i < d; i++) o[i] /= Tn;
  }
}

// dinp[B,T,d] = dout[b] / T   (overwritten)
template <typename T>
void mean_pool_backward(T* dinp, const T* dout, int B, int Tn, int d) {
#pragma omp parallel for schedule(static) if (worth_threads(static_cast<int64_t>(B) * Tn * d))
  for (int64_t n = 0; n < static_cast<int64_t>(B) * Tn; n++) {
    const T* g = dout + (n / Tn) * d;
    for (int i = 0; i < d; i++) dinp[n * d + i] = g[i] / Tn;
  }
}

// out[B,d] = inp[B,0,d]: the class token's row
template <typename T>
void first_pool_forward(T* out, const T* inp, int B, int Tn, int d) {
  for (int b = 0; b < B; b++) {
    const T* x = inp + static_cast<int64_t>(b) * Tn * d;
    std::copy(x, x + d, out + static_cast<int64_t>(b) * d);
  }
}

// dinp[B,T,d] = dout[b] at t = 0, zero elsewhere   (overwritten)
template <typename T>
void first_pool_backward(T* dinp, const T* dout, int B, int Tn, int d) {
  std::fill(dinp, dinp + static_cast<int64_t>(B) * Tn * d, T(0));
  for (int b = 0; b < B; b++) {
    const T* g = dout + static_cast<int64_t>(b) * d;
    std::copy(g, g + d, dinp + static_cast<int64_t>(b) * Tn * d);
  }
}

}  // namespace kvtie
