#pragma once
// Linear layer in PyTorch layout: w [OC, C], b [OC].
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/reduce.h"
#include "kernels/tile_gemm.h"

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

// Floats of scratch per thread that linear_weight_grad takes for a [OC, C] weight: one partial dw,
// up to 1 MiB, a d_model-256 block's largest weight (0: larger, reduced without partials; for a
// vocabulary head, whose GEMM is large enough to run well either way, partials would cost a pass
// over several MiB).
constexpr int64_t kWeightGradPartialMax = int64_t{1} << 18;
inline int64_t weight_grad_partial(int C, int OC) {
  const int64_t size = static_cast<int64_t>(OC) * C;
  return size <= kWeightGradPartialMax ? size : 0;
}

// dw[OC,C] += doutᵀ · inp over all N rows.
//
// With `partials` (weight_grad_partial(C, OC) floats per thread of the team, or null), every thread
// first sums its own rows into a partial dw, then each adds the partials, in thread order, to its
// share of dw. A thread's rows are the ones it has just written, in its own cache; splitting dw's
// rows instead makes each thread read all N rows of both operands, half of them from the other
// core, which ran the small weights of the tiny benchmark model at half the GEMM's rate.
// Without partials (or in a team of one) a team splits the output rows, and each element is one
// thread's dot product over N, summed in the same order whatever the team's size.
template <typename T>
void linear_weight_grad(T* dw, const T* dout, const T* inp, int64_t N, int C, int OC, T* partials = nullptr) {
  const int64_t size = static_cast<int64_t>(OC) * C;
  if (partials && omp_get_num_threads() > 1 && weight_grad_partial(C, OC) > 0) {
    const int team = omp_get_num_threads();
    const Span rows = team_share(N);
    T* mine = partials + omp_get_thread_num() * size;
    team_barrier();  // the rows of dout are complete
    if (rows.end > rows.begin)
      gemm(true, false, OC, C, static_cast<int>(rows.end - rows.begin), T(1), dout + rows.begin * OC, OC,
           inp + rows.begin * C, C, T(0), mine, C);
    else
      std::fill(mine, mine + size, T(0));
    team_barrier();
    const Span share = team_share(size);
    for (int t = 0; t < team; t++) {
      const T* part = partials + t * size;
#pragma omp simd
      for (int64_t i = share.begin; i < share.end; i++) dw[i] += part[i];
    }
    team_barrier();  // dw is complete
    return;
  }
  team_reduce(OC, 0, [&](int64_t o0, int64_t o1) {
    if (o1 > o0)
      gemm(true, false, static_cast<int>(o1 - o0), C, static_cast<int>(N), T(1), dout + o0, OC, inp, C, T(1),
           dw + o0 * C, C);
  });
}

// dinp[N,C] = dout · w (overwritten; skipped when dinp is null);  dw += doutᵀ · inp;  db += Σ_n dout
// partials: as linear_weight_grad's.
template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int C, int OC,
                     T* partials = nullptr) {
  if (dinp)
    team_for(N, 0, [&](int64_t n0, int64_t n1) {
      if (n1 > n0)
        tile_gemm(false, static_cast<int>(n1 - n0), C, OC, T(1), dout + n0 * OC, OC, w, C, false, dinp + n0 * C, C);
    });
  linear_weight_grad(dw, dout, inp, N, C, OC, partials);
  if (db) accumulate_column_sums(db, dout, N, OC);
}

}  // namespace kvtie
