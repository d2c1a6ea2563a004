#include "kernels/decode_group.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/decode_attention.h"
#include "kernels/kv_codec.h"
#include "kernels/prefetch.h"
#include "kernels/simd.h"
#include "kvtie/error.h"

namespace kvtie {

#ifdef KVTIE_SIMD_AVX2
namespace {

// Positions per tile. Each tile ends in a chain of reductions (the softmax's maximum, the int8
// weights' largest) that the next tile's arithmetic cannot overlap, so tiles are as long as L1
// allows: 64 positions of bf16 rows or of int8 codes (widened to int16), where one MQA item took
// 8% (bf16) and 13% (int8) less time than at 32, and 128 gained little more; 32 of float rows,
// whose K and V tiles of 64 would fill most of L1 (there an fp32 item took 2% longer at 64).
constexpr int kRows = 64;
constexpr int kFloatRows = 32;
constexpr int kLanes = 8;  // heads per block: the scores of a row are kLanes floats, one AVX2 vector
// fp32 rows are prefetched as they are read (kCacheAhead, kValueAhead: kernels/prefetch.h); other
// formats are read, and prefetched, by kv_rows_to_float.

// Per thread and reused, so that decode steps do not allocate.
struct GroupScratch {
  std::vector<float> q, acc, m, l, krows, vrows, kscale, vscale, p, qscale;
  std::vector<int16_t> q16, qpairs16, k16, v16;  // the last three through aligned64
  std::vector<int32_t> pw;
  std::vector<uint16_t> qpairs;  // the bf16 path's queries (pack_queries_bf16), through aligned64
};

// `count` elements of v starting at a 64-byte boundary (v grows to hold them).
template <class T>
T* aligned64(std::vector<T>& v, size_t count) {
  v.resize(count + 64 / sizeof(T));
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
}

// The row arithmetic of a block of up to kLanes heads, one struct per instruction set. Both
// leave the same layout, the one the lane-wise online softmax of group_attend reads:
//   block_scores<HD, H>: p[j·8 + h] = q_h · row_j (times the row's int8 scale) for H heads
//            (2, 4 or 8), 0 in the lanes of absent heads (their queries are zero)
//   softmax: the online softmax of the block's heads, lane-wise: the running max m and sum l of
//            each head updated by the tile's scores, p[j·8 + h] = exp(score − new max) (times the
//            row's value scale), corr_h = exp(old max − new max)
//   values:  acc_h = acc_h · corr_h + Σ_j p[j·8 + h] · row_j for the block's heads
// `ahead`: the rows are the cache's, prefetched ahead as they are read.

struct GroupAvx2 {
  static constexpr DecodeIsa kIsa = DecodeIsa::avx2;

  // Lane h of the result is the horizontal sum of a[h].
  static __m256 hsum8(const __m256* a) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
  }

  // H (2, 4 or 8) heads; two rows at a time, four heads at a time, so that each query vector
  // loaded serves two rows: 6 loads per 8 FMAs.
  template <int HD, int H>
  static void block_scores(float* p, const float* q, const float* rows, int64_t rs, const float* scale, int n,
                           bool ahead) {
    constexpr int NV = HD / 8, HQ = H < 4 ? H : 4;  // heads per pass
    for (int j = 0; j < n; j += 2) {
      const bool pair = j + 1 < n;
      const float* r0 = rows + j * rs;
      const float* r1 = pair ? r0 + rs : r0;
      if (ahead) prefetch_ahead<kCacheAhead>(r0, 2 * 4 * rs);
      for (int h0 = 0; h0 < H; h0 += HQ) {
        // a[h] row j, a[4 + h] row j + 1
        __m256 a[kLanes];
        for (int h = 0; h < kLanes; h++) a[h] = _mm256_setzero_ps();
        // Unrolled further, GCC reloads k0/k1 for every FMA instead of keeping them in registers.
#pragma GCC unroll 2
        for (int c = 0; c < NV; c++) {
          const __m256 k0 = in_register(_mm256_loadu_ps(r0 + 8 * c)), k1 = in_register(_mm256_loadu_ps(r1 + 8 * c));
          for (int h = 0; h < HQ; h++) {
            const __m256 qv = _mm256_loadu_ps(q + (h0 + h) * HD + 8 * c);
            a[h] = _mm256_fmadd_ps(k0, qv, a[h]);
            a[4 + h] = _mm256_fmadd_ps(k1, qv, a[4 + h]);
          }
        }
        // lanes 0–3: row j, heads h0…h0+3; lanes 4–7: row j + 1
        __m256 sums = hsum8(a);
        if (scale)
          sums = _mm256_mul_ps(sums, _mm256_setr_m128(_mm_set1_ps(scale[j]), _mm_set1_ps(scale[pair ? j + 1 : j])));
        _mm_storeu_ps(p + kLanes * j + h0, _mm256_castps256_ps128(sums));
        if (pair) _mm_storeu_ps(p + kLanes * (j + 1) + h0, _mm256_extractf128_ps(sums, 1));
      }
      if (H < kLanes) {
        for (int h = H; h < kLanes; h++) p[kLanes * j + h] = 0.0f;
        if (pair)
          for (int h = H; h < kLanes; h++) p[kLanes * (j + 1) + h] = 0.0f;
      }
    }
  }

  // Heads h, h + 1 (two = false: h alone), 32 elements of the row at a time in registers.
  template <int HD>
  static void pair_values(float* acc, const float* corr, const float* p, int h, bool two, const float* rows,
                          int64_t rs, int n, bool ahead) {
    constexpr int NV = HD / 8;
    float* A = acc + static_cast<int64_t>(h) * HD;
    float* B = A + HD;
    const __m256 ca = _mm256_set1_ps(corr[h]), cb = _mm256_set1_ps(corr[h + 1]);
    for (int c0 = 0; c0 < NV; c0 += 4) {
      __m256 a[4], b[4];
      for (int i = 0; i < 4; i++) {
        a[i] = _mm256_mul_ps(_mm256_loadu_ps(A + 8 * (c0 + i)), ca);
        b[i] = two ? _mm256_mul_ps(_mm256_loadu_ps(B + 8 * (c0 + i)), cb) : _mm256_setzero_ps();
      }
      for (int j = 0; j < n; j++) {
        const float* v = rows + j * rs + 8 * c0;
        if (ahead && c0 == 0) prefetch_ahead<kValueAhead>(v, 4 * rs);
        const __m256 pa = _mm256_set1_ps(p[kLanes * j + h]), pb = _mm256_set1_ps(p[kLanes * j + h + 1]);
        for (int i = 0; i < 4; i++) {
          const __m256 x = in_register(_mm256_loadu_ps(v + 8 * i));
          a[i] = _mm256_fmadd_ps(pa, x, a[i]);
          b[i] = _mm256_fmadd_ps(pb, x, b[i]);
        }
      }
      for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(A + 8 * (c0 + i), a[i]);
        if (two) _mm256_storeu_ps(B + 8 * (c0 + i), b[i]);
      }
    }
  }

  template <int HD>
  static void values(float* acc, const float* corr, const float* p, int heads, const float* rows, int64_t rs, int n,
                     bool ahead) {
    for (int h = 0; h < heads; h += 2) pair_values<HD>(acc, corr, p, h, h + 1 < heads, rows, rs, n, ahead && h == 0);
  }

  static void softmax(float* p, int n, const float* vscale, float* m, float* l, float* corr) {
    __m256 most = _mm256_set1_ps(kNegInf);
    for (int j = 0; j < n; j++) most = _mm256_max_ps(most, _mm256_loadu_ps(p + kLanes * j));
    const __m256 old_max = _mm256_loadu_ps(m), new_max = _mm256_max_ps(old_max, most);
    const __m256 c = exp256(_mm256_sub_ps(old_max, new_max));
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < n; j++) {
      __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p + kLanes * j), new_max));
      sum = _mm256_add_ps(sum, e);
      if (vscale) e = _mm256_mul_ps(e, _mm256_set1_ps(vscale[j]));
      _mm256_storeu_ps(p + kLanes * j, e);
    }
    _mm256_storeu_ps(l, _mm256_fmadd_ps(_mm256_loadu_ps(l), c, sum));
    _mm256_storeu_ps(m, new_max);
    _mm256_storeu_ps(corr, c);
  }
};

#ifdef KVTIE_SIMD_AVX512
// With 32 registers of 16 floats, a pass holds 16 dot products (R rows × HQ heads) and reduces
// them into one vector; the value sums hold 4 heads × 64 elements.
struct GroupAvx512 {
  static constexpr DecodeIsa kIsa = DecodeIsa::avx512;

  // Lane i of the result is the horizontal sum of a[i]: pairs, then quads, then across the
  // 128-bit lanes twice. `add` adds two vectors (float, or int32 lanes held in float vectors: the
  // shuffles only move bits).
  template <class Add>
  static __m512 hsum16_by(const __m512* a, Add add) {
    __m512 s[8], u[4], w[2];
    for (int i = 0; i < 8; i++)  // per 128-bit lane: a[2i], a[2i+1], a[2i], a[2i+1]
      s[i] = add(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)  // per 128-bit lane: a[4i] … a[4i+3]
      u[i] = add(_mm512_shuffle_ps(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                 _mm512_shuffle_ps(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++)  // 128-bit lanes: u[2i] half 0, half 1, u[2i+1] half 0, half 1
      w[i] = add(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return add(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
               _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static __m512 hsum16(const __m512* a) {
    return hsum16_by(a, [](__m512 x, __m512 y) { return _mm512_add_ps(x, y); });
  }
  // The same of 16 vectors of int32 lanes, as floats.
  static __m512 hsum16i(const __m512i* a) {
    __m512 f[16];
    for (int i = 0; i < 16; i++) f[i] = _mm512_castsi512_ps(a[i]);
    const __m512 sum = hsum16_by(f, [](__m512 x, __m512 y) {
      return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(x), _mm512_castps_si512(y)));
    });
    return _mm512_cvtepi32_ps(_mm512_castps_si512(sum));
  }

  // Lanes x·HQ + h of `sums` (rows j + x < j + live, heads h < HQ) into p's 8-lane rows, 0 in the
  // lanes of absent heads.
  template <int HQ>
  static void store_scores(float* p, int j, int live, __m512 sums) {
    if constexpr (HQ == kLanes) {
      _mm512_mask_storeu_ps(p + kLanes * j, live == 2 ? __mmask16(0xffff) : __mmask16(0x00ff), sums);
    } else {
      alignas(64) float t[16];
      _mm512_store_ps(t, sums);
      for (int x = 0; x < live; x++) {
        float* row = p + kLanes * (j + x);
        std::copy(t + x * HQ, t + (x + 1) * HQ, row);
        std::fill(row + HQ, row + kLanes, 0.0f);
      }
    }
  }

  // Lane x·HQ + h (HQ = 2, 4 or 8; x < 16 / HQ) = scale[j + x], 0 past n (rows no one stores).
  // One load and one permute; a vector built by scalar stores would wait for them to retire
  // before its load (no store forwarding).
  template <int HQ>
  static __m512 lane_scales(const float* scale, int j, int n) {
    constexpr int kShift = HQ == 2 ? 1 : HQ == 4 ? 2 : 3;
    const __m512i row_of_lane =
        _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), kShift);
    const __mmask16 rows = static_cast<__mmask16>((1u << std::min(16 / HQ, n - j)) - 1);
    return _mm512_permutexvar_ps(row_of_lane, _mm512_maskz_loadu_ps(rows, scale + j));
  }

  // HQ heads (2, 4 or 8) × R = 16 / HQ rows per pass; lane r·HQ + h of the reduced vector is
  // row j + r, head h. A pass past the tile's end repeats its last row (and stores nothing of it).
  template <int HD, int HQ>
  static void block_scores(float* p, const float* q, const float* rows, int64_t rs, const float* scale, int n,
                           bool ahead) {
    constexpr int NV = HD / 16, R = 16 / HQ;
    for (int j = 0; j < n; j += R) {
      const int live = std::min(R, n - j);
      const float* r[R];
      for (int x = 0; x < R; x++) r[x] = rows + std::min(j + x, n - 1) * rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r[0], live * 4 * rs);
      __m512 a[16];
      for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
      for (int c = 0; c < NV; c++) {
        __m512 k[R];
        for (int x = 0; x < R; x++) k[x] = in_register(_mm512_loadu_ps(r[x] + 16 * c));
        for (int h = 0; h < HQ; h++) {
          const __m512 qv = in_register(_mm512_loadu_ps(q + h * HD + 16 * c));
          for (int x = 0; x < R; x++) a[x * HQ + h] = _mm512_fmadd_ps(k[x], qv, a[x * HQ + h]);
        }
      }
      __m512 sums = hsum16(a);
      if (scale) sums = _mm512_mul_ps(sums, lane_scales<HQ>(scale, j, n));
      store_scores<HQ>(p, j, live, sums);
    }
  }

  // ---- int8 rows kept integer (decode_attention.h: the integer path) ----
  // The queries are int16 (q16, each head rounded to its largest: qscale), the scores int32 dot
  // products of pairs (vpdpwssd), the value weights rounded to int16 per tile and head, and the
  // value sums int32 dot products of two rows' codes interleaved: each instruction does the work of
  // two FMAs, and the codes are never widened to float. Groups of 8 heads or more first widen a
  // tile's codes to int16 (widen_codes: Wide rows, 2·HD bytes), which their scores and value sums
  // then share; smaller groups read the cache's rows (HD codes, then the fp32 scale) in place,
  // where the extra pass would cost more (groups of 2: ~9%) than it saves.

  // Codes [32b, 32b + 32) of a row as int16: int8 codes widened, or Wide rows' int16 loaded.
  template <bool Wide = false>
  static __m512i codes32(const uint8_t* r, int b) {
    if constexpr (Wide) return _mm512_loadu_si512(r + 64 * b);
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 32 * b)));
  }
  static float row_scale(const uint8_t* r, int hd) {
    float f;
    std::memcpy(&f, r + hd, 4);
    return f;
  }

  // As block_scores: p[j·8 + h] = q_h · row_j · qscale[h] · kscale[j], from the int16 queries and
  // the rows' codes (`rs` bytes apart).
  template <int HD, int HQ, bool Wide>
  static void block_scores_int(float* p, const int16_t* q16, const float* qscale, const uint8_t* rows, int64_t rs,
                               const float* kscale, int n, bool ahead) {
    constexpr int NB = HD / 32, R = 16 / HQ;
    alignas(64) float f[16];
    for (int x = 0; x < R; x++)
      for (int h = 0; h < HQ; h++) f[x * HQ + h] = qscale[h];
    const __m512 qs = _mm512_load_ps(f);
    for (int j = 0; j < n; j += R) {
      const int live = std::min(R, n - j);
      const uint8_t* r[R];
      for (int x = 0; x < R; x++) r[x] = rows + std::min(j + x, n - 1) * rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r[0], live * rs);
      __m512i a[16];
      for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_si512();
      for (int b = 0; b < NB; b++) {
        __m512i k[R];
        for (int x = 0; x < R; x++) k[x] = in_register(codes32<Wide>(r[x], b));
        for (int h = 0; h < HQ; h++) {
          const __m512i qv = in_register(_mm512_loadu_si512(q16 + h * HD + 32 * b));
          for (int x = 0; x < R; x++) a[x * HQ + h] = dot_pairs512(a[x * HQ + h], k[x], qv);
        }
      }
      store_scores<HQ>(p, j, live, _mm512_mul_ps(hsum16i(a), _mm512_mul_ps(lane_scales<HQ>(kscale, j, n), qs)));
    }
  }

  // The tile's value weights p[j·8 + h] rounded to int16 per head (to ±32767 at the head's
  // largest, wscale[h] = largest / 32767), rows j and j + 1 packed into the 32-bit lane
  // pw[j/2 · 8 + h] (low half row j); an odd last row pairs with 0.
  static void pack_weights(int32_t* pw, float* wscale, const float* p, int n) {
    auto rows_mask = [n](int j) { return j + 1 < n ? __mmask16(0xffff) : __mmask16(0x00ff); };
    __m512 most = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 2) most = _mm512_max_ps(most, _mm512_maskz_loadu_ps(rows_mask(j), p + kLanes * j));
    const __m256 wmax = _mm256_max_ps(lo8(most), hi8(most));
    const __m256 mul = _mm256_div_ps(_mm256_set1_ps(32767.0f), _mm256_max_ps(wmax, _mm256_set1_ps(1e-30f)));
    _mm256_storeu_ps(wscale, _mm256_div_ps(wmax, _mm256_set1_ps(32767.0f)));
    const __m512 m2 = join8(mul, mul);
    const __m256i low16 = _mm256_set1_epi32(0xffff);
    for (int j = 0; j < n; j += 2) {
      // lanes 0–7 row j, 8–15 row j + 1 (0 past the tile's end)
      const __m512i w = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(rows_mask(j), p + kLanes * j), m2));
      const __m256i first = _mm512_castsi512_si256(w), second = _mm512_extracti64x4_epi64(w, 1);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pw + kLanes * (j / 2)),
                          _mm256_or_si256(_mm256_and_si256(first, low16), _mm256_slli_epi32(second, 16)));
    }
  }

  // Heads h0 … h0 + HV − 1: acc_h = acc_h · corr_h + wscale_h · Σ_j wq[j][h] · row_j (rows `rs`
  // bytes apart), BW of the row's blocks of 32 elements per pass over the rows (HV × BW × 2
  // accumulators), acc in the order unpermute_pairs512 restores.
  template <int HD, int HV, int BW, bool Wide>
  static void values_int(float* acc, const float* corr, const int32_t* pw, const float* wscale, int h0,
                         const uint8_t* rows, int64_t rs, int n, bool ahead) {
    for (int b0 = 0; b0 < HD / 32; b0 += BW) {
      __m512i lo[HV][BW], hi[HV][BW];
      for (int h = 0; h < HV; h++)
        for (int b = 0; b < BW; b++) lo[h][b] = _mm512_setzero_si512(), hi[h][b] = _mm512_setzero_si512();
      for (int j = 0; j < n; j += 2) {
        const uint8_t* r0 = rows + j * rs;
        if (ahead && b0 == 0) prefetch_ahead<kValueAhead>(r0, 2 * rs);
        __m512i w[HV];
        for (int h = 0; h < HV; h++) w[h] = _mm512_set1_epi32(pw[kLanes * (j / 2) + h0 + h]);
        for (int b = 0; b < BW; b++) {
          const __m512i x0 = codes32<Wide>(r0, b0 + b);
          const __m512i x1 = j + 1 < n ? codes32<Wide>(r0 + rs, b0 + b) : _mm512_setzero_si512();
          const __m512i ul = in_register(_mm512_unpacklo_epi16(x0, x1)), uh = in_register(_mm512_unpackhi_epi16(x0, x1));
          for (int h = 0; h < HV; h++) {
            lo[h][b] = dot_pairs512(lo[h][b], ul, w[h]);
            hi[h][b] = dot_pairs512(hi[h][b], uh, w[h]);
          }
        }
      }
      for (int h = 0; h < HV; h++) {
        const __m512 c = _mm512_set1_ps(corr[h0 + h]), ws = _mm512_set1_ps(wscale[h0 + h]);
        for (int b = 0; b < BW; b++) {
          float* a = acc + (h0 + h) * HD + 32 * (b0 + b);
          _mm512_storeu_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[h][b]), ws, _mm512_mul_ps(_mm512_loadu_ps(a), c)));
          _mm512_storeu_ps(
              a + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[h][b]), ws, _mm512_mul_ps(_mm512_loadu_ps(a + 16), c)));
        }
      }
    }
  }

  // Blocks of 8 heads compute as the bf16 path does: scores without horizontal sums
  // (block_scores_wide: a row's codes 4d … 4d + 3 broadcast to every pair of lanes, lane 2h + e of
  // query vector d holding head h's elements 4d + 2e, 4d + 2e + 1), and value sums of all 8 heads
  // per pass over the rows (values_int<HD, 8, 1, true>).

  // Where head h's element 4d + i goes among a query vector's 32 16-bit halves: lane 2h + i / 2,
  // half i % 2 (the blocks of 8 heads of bf16 and int8 rows).
  static constexpr int pair_lane(int h, int i) { return 2 * (2 * h + i / 2) + i % 2; }

  // Rows x and x + 1's sums in those lanes (a, b) → their 8 heads' scores, row x in lanes 0–7 and
  // x + 1 in 8–15. `add` as in hsum16_by.
  template <class Add>
  static __m512 pair_rows_by(__m512 a, __m512 b, Add add) {
    // per 128-bit lane L: row x heads 2L, 2L + 1, then row x + 1 the same
    const __m512 sums =
        add(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15), sums);
  }

  // qp[d·32 + pair_lane(h, i)] = head h's int16 query element 4d + i.
  static void pack_queries_int(int16_t* qp, const int16_t* q16, int hd) {
    for (int d = 0; d < hd / 4; d++)
      for (int h = 0; h < kLanes; h++)
        for (int i = 0; i < 4; i++) qp[d * 32 + pair_lane(h, i)] = q16[h * hd + 4 * d + i];
  }

  // dst[j·HD …] = row j's codes as int16, scale[j] = its scale.
  template <int HD>
  static void widen_codes(int16_t* dst, float* scale, const uint8_t* rows, int64_t rs, int n, bool ahead) {
    for (int j = 0; j < n; j++) {
      const uint8_t* r = rows + j * rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r, rs);
      for (int b = 0; b < HD / 32; b++) _mm512_store_si512(dst + j * HD + 32 * b, codes32(r, b));
      scale[j] = row_scale(r, HD);
    }
  }

  // p[j·8 + h] = q_h · row_j · qscale[h] · kscale[j] for the block's 8 heads, 8 rows at a time, each
  // row's even and odd steps of d in separate accumulators (16 chains).
  template <int HD>
  static void block_scores_wide(float* p, const int16_t* qp, const float* qscale, const int16_t* k16,
                                const float* kscale, int n) {
    constexpr int RB = 8;
    const __m256 qs8 = _mm256_loadu_ps(qscale);
    const __m512 qs = join8(qs8, qs8);
    for (int j = 0; j < n; j += RB) {
      const int live = std::min(RB, n - j);
      const int16_t* r[RB];
      for (int x = 0; x < RB; x++) r[x] = k16 + std::min(j + x, n - 1) * HD;
      __m512i even[RB], odd[RB];
      for (int x = 0; x < RB; x++) even[x] = _mm512_setzero_si512(), odd[x] = _mm512_setzero_si512();
      for (int d = 0; d < HD / 4; d += 2) {
        const __m512i q0 = _mm512_load_si512(qp + d * 32), q1 = _mm512_load_si512(qp + (d + 1) * 32);
        for (int x = 0; x < RB; x++) {
          int64_t k0, k1;
          std::memcpy(&k0, r[x] + 4 * d, 8);
          std::memcpy(&k1, r[x] + 4 * d + 4, 8);
          even[x] = in_register(dot_pairs512(even[x], _mm512_set1_epi64(k0), q0));
          odd[x] = in_register(dot_pairs512(odd[x], _mm512_set1_epi64(k1), q1));
        }
      }
      const auto add = [](__m512 u, __m512 v) {
        return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(u), _mm512_castps_si512(v)));
      };
      for (int x = 0; x < live; x += 2) {
        const __m512 sums = pair_rows_by(_mm512_castsi512_ps(_mm512_add_epi32(even[x], odd[x])),
                                         _mm512_castsi512_ps(_mm512_add_epi32(even[x + 1], odd[x + 1])), add);
        _mm512_mask_storeu_ps(p + kLanes * (j + x), x + 1 < live ? __mmask16(0xffff) : __mmask16(0x00ff),
                              _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_castps_si512(sums)),
                                            _mm512_mul_ps(lane_scales<kLanes>(kscale, j + x, n), qs)));
      }
    }
  }

  // Heads h0 … h0 + HV − 1, elements [16·c0, 16·(c0 + CW)) of each.
  template <int HD, int HV, int CW>
  static void chunk_values(float* acc, const float* corr, const float* p, int h0, int c0, const float* rows,
                           int64_t rs, int n, bool ahead) {
    __m512 a[HV][CW];
    for (int h = 0; h < HV; h++) {
      const __m512 c = _mm512_set1_ps(corr[h0 + h]);
      for (int i = 0; i < CW; i++) a[h][i] = _mm512_mul_ps(_mm512_loadu_ps(acc + (h0 + h) * HD + 16 * (c0 + i)), c);
    }
    for (int j = 0; j < n; j++) {
      const float* v = rows + j * rs + 16 * c0;
      if (ahead) prefetch_ahead<kValueAhead>(v, 4 * rs);
      __m512 x[CW];
      for (int i = 0; i < CW; i++) x[i] = in_register(_mm512_loadu_ps(v + 16 * i));
      for (int h = 0; h < HV; h++) {
        const __m512 w = _mm512_set1_ps(p[kLanes * j + h0 + h]);
        for (int i = 0; i < CW; i++) a[h][i] = _mm512_fmadd_ps(w, x[i], a[h][i]);
      }
    }
    for (int h = 0; h < HV; h++)
      for (int i = 0; i < CW; i++) _mm512_storeu_ps(acc + (h0 + h) * HD + 16 * (c0 + i), a[h][i]);
  }

  template <int HD, int HV>
  static void head_values(float* acc, const float* corr, const float* p, int h0, const float* rows, int64_t rs, int n,
                          bool ahead) {
    constexpr int NV = HD / 16;  // even: head sizes are multiples of 32
    for (int c0 = 0; c0 + 4 <= NV; c0 += 4)
      chunk_values<HD, HV, 4>(acc, corr, p, h0, c0, rows, rs, n, ahead && c0 == 0);
    if constexpr (NV % 4 != 0) chunk_values<HD, HV, 2>(acc, corr, p, h0, NV / 4 * 4, rows, rs, n, ahead && NV < 4);
  }

  // The halves of a vector, and a vector of two halves (AVX-512 F, without DQ's f32x8 forms).
  static __m256 lo8(__m512 x) { return _mm512_castps512_ps256(x); }
  static __m256 hi8(__m512 x) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)); }
  static __m512 join8(__m256 a, __m256 b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(a)), _mm256_castps_pd(b), 1));
  }

  // Two rows per vector: lanes 0–7 row j, 8–15 row j + 1.
  static void softmax(float* p, int n, const float* vscale, float* m, float* l, float* corr) {
    auto rows_mask = [n](int j) { return j + 1 < n ? __mmask16(0xffff) : __mmask16(0x00ff); };
    __m512 most = _mm512_set1_ps(kNegInf);
    for (int j = 0; j < n; j += 2) most = _mm512_max_ps(most, _mm512_mask_loadu_ps(most, rows_mask(j), p + kLanes * j));
    const __m256 old_max = _mm256_loadu_ps(m);
    const __m256 new_max = _mm256_max_ps(old_max, _mm256_max_ps(lo8(most), hi8(most)));
    const __m512 shift = join8(new_max, new_max);
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 2) {
      const __mmask16 k = rows_mask(j);
      __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + kLanes * j), shift)));
      sum = _mm512_add_ps(sum, e);
      if (vscale)
        e = _mm512_mul_ps(e, join8(_mm256_set1_ps(vscale[j]), _mm256_set1_ps(vscale[j + 1 < n ? j + 1 : j])));
      _mm512_mask_storeu_ps(p + kLanes * j, k, e);
    }
    const __m256 c = exp256(_mm256_sub_ps(old_max, new_max));
    const __m256 total = _mm256_add_ps(lo8(sum), hi8(sum));
    _mm256_storeu_ps(l, _mm256_fmadd_ps(_mm256_loadu_ps(l), c, total));
    _mm256_storeu_ps(m, new_max);
    _mm256_storeu_ps(corr, c);
  }

#ifdef KVTIE_SIMD_AVX512_BF16
  // ---- bf16 rows read as stored, blocks of 8 heads ----
  // The scores need no horizontal sums: a row's elements 4d … 4d + 3 are broadcast to every pair
  // of lanes, and lane 2h + e of query vector d holds head h's elements 4d + 2e and 4d + 2e + 1,
  // so vdpbf16ps adds two of head h's products into each of its two lanes; those two lanes are
  // added once per row. Each query element is the sum of two bf16 (hi, lo: 16 significant bits),
  // so the scores are as exact as float arithmetic on the rows (the products of bf16 are exact in
  // fp32). The value sums widen each row as they read it: no tile of float rows, no second pass.

  // qp[(2d + k)·32 + pair_lane(h, i)]: k = 0 the hi part, 1 the lo part, of head h's element
  // 4d + i (q: 8 heads × hd, scaled). The split runs in element order, where it vectorises; as
  // pair_lane(h, i) = 4h + i, each head's 4 elements then move as one 8-byte word. Split in place,
  // the scattered stores kept it scalar: ~1 µs per item, 8% of a 1024-position MQA item.
  template <int HD>
  static void pack_queries_bf16(uint16_t* qp, const float* q) {
    static_assert(pair_lane(1, 0) == 4 && pair_lane(0, 3) == 3);
    alignas(64) uint16_t hi[kLanes * HD], lo[kLanes * HD];
#pragma omp simd
    for (int i = 0; i < kLanes * HD; i++) split_bf16(q[i], hi[i], lo[i]);
    for (int d = 0; d < HD / 4; d++)
      for (int h = 0; h < kLanes; h++) {
        std::memcpy(qp + 2 * d * 32 + 4 * h, hi + h * HD + 4 * d, 8);
        std::memcpy(qp + (2 * d + 1) * 32 + 4 * h, lo + h * HD + 4 * d, 8);
      }
  }

  // p[j·8 + h] = q_h · row_j for the block's 8 heads, 8 rows at a time: 16 accumulators (hi and lo
  // apart), so that 16 chains of HD/4 instructions hide vdpbf16ps's latency.
  template <int HD>
  static void block_scores_bf16(float* p, const uint16_t* qp, const uint8_t* rows, int64_t rs, int n, bool ahead) {
    constexpr int RB = 8;
    for (int j = 0; j < n; j += RB) {
      const int live = std::min(RB, n - j);
      const uint8_t* r[RB];
      for (int x = 0; x < RB; x++) r[x] = rows + std::min(j + x, n - 1) * rs;
      if (ahead) prefetch_ahead<kCacheAhead>(r[0], live * rs);
      __m512 hi[RB], lo[RB];
      for (int x = 0; x < RB; x++) hi[x] = _mm512_setzero_ps(), lo[x] = _mm512_setzero_ps();
      for (int d = 0; d < HD / 4; d++) {
        const __m512bh qh = (__m512bh)_mm512_load_si512(qp + (2 * d) * 32);
        const __m512bh ql = (__m512bh)_mm512_load_si512(qp + (2 * d + 1) * 32);
        for (int x = 0; x < RB; x++) {
          int64_t four;
          std::memcpy(&four, r[x] + 8 * d, 8);
          const __m512bh k = (__m512bh)_mm512_set1_epi64(four);
          hi[x] = dot_bf16_512(hi[x], k, qh);
          lo[x] = dot_bf16_512(lo[x], k, ql);
        }
      }
      for (int x = 0; x < live; x += 2)
        _mm512_mask_storeu_ps(p + kLanes * (j + x), x + 1 < live ? __mmask16(0xffff) : __mmask16(0x00ff),
                              pair_rows_by(_mm512_add_ps(hi[x], lo[x]), _mm512_add_ps(hi[x + 1], lo[x + 1]),
                                           [](__m512 u, __m512 v) { return _mm512_add_ps(u, v); }));
    }
  }

  // 16 bf16 as floats.
  static __m512 bf16x16(const uint8_t* v) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v))), 16));
  }

  // acc_h = acc_h · corr_h + Σ_j p[j·8 + h] · row_j for the block's 8 heads, 32 elements at a time
  // (16 accumulators): each row is widened once.
  template <int HD>
  static void values_bf16(float* acc, const float* corr, const float* p, const uint8_t* rows, int64_t rs, int n,
                          bool ahead) {
    for (int c0 = 0; c0 < HD / 16; c0 += 2) {
      __m512 a[kLanes][2];
      for (int h = 0; h < kLanes; h++) {
        const __m512 c = _mm512_set1_ps(corr[h]);
        for (int i = 0; i < 2; i++) a[h][i] = _mm512_mul_ps(_mm512_loadu_ps(acc + h * HD + 16 * (c0 + i)), c);
      }
      for (int j = 0; j < n; j++) {
        const uint8_t* v = rows + j * rs + 32 * c0;
        if (ahead && c0 == 0) prefetch_ahead<kValueAhead>(v, rs);
        const __m512 x0 = in_register(bf16x16(v)), x1 = in_register(bf16x16(v + 32));
        for (int h = 0; h < kLanes; h++) {
          const __m512 w = _mm512_set1_ps(p[kLanes * j + h]);
          a[h][0] = _mm512_fmadd_ps(w, x0, a[h][0]);
          a[h][1] = _mm512_fmadd_ps(w, x1, a[h][1]);
        }
      }
      for (int h = 0; h < kLanes; h++)
        for (int i = 0; i < 2; i++) _mm512_storeu_ps(acc + h * HD + 16 * (c0 + i), a[h][i]);
    }
  }
#endif  // KVTIE_SIMD_AVX512_BF16

  // Four heads at a time (two for the last one or two); a padded head's sums are never read.
  template <int HD>
  static void values(float* acc, const float* corr, const float* p, int heads, const float* rows, int64_t rs, int n,
                     bool ahead) {
    for (int h0 = 0; h0 < heads; h0 += 4) {
      if (heads - h0 > 2)
        head_values<HD, 4>(acc, corr, p, h0, rows, rs, n, ahead && h0 == 0);
      else
        head_values<HD, 2>(acc, corr, p, h0, rows, rs, n, ahead && h0 == 0);
    }
  }
};
#endif  // KVTIE_SIMD_AVX512

// A block of `heads` heads through R's scores kernel for 8, 4 or 2 heads (the queries of absent
// heads are zero).
// f(std::integral_constant<int, HQ>) for the scores kernel of a block of `heads` heads: 8, 4 or 2
// heads per pass (the queries of absent heads are zero).
template <class F>
void by_block_heads(int heads, F f) {
  if (heads > 4) return f(std::integral_constant<int, 8>{});
  if (heads > 2) return f(std::integral_constant<int, 4>{});
  f(std::integral_constant<int, 2>{});
}

// The state (max, sum, value sums) of every head into ml and acc_out.
void group_finish(const GroupScratch& s, int G, int hd, float* ml, float* acc_out) {
  for (int h = 0; h < G; h++) {
    ml[2 * h] = s.m[h], ml[2 * h + 1] = s.l[h];
    std::copy(s.acc.begin() + static_cast<int64_t>(h) * hd, s.acc.begin() + static_cast<int64_t>(h + 1) * hd,
              acc_out + static_cast<int64_t>(h) * hd);
  }
}

// The online softmax state of `padded` heads at its start, and the tile's score buffer.
void start_state(GroupScratch& s, int padded, int hd) {
  s.acc.assign(static_cast<size_t>(padded) * hd, 0.0f);
  s.m.assign(padded, kNegInf);
  s.l.assign(padded, 0.0f);
  s.p.resize(static_cast<size_t>(kRows) * kLanes);
}

#ifdef KVTIE_SIMD_AVX512
// As group_finish, the value sums from values_int's order to element order.
void group_finish_int(const GroupScratch& s, int G, int hd, float* ml, float* acc_out) {
  for (int h = 0; h < G; h++) {
    ml[2 * h] = s.m[h], ml[2 * h + 1] = s.l[h];
    unpermute_pairs512(acc_out + static_cast<int64_t>(h) * hd, s.acc.data() + static_cast<int64_t>(h) * hd, hd);
  }
}

// group_attend for int8 rows on the integer path: blocks of 8 heads through GroupAvx512's
// block_scores_wide, smaller ones through block_scores_int; groups of 8 heads or more on the tile's
// codes widened once (codes32).
template <int HD>
void group_attend_int(const DecodeGroupItem& it, float* ml, float* acc_out) {
  using R = GroupAvx512;
  const int G = it.group, blocks = (G + kLanes - 1) / kLanes, padded = blocks * kLanes;
  constexpr int NB = HD / 32, HV = NB <= 2 ? 4 : NB <= 4 ? 2 : 1;  // value sums: 8–16 accumulators
  constexpr int64_t kBlockQ = HD / 4 * 32;                          // a block's packed queries, in int16
  thread_local GroupScratch s;
  // The queries as int16, each head to its largest; absent heads zero.
  s.q16.assign(static_cast<size_t>(padded) * HD, 0);
  s.qscale.assign(padded, 0.0f);
  for (int h = 0; h < G; h++)
    s.qscale[h] = round_to_int16(s.q16.data() + static_cast<size_t>(h) * HD, it.q + static_cast<int64_t>(h) * HD, HD) *
                  it.scale;
  auto heads_of = [G](int b) { return std::min(kLanes, G - b * kLanes); };
  int16_t* qp = aligned64(s.qpairs16, static_cast<size_t>(blocks * kBlockQ));
  for (int b = 0; b < blocks; b++)
    if (heads_of(b) == kLanes) R::pack_queries_int(qp + b * kBlockQ, s.q16.data() + b * kLanes * HD, HD);
  start_state(s, padded, HD);
  s.pw.resize(static_cast<size_t>(kRows) / 2 * kLanes);
  s.kscale.resize(kRows), s.vscale.resize(kRows);
  const bool shared = it.values == it.keys;
  const float* vscale = shared ? s.kscale.data() : s.vscale.data();
  // The tile's rows as the kernels read them (Wide: widened here), and their scales.
  auto tiles = [&](auto wide) {
    constexpr bool Wide = decltype(wide)::value;
    int16_t* k16 = Wide ? aligned64(s.k16, static_cast<size_t>(kRows) * HD) : nullptr;
    int16_t* v16 = Wide && !shared ? aligned64(s.v16, static_cast<size_t>(kRows) * HD) : k16;
    const int64_t rs = Wide ? 2 * HD : it.stride;
    for (int first = 0; first < it.count; first += kRows) {
      const int n = std::min(kRows, it.count - first);
      const uint8_t *K = it.keys + first * it.stride, *V = it.values + first * it.stride;
      if constexpr (Wide) {
        R::widen_codes<HD>(k16, s.kscale.data(), K, it.stride, n, true);
        if (!shared) R::widen_codes<HD>(v16, s.vscale.data(), V, it.stride, n, true);
        K = reinterpret_cast<const uint8_t*>(k16), V = reinterpret_cast<const uint8_t*>(v16);
      } else {
        for (int j = 0; j < n; j++) s.kscale[j] = R::row_scale(K + j * it.stride, HD);
        if (!shared)
          for (int j = 0; j < n; j++) s.vscale[j] = R::row_scale(V + j * it.stride, HD);
      }
      for (int b = 0; b < blocks; b++) {
        const int heads = heads_of(b);
        const float* qs = s.qscale.data() + b * kLanes;
        float* p = s.p.data();
        const bool ahead = !Wide && b == 0;  // the first block's pass reads the rows from the cache
        float* acc = s.acc.data() + static_cast<int64_t>(b) * kLanes * HD;
        if (Wide && heads == kLanes) {
          R::block_scores_wide<HD>(p, qp + b * kBlockQ, qs, k16, s.kscale.data(), n);
        } else {
          by_block_heads(heads, [&](auto hq) {
            R::block_scores_int<HD, hq(), Wide>(p, s.q16.data() + b * kLanes * HD, qs, K, rs, s.kscale.data(), n,
                                                ahead);
          });
        }
        alignas(32) float c[kLanes], ws[kLanes];
        R::softmax(p, n, vscale, s.m.data() + b * kLanes, s.l.data() + b * kLanes, c);
        R::pack_weights(s.pw.data(), ws, p, n);
        if (heads == kLanes)
          R::values_int<HD, kLanes, 1, Wide>(acc, c, s.pw.data(), ws, 0, V, rs, n, ahead);
        else
          for (int h0 = 0; h0 < heads; h0 += HV)
            R::values_int<HD, HV, NB, Wide>(acc, c, s.pw.data(), ws, h0, V, rs, n, ahead && h0 == 0);
      }
    }
  };
  if (G >= kLanes)
    tiles(std::true_type{});
  else
    tiles(std::false_type{});
  group_finish_int(s, G, HD, ml, acc_out);
}
#endif

#ifdef KVTIE_SIMD_AVX512_BF16
// group_attend for bf16 rows and groups of whole blocks of 8 heads (GroupAvx512's *_bf16 kernels).
template <int HD>
void group_attend_bf16(const DecodeGroupItem& it, float* ml, float* acc_out) {
  using R = GroupAvx512;
  const int G = it.group, blocks = G / kLanes;
  constexpr int64_t kBlockPairs = HD / 4 * 64;  // a block's packed queries, in uint16
  thread_local GroupScratch s;
  s.q.resize(static_cast<size_t>(G) * HD);
  for (int64_t i = 0; i < static_cast<int64_t>(G) * HD; i++) s.q[i] = it.q[i] * it.scale;
  uint16_t* qp = aligned64(s.qpairs, static_cast<size_t>(blocks * kBlockPairs));
  for (int b = 0; b < blocks; b++)
    R::template pack_queries_bf16<HD>(qp + b * kBlockPairs, s.q.data() + static_cast<int64_t>(b) * kLanes * HD);
  start_state(s, G, HD);
  const bool shared = it.values == it.keys;
  for (int first = 0; first < it.count; first += kRows) {
    const int n = std::min(kRows, it.count - first);
    const uint8_t* K = it.keys + first * it.stride;
    const uint8_t* V = it.values + first * it.stride;
    for (int b = 0; b < blocks; b++) {
      float* p = s.p.data();
      R::block_scores_bf16<HD>(p, qp + b * kBlockPairs, K, it.stride, n, b == 0);
      alignas(32) float c[kLanes];
      R::softmax(p, n, nullptr, s.m.data() + b * kLanes, s.l.data() + b * kLanes, c);
      // With K=V the score pass has just read these rows.
      R::values_bf16<HD>(s.acc.data() + static_cast<int64_t>(b) * kLanes * HD, c, p, V, it.stride, n,
                         b == 0 && !shared);
    }
  }
  group_finish(s, G, HD, ml, acc_out);
}
#endif

template <class R, int HD>
void group_attend(const DecodeGroupItem& it, float* ml, float* acc_out) {
#ifdef KVTIE_SIMD_AVX512
  if constexpr (R::kIsa == DecodeIsa::avx512)
    if (it.int_codes) return group_attend_int<HD>(it, ml, acc_out);
#endif
#ifdef KVTIE_SIMD_AVX512_BF16
  if constexpr (R::kIsa == DecodeIsa::avx512)
    if (it.dtype == KvDType::bf16 && it.group % kLanes == 0) return group_attend_bf16<HD>(it, ml, acc_out);
#endif
  const int G = it.group, blocks = (G + kLanes - 1) / kLanes, padded = blocks * kLanes;
  const bool fp32 = it.dtype == KvDType::fp32, shared = it.values == it.keys;
  const bool quantised = it.dtype == KvDType::int8;  // rows widened to codes, scaled per row
  thread_local GroupScratch s;
  // The queries, scaled and padded with zero heads to whole blocks.
  s.q.assign(static_cast<size_t>(padded) * HD, 0.0f);
  for (int64_t i = 0; i < static_cast<int64_t>(G) * HD; i++) s.q[i] = it.q[i] * it.scale;
  start_state(s, padded, HD);
  if (!fp32) {
    s.krows.resize(static_cast<size_t>(kFloatRows) * HD), s.kscale.resize(kFloatRows);
    if (!shared) s.vrows.resize(static_cast<size_t>(kFloatRows) * HD), s.vscale.resize(kFloatRows);
  }
  for (int first = 0; first < it.count; first += kFloatRows) {
    const int n = std::min(kFloatRows, it.count - first);
    // The tile's rows as floats: fp32 in place, other formats widened (codes for int8, whose scales
    // fold into the scores and the softmax weights; int4 with its group scales applied).
    auto rows = [&](const uint8_t* base, std::vector<float>& buf, std::vector<float>& scales, const float*& out,
                    int64_t& stride, const float*& row_scale) {
      const uint8_t* src = base + first * it.stride;
      if (fp32) {
        out = reinterpret_cast<const float*>(src), stride = it.stride / 4, row_scale = nullptr;
        return;
      }
      kv_rows_to_float(R::kIsa, buf.data(), HD, scales.data(), src, it.stride, n, HD, it.dtype);
      out = buf.data(), stride = HD, row_scale = quantised ? scales.data() : nullptr;
    };
    const float *K, *V, *kscale, *vscale;
    int64_t ks, vs;
    rows(it.keys, s.krows, s.kscale, K, ks, kscale);
    if (shared)
      V = K, vs = ks, vscale = kscale;
    else
      rows(it.values, s.vrows, s.vscale, V, vs, vscale);
    for (int b = 0; b < blocks; b++) {
      const int heads = std::min(kLanes, G - b * kLanes);
      const float* qb = s.q.data() + static_cast<int64_t>(b) * kLanes * HD;
      float* p = s.p.data();
      const bool ahead = fp32 && b == 0;  // the first block's pass reads the rows from memory
      by_block_heads(heads, [&](auto hq) { R::template block_scores<HD, hq()>(p, qb, K, ks, kscale, n, ahead); });
      alignas(32) float c[kLanes];
      R::softmax(p, n, vscale, s.m.data() + b * kLanes, s.l.data() + b * kLanes, c);
      float* acc = s.acc.data() + static_cast<int64_t>(b) * kLanes * HD;
      R::template values<HD>(acc, c, p, heads, V, vs, n, ahead);
    }
  }
  group_finish(s, G, HD, ml, acc_out);
}

template <class R>
void group_attend_hd(const DecodeGroupItem& it, float* ml, float* acc) {
  switch (it.head_dim) {
    case 32: return group_attend<R, 32>(it, ml, acc);
    case 64: return group_attend<R, 64>(it, ml, acc);
    case 96: return group_attend<R, 96>(it, ml, acc);
    case 128: return group_attend<R, 128>(it, ml, acc);
    case 160: return group_attend<R, 160>(it, ml, acc);
    case 192: return group_attend<R, 192>(it, ml, acc);
    case 224: return group_attend<R, 224>(it, ml, acc);
    case 256: return group_attend<R, 256>(it, ml, acc);
    default: fail("decode_group_attend: head_dim {} is not a multiple of 32 up to 256", it.head_dim);
  }
}

}  // namespace

bool decode_group_supported(int head_dim, int group) {
  return group >= 2 && head_dim % 32 == 0 && head_dim <= 256;
}

void decode_group_attend(const DecodeGroupItem& it, float* ml, float* acc, DecodeIsa isa) {
#ifdef KVTIE_SIMD_AVX512
  if (isa == DecodeIsa::avx512) return group_attend_hd<GroupAvx512>(it, ml, acc);
#endif
  if (isa == DecodeIsa::avx2) return group_attend_hd<GroupAvx2>(it, ml, acc);
  fail("decode_group_attend: this build has no {} path", decode_isa_name(isa));
}

#else  // no AVX2: decode_attention's per-head path serves every group

bool decode_group_supported(int, int) { return false; }

void decode_group_attend(const DecodeGroupItem&, float*, float*, DecodeIsa) {
  fail("decode_group_attend: this build has no AVX2 path");
}

#endif

}  // namespace kvtie
