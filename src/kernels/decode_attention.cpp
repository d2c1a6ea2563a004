#include "kernels/decode_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "infer/kv_cache.h"
#include "kernels/decode_group.h"
#include "kernels/kv_codec.h"
#include "kernels/parallel.h"
#include "kernels/prefetch.h"
#include "kernels/simd.h"
#include "kernels/tile_order.h"
#include "kvtie/error.h"

namespace kvtie {

// One work item: sequence, kv head, positions [first, last). Outside the anonymous namespace, as
// DecodeAttentionWork::State holds them.
struct DecodeWorkItem {
  int b, g, first, last;
};

namespace {

constexpr int kTile = 32;  // positions per tile (a multiple of every vector width): rows stay in L1
// The kernels that read int8 or bf16 rows as stored (attend_int, attend_int_bytes, attend_bf16)
// take longer tiles: each tile ends in a chain of dependent reductions (the softmax's maximum,
// exp and sum; the rounding of int8 weights) that is a larger share of their cheaper rows. At 64
// the int8 kernel alone took 3.4 instead of 4.1 ns per position (QKV) from L3 on the AVX-512
// machine, the bf16 K=V one 1.15× less time from L2 (12-08); the float paths gained nothing.
constexpr int kPackedTile = 64;
constexpr int kMaxTile = kPackedTile;

// The bytes of an item's streams (v null: K=V) that its first rows' prefetches do not ask for.
inline void prefetch_start(const uint8_t* k, const uint8_t* v) {
  prefetch_bytes(k, kCacheAhead);
  if (v) prefetch_bytes(v, kValueAhead);
}

int round_up(int n, int w) { return (n + w - 1) / w * w; }

// ---------------------------------------------------------------------------------------------
// One stored element as float: int8 unscaled (the code; row_scale is its row's scale), int4 times
// its group's scale. Tails of the vector paths and the whole of the scalar path use these.

inline float element(const uint8_t* src, int i, int hd, KvDType t) {
  switch (t) {
    case KvDType::fp32: {
      float f;
      std::memcpy(&f, src + 4 * static_cast<int64_t>(i), 4);
      return f;
    }
    case KvDType::bf16: {
      uint16_t h;
      std::memcpy(&h, src + 2 * static_cast<int64_t>(i), 2);
      return from_bf16(h);
    }
    case KvDType::fp16: {
      _Float16 h;
      std::memcpy(&h, src + 2 * static_cast<int64_t>(i), 2);
      return static_cast<float>(h);
    }
    case KvDType::int8: return static_cast<float>(static_cast<int8_t>(src[i]));
    case KvDType::int4: return static_cast<float>(int4_code(src, i)) * int4_scale(src, hd, i / kInt4Group);
  }
  return 0;
}

inline float row_scale(const uint8_t* src, int hd, KvDType t) {
  float s = 1.0f;
  if (t == KvDType::int8) std::memcpy(&s, src + hd, 4);
  return s;
}

// Elements [from, hd) of one row, then zeros up to width.
inline void convert_tail(float* dst, const uint8_t* src, int from, int hd, int64_t width, KvDType t) {
  for (int i = from; i < hd; i++) dst[i] = element(src, i, hd, t);
  for (int64_t i = hd; i < width; i++) dst[i] = 0.0f;
}

// ---------------------------------------------------------------------------------------------
// The row arithmetic, one struct per instruction set. Rows hold n floats, n a multiple of W; score
// and weight arrays hold round_up(count, W) floats of which `count` are meaningful. NV > 0 says, at
// compile time, that n = hd = NV·W (no tail: the loops unroll and q stays in registers); NV = 0
// takes n and hd at run time. The functions that read rows from the cache prefetch its rows
// ahead (kernels/prefetch.h): convert always, the others when told (`ahead`: the rows are the
// cache's, not a tile in L1); the value sums of codes (iupdate) kValueAhead, the other integer
// ones kCacheAhead. The float scores and update ask for the row `ahead` bytes on (0: none).
//   convert: stored rows → float rows (see kv_rows_to_float)
//   scores:  s[j] = q · row_j
//   scale:   s[j] *= (f ? f[j] · c : c)
//   max:     max of s[0, count)
//   exp_sum: s[j] = exp(s[j] − shift) for j < count, 0 after; returns their sum
//   exp1:    exp(x) for one x ≤ 0
//   mul:     s[j] *= f[j]
//   update:  acc = acc · corr + Σ_j p[j] · row_j
//
// The fallback is plain C++: the compiler may vectorise its loops for the target it builds for.

struct Scalar {
  static constexpr int W = 1;
  template <int NV>
  static void convert(float* dst, int64_t ds, float* scales, const uint8_t* src, int64_t ss, int count, int hd,
                      KvDType t) {
    for (int j = 0; j < count; j++) {
      float* d = dst + j * ds;
      const uint8_t* r = src + j * ss;
      prefetch_ahead<kCacheAhead>(r, ss);
      switch (t) {
        case KvDType::int8:
#pragma omp simd
          for (int i = 0; i < hd; i++) d[i] = static_cast<float>(static_cast<int8_t>(r[i]));
          break;
        default: convert_tail(d, r, 0, hd, hd, t); break;
      }
      for (int64_t i = hd; i < ds; i++) d[i] = 0.0f;
      scales[j] = row_scale(r, hd, t);
    }
  }
  template <int NV>
  static void scores(float* s, const float* q, const float* rows, int64_t rs, int count, int n, int64_t ahead) {
    for (int j = 0; j < count; j++) {
      const float* r = rows + j * rs;
      if (ahead) prefetch_at(r, ahead, 4 * rs);
      float a = 0;
#pragma omp simd reduction(+ : a)
      for (int i = 0; i < n; i++) a += q[i] * r[i];
      s[j] = a;
    }
  }
  static void scale(float* s, const float* f, float c, int count) {
    for (int j = 0; j < count; j++) s[j] *= f ? f[j] * c : c;
  }
  static float max(const float* s, int count) {
    float m = kNegInf;
    for (int j = 0; j < count; j++) m = std::max(m, s[j]);
    return m;
  }
  static float exp_sum(float* s, int count, float shift) {
    float sum = 0;
    for (int j = 0; j < count; j++) sum += (s[j] = std::exp(s[j] - shift));
    return sum;
  }
  static float exp1(float x) { return std::exp(x); }
  static void mul(float* s, const float* f, int count) {
    for (int j = 0; j < count; j++) s[j] *= f[j];
  }
  // The integer path (see attend_int): q16 · codes in int32, and the value sum with 16-bit weights.
  static int32_t code(const uint8_t* r, int i) { return static_cast<int8_t>(r[i]); }
  template <int NB>
  static void iscores(float* s, const int16_t* q16, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int hd = 32 * (NB > 0 ? NB : nb);
    for (int j = 0; j < count; j++) {
      if (ahead) prefetch_ahead<kCacheAhead>(rows + j * rs, rs);
      int32_t a = 0;
      for (int i = 0; i < hd; i++) a += static_cast<int32_t>(q16[i]) * code(rows + j * rs, i);
      s[j] = static_cast<float>(a);
    }
  }
  template <int NB>
  static void iupdate(float* acc, float corr, const float* w, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int hd = 32 * (NB > 0 ? NB : nb);
    const float wmax = max(w, count);
    for (int i = 0; i < hd; i++) acc[i] *= corr;
    if (!(wmax > 0)) return;
    const float wmul = 32767.0f / wmax, ws = wmax / 32767.0f;
    int32_t iacc[256] = {};
    for (int j = 0; j < count; j++) {
      const int32_t wj = static_cast<int32_t>(std::nearbyint(w[j] * wmul));
      if (ahead) prefetch_ahead<kValueAhead>(rows + j * rs, rs);
      for (int i = 0; i < hd; i++) iacc[i] += wj * code(rows + j * rs, i);
    }
    for (int i = 0; i < hd; i++) acc[i] += static_cast<float>(iacc[i]) * ws;
  }
  static void iunpermute(float* dst, const float* acc, int hd) { std::copy(acc, acc + hd, dst); }
  template <int NV>
  static void update(float* acc, float corr, const float* p, const float* rows, int64_t rs, int count, int n,
                     int64_t ahead) {
#pragma omp simd
    for (int i = 0; i < n; i++) acc[i] *= corr;
    for (int j = 0; j < count; j++) {
      const float* r = rows + j * rs;
      if (ahead) prefetch_at(r, ahead, 4 * rs);
      const float pj = p[j];
#pragma omp simd
      for (int i = 0; i < n; i++) acc[i] += pj * r[i];
    }
  }
};

#ifdef KVTIE_SIMD_AVX512
inline __mmask16 tail_mask16(int remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << remaining) - 1);
}

struct Avx512 {
  static constexpr int W = 16;
  static constexpr DecodeIsa kIsa = DecodeIsa::avx512;
  static __m512 int8x16(__m128i codes) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes)); }
  // 32 int4 codes (16 bytes) as two vectors of 16 floats. Element 2k is the low nibble of byte k:
  // split the nibbles, interleave them back into element order, sign-extend 4 → 8 bits
  // ((x ^ 8) − 8), then widen.
  static void int4x32(__m128i b, __m512& e0, __m512& e1) {
    const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_and_si128(b, low), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    e0 = int8x16(_mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), eight), eight));
    e1 = int8x16(_mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), eight), eight));
  }
  // Elements [i, i + 16) of a row as floats, as element() gives them; i + 16 ≤ hd, i a multiple of 16.
  static __m512 load16(const uint8_t* r, int i, int hd, KvDType t) {
    switch (t) {
      case KvDType::fp32: return _mm512_loadu_ps(r + 4 * i);
      case KvDType::bf16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * i))), 16));
      case KvDType::fp16: return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * i)));
      case KvDType::int8: return int8x16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + i)));
      case KvDType::int4: {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + i / 2));
        __m512 e0, e1;
        int4x32(b, e0, e1);
        return _mm512_mul_ps(e0, _mm512_set1_ps(int4_scale(r, hd, i / kInt4Group)));
      }
    }
    return _mm512_setzero_ps();
  }
  template <KvDType T, int NV>
  static void convert_as(float* dst, int64_t ds, float* scales, const uint8_t* src, int64_t ss, int count, int hd_) {
    const int hd = NV > 0 ? NV * 16 : hd_;
    for (int j = 0; j < count; j++) {
      float* d = dst + j * ds;
      const uint8_t* r = src + j * ss;
      prefetch_ahead<kCacheAhead>(r, ss);
      int i = 0;
      if constexpr (T == KvDType::int4)
        for (; i + 32 <= hd; i += 32) {  // one group
          __m512 e0, e1;
          int4x32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + i / 2)), e0, e1);
          const __m512 scale = _mm512_set1_ps(int4_scale(r, hd, i / kInt4Group));
          _mm512_storeu_ps(d + i, _mm512_mul_ps(e0, scale));
          _mm512_storeu_ps(d + i + 16, _mm512_mul_ps(e1, scale));
        }
      for (; i + 16 <= hd; i += 16) _mm512_storeu_ps(d + i, load16(r, i, hd, T));
      if (NV == 0) convert_tail(d, r, i, hd, ds, T);
      scales[j] = row_scale(r, hd, T);
    }
  }
  template <int NV>
  static void convert(float* dst, int64_t ds, float* scales, const uint8_t* src, int64_t ss, int count, int hd,
                      KvDType t) {
    switch (t) {
      case KvDType::fp32: return convert_as<KvDType::fp32, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::bf16: return convert_as<KvDType::bf16, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::fp16: return convert_as<KvDType::fp16, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::int8: return convert_as<KvDType::int8, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::int4: return convert_as<KvDType::int4, NV>(dst, ds, scales, src, ss, count, hd);
    }
  }
  template <int NV>
  static void scores(float* s, const float* q, const float* rows, int64_t rs, int count, int n_, int64_t ahead) {
    const int n = NV > 0 ? NV * 16 : n_;
    int j = 0;
    if constexpr (NV > 0) {
      __m512 qv[NV];
      for (int v = 0; v < NV; v++) qv[v] = in_register(_mm512_loadu_ps(q + 16 * v));
      for (; j + 4 <= count; j += 4) {
        const float* r0 = rows + j * rs;
        const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
        if (ahead) prefetch_at(r0, ahead, 4 * 4 * rs);
        __m512 a0 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(r0)), a1 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(r1));
        __m512 a2 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(r2)), a3 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(r3));
        for (int v = 1; v < NV; v++) {
          a0 = _mm512_fmadd_ps(qv[v], _mm512_loadu_ps(r0 + 16 * v), a0);
          a1 = _mm512_fmadd_ps(qv[v], _mm512_loadu_ps(r1 + 16 * v), a1);
          a2 = _mm512_fmadd_ps(qv[v], _mm512_loadu_ps(r2 + 16 * v), a2);
          a3 = _mm512_fmadd_ps(qv[v], _mm512_loadu_ps(r3 + 16 * v), a3);
        }
        _mm_storeu_ps(s + j, hsum4(a0, a1, a2, a3));
      }
    } else {
      for (; j + 4 <= count; j += 4) {
        const float* r0 = rows + j * rs;
        const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
        if (ahead) prefetch_at(r0, ahead, 4 * 4 * rs);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < n; i += 16) {
          const __m512 qv = _mm512_loadu_ps(q + i);
          a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r0 + i), a0);
          a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r1 + i), a1);
          a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r2 + i), a2);
          a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(r3 + i), a3);
        }
        _mm_storeu_ps(s + j, hsum4(a0, a1, a2, a3));
      }
    }
    for (; j < count; j++) {
      const float* r = rows + j * rs;
      if (ahead) prefetch_at(r, ahead, 4 * rs);
      __m512 a = _mm512_setzero_ps();
      for (int i = 0; i < n; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(r + i), a);
      s[j] = _mm512_reduce_add_ps(a);
    }
  }
  static void scale(float* s, const float* f, float c, int count) {
    const __m512 cv = _mm512_set1_ps(c);
    for (int j = 0; j < count; j += 16) {
      const __m512 k = f ? _mm512_mul_ps(_mm512_loadu_ps(f + j), cv) : cv;
      _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), k));
    }
  }
  static float max(const float* s, int count) {
    __m512 m = _mm512_set1_ps(kNegInf);
    for (int j = 0; j < count; j += 16) m = _mm512_mask_max_ps(m, tail_mask16(count - j), m, _mm512_loadu_ps(s + j));
    return _mm512_reduce_max_ps(m);
  }
  static float exp_sum(float* s, int count, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < count; j += 16) {
      const __m512 p = _mm512_maskz_mov_ps(tail_mask16(count - j), exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), sh)));
      _mm512_storeu_ps(s + j, p);
      sum = _mm512_add_ps(sum, p);
    }
    return _mm512_reduce_add_ps(sum);
  }
  static float exp1(float x) { return _mm512_cvtss_f32(exp512(_mm512_set1_ps(x))); }
  static void mul(float* s, const float* f, int count) {
    for (int j = 0; j < count; j += 16)
      _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), _mm512_loadu_ps(f + j)));
  }
  // B vectors of acc against every row, even and odd rows into separate accumulators so that
  // 2·B independent FMA chains hide the latency.
  template <int B>
  static void update_block(float* acc, __m512 corr, const float* p, const float* rows, int64_t rs, int count,
                           int64_t ahead) {
    __m512 a[B], b[B];
    for (int v = 0; v < B; v++) a[v] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * v), corr), b[v] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 2 <= count; j += 2) {
      const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
      const float* r0 = rows + j * rs;
      const float* r1 = r0 + rs;
      if (ahead) prefetch_at(r0, ahead, 2 * 4 * rs);
      for (int v = 0; v < B; v++) {
        a[v] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r0 + 16 * v), a[v]);
        b[v] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(r1 + 16 * v), b[v]);
      }
    }
    if (j < count) {
      const __m512 p0 = _mm512_set1_ps(p[j]);
      const float* r0 = rows + j * rs;
      for (int v = 0; v < B; v++) a[v] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r0 + 16 * v), a[v]);
    }
    for (int v = 0; v < B; v++) _mm512_storeu_ps(acc + 16 * v, _mm512_add_ps(a[v], b[v]));
  }
  static __m512i dot_pairs(__m512i acc, __m512i a, __m512i b) { return dot_pairs512(acc, a, b); }
  static __m128i hsum4i(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                                        _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i cd = _mm512_add_epi32(_mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                                        _mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i abcd = _mm512_add_epi32(_mm512_shuffle_i32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                          _mm512_shuffle_i32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i t = _mm512_add_epi32(abcd, _mm512_shuffle_epi32(abcd, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(2, 3, 0, 1))));
    t = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(1, 0, 3, 2))));
    return _mm512_castsi512_si128(_mm512_maskz_compress_epi32(0x1111, t));
  }
  // Codes [32b, 32b + 32) of a row as int16.
  static __m512i codes32(const uint8_t* r, int b) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 32 * b)));
  }
  template <int NB>
  static void iscores(float* s, const int16_t* q16, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int n = NB > 0 ? NB : nb;
    __m512i qv[8];
    for (int b = 0; b < n; b++) qv[b] = in_register(_mm512_loadu_si512(q16 + 32 * b));
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      const uint8_t* r0 = rows + j * rs;
      const uint8_t *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r0, 4 * rs);
      __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
      for (int b = 0; b < n; b++) {
        a0 = dot_pairs(a0, qv[b], codes32(r0, b));
        a1 = dot_pairs(a1, qv[b], codes32(r1, b));
        a2 = dot_pairs(a2, qv[b], codes32(r2, b));
        a3 = dot_pairs(a3, qv[b], codes32(r3, b));
      }
      _mm_storeu_ps(s + j, _mm_cvtepi32_ps(hsum4i(a0, a1, a2, a3)));
    }
    for (; j < count; j++) {
      __m512i a = _mm512_setzero_si512();
      for (int b = 0; b < n; b++) a = dot_pairs(a, qv[b], codes32(rows + j * rs, b));
      s[j] = static_cast<float>(_mm512_reduce_add_epi32(a));
    }
  }
  // The value weights w[0, count) as the integer paths sum them: rounded to int16 (±32767 for the
  // tile's largest) into wq[0, count), 0 from there to kPackedTile. Returns the largest weight, what
  // 32767 stands for; when it is not positive there is nothing to sum and wq is left alone.
  static float round_weights(int32_t* wq, const float* w, int count) {
    const float wmax = max(w, count);
    if (!(wmax > 0)) return wmax;
    const __m512 wmul = _mm512_set1_ps(32767.0f / wmax);
    for (int j = 0; j < kPackedTile; j += 16) {
      const __mmask16 live = j < count ? tail_mask16(count - j) : __mmask16(0);
      const __m512 scaled = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, w + j), wmul);
      _mm512_storeu_si512(wq + j, _mm512_maskz_cvtps_epi32(live, scaled));
    }
    return wmax;
  }
  // acc is kept in the order the 16-bit unpacks leave: per 32 elements, lanes (L, k) of `lo` hold
  // element 8L + k and of `hi` 8L + 4 + k (L = 128-bit lane, k < 4); iunpermute restores it.
  template <int NB>
  static void iupdate(float* acc, float corr, const float* w, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int n = NB > 0 ? NB : nb;
    alignas(64) int32_t wq[kPackedTile + 1] = {};
    const float wmax = round_weights(wq, w, count);
    const __m512 c = _mm512_set1_ps(corr);
    if (!(wmax > 0)) {
      for (int v = 0; v < 2 * n; v++) _mm512_storeu_ps(acc + 16 * v, _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * v), c));
      return;
    }
    __m512i lo[8], hi[8];
    for (int b = 0; b < n; b++) lo[b] = _mm512_setzero_si512(), hi[b] = _mm512_setzero_si512();
    int j = 0;
    for (; j + 2 <= count; j += 2) {
      const __m512i wp = _mm512_set1_epi32((wq[j] & 0xffff) | (wq[j + 1] << 16));
      const uint8_t* r0 = rows + j * rs;
      const uint8_t* r1 = r0 + rs;
      if (ahead) prefetch_ahead<kValueAhead>(r0, 2 * rs);
      for (int b = 0; b < n; b++) {
        const __m512i x0 = codes32(r0, b), x1 = codes32(r1, b);
        lo[b] = dot_pairs(lo[b], _mm512_unpacklo_epi16(x0, x1), wp);
        hi[b] = dot_pairs(hi[b], _mm512_unpackhi_epi16(x0, x1), wp);
      }
    }
    if (j < count) {  // the odd last row pairs with a zero row
      const __m512i wp = _mm512_set1_epi32(wq[j] & 0xffff);
      const __m512i z = _mm512_setzero_si512();
      for (int b = 0; b < n; b++) {
        const __m512i x0 = codes32(rows + j * rs, b);
        lo[b] = dot_pairs(lo[b], _mm512_unpacklo_epi16(x0, z), wp);
        hi[b] = dot_pairs(hi[b], _mm512_unpackhi_epi16(x0, z), wp);
      }
    }
    const __m512 ws = _mm512_set1_ps(wmax / 32767.0f);
    for (int b = 0; b < n; b++) {
      float* a0 = acc + 32 * b;
      _mm512_storeu_ps(a0, _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[b]), ws, _mm512_mul_ps(_mm512_loadu_ps(a0), c)));
      _mm512_storeu_ps(a0 + 16,
                       _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[b]), ws, _mm512_mul_ps(_mm512_loadu_ps(a0 + 16), c)));
    }
  }
  static void iunpermute(float* dst, const float* acc, int hd) { unpermute_pairs512(dst, acc, hd); }
  template <int NV>
  static void update(float* acc, float corr, const float* p, const float* rows, int64_t rs, int count, int n_,
                     int64_t ahead) {
    const __m512 c = _mm512_set1_ps(corr);
    if constexpr (NV > 0 && NV <= 8) {
      update_block<NV>(acc, c, p, rows, rs, count, ahead);
    } else {
      const int n = NV > 0 ? NV * 16 : n_;
      int i = 0;
      for (; i + 64 <= n; i += 64) update_block<4>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0);
      switch ((n - i) / 16) {
        case 3: update_block<3>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
        case 2: update_block<2>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
        case 1: update_block<1>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
        default: break;
      }
    }
  }
};
#endif  // KVTIE_SIMD_AVX512

#ifdef KVTIE_SIMD_AVX2
struct Avx2 {
  static constexpr int W = 8;
  static constexpr DecodeIsa kIsa = DecodeIsa::avx2;
  static __m256 int8x8(__m128i codes) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes)); }
  // 16 int4 codes (8 bytes) as 16 signed bytes in element order (see Avx512::int4x32).
  static __m128i int4x16(const uint8_t* r) {
    const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r));
    const __m128i lo = _mm_and_si128(b, low), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    return _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), eight), eight);
  }
  template <KvDType T, int NV>
  static void convert_as(float* dst, int64_t ds, float* scales, const uint8_t* src, int64_t ss, int count, int hd_) {
    const int hd = NV > 0 ? NV * 8 : hd_;
    for (int j = 0; j < count; j++) {
      float* d = dst + j * ds;
      const uint8_t* r = src + j * ss;
      prefetch_ahead<kCacheAhead>(r, ss);
      int i = 0;
      if constexpr (T == KvDType::fp32) {
        for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(d + i, _mm256_loadu_ps(reinterpret_cast<const float*>(r + 4 * i)));
      } else if constexpr (T == KvDType::bf16) {
        for (; i + 8 <= hd; i += 8) {
          const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * i)));
          _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
      } else if constexpr (T == KvDType::fp16) {
#ifdef __F16C__
        for (; i + 8 <= hd; i += 8)
          _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * i))));
#endif
      } else if constexpr (T == KvDType::int8) {
        for (; i + 8 <= hd; i += 8)
          _mm256_storeu_ps(d + i, int8x8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + i))));
      } else {
        for (; i + 16 <= hd; i += 16) {  // within one group
          const __m128i e = int4x16(r + i / 2);
          const __m256 scale = _mm256_set1_ps(int4_scale(r, hd, i / kInt4Group));
          _mm256_storeu_ps(d + i, _mm256_mul_ps(int8x8(e), scale));
          _mm256_storeu_ps(d + i + 8, _mm256_mul_ps(int8x8(_mm_srli_si128(e, 8)), scale));
        }
      }
      if (NV == 0 || i < hd) convert_tail(d, r, i, hd, ds, T);
      scales[j] = row_scale(r, hd, T);
    }
  }
  template <int NV>
  static void convert(float* dst, int64_t ds, float* scales, const uint8_t* src, int64_t ss, int count, int hd,
                      KvDType t) {
    switch (t) {
      case KvDType::fp32: return convert_as<KvDType::fp32, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::bf16: return convert_as<KvDType::bf16, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::fp16: return convert_as<KvDType::fp16, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::int8: return convert_as<KvDType::int8, NV>(dst, ds, scales, src, ss, count, hd);
      case KvDType::int4: return convert_as<KvDType::int4, NV>(dst, ds, scales, src, ss, count, hd);
    }
  }
  template <int NV>
  static void scores(float* s, const float* q, const float* rows, int64_t rs, int count, int n_, int64_t ahead) {
    const int n = NV > 0 ? NV * 8 : n_;
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      const float* r0 = rows + j * rs;
      const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      if (ahead) prefetch_at(r0, ahead, 4 * 4 * rs);
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int i = 0; i < n; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(r0 + i), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(r1 + i), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(r2 + i), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(r3 + i), a3);
      }
      _mm_storeu_ps(s + j, hsum4(a0, a1, a2, a3));
    }
    for (; j < count; j++) {
      const float* r = rows + j * rs;
      if (ahead) prefetch_at(r, ahead, 4 * rs);
      __m256 a = _mm256_setzero_ps();
      for (int i = 0; i < n; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(r + i), a);
      s[j] = hsum(a);
    }
  }
  static void scale(float* s, const float* f, float c, int count) {
    const __m256 cv = _mm256_set1_ps(c);
    for (int j = 0; j < count; j += 8) {
      const __m256 k = f ? _mm256_mul_ps(_mm256_loadu_ps(f + j), cv) : cv;
      _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), k));
    }
  }
  static float max(const float* s, int count) {
    const __m256 ninf = _mm256_set1_ps(kNegInf);
    __m256 m = ninf;
    for (int j = 0; j < count; j += 8)
      m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + j), tail_mask8(count - j)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  static float exp_sum(float* s, int count, float shift) {
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < count; j += 8) {
      const __m256 p = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), sh)), tail_mask8(count - j));
      _mm256_storeu_ps(s + j, p);
      sum = _mm256_add_ps(sum, p);
    }
    return hsum(sum);
  }
  static float exp1(float x) { return _mm256_cvtss_f32(exp256(_mm256_set1_ps(x))); }
  static void mul(float* s, const float* f, int count) {
    for (int j = 0; j < count; j += 8)
      _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), _mm256_loadu_ps(f + j)));
  }
  template <int B>
  static void update_block(float* acc, __m256 corr, const float* p, const float* rows, int64_t rs, int count,
                           int64_t ahead) {
    __m256 a[B], b[B];
    for (int v = 0; v < B; v++) a[v] = _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * v), corr), b[v] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 2 <= count; j += 2) {
      const __m256 p0 = _mm256_set1_ps(p[j]), p1 = _mm256_set1_ps(p[j + 1]);
      const float* r0 = rows + j * rs;
      const float* r1 = r0 + rs;
      if (ahead) prefetch_at(r0, ahead, 2 * 4 * rs);
      for (int v = 0; v < B; v++) {
        a[v] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r0 + 8 * v), a[v]);
        b[v] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r1 + 8 * v), b[v]);
      }
    }
    if (j < count) {
      const __m256 p0 = _mm256_set1_ps(p[j]);
      const float* r0 = rows + j * rs;
      for (int v = 0; v < B; v++) a[v] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r0 + 8 * v), a[v]);
    }
    for (int v = 0; v < B; v++) _mm256_storeu_ps(acc + 8 * v, _mm256_add_ps(a[v], b[v]));
  }
  static __m128i hsum4i(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
  }
  static int32_t hsumi(__m256i a) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
  }
  // Codes [16b, 16b + 16) of a row as int16.
  static __m256i codes16(const uint8_t* r, int b) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 16 * b)));
  }
  template <int NB>
  static void iscores(float* s, const int16_t* q16, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int n = 2 * (NB > 0 ? NB : nb);  // 16-element blocks
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      const uint8_t* r0 = rows + j * rs;
      const uint8_t *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r0, 4 * rs);
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
      for (int b = 0; b < n; b++) {
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q16 + 16 * b));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(qv, codes16(r0, b)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(qv, codes16(r1, b)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(qv, codes16(r2, b)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(qv, codes16(r3, b)));
      }
      _mm_storeu_ps(s + j, _mm_cvtepi32_ps(hsum4i(a0, a1, a2, a3)));
    }
    for (; j < count; j++) {
      __m256i a = _mm256_setzero_si256();
      for (int b = 0; b < n; b++)
        a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q16 + 16 * b)),
                                                  codes16(rows + j * rs, b)));
      s[j] = static_cast<float>(hsumi(a));
    }
  }
  // Per 16 elements, lanes (L, k) of `lo` hold element 8L + k and of `hi` 8L + 4 + k.
  template <int NB>
  static void iupdate(float* acc, float corr, const float* w, const uint8_t* rows, int64_t rs, int count, int nb,
                      bool ahead) {
    const int n = 2 * (NB > 0 ? NB : nb);
    const float wmax = max(w, count);
    const __m256 c = _mm256_set1_ps(corr);
    if (!(wmax > 0)) {
      for (int v = 0; v < 2 * n; v++) _mm256_storeu_ps(acc + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * v), c));
      return;
    }
    const __m256 wmul = _mm256_set1_ps(32767.0f / wmax);
    alignas(32) int32_t wq[kPackedTile + 1] = {};
    for (int j = 0; j < count; j += 8)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(wq + j), _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(w + j), wmul)));
    for (int j = count; j < kPackedTile + 1; j++) wq[j] = 0;
    __m256i lo[16], hi[16];
    for (int b = 0; b < n; b++) lo[b] = _mm256_setzero_si256(), hi[b] = _mm256_setzero_si256();
    const __m256i z = _mm256_setzero_si256();
    for (int j = 0; j < count; j += 2) {
      const __m256i wp = _mm256_set1_epi32((wq[j] & 0xffff) | (wq[j + 1] << 16));
      const uint8_t* r0 = rows + j * rs;
      const uint8_t* r1 = r0 + rs;
      if (ahead) prefetch_ahead<kValueAhead>(r0, 2 * rs);
      const bool pair = j + 1 < count;
      for (int b = 0; b < n; b++) {
        const __m256i x0 = codes16(r0, b), x1 = pair ? codes16(r1, b) : z;
        lo[b] = _mm256_add_epi32(lo[b], _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wp));
        hi[b] = _mm256_add_epi32(hi[b], _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wp));
      }
    }
    const __m256 ws = _mm256_set1_ps(wmax / 32767.0f);
    for (int b = 0; b < n; b++) {
      float* a0 = acc + 16 * b;
      _mm256_storeu_ps(a0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo[b]), ws, _mm256_mul_ps(_mm256_loadu_ps(a0), c)));
      _mm256_storeu_ps(a0 + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi[b]), ws, _mm256_mul_ps(_mm256_loadu_ps(a0 + 8), c)));
    }
  }
  static void iunpermute(float* dst, const float* acc, int hd) {
    for (int i = 0; i < hd; i += 16) {
      const __m256 lo = _mm256_loadu_ps(acc + i), hi = _mm256_loadu_ps(acc + i + 8);
      _mm256_storeu_ps(dst + i, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(dst + i + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
  }
  template <int NV>
  static void update(float* acc, float corr, const float* p, const float* rows, int64_t rs, int count, int n_,
                     int64_t ahead) {
    const __m256 c = _mm256_set1_ps(corr);
    const int n = NV > 0 ? NV * 8 : n_;
    int i = 0;
    for (; i + 32 <= n; i += 32) update_block<4>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0);
    switch ((n - i) / 8) {
      case 3: update_block<3>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
      case 2: update_block<2>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
      case 1: update_block<1>(acc + i, c, p, rows + i, rs, count, i == 0 ? ahead : 0); break;
      default: break;
    }
  }
};
#endif  // KVTIE_SIMD_AVX2

// ---------------------------------------------------------------------------------------------
// The kernel, written once over the row arithmetic I.

using Item = DecodeWorkItem;

struct Args {
  const float* q;
  int64_t q_stride;
  const KvCache* cache;
  int layer, G, hd;
  float attn_scale;
};

// Per-thread scratch that outlives the call, so decode steps do not allocate.
struct Scratch {
  std::vector<float> kbuf, vbuf, kscale, vscale, sc, q, acc, m, l, qscale;
  std::vector<int16_t> q16;
};

// The query heads of the item's kv head: [G, hd].
const float* item_queries(const Item& it, const Args& a) {
  return a.q + it.b * a.q_stride + static_cast<int64_t>(it.g) * a.G * a.hd;
}

// The item's key and value rows (the same rows with K=V) from position 0, with its first rows
// (from it.first on) already asked for.
std::pair<const uint8_t*, const uint8_t*> start_rows(const Item& it, const Args& a) {
  const KvCache& cache = *a.cache;
  const uint8_t* keys = cache.keys(a.layer, it.b, it.g);
  const uint8_t* values = cache.values(a.layer, it.b, it.g);
  const int64_t vb = cache.vector_bytes();
  prefetch_start(keys + it.first * vb, cache.v_is_k() ? nullptr : values + it.first * vb);
  return {keys, values};
}

// One tile of the online softmax: the scores sc[0, count) times (f ? f[j] · c : c) become
// exp(score − new max); the running max m and sum l move on. Returns exp(old max − new max), the
// factor for what was summed before.
template <class I>
float softmax_tile(float* sc, const float* f, float c, int count, float& m, float& l) {
  I::scale(sc, f, c, count);
  const float new_max = std::max(m, I::max(sc, count));
  const float correction = new_max == m ? 1.0f : I::exp1(m - new_max);
  l = l * correction + I::exp_sum(sc, count, new_max);
  m = new_max;
  return correction;
}

// One item: the online softmax over its positions, leaving (max, sum) per query head in ml and
// the unnormalised value sums in acc_out [G, hd].
template <class I, int NV>
void attend(const Item& it, const Args& a, Scratch& s, float* ml, float* acc_out) {
  const KvCache& cache = *a.cache;
  const KvDType dtype = cache.dtype();
  const int hd = NV > 0 ? NV * I::W : a.hd, G = a.G, n = NV > 0 ? hd : round_up(hd, I::W);
  const int64_t vb = cache.vector_bytes();
  const bool shared = cache.v_is_k(), quantised = dtype == KvDType::int8;  // rows scaled by row_scale
  const bool direct = dtype == KvDType::fp32 && hd % I::W == 0;  // rows read in place from the cache
  const float* qg = item_queries(it, a);
  for (int h = 0; h < G; h++) {
    std::copy(qg + static_cast<int64_t>(h) * hd, qg + static_cast<int64_t>(h + 1) * hd, s.q.begin() + h * n);
    std::fill(s.q.begin() + h * n + hd, s.q.begin() + (h + 1) * n, 0.0f);
  }
  std::fill(s.acc.begin(), s.acc.begin() + static_cast<int64_t>(G) * n, 0.0f);
  std::fill(s.m.begin(), s.m.begin() + G, kNegInf);
  std::fill(s.l.begin(), s.l.begin() + G, 0.0f);
  const auto [kbase, vbase] = start_rows(it, a);
  // K=V fp32 rows, read in place, in runs (tile_order.h); both passes then ask for the rows of the
  // tile read next, another run's. Rows read with a separate V (two streams already), converted,
  // or by the other kernels here were as fast or slower in runs. In position order the scores ask
  // for the rows 4 KiB on, the value sums 8 KiB on (prefetch.h).
  const bool runs = direct && shared;
  const TileOrder order(it.first, it.last, kTile, runs ? kReadStreams : 1);
  order.ask_run_starts(kbase, shared ? nullptr : vbase, vb);
  for (int t = 0; t < order.size(); t++) {
    const int first = order[t];
    const int count = std::min(kTile, it.last - first);
    int64_t k_ahead = direct ? kCacheAhead : 0, v_ahead = direct ? kValueAhead : 0;
    if (runs) k_ahead = v_ahead = t + 1 < order.size() ? (order[t + 1] - first) * vb : 0;
    const float *K, *V;
    int64_t ks, vs;
    const float *kscale = nullptr, *vscale = nullptr;
    if (direct) {
      K = reinterpret_cast<const float*>(kbase + first * vb), ks = hd;
    } else {
      I::template convert<NV>(s.kbuf.data(), n, s.kscale.data(), kbase + first * vb, vb, count, hd, dtype);
      K = s.kbuf.data(), ks = n;
      if (quantised) kscale = s.kscale.data();
    }
    if (shared) {  // K=V: the value rows are the key rows just read (and dequantised)
      V = K, vs = ks, vscale = kscale;
    } else if (direct) {
      V = reinterpret_cast<const float*>(vbase + first * vb), vs = hd;
    } else {
      I::template convert<NV>(s.vbuf.data(), n, s.vscale.data(), vbase + first * vb, vb, count, hd, dtype);
      V = s.vbuf.data(), vs = n;
      if (quantised) vscale = s.vscale.data();
    }
    for (int h = 0; h < G; h++) {
      float* sc = s.sc.data();
      I::template scores<NV>(sc, s.q.data() + h * n, K, ks, count, n, h == 0 ? k_ahead : 0);
      // the row's int8 scale folded into its score
      const float correction = softmax_tile<I>(sc, kscale, a.attn_scale, count, s.m[h], s.l[h]);
      if (vscale) I::mul(sc, vscale, count);  // ... and into its softmax weight
      I::template update<NV>(s.acc.data() + h * n, correction, sc, V, vs, count, n, h == 0 ? v_ahead : 0);
    }
  }
  for (int h = 0; h < G; h++) {
    ml[2 * h] = s.m[h], ml[2 * h + 1] = s.l[h];
    std::copy(s.acc.begin() + h * n, s.acc.begin() + h * n + hd, acc_out + static_cast<int64_t>(h) * hd);
  }
}

// The integer path of int8 caches, for head sizes that are a multiple of 32 up to 256.
// The rows are never widened to float: each query head is rounded once to int16 (q16 =
// round(q · 32767 / max|q|)) and its scores are exact int32 dot products with the codes, times
// max|q|/32767 · the row's scale; the value-sum weights (softmax weight · row scale) are rounded to
// int16 per tile (relative to the tile's largest) and summed with the codes in int32. Both
// roundings are 1/65534 of the largest value, far below the codes' own 1/254; every path, the
// scalar one included, rounds identically. The codes are read in place. (int4 rows, whose scale
// changes every kInt4Group elements, are widened to float with their scales applied instead.)
std::atomic<bool> g_int_path{true};
std::atomic<bool> g_int_bytes{true};  // attend_int_bytes where compiled (set_decode_int_bytes)

inline bool int_path(KvDType t, int hd) {
  if (!g_int_path.load(std::memory_order_relaxed)) return false;
  return t == KvDType::int8 && hd % 32 == 0 && hd <= 256;
}

template <class I, int NB>
void attend_int(const Item& it, const Args& a, Scratch& s, float* ml, float* acc_out) {
  const KvCache& cache = *a.cache;
  const int hd = a.hd, G = a.G, nb = hd / 32;
  const int64_t vb = cache.vector_bytes();
  const bool shared = cache.v_is_k();
  const float* qg = item_queries(it, a);
  for (int h = 0; h < G; h++)
    s.qscale[h] = round_to_int16(s.q16.data() + static_cast<size_t>(h) * hd, qg + static_cast<int64_t>(h) * hd, hd) *
                  a.attn_scale;
  std::fill(s.acc.begin(), s.acc.begin() + static_cast<int64_t>(G) * hd, 0.0f);
  std::fill(s.m.begin(), s.m.begin() + G, kNegInf);
  std::fill(s.l.begin(), s.l.begin() + G, 0.0f);
  const auto [kbase, vbase] = start_rows(it, a);
  for (int first = it.first; first < it.last; first += kPackedTile) {
    const int count = std::min(kPackedTile, it.last - first);
    const uint8_t* K = kbase + first * vb;
    const uint8_t* V = shared ? K : vbase + first * vb;
    for (int j = 0; j < count; j++) s.kscale[j] = row_scale(K + j * vb, hd, KvDType::int8);
    if (!shared)
      for (int j = 0; j < count; j++) s.vscale[j] = row_scale(V + j * vb, hd, KvDType::int8);
    const float* vscale = shared ? s.kscale.data() : s.vscale.data();
    for (int h = 0; h < G; h++) {
      float* sc = s.sc.data();
      I::template iscores<NB>(sc, s.q16.data() + static_cast<size_t>(h) * hd, K, vb, count, nb, h == 0);
      const float correction = softmax_tile<I>(sc, s.kscale.data(), s.qscale[h], count, s.m[h], s.l[h]);
      I::mul(sc, vscale, count);
      I::template iupdate<NB>(s.acc.data() + h * hd, correction, sc, V, vb, count, nb, h == 0);
    }
  }
  for (int h = 0; h < G; h++) {
    ml[2 * h] = s.m[h], ml[2 * h + 1] = s.l[h];
    I::iunpermute(acc_out + static_cast<int64_t>(h) * hd, s.acc.data() + h * hd, hd);
  }
}

#ifdef KVTIE_SIMD_AVX512_VNNI
// The integer path for one query head per kv head (MHA) at head_dim 64 or 128 (NZ = head_dim / 64),
// on the codes as stored, with byte dot products (vpdpbusd: 64 products per instruction).
// attend_int widens every code to int16 twice (for its score and for its value sum) and
// interleaves pairs of rows: three shuffles for each dot product. Here the int16 query and value
// weights are each split into two bytes (x = 256·hi + lo) instead, and no code is widened: from L3,
// 4.0–4.2 instead of 4.4–4.5 ns per position (bench/RESULTS.md, 12-07). The int32 sums are
// attend_int's exactly, and so is every result, bit for bit.
//   scores: q16 · c = 256·((c ⊕ 0x80) · qhi − 128·Σqhi) + qlo · c, as vpdpbusd multiplies
//           unsigned bytes by signed ones: c ⊕ 0x80 is c + 128 unsigned, qlo = q16 mod 256.
//   values: Σ_j w_j·c_j = 256·Σ_j whi_j·c_j + Σ_j wlo_j·c_j over rows j, with four rows' codes
//           interleaved per 32-bit lane (8 unpacks per 4 rows) and their weights' bytes broadcast.
//           The weights are ≥ 0, so both bytes are unsigned.
template <int NZ>
void attend_int_bytes(const Item& it, const Args& a, Scratch& s, float* ml, float* acc_out) {
  using I = Avx512;
  constexpr int hd = 64 * NZ;
  const KvCache& cache = *a.cache;
  const int64_t vb = cache.vector_bytes();
  const bool shared = cache.v_is_k();
  const float* q = item_queries(it, a);  // G = 1
  alignas(64) int16_t q16[hd];
  alignas(64) uint8_t qlo[hd];
  alignas(64) int8_t qhi[hd];
  const float qscale = round_to_int16(q16, q, hd) * a.attn_scale;
  int32_t hi_sum = 0;
  for (int i = 0; i < hd; i++) {
    qlo[i] = static_cast<uint8_t>(q16[i] & 0xff);
    qhi[i] = static_cast<int8_t>((q16[i] - qlo[i]) / 256);
    hi_sum += qhi[i];
  }
  const int32_t offset = -32768 * hi_sum;  // 256 · (−128 · Σqhi)
  const __m128i offset4 = _mm_set1_epi32(offset);
  __m512i qh[NZ], ql[NZ];
  for (int z = 0; z < NZ; z++) qh[z] = _mm512_load_si512(qhi + 64 * z), ql[z] = _mm512_load_si512(qlo + 64 * z);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  // q16 · c of row r but for the offset, spread over the lanes.
  auto dot = [&](const uint8_t* r) {
    __m512i hi = _mm512_setzero_si512(), lo = _mm512_setzero_si512();
    for (int z = 0; z < NZ; z++) {
      const __m512i c = in_register(_mm512_loadu_si512(r + 64 * z));
      hi = dot_bytes512(hi, _mm512_xor_si512(c, flip), qh[z]);
      lo = dot_bytes512(lo, ql[z], c);
    }
    return _mm512_add_epi32(_mm512_slli_epi32(hi, 8), lo);
  };
  // The value sums: lane (L, i) of vector k of 64-element block z holds element 64z + 16L + 4k + i,
  // the order the unpacks leave.
  alignas(64) float acc[hd] = {};
  float m = kNegInf, l = 0;
  const auto [kbase, vbase] = start_rows(it, a);
  float* sc = s.sc.data();
  for (int first = it.first; first < it.last; first += kPackedTile) {
    const int count = std::min(kPackedTile, it.last - first);
    const uint8_t* K = kbase + first * vb;
    const uint8_t* V = shared ? K : vbase + first * vb;
    for (int j = 0; j < count; j++) s.kscale[j] = row_scale(K + j * vb, hd, KvDType::int8);
    if (!shared)
      for (int j = 0; j < count; j++) s.vscale[j] = row_scale(V + j * vb, hd, KvDType::int8);
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      const uint8_t* r = K + j * vb;
      prefetch_ahead<kPackedAhead>(r, 4 * vb);
      const __m128i dots = I::hsum4i(dot(r), dot(r + vb), dot(r + 2 * vb), dot(r + 3 * vb));
      _mm_storeu_ps(sc + j, _mm_cvtepi32_ps(_mm_add_epi32(dots, offset4)));
    }
    for (; j < count; j++) sc[j] = static_cast<float>(_mm512_reduce_add_epi32(dot(K + j * vb)) + offset);
    const __m512 corr = _mm512_set1_ps(softmax_tile<I>(sc, s.kscale.data(), qscale, count, m, l));
    I::mul(sc, shared ? s.kscale.data() : s.vscale.data(), count);
    // The weights as attend_int rounds them, then split into bytes.
    alignas(64) int32_t wq[kPackedTile];
    const float wmax = I::round_weights(wq, sc, count);
    if (!(wmax > 0)) {
      for (int i = 0; i < hd; i += 16) _mm512_store_ps(acc + i, _mm512_mul_ps(_mm512_load_ps(acc + i), corr));
      continue;
    }
    alignas(64) uint32_t wlo[kPackedTile / 4], whi[kPackedTile / 4];  // rows 4t … 4t + 3's bytes in word t
    for (int j0 = 0; j0 < count; j0 += 16) {
      const __m512i w = _mm512_load_si512(wq + j0);
      const __m128i low = _mm512_cvtepi32_epi8(_mm512_and_si512(w, _mm512_set1_epi32(0xff)));
      _mm_store_si128(reinterpret_cast<__m128i*>(wlo + j0 / 4), low);
      _mm_store_si128(reinterpret_cast<__m128i*>(whi + j0 / 4), _mm512_cvtepi32_epi8(_mm512_srli_epi32(w, 8)));
    }
    __m512i lo[NZ][4], hi[NZ][4];
    for (int z = 0; z < NZ; z++)
      for (int k = 0; k < 4; k++) lo[z][k] = _mm512_setzero_si512(), hi[z][k] = _mm512_setzero_si512();
    // Rows j … j + 3 (`live` of them; the others zero) into the sums.
    auto add_rows = [&](int j0, int live) {
      const uint8_t* r = V + j0 * vb;
      if (!shared) prefetch_ahead<kValueAhead>(r, 4 * vb);
      const __m512i wl = _mm512_set1_epi32(static_cast<int>(wlo[j0 / 4]));
      const __m512i wh = _mm512_set1_epi32(static_cast<int>(whi[j0 / 4]));
      for (int z = 0; z < NZ; z++) {
        __m512i x[4];
        for (int y = 0; y < 4; y++) x[y] = y < live ? _mm512_loadu_si512(r + y * vb + 64 * z) : _mm512_setzero_si512();
        const __m512i ab0 = _mm512_unpacklo_epi8(x[0], x[1]), ab1 = _mm512_unpackhi_epi8(x[0], x[1]);
        const __m512i cd0 = _mm512_unpacklo_epi8(x[2], x[3]), cd1 = _mm512_unpackhi_epi8(x[2], x[3]);
        const __m512i v[4] = {_mm512_unpacklo_epi16(ab0, cd0), _mm512_unpackhi_epi16(ab0, cd0),
                              _mm512_unpacklo_epi16(ab1, cd1), _mm512_unpackhi_epi16(ab1, cd1)};
        for (int k = 0; k < 4; k++) {
          lo[z][k] = dot_bytes512(lo[z][k], wl, v[k]);
          hi[z][k] = dot_bytes512(hi[z][k], wh, v[k]);
        }
      }
    };
    for (j = 0; j + 4 <= count; j += 4) add_rows(j, 4);
    if (j < count) add_rows(j, count - j);
    const __m512 ws = _mm512_set1_ps(wmax / 32767.0f);
    for (int z = 0; z < NZ; z++)
      for (int k = 0; k < 4; k++) {
        float* at = acc + 64 * z + 16 * k;
        const __m512i sum = _mm512_add_epi32(_mm512_slli_epi32(hi[z][k], 8), lo[z][k]);
        _mm512_store_ps(at, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), ws, _mm512_mul_ps(_mm512_load_ps(at), corr)));
      }
  }
  ml[0] = m, ml[1] = l;
  for (int z = 0; z < NZ; z++)
    for (int k = 0; k < 4; k++)
      for (int L = 0; L < 4; L++)
        for (int i = 0; i < 4; i++) acc_out[64 * z + 16 * L + 4 * k + i] = acc[64 * z + 16 * k + 4 * L + i];
}
#endif

#ifdef KVTIE_SIMD_AVX512_BF16
// bf16 rows with one query head per kv head (MHA), read as stored: no float tile, no convert pass.
// The scores are vdpbf16ps of the row against the query split into hi + lo bf16 (16 significant
// bits; products of bf16 are exact in fp32, so the scores are as exact as float arithmetic on the
// rows), four rows at a time; the value sums widen each row as they read it (K=V: the rows the
// scores just read, from L1). NB = head_dim / 32.
template <int NB>
void attend_bf16(const Item& it, const Args& a, Scratch& s, float* ml, float* acc_out) {
  using I = Avx512;
  constexpr int hd = 32 * NB;
  const KvCache& cache = *a.cache;
  const int64_t vb = cache.vector_bytes();
  const bool shared = cache.v_is_k();
  const float* q = item_queries(it, a);  // G = 1
  alignas(64) uint16_t hi[hd], lo[hd];
  for (int i = 0; i < hd; i++) split_bf16(q[i], hi[i], lo[i]);
  __m512bh qh[NB], ql[NB];
  for (int b = 0; b < NB; b++)
    qh[b] = (__m512bh)_mm512_load_si512(hi + 32 * b), ql[b] = (__m512bh)_mm512_load_si512(lo + 32 * b);
  __m512 acc[2 * NB];
  for (auto& x : acc) x = _mm512_setzero_ps();
  float m = kNegInf, l = 0;
  const auto [kbase, vbase] = start_rows(it, a);
  auto dot = [&](const uint8_t* r) {
    __m512 d = _mm512_setzero_ps();
    for (int b = 0; b < NB; b++) {
      const __m512bh k = (__m512bh)_mm512_loadu_si512(r + 64 * b);
      d = dot_bf16_512(dot_bf16_512(d, k, qh[b]), k, ql[b]);
    }
    return d;
  };
  float* sc = s.sc.data();
  for (int first = it.first; first < it.last; first += kPackedTile) {
    const int count = std::min(kPackedTile, it.last - first);
    const uint8_t* K = kbase + first * vb;
    const uint8_t* V = shared ? K : vbase + first * vb;
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      const uint8_t* r = K + j * vb;
      prefetch_ahead<kPackedAhead>(r, 4 * vb);
      _mm_storeu_ps(sc + j, hsum4(dot(r), dot(r + vb), dot(r + 2 * vb), dot(r + 3 * vb)));
    }
    for (; j < count; j++) sc[j] = _mm512_reduce_add_ps(dot(K + j * vb));
    const __m512 c = _mm512_set1_ps(softmax_tile<I>(sc, nullptr, a.attn_scale, count, m, l));
    for (auto& x : acc) x = _mm512_mul_ps(x, c);
    for (j = 0; j < count; j++) {
      const uint8_t* v = V + j * vb;
      if (!shared) prefetch_ahead<kValueAhead>(v, vb);
      const __m512 p = _mm512_set1_ps(sc[j]);
      for (int h = 0; h < 2 * NB; h++) acc[h] = _mm512_fmadd_ps(p, I::load16(v, 16 * h, hd, KvDType::bf16), acc[h]);
    }
  }
  ml[0] = m, ml[1] = l;
  for (int h = 0; h < 2 * NB; h++) _mm512_storeu_ps(acc_out + 16 * h, acc[h]);
}
#endif

// One item through decode_group.h's path: all the group's heads vectorised together.
template <class I>
void attend_group(const Item& it, const Args& a, Scratch&, float* ml, float* acc_out) {
  const KvCache& cache = *a.cache;
  const int64_t vb = cache.vector_bytes();
  const DecodeGroupItem g{cache.keys(a.layer, it.b, it.g) + it.first * vb,
                          cache.values(a.layer, it.b, it.g) + it.first * vb,
                          vb,
                          cache.dtype(),
                          it.last - it.first,
                          a.hd,
                          a.G,
                          item_queries(it, a),
                          a.attn_scale,
                          int_path(cache.dtype(), a.hd)};
  decode_group_attend(g, ml, acc_out, I::kIsa);
}

}  // namespace

// The work list of one call (the items of each (sequence, kv head) pair from pair_begin[pair] on)
// and the items' partial states; `next` hands out the items.
struct DecodeAttentionWork::State {
  std::vector<Item> items;
  std::vector<int> pair_begin;
  std::vector<float> part_ml, part_acc;
  std::atomic<int64_t> next{0};
};

DecodeAttentionWork::DecodeAttentionWork() : state(std::make_unique<State>()) {}
DecodeAttentionWork::~DecodeAttentionWork() = default;

namespace {

template <class I>
void run(float* out, const float* q, int64_t q_stride, const KvCache& cache, int layer, const int* lengths, int B,
         const DecodeShape& shape, DecodeAttentionWork::State& w, bool in_team) {
  const int hd = shape.head_dim, kv = shape.n_kv_head, G = shape.n_head / shape.n_kv_head;
  const int n = round_up(hd, I::W);
  int64_t work = 0;  // cached vectors read by the whole call
  for (int b = 0; b < B; b++) work += static_cast<int64_t>(lengths[b]) * kv * hd;
  if (!in_team || omp_get_thread_num() == 0) {
    w.items.clear();
    w.pair_begin.assign(static_cast<size_t>(B) * kv + 1, 0);
    for (int b = 0; b < B; b++)
      for (int g = 0; g < kv; g++) {
        w.pair_begin[static_cast<size_t>(b) * kv + g] = static_cast<int>(w.items.size());
        for (int first = 0; first < lengths[b]; first += kDecodeChunk)
          w.items.push_back({b, g, first, std::min(lengths[b], first + kDecodeChunk)});
      }
    w.pair_begin.back() = static_cast<int>(w.items.size());
    w.part_ml.resize(w.items.size() * 2 * G);
    w.part_acc.resize(w.items.size() * G * hd);
    w.next.store(0, std::memory_order_relaxed);
  }
  if (in_team) team_barrier();  // the work list is complete
  const int64_t n_items = static_cast<int64_t>(w.items.size());
  const Args args{q, q_stride, &cache, layer, G, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
  // The common head sizes without a tail get loops unrolled at compile time.
  void (*attend_item)(const Item&, const Args&, Scratch&, float*, float*) = attend<I, 0>;
  if (I::W > 1 && hd % I::W == 0) {
    if (hd / I::W == 4) attend_item = attend<I, 4>;
    if (hd / I::W == 8) attend_item = attend<I, 8>;
  }
  const bool ints = int_path(cache.dtype(), hd);
  if (ints) attend_item = hd == 64 ? attend_int<I, 2> : hd == 128 ? attend_int<I, 4> : attend_int<I, 0>;
#ifdef KVTIE_SIMD_AVX512_VNNI
  if constexpr (std::is_same_v<I, Avx512>)
    if (ints && G == 1 && g_int_bytes.load(std::memory_order_relaxed)) {
      if (hd == 64) attend_item = attend_int_bytes<1>;
      if (hd == 128) attend_item = attend_int_bytes<2>;
    }
#endif
#ifdef KVTIE_SIMD_AVX512_BF16
  if constexpr (std::is_same_v<I, Avx512>)
    if (cache.dtype() == KvDType::bf16 && G == 1) {
      if (hd == 64) attend_item = attend_bf16<2>;
      if (hd == 128) attend_item = attend_bf16<4>;
    }
#endif
  // Several query heads per kv head: the vector paths serve them together.
  if constexpr (I::W > 1)
    if (decode_group_supported(hd, G)) attend_item = attend_group<I>;
  const Item* item = w.items.data();
  const int* begin = w.pair_begin.data();
  float* ml = w.part_ml.data();
  float* pacc = w.part_acc.data();
  auto team_part = [&] {
    thread_local Scratch s;
    s.kbuf.resize(static_cast<size_t>(kMaxTile) * n);
    s.vbuf.resize(cache.v_is_k() ? 0 : static_cast<size_t>(kMaxTile) * n);
    s.kscale.resize(kMaxTile, 1.0f);
    s.vscale.resize(kMaxTile, 1.0f);
    s.sc.resize(kMaxTile);
    s.q.resize(static_cast<size_t>(G) * n);
    s.acc.resize(static_cast<size_t>(G) * std::max(n, hd));
    s.m.resize(G);
    s.l.resize(G);
    s.qscale.resize(G);
    s.q16.resize(static_cast<size_t>(G) * hd);
    // Handed out as they are asked for: on a shared machine a thread that loses its core does not
    // hold up the others. But in runs of consecutive items, which lie side by side in the cache: a
    // thread then reads one long stream instead of restarting it every kDecodeChunk positions. One
    // item at a time, the kernel alone read 16k × 8 caches at 67–93% of the old read probe; in
    // runs, at 75–138%.
    const int64_t run_length = decode_run_length(n_items, omp_get_num_threads());
    for (int64_t i0; (i0 = w.next.fetch_add(run_length, std::memory_order_relaxed)) < n_items;)
      for (int64_t i = i0; i < std::min(n_items, i0 + run_length); i++)
        attend_item(item[i], args, s, ml + i * 2 * G, pacc + i * G * hd);
    team_barrier();  // every item's partial state is in
    // Merge each query head's chunks in position order.
    const Span heads = team_share(static_cast<int64_t>(B) * shape.n_head);
    for (int64_t bh = heads.begin; bh < heads.end; bh++) {
      const int b = static_cast<int>(bh / shape.n_head), head = static_cast<int>(bh % shape.n_head);
      const int g = head / G, h = head % G;
      float* o = out + bh * hd;
      const int i0 = begin[b * kv + g], i1 = begin[b * kv + g + 1];
      std::fill(o, o + hd, 0.0f);
      float m = kNegInf, l = 0;
      for (int i = i0; i < i1; i++) m = std::max(m, ml[static_cast<int64_t>(i) * 2 * G + 2 * h]);
      for (int i = i0; i < i1; i++) {
        const float wt = std::exp(ml[static_cast<int64_t>(i) * 2 * G + 2 * h] - m);
        l += ml[static_cast<int64_t>(i) * 2 * G + 2 * h + 1] * wt;
        const float* a = pacc + (static_cast<int64_t>(i) * G + h) * hd;
#pragma omp simd
        for (int x = 0; x < hd; x++) o[x] += wt * a[x];
      }
      const float inv = l > 0 ? 1.0f / l : 0.0f;
#pragma omp simd
      for (int x = 0; x < hd; x++) o[x] *= inv;
    }
  };
  if (in_team || !worth_threads(work)) return team_part();
#pragma omp parallel
  team_part();
}

DecodeIsa widest() {
#if defined(KVTIE_SIMD_AVX512)
  return DecodeIsa::avx512;
#elif defined(KVTIE_SIMD_AVX2)
  return DecodeIsa::avx2;
#else
  return DecodeIsa::scalar;
#endif
}

std::atomic<DecodeIsa> g_best{widest()};

DecodeIsa resolve(DecodeIsa isa) {
  if (isa == DecodeIsa::best) return g_best.load(std::memory_order_relaxed);
  if (!decode_isa_compiled(isa)) fail("decode attention: this build has no {} path", decode_isa_name(isa));
  return isa;
}

}  // namespace

bool decode_isa_compiled(DecodeIsa isa) {
  switch (isa) {
    case DecodeIsa::scalar:
    case DecodeIsa::best: return true;
    case DecodeIsa::avx2:
#ifdef KVTIE_SIMD_AVX2
      return true;
#else
      return false;
#endif
    case DecodeIsa::avx512:
#ifdef KVTIE_SIMD_AVX512
      return true;
#else
      return false;
#endif
  }
  return false;
}

DecodeIsa decode_isa_best() { return widest(); }

DecodeIsa decode_isa_resolve(DecodeIsa isa) { return resolve(isa); }
void set_decode_int_path(bool enabled) { g_int_path.store(enabled); }
void set_decode_int_bytes(bool enabled) { g_int_bytes.store(enabled); }
void set_decode_isa(DecodeIsa isa) { g_best.store(isa == DecodeIsa::best ? widest() : resolve(isa)); }

std::string_view decode_isa_name(DecodeIsa isa) {
  switch (isa) {
    case DecodeIsa::scalar: return "scalar";
    case DecodeIsa::avx2: return "avx2";
    case DecodeIsa::avx512: return "avx512";
    case DecodeIsa::best: return "best";
  }
  return "?";
}

void decode_attention(float* out, const float* q, int64_t q_stride, const KvCache& cache, int layer,
                      const int* lengths, int B, const DecodeShape& s, DecodeIsa isa, DecodeAttentionWork* work) {
  const bool in_team = omp_get_level() > 0 && omp_get_num_threads() > 1;
  if (in_team && !work && omp_get_thread_num() != 0) return;
  thread_local DecodeAttentionWork own;
  DecodeAttentionWork::State& w = *(work ? work : &own)->state;
  const bool team = in_team && work;
  switch (resolve(isa)) {
#ifdef KVTIE_SIMD_AVX512
    case DecodeIsa::avx512: return run<Avx512>(out, q, q_stride, cache, layer, lengths, B, s, w, team);
#endif
#ifdef KVTIE_SIMD_AVX2
    case DecodeIsa::avx2: return run<Avx2>(out, q, q_stride, cache, layer, lengths, B, s, w, team);
#endif
    default: return run<Scalar>(out, q, q_stride, cache, layer, lengths, B, s, w, team);
  }
}

void kv_rows_to_float(DecodeIsa isa, float* dst, int64_t dst_stride, float* scales, const uint8_t* src,
                      int64_t src_stride, int count, int hd, KvDType t) {
  switch (resolve(isa)) {
#ifdef KVTIE_SIMD_AVX512
    case DecodeIsa::avx512: return Avx512::convert<0>(dst, dst_stride, scales, src, src_stride, count, hd, t);
#endif
#ifdef KVTIE_SIMD_AVX2
    case DecodeIsa::avx2: return Avx2::convert<0>(dst, dst_stride, scales, src, src_stride, count, hd, t);
#endif
    default: return Scalar::convert<0>(dst, dst_stride, scales, src, src_stride, count, hd, t);
  }
}

}  // namespace kvtie
