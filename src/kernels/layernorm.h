#pragma once
// LayerNorm over the last dimension, eps 1e-5, biased variance (as PyTorch).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out[N,C] = (inp - mean) * rstd * w + b;  mean[N], rstd[N] kept for the backward pass.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int C) {
  constexpr double kEps = 1e-5;
#pragma omp parallel for schedule(static) if (worth_threads(N * C))
  for (int64_t n = 0; n < N; n++) {
    const T* x = inp + n * C;
    double m = 0.0;
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    double v = 0.0;
    for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
    v /= C;
    const double s = 1.0 / std::sqrt(v + kEps);
    T* o = out + n * C;
    for (int i = 0; i < C; i++) o[i] = static_cast<T>((x[i] - m) * s) * w[i] + b[i];
    mean[n] = static_cast<T>(m);
    rstd[n] = static_cast<T>(s);
  }
}

// dinp[N,C] = LN'(dout) (overwritten);  dw[C] += Σ dout·x̂;  db[C] += Σ dout
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int C) {
#pragma omp parallel for schedule(static) if (worth_threads(N * C))
  for (int64_t n = 0; n < N; n++) {
    const T* g = dout + n * C;
    const T* x = inp + n * C;
    const T m = mean[n], s = rstd[n];
    // dx̂ = g·w;  dx = s·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
    T sum_dxhat = 0, sum_dxhat_xhat = 0;
    for (int i = 0; i < C; i++) {
      const T xhat = (x[i] - m) * s;
      const T dxhat = g[i] * w[i];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * xhat;
    }
    sum_dxhat /= C;
    sum_dxhat_xhat /= C;
    T* dx = dinp + n * C;
    for (int i = 0; i < C; i++) {
      const T xhat = (x[i] - m) * s;
      dx[i] = s * (g[i] * w[i] - sum_dxhat - xhat * sum_dxhat_xhat);
    }
  }
  constexpr int kCols = 64;
#pragma omp parallel for schedule(static) if (worth_threads(N * C))
  for (int c0 = 0; c0 < C; c0 += kCols) {
    const int c1 = std::min(C, c0 + kCols);
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
}

}  // namespace kvtie
