#pragma once
// Residual connections: the forward adds two streams; the backward hands the same gradient to
// both, so it is an accumulate into the branch input's gradient.
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out = a + b
template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// dst += src
template <typename T>
void residual_backward(T* dst, const T* src, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

}  // namespace kvtie
