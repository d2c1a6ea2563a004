#pragma once
// Exact GELU: x·Φ(x) with Φ the normal CDF (erf), as PyTorch's default.
#include <cmath>
#include <cstdint>

#include "kernels/fast_math.h"
#include "kernels/parallel.h"

namespace kvtie {

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
#pragma omp parallel for simd schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; i++) out[i] = T(0.5) * inp[i] * (T(1) + fast_erf(inp[i] * kInvSqrt2));
}

// pre[N,OC] += b (in place: the backward needs the pre-activation);  out = GELU(pre). Fused so that
// the MLP's first linear layer runs its GEMM without a bias pass before it.
template <typename T>
void bias_gelu_forward(T* out, T* pre, const T* b, int64_t N, int OC) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
#pragma omp parallel for schedule(static) if (worth_threads(N * OC))
  for (int64_t n = 0; n < N; n++) {
    T* x = pre + n * OC;
    T* y = out + n * OC;
#pragma omp simd
    for (int i = 0; i < OC; i++) {
      x[i] += b[i];
      y[i] = T(0.5) * x[i] * (T(1) + fast_erf(x[i] * kInvSqrt2));
    }
  }
}

// dinp = dout · (Φ(x) + x·φ(x))   (overwritten)
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
#pragma omp parallel for simd schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; i++) {
    const T x = inp[i];
    const T cdf = T(0.5) * (T(1) + fast_erf(x * kInvSqrt2));
    const T pdf = kInvSqrt2Pi * fast_exp(T(-0.5) * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

}  // namespace kvtie
