#pragma once
// GEMM for the small matrices of attention tiles and of small linear layers:
// C[M,N] (+)= alpha · op(A)[M,K] · B[K,N], with B never transposed (attention transposes its K and
// V blocks once per item, see transpose_rows).
//
// Why not OpenBLAS: a score tile is 16–64 rows by up to T keys over head_dim 32–64, a few tens of
// thousands of multiply-adds, and OpenBLAS spends about 1.7 µs a call on its interface and on
// packing A and B, as long as the arithmetic of a 16×64×32 tile. When B fits in L2 a
// register-blocked kernel that reads the operands where they lie needs no packing: rows of C in
// blocks of 6, columns in blocks of 16, the way BLIS's Haswell kernel blocks (AVX-512: 8 × 32),
// every element of op(A) broadcast from memory and every row of B loaded as two vectors. On the
// tiny benchmark model this and the row-split weight gradients (linear.h) took a training step
// from about 21 to 18 ms (AVX2); the AVX-512 kernel took kvtie's tiny rows from 234–291k to
// 270–309k tokens/s on the AVX-512 machine.
// Larger B goes to OpenBLAS, and so does double (gradient checks only).
//
// Each element of C is the sum over k in order, one FMA chain per element, whatever M, N and the
// strides: the same inputs give the same bits.
#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace kvtie {

// dst[c, r] = src[r, c] for r < rows, c < cols: dst is [cols, ld_dst], src rows have stride ld_src.
template <typename T>
void transpose_rows(T* dst, int64_t ld_dst, const T* src, int64_t ld_src, int rows, int cols) {
  constexpr int kBlock = 8;  // 8×8 blocks: a cache line of src and of dst at a time
  for (int r0 = 0; r0 < rows; r0 += kBlock)
    for (int c0 = 0; c0 < cols; c0 += kBlock) {
      const int r1 = r0 + kBlock < rows ? r0 + kBlock : rows, c1 = c0 + kBlock < cols ? c0 + kBlock : cols;
      for (int c = c0; c < c1; c++)
        for (int r = r0; r < r1; r++) dst[c * ld_dst + r] = src[r * ld_src + c];
    }
}

namespace tile_detail {

#ifdef KVTIE_SIMD_AVX2
// MR rows × NV vectors of C; with kTail the last vector holds only the lanes of `tail`.
// a(i, k) = a[i·ars + k·acs], so op(A) = A and op(A) = Aᵀ are the same code.
// Built at -O3 and without AddressSanitizer's checks in every build: at the sanitize build's -O1
// GCC keeps the accumulators in memory, and ASan checks every broadcast, which made the kernel 10×
// slower and the sanitize build's training tests 2.5× slower. KernelTileGemm checks every tail
// against a product in double, and that the padding of C stays untouched.
#if defined(__GNUC__) && !defined(__clang__)
#define KVTIE_TILE_KERNEL __attribute__((no_sanitize_address, optimize("O3")))
#else
#define KVTIE_TILE_KERNEL __attribute__((no_sanitize_address))
#endif
template <int MR, int NV, bool kTail>
KVTIE_TILE_KERNEL inline void micro(int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* b,
                                    int64_t ldb, bool accumulate, float* c, int64_t ldc, __m256i tail) {
  __m256 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
  for (int k = 0; k < K; k++) {
    const float* bk = b + k * ldb;
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++)
      bv[v] = kTail && v == NV - 1 ? _mm256_maskload_ps(bk + 8 * v, tail) : _mm256_loadu_ps(bk + 8 * v);
    const float* ak = a + k * acs;
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const __m256 ai = _mm256_broadcast_ss(ak + i * ars);
#pragma GCC unroll 2
      for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  const __m256 scale = _mm256_set1_ps(alpha);
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      const bool masked = kTail && v == NV - 1;
      __m256 x = _mm256_mul_ps(acc[i][v], scale);
      if (accumulate) x = _mm256_add_ps(x, masked ? _mm256_maskload_ps(ci + 8 * v, tail) : _mm256_loadu_ps(ci + 8 * v));
      if (masked)
        _mm256_maskstore_ps(ci + 8 * v, tail, x);
      else
        _mm256_storeu_ps(ci + 8 * v, x);
    }
  }
}

// One block of MR rows across all N columns: 16 at a time, then 8, then the masked rest.
template <int MR>
inline void row_block(int N, int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* B,
                      int64_t ldb, bool accumulate, float* c, int64_t ldc) {
  const __m256i all = _mm256_set1_epi32(-1);
  int j = 0;
  for (; j + 16 <= N; j += 16) micro<MR, 2, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, all);
  if (j + 8 <= N) {
    micro<MR, 1, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, all);
    j += 8;
  }
  if (j < N)
    micro<MR, 1, true>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc,
                       _mm256_castps_si256(tail_mask8(N - j)));
}
#endif

#ifdef KVTIE_SIMD_AVX512
// micro with 16 lanes per vector: MR rows × NV vectors of C; with kTail the last vector holds
// only the lanes of `tail`. Twice the columns per FMA of the AVX2 kernel, summed in the same order,
// so the two give the same bits.
template <int MR, int NV, bool kTail>
KVTIE_TILE_KERNEL inline void micro512(int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* b,
                                       int64_t ldb, bool accumulate, float* c, int64_t ldc, __mmask16 tail) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    const float* bk = b + k * ldb;
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++)
      bv[v] = in_register(kTail && v == NV - 1 ? _mm512_maskz_loadu_ps(tail, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v));
    const float* ak = a + k * acs;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m512 ai = _mm512_set1_ps(ak[i * ars]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      const __mmask16 m = kTail && v == NV - 1 ? tail : __mmask16(0xffff);
      __m512 x = _mm512_mul_ps(acc[i][v], scale);
      if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ci + 16 * v));
      _mm512_mask_storeu_ps(ci + 16 * v, m, x);
    }
  }
}

template <int MR>
inline void row_block512(int N, int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* B,
                         int64_t ldb, bool accumulate, float* c, int64_t ldc) {
  int j = 0;
  for (; j + 32 <= N; j += 32) micro512<MR, 2, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, 0xffff);
  if (j + 16 <= N) {
    micro512<MR, 1, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, 0xffff);
    j += 16;
  }
  if (j < N)
    micro512<MR, 1, true>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc,
                          static_cast<__mmask16>((1u << (N - j)) - 1));
}
#endif

}  // namespace tile_detail

// C[M,N] = alpha · op(A) · B (+ C when accumulate). op(A) is A[M,K] (lda ≥ K) or, with trans_a,
// the transpose of A[K,M] (lda ≥ M). B is [K,N] with ldb ≥ N; C is [M,N] with ldc ≥ N.
inline void tile_gemm(bool trans_a, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B,
                      int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  // With N or K past 256, B outgrows L2 (and a 16-column panel of it L1), where OpenBLAS's packing
  // and cache blocking win: 64 rows × 1024 keys × 64 run at 40 GFLOP/s here and 74 there.
  constexpr int kLargest = 256;
  if (N > kLargest || K > kLargest) {
    gemm(trans_a, false, M, N, K, alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), accumulate ? 1.0f : 0.0f,
         C, static_cast<int>(ldc));
    return;
  }
  const int64_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;
#ifdef KVTIE_SIMD_AVX512
  using namespace tile_detail;
  constexpr int kRows = 8;  // 16 accumulators of 32
  int i = 0;
  for (; i + kRows <= M; i += kRows)
    row_block512<kRows>(N, K, alpha, A + i * ars, ars, acs, B, ldb, accumulate, C + i * ldc, ldc);
  const float* a = A + i * ars;
  float* c = C + i * ldc;
  switch (M - i) {
    case 7: row_block512<7>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 6: row_block512<6>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 5: row_block512<5>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 4: row_block512<4>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 3: row_block512<3>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 2: row_block512<2>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 1: row_block512<1>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    default: break;
  }
#elif defined(KVTIE_SIMD_AVX2)
  using namespace tile_detail;
  constexpr int kRows = 6;
  int i = 0;
  for (; i + kRows <= M; i += kRows) row_block<kRows>(N, K, alpha, A + i * ars, ars, acs, B, ldb, accumulate, C + i * ldc, ldc);
  const float* a = A + i * ars;
  float* c = C + i * ldc;
  switch (M - i) {
    case 5: row_block<5>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 4: row_block<4>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 3: row_block<3>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 2: row_block<2>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    case 1: row_block<1>(N, K, alpha, a, ars, acs, B, ldb, accumulate, c, ldc); break;
    default: break;
  }
#else
  for (int i = 0; i < M; i++) {
    float row[kLargest];  // N ≤ kLargest here: the guard above sent larger products to BLAS
    for (int j = 0; j < N; j++) row[j] = 0;
    for (int k = 0; k < K; k++) {
      const float aik = A[i * ars + k * acs];
      const float* bk = B + k * ldb;
#pragma omp simd
      for (int j = 0; j < N; j++) row[j] += aik * bk[j];
    }
    float* ci = C + i * ldc;
    for (int j = 0; j < N; j++) ci[j] = alpha * row[j] + (accumulate ? ci[j] : 0.0f);
  }
#endif
}

inline void tile_gemm(bool trans_a, int M, int N, int K, double alpha, const double* A, int64_t lda, const double* B,
                      int64_t ldb, bool accumulate, double* C, int64_t ldc) {
  gemm(trans_a, false, M, N, K, alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), accumulate ? 1.0 : 0.0, C,
       static_cast<int>(ldc));
}

}  // namespace kvtie
