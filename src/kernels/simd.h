#pragma once
// The x86 vector intrinsics the hand-written decode kernels use, and what they share: which paths
// this build has (KVTIE_SIMD_AVX512: AVX-512 F/BW/VL; KVTIE_SIMD_AVX512_BF16: that and
// AVX512_BF16's vdpbf16ps; KVTIE_SIMD_AVX512_VNNI: that and VNNI's vpdpbusd; KVTIE_SIMD_AVX2:
// AVX2 + FMA) and the horizontal sums of four vectors at once.
#if defined(__AVX2__) || defined(__AVX512F__)
// GCC 12's _mm512_undefined_*() initialise a variable with itself, which -W(maybe-)uninitialized
// reports wherever such an intrinsic is inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include <limits>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define KVTIE_SIMD_AVX512 1
#if defined(__AVX512BF16__)
#define KVTIE_SIMD_AVX512_BF16 1
#endif
#if defined(__AVX512VNNI__)
#define KVTIE_SIMD_AVX512_VNNI 1
#endif
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define KVTIE_SIMD_AVX2 1
#endif

namespace kvtie {

// Where an online softmax's running maximum starts.
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#if defined(KVTIE_SIMD_AVX2) || defined(KVTIE_SIMD_AVX512)
// Keeps a loaded vector in a register. GCC folds a load into every FMA that uses it, so a row
// vector meant to serve 8 heads is loaded 8 times; on the AVX-512 machine the decode kernels were
// then bound by loads at ~30% of the FMA rate (2.2× slower value sums, 1.6× slower scores).
template <class V>
[[gnu::always_inline]] inline V in_register(V x) {
  asm("" : "+v"(x));
  return x;
}
#endif

#ifdef KVTIE_SIMD_AVX512
// The dot-product instructions (vpdpwssd, vpdpbusd, vdpbf16ps) are written as asm with the
// accumulator tied in and out. Through the intrinsics, GCC 12 copied each accumulator of a loop
// with many of them to another register and back around every instruction, and spilled some to
// the stack; the spilled ones made a chain through memory each iteration. With the accumulator
// tied, the loops keep every accumulator in place (bench/RESULTS.md, 12-07 evening).

// acc plus, per 32-bit lane, the two products of the lane's int16 pairs of a and b (VNNI vpdpwssd
// where present).
inline __m512i dot_pairs512(__m512i acc, __m512i a, __m512i b) {
#ifdef __AVX512VNNI__
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

#ifdef KVTIE_SIMD_AVX512_VNNI
// acc plus, per 32-bit lane, the four products of the lane's bytes, u unsigned and s signed.
inline __m512i dot_bytes512(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
#endif

#ifdef KVTIE_SIMD_AVX512_BF16
// acc plus, per float lane, the two products of the lane's bf16 pairs of a and b.
inline __m512 dot_bf16_512(__m512 acc, __m512bh a, __m512bh b) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}
#endif

// The integer value sums pair two rows with 16-bit unpacks, which leave each 32 elements as two
// vectors, `lo` holding in lane (L, k) element 8L + k and `hi` element 8L + 4 + k (L the 128-bit
// lane, k < 4). dst[0, hd) = src in element order; hd a multiple of 32.
inline void unpermute_pairs512(float* dst, const float* src, int hd) {
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int i = 0; i < hd; i += 32) {
    const __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
    _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(lo, first, hi));
    _mm512_storeu_ps(dst + i + 16, _mm512_permutex2var_ps(lo, second, hi));
  }
}

// The four horizontal sums of a, b, c, d.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 abcd = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
  __m512 t = _mm512_add_ps(abcd, _mm512_permute_ps(abcd, _MM_SHUFFLE(2, 3, 0, 1)));
  t = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, t));
}

// exp(x) for x ≤ 88 (Cephes' expf polynomial, ~1 ulp); below −87.3 it returns ~1e−38, not 0.
inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}
#endif

#ifdef KVTIE_SIMD_AVX2
// exp(x) for x ≤ 88 (Cephes' expf polynomial, ~1 ulp); below −87.3 it returns ~1e−38, not 0.
inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

inline __m256 tail_mask8(int remaining) {
  return _mm256_cmp_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_ps(static_cast<float>(remaining)),
                       _CMP_LT_OQ);
}

inline float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
#endif

}  // namespace kvtie
