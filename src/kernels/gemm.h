#pragma once
// Row-major GEMM through OpenBLAS: C[M,N] = alpha·op(A)·op(B) + beta·C. Overloaded for float and
// double so that every kernel can be instantiated in double for gradient checks.
#include <cblas.h>

namespace kvtie {

inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
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
