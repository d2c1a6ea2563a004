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
// 257–308k tokens/s on the AVX-512 machine.
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
// The vector operations of the kernel, per instruction set: W floats per vector, and a Mask of the
// lanes a tail vector holds. Always inlined: the sanitize build compiles them at -O1 with ASan's
// checks, and the -O3 kernel would call them for every FMA.
struct Lanes8 {
  static constexpr int W = 8;
  using V = __m256;
  using Mask = __m256i;
  [[gnu::always_inline]] static Mask all() { return _mm256_set1_epi32(-1); }
  [[gnu::always_inline]] static Mask first(int n) { return _mm256_castps_si256(tail_mask8(n)); }
  [[gnu::always_inline]] static V zero() { return _mm256_setzero_ps(); }
  [[gnu::always_inline]] static V set1(float x) { return _mm256_set1_ps(x); }
  [[gnu::always_inline]] static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  [[gnu::always_inline]] static V load(const float* p) { return _mm256_loadu_ps(p); }
  [[gnu::always_inline]] static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  [[gnu::always_inline]] static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  [[gnu::always_inline]] static void store(float* p, V x, Mask m) { _mm256_maskstore_ps(p, m, x); }
  [[gnu::always_inline]] static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  [[gnu::always_inline]] static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  [[gnu::always_inline]] static V add(V a, V b) { return _mm256_add_ps(a, b); }
};
#endif
#ifdef KVTIE_SIMD_AVX512
struct Lanes16 {
  static constexpr int W = 16;
  using V = __m512;
  using Mask = __mmask16;
  [[gnu::always_inline]] static Mask all() { return 0xffff; }
  [[gnu::always_inline]] static Mask first(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  [[gnu::always_inline]] static V zero() { return _mm512_setzero_ps(); }
  [[gnu::always_inline]] static V set1(float x) { return _mm512_set1_ps(x); }
  [[gnu::always_inline]] static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  [[gnu::always_inline]] static V load(const float* p) { return _mm512_loadu_ps(p); }
  [[gnu::always_inline]] static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  [[gnu::always_inline]] static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  [[gnu::always_inline]] static void store(float* p, V x, Mask m) { _mm512_mask_storeu_ps(p, m, x); }
  [[gnu::always_inline]] static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  [[gnu::always_inline]] static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  [[gnu::always_inline]] static V add(V a, V b) { return _mm512_add_ps(a, b); }
};
#endif

#ifdef KVTIE_SIMD_AVX2
// MR rows × NV vectors of C; with kTail the last vector holds only the lanes of `tail`.
// a(i, k) = a[i·ars + k·acs], so op(A) = A and op(A) = Aᵀ are the same code. Each element is one
// FMA chain over k in order, whatever the vector width: AVX2 and AVX-512 give the same bits.
// Built at -O3 and without AddressSanitizer's checks in every build: at the sanitize build's -O1
// GCC keeps the accumulators in memory, and ASan checks every broadcast, which made the kernel 10×
// slower and the sanitize build's training tests 2.5× slower. KernelTileGemm checks every tail
// against a product in double, and that the padding of C stays untouched.
#if defined(__GNUC__) && !defined(__clang__)
#define KVTIE_TILE_KERNEL __attribute__((no_sanitize_address, optimize("O3")))
#else
#define KVTIE_TILE_KERNEL __attribute__((no_sanitize_address))
#endif
template <class L, int MR, int NV, bool kTail>
KVTIE_TILE_KERNEL inline void micro(int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* b,
                                    int64_t ldb, bool accumulate, float* c, int64_t ldc, typename L::Mask tail) {
  using V = typename L::V;
  constexpr int W = L::W;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) acc[i][v] = L::zero();
  for (int k = 0; k < K; k++) {
    const float* bk = b + k * ldb;
    V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++)
      bv[v] = in_register(kTail && v == NV - 1 ? L::load(bk + W * v, tail) : L::load(bk + W * v));
    const float* ak = a + k * acs;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const V ai = L::broadcast(ak + i * ars);
#pragma GCC unroll 2
      for (int v = 0; v < NV; v++) acc[i][v] = L::fmadd(ai, bv[v], acc[i][v]);
    }
  }
  const V scale = L::set1(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      const bool masked = kTail && v == NV - 1;
      V x = L::mul(acc[i][v], scale);
      if (accumulate) x = L::add(x, masked ? L::load(ci + W * v, tail) : L::load(ci + W * v));
      if (masked)
        L::store(ci + W * v, x, tail);
      else
        L::store(ci + W * v, x);
    }
  }
}

// One block of MR rows across all N columns: two vectors at a time, then one, then the masked rest.
template <class L, int MR>
inline void row_block(int N, int K, float alpha, const float* a, int64_t ars, int64_t acs, const float* B,
                      int64_t ldb, bool accumulate, float* c, int64_t ldc) {
  constexpr int W = L::W;
  int j = 0;
  for (; j + 2 * W <= N; j += 2 * W)
    micro<L, MR, 2, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, L::all());
  if (j + W <= N) {
    micro<L, MR, 1, false>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, L::all());
    j += W;
  }
  if (j < N) micro<L, MR, 1, true>(K, alpha, a, ars, acs, B + j, ldb, accumulate, c + j, ldc, L::first(N - j));
}

// All M rows in blocks of MR (6 for AVX2's 16 registers: 12 accumulators; 8 for AVX-512's 32: 16),
// then the remainder.
template <class L, int MR>
inline void row_blocks(int M, int N, int K, float alpha, const float* A, int64_t ars, int64_t acs, const float* B,
                       int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  int i = 0;
  for (; i + MR <= M; i += MR) row_block<L, MR>(N, K, alpha, A + i * ars, ars, acs, B, ldb, accumulate, C + i * ldc, ldc);
  if constexpr (MR > 1)
    if (i < M) row_blocks<L, MR - 1>(M - i, N, K, alpha, A + i * ars, ars, acs, B, ldb, accumulate, C + i * ldc, ldc);
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
#if defined(KVTIE_SIMD_AVX512)
  tile_detail::row_blocks<tile_detail::Lanes16, 8>(M, N, K, alpha, A, ars, acs, B, ldb, accumulate, C, ldc);
#elif defined(KVTIE_SIMD_AVX2)
  tile_detail::row_blocks<tile_detail::Lanes8, 6>(M, N, K, alpha, A, ars, acs, B, ldb, accumulate, C, ldc);
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
