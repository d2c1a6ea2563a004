#pragma once
// Residual connections: the forward adds two streams; the backward hands the same gradient to
// both, so it is an accumulate into the branch input's gradient.
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// Elementwise kernels take [rows, width]: a team splits rows, as every row kernel does, so that a
// thread only ever reads the rows it wrote itself.

// out = a + b   [rows, width]
template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t rows, int64_t width = 1) {
  team_for(rows, rows * width, [&](int64_t r0, int64_t r1) {
#pragma omp simd
    for (int64_t i = r0 * width; i < r1 * width; i++) out[i] = a[i] + b[i];
  });
}

// dst += src   [rows, width]
template <typename T>
void residual_backward(T* dst, const T* src, int64_t rows, int64_t width = 1) {
  team_for(rows, rows * width, [&](int64_t r0, int64_t r1) {
#pragma omp simd
    for (int64_t i = r0 * width; i < r1 * width; i++) dst[i] += src[i];
  });
}

}  // namespace kvtie
