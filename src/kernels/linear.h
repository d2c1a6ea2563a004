#pragma once
// Linear layer in PyTorch layout: w [OC, C], b [OC].
#include <algorithm>
#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/reduce.h"

namespace kvtie {

// out[N,OC] = inp[N,C] · wᵀ + b   (b may be null). Rows are independent: a team splits them.
template <typename T>
void linear_forward(T* out, const T* inp, const T* w, const T* b, int64_t N, int C, int OC) {
  team_for(N, 0, [&](int64_t n0, int64_t n1) {
    const int rows = static_cast<int>(n1 - n0);
    if (rows == 0) return;
    T* o = out + n0 * OC;
    if (b)
      for (int n = 0; n < rows; n++) std::copy(b, b + OC, o + static_cast<int64_t>(n) * OC);
    if (rows == 1)  // one row (a decode step): a matrix-vector product streams w once
      gemv(OC, C, T(1), w, C, inp + n0 * C, b ? T(1) : T(0), o);
    else
      gemm(false, true, rows, OC, C, T(1), inp + n0 * C, C, w, C, b ? T(1) : T(0), o, OC);
  });
}

// dw[OC,C] += doutᵀ · inp over all N rows. A team splits the output rows (each element is one
// thread's dot product over N, summed in the same order whatever the team's size).
template <typename T>
void linear_weight_grad(T* dw, const T* dout, const T* inp, int64_t N, int C, int OC) {
  team_reduce(OC, 0, [&](int64_t o0, int64_t o1) {
    if (o1 > o0)
      gemm(true, false, static_cast<int>(o1 - o0), C, static_cast<int>(N), T(1), dout + o0, OC, inp, C, T(1),
           dw + o0 * C, C);
  });
}

// dinp[N,C] = dout · w (overwritten; skipped when dinp is null);  dw += doutᵀ · inp;  db += Σ_n dout
template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int C, int OC) {
  if (dinp)
    team_for(N, 0, [&](int64_t n0, int64_t n1) {
      if (n1 > n0)
        gemm(false, false, static_cast<int>(n1 - n0), C, OC, T(1), dout + n0 * OC, OC, w, C, T(0), dinp + n0 * C, C);
    });
  linear_weight_grad(dw, dout, inp, N, C, OC);
  if (db) accumulate_column_sums(db, dout, N, OC);
}

}  // namespace kvtie
