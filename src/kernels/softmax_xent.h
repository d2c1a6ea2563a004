#pragma once
// Softmax cross-entropy over the last dimension, with ignore index -1 (padding, unscored
// positions). The forward keeps the log-sum-exp of each row so the backward needs no second pass
// over the maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/fast_math.h"
#include "kernels/parallel.h"

namespace kvtie {

constexpr int32_t kIgnoreIndex = -1;

// losses[n] = lse(logits[n]) − logits[n, target[n]]  (0 for ignored rows);  lse[N] kept.
template <typename T>
void softmax_xent_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t N, int V) {
  team_for(N, N * V, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* x = logits + n * V;
      T mx = x[0];
#pragma omp simd reduction(max : mx)
      for (int i = 0; i < V; i++) mx = std::max(mx, x[i]);
      // The simd reduction keeps one partial sum per vector lane: V/16 terms each in float.
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int i = 0; i < V; i++) sum += fast_exp(x[i] - mx);
      const T l = mx + static_cast<T>(std::log(sum));
      lse[n] = l;
      losses[n] = targets[n] == kIgnoreIndex ? T(0) : l - x[targets[n]];
    }
  });
}

// dlogits[n] = (softmax(logits[n]) − onehot(target[n])) · dloss  (0 for ignored rows).
// dlogits may alias logits.
template <typename T>
void softmax_xent_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets, T dloss, int64_t N,
                           int V) {
  team_for(N, N * V, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* x = logits + n * V;
      T* d = dlogits + n * V;
      if (targets[n] == kIgnoreIndex) {
        std::fill(d, d + V, T(0));
        continue;
      }
      const T l = lse[n];
#pragma omp simd
      for (int i = 0; i < V; i++) d[i] = fast_exp(x[i] - l) * dloss;
      d[targets[n]] -= dloss;
    }
  });
}

}  // namespace kvtie
