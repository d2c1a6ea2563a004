#pragma once
// Linear layer in PyTorch layout: w [OC, C], b [OC].
#include <algorithm>
#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/reduce.h"

#include "kernels/parallel.h"

namespace kvtie {

// out[N,OC] = inp[N,C] · wᵀ + b   (b may be null)
template <typename T>
void linear_forward(T* out, const T* inp, const T* w, const T* b, int64_t N, int C, int OC) {
  if (b) {
#pragma omp parallel for schedule(static) if (worth_threads(N * OC))
    for (int64_t n = 0; n < N; n++) std::copy(b, b + OC, out + n * OC);
  }
  if (N == 1)  // one row (a decode step): a matrix-vector product streams w once
    gemv(OC, C, T(1), w, C, inp, b ? T(1) : T(0), out);
  else
    gemm(false, true, static_cast<int>(N), OC, C, T(1), inp, C, w, C, b ? T(1) : T(0), out, OC);
}

// dinp[N,C] = dout · w (overwritten; skipped when dinp is null);  dw += doutᵀ · inp;  db += Σ_n dout
template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int C, int OC) {
  if (dinp) gemm(false, false, static_cast<int>(N), C, OC, T(1), dout, OC, w, C, T(0), dinp, C);
  gemm(true, false, OC, C, static_cast<int>(N), T(1), dout, OC, inp, C, T(1), dw, C);
  if (db) accumulate_column_sums(db, dout, N, OC);
}

}  // namespace kvtie
