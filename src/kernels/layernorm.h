#pragma once
// LayerNorm over the last dimension, eps 1e-5, biased variance (as PyTorch).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out[N,C] = (inp - mean) * rstd * w + b;  mean[N], rstd[N] kept for the backward pass.
// Statistics in T, two passes (the mean, then the centred variance), vectorised: float is what
// PyTorch uses, and the centred form loses nothing to cancellation at these widths.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int C) {
  constexpr T kEps = T(1e-5);
  team_for(N, N * C, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* x = inp + n * C;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int i = 0; i < C; i++) sum += x[i];
      const T m = sum / static_cast<T>(C);
      T var = 0;
#pragma omp simd reduction(+ : var)
      for (int i = 0; i < C; i++) var += (x[i] - m) * (x[i] - m);
      const T s = T(1) / std::sqrt(var / static_cast<T>(C) + kEps);
      T* o = out + n * C;
#pragma omp simd
      for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
      mean[n] = m;
      rstd[n] = s;
    }
  });
}

// dinp[N,C] = LN'(dout) (overwritten);  dw[C] += Σ dout·x̂;  db[C] += Σ dout
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int C) {
  team_for(N, N * C, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* g = dout + n * C;
      const T* x = inp + n * C;
      const T m = mean[n], s = rstd[n];
      // dx̂ = g·w;  dx = s·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
      T sum_dxhat = 0, sum_dxhat_xhat = 0;
#pragma omp simd reduction(+ : sum_dxhat, sum_dxhat_xhat)
      for (int i = 0; i < C; i++) {
        const T xhat = (x[i] - m) * s;
        const T dxhat = g[i] * w[i];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat;
      }
      sum_dxhat /= C;
      sum_dxhat_xhat /= C;
      T* dx = dinp + n * C;
#pragma omp simd
      for (int i = 0; i < C; i++) {
        const T xhat = (x[i] - m) * s;
        dx[i] = s * (g[i] * w[i] - sum_dxhat - xhat * sum_dxhat_xhat);
      }
    }
  });
  // dw and db: each thread owns a range of columns and walks every row in order.
  constexpr int kCols = 64;
  team_reduce((C + kCols - 1) / kCols, N * C, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const int c0 = static_cast<int>(k) * kCols, c1 = std::min(C, c0 + kCols);
      T acc_w[kCols] = {}, acc_b[kCols] = {};
      for (int64_t n = 0; n < N; n++) {
        const T* g = dout + n * C;
        const T* x = inp + n * C;
        const T m = mean[n], s = rstd[n];
        for (int i = c0; i < c1; i++) {
          acc_w[i - c0] += g[i] * (x[i] - m) * s;
          acc_b[i - c0] += g[i];
        }
      }
      for (int i = c0; i < c1; i++) {
        dw[i] += acc_w[i - c0];
        db[i] += acc_b[i - c0];
      }
    }
  });
}

}  // namespace kvtie
