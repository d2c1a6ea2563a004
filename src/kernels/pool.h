#pragma once
// Pooling over the sequence, for sequence-level classification heads: the mean over positions,
// or the first position (a class token's output). The pooled rows [B, d] are split among a team by
// sequence, the sequence rows [B·T, d] by row: each kernel here crosses from one split to the
// other, so inside a team it starts with a barrier.
#include <algorithm>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out[B,d] = mean_t inp[B,T,d]
template <typename T>
void mean_pool_forward(T* out, const T* inp, int B, int Tn, int d) {
  team_barrier();
  team_for(B, static_cast<int64_t>(B) * Tn * d, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      T* o = out + b * d;
      for (int i = 0; i < d; i++) o[i] = 0;
      for (int t = 0; t < Tn; t++) {
        const T* x = inp + (b * Tn + t) * d;
        for (int i = 0; i < d; i++) o[i] += x[i];
      }
      for (int i = 0; i < d; i++) o[i] /= Tn;
    }
  });
}

// dinp[B,T,d] = dout[b] / T   (overwritten)
template <typename T>
void mean_pool_backward(T* dinp, const T* dout, int B, int Tn, int d) {
  team_barrier();
  const int64_t N = static_cast<int64_t>(B) * Tn;
  team_for(N, N * d, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* g = dout + (n / Tn) * d;
      for (int i = 0; i < d; i++) dinp[n * d + i] = g[i] / Tn;
    }
  });
}

// out[B,d] = inp[B,0,d]: the class token's row
template <typename T>
void first_pool_forward(T* out, const T* inp, int B, int Tn, int d) {
  team_barrier();
  team_for(B, 0, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const T* x = inp + b * Tn * d;
      std::copy(x, x + d, out + b * d);
    }
  });
}

// dinp[B,T,d] = dout[b] at t = 0, zero elsewhere   (overwritten)
template <typename T>
void first_pool_backward(T* dinp, const T* dout, int B, int Tn, int d) {
  team_barrier();
  const int64_t N = static_cast<int64_t>(B) * Tn;
  team_for(N, 0, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      T* o = dinp + n * d;
      if (n % Tn == 0) {
        const T* g = dout + (n / Tn) * d;
        std::copy(g, g + d, o);
      } else {
        std::fill(o, o + d, T(0));
      }
    }
  });
}

}  // namespace kvtie
