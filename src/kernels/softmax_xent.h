#pragma once
// Softmax cross-entropy over the last dimension, with ignore index -1 (padding, unscored
// positions). The forward keeps the log-sum-exp of each row so the backward needs no second pass
// over the maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

constexpr int32_t kIgnoreIndex = -1;

// losses[n] = lse(logits[n]) − logits[n, target[n]]  (0 for ignored rows);  lse[N] kept.
template <typename T>
void softmax_xent_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t N, int V) {
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; n++) {
    const T* x = logits + n * V;
    const T mx = *std::max_element(x, x + V);
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += std::exp(static_cast<double>(x[i] - mx));
    const T l = mx + static_cast<T>(std::log(sum));
    lse[n] = l;
    losses[n] = targets[n] == kIgnoreIndex ? T(0) : l - x[targets[n]];
  }
}

// dlogits[n] = (softmax(logits[n]) − onehot(target[n])) · dloss  (0 for ignored rows).
// dlogits may alias logits.
template <typename T>
void softmax_xent_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets, T dloss, int64_t N,
                           int V) {
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; n++) {
    const T* x = logits + n * V;
    T* d = dlogits + n * V;
    if (targets[n] == kIgnoreIndex) {
      std::fill(d, d + V, T(0));
      continue;
    }
    for (int i = 0; i < V; i++) d[i] = std::exp(x[i] - lse[n]) * dloss;
    d[targets[n]] -= dloss;
  }
}

}  // namespace kvtie
