#pragma once
// Exact GELU: x·Φ(x) with Φ the normal CDF (erf), as PyTorch's default.
#include <cmath>
#include <cstdint>

#include "kernels/fast_math.h"
#include "kernels/parallel.h"

namespace kvtie {

// Elementwise kernels take [rows, width]: a team splits rows, as every row kernel does.

// out = GELU(inp)   [rows, width]
template <typename T>
void gelu_forward(T* out, const T* inp, int64_t rows, int64_t width = 1) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  team_for(rows, rows * width, [&](int64_t r0, int64_t r1) {
#pragma omp simd
    for (int64_t i = r0 * width; i < r1 * width; i++) out[i] = T(0.5) * inp[i] * (T(1) + fast_erf(inp[i] * kInvSqrt2));
  });
}

// pre[N,OC] += b (in place: the backward needs the pre-activation);  out = GELU(pre). Fused so that
// the MLP's first linear layer runs its GEMM without a bias pass before it.
template <typename T>
void bias_gelu_forward(T* out, T* pre, const T* b, int64_t N, int OC) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  team_for(N, N * OC, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      T* x = pre + n * OC;
      T* y = out + n * OC;
#pragma omp simd
      for (int i = 0; i < OC; i++) {
        x[i] += b[i];
        y[i] = T(0.5) * x[i] * (T(1) + fast_erf(x[i] * kInvSqrt2));
      }
    }
  });
}

// dinp = dout · (Φ(x) + x·φ(x))   (overwritten)   [rows, width]
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t rows, int64_t width = 1) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  team_for(rows, rows * width, [&](int64_t r0, int64_t r1) {
#pragma omp simd
    for (int64_t i = r0 * width; i < r1 * width; i++) {
      const T x = inp[i];
      const T cdf = T(0.5) * (T(1) + fast_erf(x * kInvSqrt2));
      const T pdf = kInvSqrt2Pi * fast_exp(T(-0.5) * x * x);
      dinp[i] = dout[i] * (cdf + x * pdf);
    }
  });
}

}  // namespace kvtie
