#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "infer/kv_cache.h"
#include "kernels/kv_codec.h"
#include "kernels/parallel.h"

namespace kvtie {
namespace {

constexpr int kTile = 32;  // positions per tile: scores of a tile stay in L1 with the rows

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// Rows of a tile as float pointers: straight into the cache for fp32, else decoded into buf.
const float* tile_rows(const uint8_t* base, int64_t vec_bytes, int first, int count, int hd, KvDType t,
                       float* buf) {
  if (t == KvDType::fp32) return reinterpret_cast<const float*>(base + first * vec_bytes);
  for (int j = 0; j < count; j++) kv_decode(buf + static_cast<int64_t>(j) * hd, base + (first + j) * vec_bytes, hd, t);
  return buf;
}

}  // namespace

void decode_attention(float* out, const float* q, int64_t q_stride, const KvCache& cache, int layer,
                      const int* lengths, int B, const DecodeShape& s) {
  const int hd = s.head_dim, G = s.n_head / s.n_kv_head;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KvDType dtype = cache.dtype();
  const int64_t vb = cache.vector_bytes();
  const bool shared = cache.v_is_k();
  int64_t work = 0;  // cached vectors read by the whole call
  for (int b = 0; b < B; b++) work += static_cast<int64_t>(lengths[b]) * s.n_kv_head * hd;
#pragma omp parallel if (worth_threads(work))
  {
    // Per-thread scratch that outlives the call, so decode steps do not allocate: decoded K (and
    // V) tile, scores, running softmax state.
    thread_local std::vector<float> kbuf, vbuf, scores, acc, m, l;
    kbuf.resize(static_cast<size_t>(kTile) * hd);
    vbuf.resize(shared ? 0 : static_cast<size_t>(kTile) * hd);
    scores.resize(static_cast<size_t>(G) * kTile);
    acc.resize(static_cast<size_t>(G) * hd);
    m.resize(G);
    l.resize(G);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
      for (int g = 0; g < s.n_kv_head; g++) {
        const uint8_t* kbase = cache.keys(layer, b, g);
        const uint8_t* vbase = cache.values(layer, b, g);
        const float* qg = q + b * q_stride + static_cast<int64_t>(g) * G * hd;
        std::fill(acc.begin(), acc.end(), 0.0f);
        std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
        std::fill(l.begin(), l.end(), 0.0f);
        for (int first = 0; first < lengths[b]; first += kTile) {
          const int count = std::min(kTile, lengths[b] - first);
          const float* K = tile_rows(kbase, vb, first, count, hd, dtype, kbuf.data());
          // K=V: the value rows are the key rows just read.
          const float* V = shared ? K : tile_rows(vbase, vb, first, count, hd, dtype, vbuf.data());
          for (int h = 0; h < G; h++) {
            const float* qh = qg + static_cast<int64_t>(h) * hd;
            float* sc = scores.data() + static_cast<int64_t>(h) * kTile;
            float tile_max = -std::numeric_limits<float>::infinity();
            for (int j = 0; j < count; j++) {
              sc[j] = dot(qh, K + static_cast<int64_t>(j) * hd, hd) * scale;
              tile_max = std::max(tile_max, sc[j]);
            }
            const float new_max = std::max(m[h], tile_max);
            const float correction = std::exp(m[h] - new_max);
            float* a = acc.data() + static_cast<int64_t>(h) * hd;
            float sum = 0;
            for (int j = 0; j < count; j++) sum += (sc[j] = std::exp(sc[j] - new_max));
            l[h] = l[h] * correction + sum;
            m[h] = new_max;
#pragma omp simd
            for (int i = 0; i < hd; i++) a[i] *= correction;
            for (int j = 0; j < count; j++) {
              const float p = sc[j];
              const float* v = V + static_cast<int64_t>(j) * hd;
#pragma omp simd
              for (int i = 0; i < hd; i++) a[i] += p * v[i];
            }
          }
        }
        for (int h = 0; h < G; h++) {
          float* o = out + static_cast<int64_t>(b) * s.n_head * hd + static_cast<int64_t>(g * G + h) * hd;
          const float inv = l[h] > 0 ? 1.0f / l[h] : 0.0f;
          for (int i = 0; i < hd; i++) o[i] = acc[static_cast<int64_t>(h) * hd + i] * inv;
        }
      }
    }
  }
}

}  // namespace kvtie
