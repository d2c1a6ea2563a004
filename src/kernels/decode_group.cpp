#include "kernels/decode_group.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/decode_attention.h"
#include "kernels/prefetch.h"
#include "kernels/simd.h"
#include "kvtie/error.h"

namespace kvtie {

#ifdef KVTIE_SIMD_AVX2
namespace {

constexpr int kRows = 32;           // positions per tile: its float rows stay in L1
constexpr int kLanes = 8;           // heads per block: one AVX2 vector of scores
// Bytes ahead of the row being read that fp32 rows are prefetched (kernels/prefetch.h); other
// formats are read, and prefetched, by kv_rows_to_float.
constexpr int64_t kGroupAhead = 4096;

// Lane h of the result is the horizontal sum of a[h].
inline __m256 hsum8(const __m256* a) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Per thread and reused, so that decode steps do not allocate.
struct GroupScratch {
  std::vector<float> q, acc, m, l, krows, vrows, kscale, vscale, p;
};

// p[j·8 + h] = q_h · row_j for the H (2, 4 or 8) heads of a block; lanes past H are 0. Two rows
// at a time, four heads at a time, so that each query vector loaded serves two rows: 6 loads per 8
// FMAs. Returns the lane-wise max over the rows. `ahead`: the rows are the cache's, prefetched ahead.
template <int NV, int H>
__m256 block_scores(float* p, const float* q, const float* rows, int64_t rs, const float* scale, int n, bool ahead) {
  constexpr int hd = 8 * NV, HQ = H < 4 ? H : 4;  // heads per pass
  __m256 most = _mm256_set1_ps(kNegInf);
  for (int j = 0; j < n; j += 2) {
    const bool pair = j + 1 < n;
    const float* r0 = rows + j * rs;
    const float* r1 = pair ? r0 + rs : r0;
    if (ahead) prefetch_ahead<kGroupAhead>(r0, 2 * 4 * rs);
    for (int h0 = 0; h0 < H; h0 += HQ) {
      // a[h] row j, a[4 + h] row j + 1
      __m256 a[kLanes];
      for (int h = 0; h < kLanes; h++) a[h] = _mm256_setzero_ps();
      // Unrolled further, GCC reloads k0/k1 for every FMA instead of keeping them in registers.
#pragma GCC unroll 2
      for (int c = 0; c < NV; c++) {
        const __m256 k0 = _mm256_loadu_ps(r0 + 8 * c), k1 = _mm256_loadu_ps(r1 + 8 * c);
        for (int h = 0; h < HQ; h++) {
          const __m256 qv = _mm256_loadu_ps(q + (h0 + h) * hd + 8 * c);
          a[h] = _mm256_fmadd_ps(k0, qv, a[h]);
          a[4 + h] = _mm256_fmadd_ps(k1, qv, a[4 + h]);
        }
      }
      // lanes 0–3: row j, heads h0…h0+3; lanes 4–7: row j + 1
      __m256 sums = hsum8(a);
      if (scale)  // an int8/int4 row's scale
        sums = _mm256_mul_ps(sums, _mm256_setr_m128(_mm_set1_ps(scale[j]), _mm_set1_ps(scale[pair ? j + 1 : j])));
      _mm_storeu_ps(p + kLanes * j + h0, _mm256_castps256_ps128(sums));
      if (pair) _mm_storeu_ps(p + kLanes * (j + 1) + h0, _mm256_extractf128_ps(sums, 1));
    }
    if (H < kLanes) {  // the lanes of absent heads hold 0
      for (int h = H; h < kLanes; h++) p[kLanes * j + h] = 0.0f;
      if (pair)
        for (int h = H; h < kLanes; h++) p[kLanes * (j + 1) + h] = 0.0f;
    }
    most = _mm256_max_ps(most, _mm256_loadu_ps(p + kLanes * j));
    if (pair) most = _mm256_max_ps(most, _mm256_loadu_ps(p + kLanes * (j + 1)));
  }
  return most;
}

// acc_h = acc_h · corr_h + Σ_j p[j·8 + h] · row_j for heads h, h + 1 (two = false: h alone), 32
// elements of the row at a time in registers. `ahead`: the rows are the cache's, prefetched ahead.
template <int NV>
void pair_values(float* acc, const float* corr, const float* p, int h, bool two, const float* rows, int64_t rs,
                 int n, bool ahead) {
  constexpr int hd = 8 * NV;
  float* A = acc + static_cast<int64_t>(h) * hd;
  float* B = A + hd;
  const __m256 ca = _mm256_set1_ps(corr[h]), cb = _mm256_set1_ps(corr[h + 1]);
  for (int c0 = 0; c0 < NV; c0 += 4) {
    __m256 a[4], b[4];
    for (int i = 0; i < 4; i++) {
      a[i] = _mm256_mul_ps(_mm256_loadu_ps(A + 8 * (c0 + i)), ca);
      b[i] = two ? _mm256_mul_ps(_mm256_loadu_ps(B + 8 * (c0 + i)), cb) : _mm256_setzero_ps();
    }
    for (int j = 0; j < n; j++) {
      const float* v = rows + j * rs + 8 * c0;
      if (ahead && c0 == 0) prefetch_ahead<kGroupAhead>(v, 4 * rs);
      const __m256 pa = _mm256_set1_ps(p[kLanes * j + h]), pb = _mm256_set1_ps(p[kLanes * j + h + 1]);
      for (int i = 0; i < 4; i++) {
        const __m256 x = _mm256_loadu_ps(v + 8 * i);
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

template <int NV>
void attend(const DecodeGroupItem& it, float* ml, float* acc_out) {
  constexpr int hd = 8 * NV;
  const int G = it.group, blocks = (G + kLanes - 1) / kLanes, padded = blocks * kLanes;
  const bool fp32 = it.dtype == KvDType::fp32, shared = it.values == it.keys;
  const bool quantised = it.dtype == KvDType::int8 || it.dtype == KvDType::int4;
  thread_local GroupScratch s;
  // The queries, scaled and padded with zero heads to whole blocks.
  s.q.assign(static_cast<size_t>(padded) * hd, 0.0f);
  for (int64_t i = 0; i < static_cast<int64_t>(G) * hd; i++) s.q[i] = it.q[i] * it.scale;
  s.acc.assign(static_cast<size_t>(padded) * hd, 0.0f);
  s.m.assign(padded, kNegInf);
  s.l.assign(padded, 0.0f);
  s.p.resize(static_cast<size_t>(kRows) * kLanes);
  if (!fp32) {
    s.krows.resize(static_cast<size_t>(kRows) * hd), s.kscale.resize(kRows);
    if (!shared) s.vrows.resize(static_cast<size_t>(kRows) * hd), s.vscale.resize(kRows);
  }
  for (int first = 0; first < it.count; first += kRows) {
    const int n = std::min(kRows, it.count - first);
    // The tile's rows as floats: fp32 in place, other formats widened (codes for int8/int4, whose
    // scales fold into the scores and the softmax weights).
    auto rows = [&](const uint8_t* base, std::vector<float>& buf, std::vector<float>& scales, const float*& out,
                    int64_t& stride, const float*& row_scale) {
      const uint8_t* src = base + first * it.stride;
      if (fp32) {
        out = reinterpret_cast<const float*>(src), stride = it.stride / 4, row_scale = nullptr;
        return;
      }
      kv_rows_to_float(DecodeIsa::avx2, buf.data(), hd, scales.data(), src, it.stride, n, hd, it.dtype);
      out = buf.data(), stride = hd, row_scale = quantised ? scales.data() : nullptr;
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
      const float* qb = s.q.data() + static_cast<int64_t>(b) * kLanes * hd;
      float* p = s.p.data();
      const bool ahead = fp32 && b == 0;  // the first block's pass reads the rows from memory
      const __m256 most = heads > 4   ? block_scores<NV, 8>(p, qb, K, ks, kscale, n, ahead)
                          : heads > 2 ? block_scores<NV, 4>(p, qb, K, ks, kscale, n, ahead)
                                      : block_scores<NV, 2>(p, qb, K, ks, kscale, n, ahead);
      // The online softmax of the block's heads, lane-wise.
      const __m256 old_max = _mm256_loadu_ps(s.m.data() + b * kLanes), new_max = _mm256_max_ps(old_max, most);
      const __m256 corr = exp256(_mm256_sub_ps(old_max, new_max));
      __m256 sum = _mm256_setzero_ps();
      for (int j = 0; j < n; j++) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p + kLanes * j), new_max));
        sum = _mm256_add_ps(sum, e);
        if (vscale) e = _mm256_mul_ps(e, _mm256_set1_ps(vscale[j]));
        _mm256_storeu_ps(p + kLanes * j, e);
      }
      float* l = s.l.data() + b * kLanes;
      _mm256_storeu_ps(l, _mm256_fmadd_ps(_mm256_loadu_ps(l), corr, sum));
      _mm256_storeu_ps(s.m.data() + b * kLanes, new_max);
      alignas(32) float c[kLanes];
      _mm256_store_ps(c, corr);
      float* acc = s.acc.data() + static_cast<int64_t>(b) * kLanes * hd;
      for (int h = 0; h < heads; h += 2)
        pair_values<NV>(acc, c, p, h, h + 1 < heads, V, vs, n, ahead && !shared && h == 0);
    }
  }
  for (int h = 0; h < G; h++) {
    ml[2 * h] = s.m[h], ml[2 * h + 1] = s.l[h];
    std::copy(s.acc.begin() + static_cast<int64_t>(h) * hd, s.acc.begin() + static_cast<int64_t>(h + 1) * hd,
              acc_out + static_cast<int64_t>(h) * hd);
  }
}

}  // namespace

bool decode_group_supported(int head_dim, int group) {
  return group >= 2 && head_dim % 32 == 0 && head_dim <= 256;
}

void decode_group_attend(const DecodeGroupItem& it, float* ml, float* acc) {
  switch (it.head_dim / 8) {
    case 4: return attend<4>(it, ml, acc);
    case 8: return attend<8>(it, ml, acc);
    case 12: return attend<12>(it, ml, acc);
    case 16: return attend<16>(it, ml, acc);
    case 20: return attend<20>(it, ml, acc);
    case 24: return attend<24>(it, ml, acc);
    case 28: return attend<28>(it, ml, acc);
    case 32: return attend<32>(it, ml, acc);
    default: fail("decode_group_attend: head_dim {} is not a multiple of 32 up to 256", it.head_dim);
  }
}

#else  // no AVX2: decode_attention's per-head path serves every group

bool decode_group_supported(int, int) { return false; }

void decode_group_attend(const DecodeGroupItem&, float*, float*) {
  fail("decode_group_attend: this build has no AVX2 path");
}

#endif

}  // namespace kvtie
