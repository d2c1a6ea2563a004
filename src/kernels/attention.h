#pragma once
// Scaled dot-product attention over a fused projection buffer.
//
// Q, K and V are column ranges of one [B, T, P] buffer (the output of the fused projection GEMM).
// Shared projections share a column range: with K=V the value rows *are* the key rows, so the
// forward reads one tensor for both roles and the backward accumulates dK and dV into the same
// place. Query head h reads kv head h / (n_head / n_kv_head).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <omp.h>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/score_pos2d.h"

namespace kvtie {

struct AttentionShape {
  int B, T;
  int n_head, n_kv_head, head_dim;
  int proj_dim;                    // P: row stride of the fused projection buffer
  int q_offset, k_offset, v_offset;  // column offsets of Q, K, V inside a row
  bool causal;

  int group() const { return n_head / n_kv_head; }
  int out_dim() const { return n_head * head_dim; }
  // Causal attention runs in blocks of query rows, each against only the keys up to its last row,
  // so the score GEMMs skip most of the masked upper triangle (8 blocks: 56% of the full T×T).
  int row_block() const { return causal ? std::max(16, (T + 7) / 8) : T; }
  int key_end(int row_end) const { return causal ? row_end : T; }  // keys the rows [·, row_end) see
};

// out[B,T,n_head*hd] = softmax(Q Kᵀ / √hd  [causal mask]) V;  probs[B,n_head,T,T] kept for backward
// (rows past the diagonal are 0 when causal). pos2d, when given, adds the (X)+ term to the scores.
template <typename T>
void attention_forward(T* out, T* probs, const T* qkv, const AttentionShape& s,
                       const ScorePos2d<T>* pos2d = nullptr) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim;
  const T scale = T(1) / std::sqrt(T(hd));
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.n_head; h++) {
      const int g = h / s.group();
      const T* q = qkv + static_cast<int64_t>(b) * Tn * P + s.q_offset + h * hd;
      const T* k = qkv + static_cast<int64_t>(b) * Tn * P + s.k_offset + g * hd;
      const T* v = qkv + static_cast<int64_t>(b) * Tn * P + s.v_offset + g * hd;
      T* p = probs + (static_cast<int64_t>(b) * s.n_head + h) * Tn * Tn;
      T* o = out + static_cast<int64_t>(b) * Tn * s.out_dim() + h * hd;
      for (int i0 = 0; i0 < Tn; i0 += s.row_block()) {
        const int i1 = std::min(Tn, i0 + s.row_block()), keys = s.key_end(i1);
        T* rows = p + static_cast<int64_t>(i0) * Tn;
        // S = scale · Q Kᵀ  [rows, keys]
        gemm(false, true, i1 - i0, keys, hd, scale, q + static_cast<int64_t>(i0) * P, P, k, P, T(0), rows, Tn);
        if (pos2d) pos2d_scores_forward(p, *pos2d, h, Tn);  // bidirectional: one block holds every row
        for (int i = i0; i < i1; i++) {
          T* row = p + static_cast<int64_t>(i) * Tn;
          const int len = s.causal ? i + 1 : Tn;
          T mx = -std::numeric_limits<T>::infinity();
          for (int j = 0; j < len; j++) mx = std::max(mx, row[j]);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int j = 0; j < len; j++) {
            row[j] = fast_exp(row[j] - mx);
            sum += row[j];
          }
          const T inv = T(1) / sum;
          for (int j = 0; j < len; j++) row[j] *= inv;
          for (int j = len; j < Tn; j++) row[j] = 0;
        }
        // out_h = P V  [rows, hd]
        gemm(false, false, i1 - i0, hd, keys, T(1), rows, Tn, v, P, T(0), o + static_cast<int64_t>(i0) * s.out_dim(),
             s.out_dim());
      }
    }
  }
}

// Scratch the backward pass needs: one [T, T] tile per thread, a second one for the raw scores
// when the (X)+ term is on, and its per-(batch, head) partial gradients.
inline int64_t attention_backward_scratch(const AttentionShape& s, int n_threads, bool pos2d = false) {
  const int64_t tiles = static_cast<int64_t>(n_threads) * s.T * s.T * (pos2d ? 2 : 1);
  return tiles + (pos2d ? static_cast<int64_t>(s.B) * s.n_head * kPos2dPartial : 0);
}

// dqkv[B,T,P] += gradients of Q, K and V (the caller zeroes it). Work is split by (batch, kv head)
// so that the query heads of a group, which all write the same dK/dV rows, run in one thread.
// With pos2d, its parameters' gradients are added to *pos2d_grad.
template <typename T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* probs, const AttentionShape& s,
                        const ScorePos2d<T>* pos2d = nullptr, const ScorePos2dGrad<T>* pos2d_grad = nullptr) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim;
  const T scale = T(1) / std::sqrt(T(hd));
  const int64_t tile = static_cast<int64_t>(Tn) * Tn * (pos2d ? 2 : 1);
  T* partials = scratch + static_cast<int64_t>(omp_get_max_threads()) * tile;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < s.B; b++) {
    for (int g = 0; g < s.n_kv_head; g++) {
      T* dp = scratch + static_cast<int64_t>(omp_get_thread_num()) * tile;
      T* raw = dp + static_cast<int64_t>(Tn) * Tn;  // S, only with pos2d
      const int64_t base = static_cast<int64_t>(b) * Tn * P;
      const T* k = qkv + base + s.k_offset + g * hd;
      const T* v = qkv + base + s.v_offset + g * hd;
      T* dk = dqkv + base + s.k_offset + g * hd;
      T* dv = dqkv + base + s.v_offset + g * hd;
      for (int h = g * s.group(); h < (g + 1) * s.group(); h++) {
        const T* q = qkv + base + s.q_offset + h * hd;
        T* dq = dqkv + base + s.q_offset + h * hd;
        const T* p = probs + (static_cast<int64_t>(b) * s.n_head + h) * Tn * Tn;
        const T* go = dout + static_cast<int64_t>(b) * Tn * s.out_dim() + h * hd;
        for (int i0 = 0; i0 < Tn; i0 += s.row_block()) {
          const int i1 = std::min(Tn, i0 + s.row_block()), rows = i1 - i0, keys = s.key_end(i1);
          const T* p_rows = p + static_cast<int64_t>(i0) * Tn;
          T* dp_rows = dp + static_cast<int64_t>(i0) * Tn;
          const T* go_rows = go + static_cast<int64_t>(i0) * s.out_dim();
          // dV += Pᵀ dO;  dP = dO Vᵀ   [rows, keys]
          gemm(true, false, keys, hd, rows, T(1), p_rows, Tn, go_rows, s.out_dim(), T(1), dv, P);
          gemm(false, true, rows, keys, hd, T(1), go_rows, s.out_dim(), v, P, T(0), dp_rows, Tn);
          // dS' = P ⊙ (dP − rowsum(P ⊙ dP))   (in place in dp)
          for (int i = i0; i < i1; i++) {
            const T* pr = p + static_cast<int64_t>(i) * Tn;
            T* dr = dp + static_cast<int64_t>(i) * Tn;
            const int len = s.causal ? i + 1 : Tn;
            T dot = 0;
            for (int j = 0; j < len; j++) dot += pr[j] * dr[j];
            for (int j = 0; j < len; j++) dr[j] = pr[j] * (dr[j] - dot);
            for (int j = len; j < keys; j++) dr[j] = 0;
          }
          if (pos2d) {  // bidirectional, one block: the (X)+ gradients through S' = a·S + …, and dS = a·dS'
            gemm(false, true, Tn, Tn, hd, scale, q, P, k, P, T(0), raw, Tn);
            pos2d_scores_backward(partials + (static_cast<int64_t>(b) * s.n_head + h) * kPos2dPartial, dp, raw, *pos2d,
                                  h, Tn);
          }
          // S = scale · Q Kᵀ, so the scale goes into the two products:  dQ += dS K;  dK += dSᵀ Q
          gemm(false, false, rows, hd, keys, scale, dp_rows, Tn, k, P, T(1), dq + static_cast<int64_t>(i0) * P, P);
          gemm(true, false, keys, hd, rows, scale, dp_rows, Tn, q + static_cast<int64_t>(i0) * P, P, T(1), dk, P);
        }
      }
    }
  }
  if (pos2d) pos2d_reduce(*pos2d_grad, partials, s.B, s.n_head);
}

}  // namespace kvtie
