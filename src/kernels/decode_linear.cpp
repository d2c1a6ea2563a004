#include "kernels/decode_linear.h"

#include <algorithm>
#include <cstring>

#include "kernels/linear.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace kvtie {
namespace {

constexpr int kBlock = 16;  // output columns per scheduling unit (16 weight rows)
// How far ahead of the columns being read the weight rows are prefetched. Asked for a row pair at
// a time, the prefetch gave ~7% more tokens/s at batch 1 and 256–1k context (where the weights are
// most of the bytes), but perf at batch 8 found the FMAs stalled behind those bursts: one cache
// line per 64 bytes read instead.
constexpr int kWeightAhead = 1024;  // floats (4 KiB)

// out[n, oc] for oc in [oc0, oc1): plain C++, one dot product per output.
void rows_scalar(float* out, const float* x, const float* w, int N, int C, int OC, int oc0, int oc1) {
  for (int oc = oc0; oc < oc1; oc++) {
    const float* wr = w + static_cast<int64_t>(oc) * C;
    for (int n = 0; n < N; n++) {
      const float* xr = x + static_cast<int64_t>(n) * C;
      float a = 0;
#pragma omp simd reduction(+ : a)
      for (int c = 0; c < C; c++) a += wr[c] * xr[c];
      out[static_cast<int64_t>(n) * OC + oc] = a;
    }
  }
}

// Row i of each of the S runs of `run` rows that split [oc0, oc1), and its weights. A run's row
// past the range reads the first run's row again (and is not stored).
template <int S>
void run_rows(int* oc, const float** wr, const float* w, int C, int oc0, int oc1, int run, int i) {
  for (int r = 0; r < S; r++) {
    oc[r] = oc0 + r * run + i;
    wr[r] = w + static_cast<int64_t>(oc[r] < oc1 ? oc[r] : oc[0]) * C;
  }
}

#ifdef KVTIE_SIMD_AVX512
// NB inputs (NB ≤ 8) against weight rows [oc0, oc1), read as S streams side by side: the range
// splits into S runs, and each step takes the next row of every run (S·NB accumulators: S = 4 up to
// 4 inputs, 3 above). Read as one stream, the weights came at ~60% of the machine's read rate.
// `ahead`: the weight rows come from memory: prefetch them.
template <int NB>
void rows_avx512(float* out, const float* x, const float* w, int C, int OC, int oc0, int oc1, bool ahead) {
  constexpr int S = NB <= 4 ? 4 : 3;
  const __mmask16 tail = static_cast<__mmask16>((1u << (C % 16)) - 1);
  const int full = C / 16 * 16, run = (oc1 - oc0 + S - 1) / S;
  for (int i = 0; i < run; i++) {
    int oc[S];
    const float* wr[S];
    run_rows<S>(oc, wr, w, C, oc0, oc1, run, i);
    __m512 a[S][NB];
    for (int r = 0; r < S; r++)
      for (int n = 0; n < NB; n++) a[r][n] = _mm512_setzero_ps();
    for (int c = 0; c < full; c += 16) {
      __m512 wv[S];
      for (int r = 0; r < S; r++) {
        if (ahead) __builtin_prefetch(wr[r] + c + kWeightAhead);
        wv[r] = in_register(_mm512_loadu_ps(wr[r] + c));
      }
      for (int n = 0; n < NB; n++) {
        const __m512 xv = in_register(_mm512_loadu_ps(x + static_cast<int64_t>(n) * C + c));
        for (int r = 0; r < S; r++) a[r][n] = _mm512_fmadd_ps(wv[r], xv, a[r][n]);
      }
    }
    if (full < C) {
      for (int n = 0; n < NB; n++) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail, x + static_cast<int64_t>(n) * C + full);
        for (int r = 0; r < S; r++) a[r][n] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, wr[r] + full), xv, a[r][n]);
      }
    }
    for (int r = 0; r < S; r++) {
      if (oc[r] >= oc1) continue;
      float sums[NB];
      int n = 0;
      for (; n + 4 <= NB; n += 4) _mm_storeu_ps(sums + n, hsum4(a[r][n], a[r][n + 1], a[r][n + 2], a[r][n + 3]));
      for (; n < NB; n++) sums[n] = _mm512_reduce_add_ps(a[r][n]);
      for (n = 0; n < NB; n++) out[static_cast<int64_t>(n) * OC + oc[r]] = sums[n];
    }
  }
}
#endif

#ifdef KVTIE_SIMD_AVX2
// As rows_avx512 with 8 columns per vector and a scalar column tail, at most 4 inputs per pass
// and as many streams as AVX2's 16 registers hold.
// `ahead` as there.
template <int NB>
void rows_avx2(float* out, const float* x, const float* w, int C, int OC, int oc0, int oc1, bool ahead) {
  if constexpr (NB > 4) {
    // 2 × NB accumulators would not fit AVX2's 16 registers and spill on every FMA: the inputs go
    // in two passes over each 64 rows, the second reading them from L2 (+6–12% tokens/s at batch
    // 8, 256–1k context).
    for (int r0 = oc0; r0 < oc1; r0 += 64) {
      const int r1 = std::min(oc1, r0 + 64);
      rows_avx2<4>(out, x, w, C, OC, r0, r1, ahead);
      rows_avx2<NB - 4>(out + 4 * static_cast<int64_t>(OC), x + 4 * static_cast<int64_t>(C), w, C, OC, r0, r1, false);
    }
    return;
  }
  constexpr int S = NB == 1 ? 4 : NB == 2 ? 3 : 2;  // streams: S·NB + S + 1 of the 16 registers
  const int full = C / 8 * 8, run = (oc1 - oc0 + S - 1) / S;
  for (int i = 0; i < run; i++) {
    int oc[S];
    const float* wr[S];
    run_rows<S>(oc, wr, w, C, oc0, oc1, run, i);
    __m256 a[S][NB];
    for (int r = 0; r < S; r++)
      for (int n = 0; n < NB; n++) a[r][n] = _mm256_setzero_ps();
    for (int c = 0; c < full; c += 8) {
      __m256 wv[S];
      for (int r = 0; r < S; r++) {
        if (ahead && c % 16 == 0) __builtin_prefetch(wr[r] + c + kWeightAhead);
        wv[r] = in_register(_mm256_loadu_ps(wr[r] + c));
      }
      for (int n = 0; n < NB; n++) {
        const __m256 xv = in_register(_mm256_loadu_ps(x + static_cast<int64_t>(n) * C + c));
        for (int r = 0; r < S; r++) a[r][n] = _mm256_fmadd_ps(wv[r], xv, a[r][n]);
      }
    }
    for (int r = 0; r < S; r++) {
      if (oc[r] >= oc1) continue;
      float sums[NB];
      int n = 0;
      for (; n + 4 <= NB; n += 4) _mm_storeu_ps(sums + n, hsum4(a[r][n], a[r][n + 1], a[r][n + 2], a[r][n + 3]));
      for (; n < NB; n++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a[r][n]), _mm256_extractf128_ps(a[r][n], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        sums[n] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
      }
      for (n = 0; n < NB; n++) {
        float t = sums[n];
        const float* xr = x + static_cast<int64_t>(n) * C;
        for (int c = full; c < C; c++) t += wr[r][c] * xr[c];
        out[static_cast<int64_t>(n) * OC + oc[r]] = t;
      }
    }
  }
}
#endif

using RowsFn = void (*)(float*, const float*, const float*, int, int, int, int, bool);

RowsFn pick(DecodeIsa isa, [[maybe_unused]] int N) {  // N: unused without a vector path
  switch (isa) {
#ifdef KVTIE_SIMD_AVX512
    case DecodeIsa::avx512: {
      static constexpr RowsFn fns[] = {rows_avx512<1>, rows_avx512<2>, rows_avx512<3>, rows_avx512<4>,
                                       rows_avx512<5>, rows_avx512<6>, rows_avx512<7>, rows_avx512<8>};
      return fns[N - 1];
    }
#endif
#ifdef KVTIE_SIMD_AVX2
    case DecodeIsa::avx2: {
      static constexpr RowsFn fns[] = {rows_avx2<1>, rows_avx2<2>, rows_avx2<3>, rows_avx2<4>,
                                       rows_avx2<5>, rows_avx2<6>, rows_avx2<7>, rows_avx2<8>};
      return fns[N - 1];
    }
#endif
    default: return nullptr;
  }
}

}  // namespace

void decode_linear(float* out, const float* inp, const float* w, const float* b, int N, int C, int OC, DecodeIsa isa) {
  if (N > kDecodeLinearMaxRows) return linear_forward(out, inp, w, b, N, C, OC);
  const DecodeIsa path = decode_isa_resolve(isa);
  const RowsFn rows = pick(path, N);
  const int blocks = (OC + kBlock - 1) / kBlock;
  // Each thread a contiguous range of blocks, which the row kernels read as several streams.
  team_for(blocks, static_cast<int64_t>(N) * C * OC, [&](int64_t b0, int64_t b1) {
    const int oc0 = static_cast<int>(b0) * kBlock, oc1 = std::min(OC, static_cast<int>(b1) * kBlock);
    if (rows)
      rows(out, inp, w, C, OC, oc0, oc1, true);
    else
      rows_scalar(out, inp, w, N, C, OC, oc0, oc1);
    if (b)
      for (int n = 0; n < N; n++)
        for (int oc = oc0; oc < oc1; oc++) out[static_cast<int64_t>(n) * OC + oc] += b[oc];
  });
}

}  // namespace kvtie
