#pragma once
// Scaled dot-product attention over a fused projection buffer, one score tile at a time.
//
// Q, K and V are column ranges of one [B, T, P] buffer (the output of the fused projection GEMM).
// Shared projections share a column range: with K=V the value rows *are* the key rows, so the
// forward reads one tensor for both roles and the backward accumulates dK and dV into the same
// place. Query head h reads kv head h / (n_head / n_kv_head).
//
// No [B, H, T, T] probabilities are kept: the forward works through blocks of query rows, each in
// one [row_block, T] score tile per thread, and keeps only the log-sum-exp of every score row; the
// backward recomputes a block's probabilities from it (FlashAttention's recomputation, with a
// whole block of keys per tile since a tile of T keys fits the cache at our lengths).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <omp.h>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/score_pos2d.h"
#include "kernels/tile_gemm.h"

namespace kvtie {

struct AttentionShape {
  int B, T;
  int n_head, n_kv_head, head_dim;
  int proj_dim;                    // P: row stride of the fused projection buffer
  int q_offset, k_offset, v_offset;  // column offsets of Q, K, V inside a row
  bool causal;

  int group() const { return n_head / n_kv_head; }
  int out_dim() const { return n_head * head_dim; }
  // Query rows per tile. Causal attention runs each block against only the keys up to its last
  // row, so eight blocks skip 44% of the masked T×T; any block is capped so that its tile of T
  // scores stays near 256 KiB (in L2). Blocks are balanced: none is much shorter than the others.
  int row_block() const {
    constexpr int kTileScores = 1 << 16;
    const int want = causal ? std::max(16, (T + 7) / 8) : T;
    const int rows = std::min(want, std::max(16, kTileScores / std::max(T, 1)));
    const int blocks = (T + rows - 1) / rows;
    return (T + blocks - 1) / blocks;
  }
  int key_end(int row_end) const { return causal ? row_end : T; }  // keys the rows [·, row_end) see
};

// Scratch one thread uses: score tiles (the forward one; the backward the probabilities and their
// gradient, and with the (X)+ term the raw scores as well), and the transposed key block [hd, T]
// (the backward the value block too), so that every product is a tile_gemm without a transpose.
inline int64_t attention_tile(const AttentionShape& s) { return static_cast<int64_t>(s.row_block()) * s.T; }
inline int64_t attention_block(const AttentionShape& s) { return static_cast<int64_t>(s.head_dim) * s.T; }
inline int64_t attention_tiles_per_thread(const AttentionShape& s, bool backward, bool pos2d) {
  return attention_tile(s) * (backward ? (pos2d ? 3 : 2) : 1) + attention_block(s) * (backward ? 2 : 1);
}
// The most attention_tiles_per_thread asks for at any length up to s.T (a tile's size is not
// monotone in T): what a buffer for every call up to that length must hold.
inline int64_t attention_tiles_per_thread_max(AttentionShape s, bool backward, bool pos2d) {
  int64_t most = 0;
  for (int t = 1, longest = s.T; t <= longest; t++) {
    s.T = t;
    most = std::max(most, attention_tiles_per_thread(s, backward, pos2d));
  }
  return most;
}

// ---------------------------------------------------------------------------------------------
// Forward

// out[B,T,n_head*hd] = softmax(Q Kᵀ / √hd  [causal mask]) V;  lse[B,n_head,T] the log-sum-exp of
// each score row, kept for the backward. pos2d, when given, adds the (X)+ term to the scores.
// tiles: attention_tiles_per_thread(s, false, ·) floats for each thread of the calling team (of
// omp_get_max_threads() when called outside a parallel region). Items are (batch, head) pairs.
template <typename T>
void attention_forward(T* out, T* lse, T* tiles, const T* qkv, const AttentionShape& s,
                       const ScorePos2d<T>* pos2d = nullptr) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim, od = s.out_dim(), rb = s.row_block();
  const T scale = T(1) / std::sqrt(T(hd));
  const int64_t items = static_cast<int64_t>(s.B) * s.n_head;
  team_barrier();  // a head reads the projections of its whole sequence
  team_for(items, items * Tn * Tn * hd, [&](int64_t first, int64_t last) {
    T* tile = tiles + omp_get_thread_num() * attention_tiles_per_thread(s, false, pos2d);
    T* kt = tile + attention_tile(s);  // Kᵀ [hd, T]
    for (int64_t item = first; item < last; item++) {
      const int b = static_cast<int>(item / s.n_head), h = static_cast<int>(item % s.n_head), g = h / s.group();
      const T* base = qkv + static_cast<int64_t>(b) * Tn * P;
      const T *q = base + s.q_offset + h * hd, *k = base + s.k_offset + g * hd, *v = base + s.v_offset + g * hd;
      T* o = out + static_cast<int64_t>(b) * Tn * od + h * hd;
      T* row_lse = lse + item * Tn;
      transpose_rows(kt, Tn, k, P, Tn, hd);
      for (int i0 = 0; i0 < Tn; i0 += rb) {
        const int i1 = std::min(Tn, i0 + rb), keys = s.key_end(i1);
        // S = scale · Q Kᵀ  [rows, keys], row i at tile + (i − i0)·keys
        tile_gemm(false, i1 - i0, keys, hd, scale, q + static_cast<int64_t>(i0) * P, P, kt, Tn, false, tile, keys);
        if (pos2d) pos2d_scores_forward(tile, keys, i0, i1, keys, *pos2d, h);
        for (int i = i0; i < i1; i++) {
          T* row = tile + static_cast<int64_t>(i - i0) * keys;
          const int len = s.causal ? i + 1 : keys;
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
          for (int j = len; j < keys; j++) row[j] = 0;
          row_lse[i] = mx + std::log(sum);
        }
        // out_h = P V  [rows, hd]
        tile_gemm(false, i1 - i0, hd, keys, T(1), tile, keys, v, P, false, o + static_cast<int64_t>(i0) * od, od);
      }
    }
  });
  team_barrier();  // the output projection reads every head of a row
}

// probs[B,n_head,T,T] (row = query; 0 past the diagonal when causal) of a forward pass, recomputed
// from its projections and log-sum-exp (what an attention map shows; training never needs them).
template <typename T>
void attention_probabilities(T* probs, const T* qkv, const T* lse, const AttentionShape& s,
                             const ScorePos2d<T>* pos2d = nullptr) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim;
  const T scale = T(1) / std::sqrt(T(hd));
  const int64_t items = static_cast<int64_t>(s.B) * s.n_head;
  team_for(items, items * Tn * Tn * hd, [&](int64_t first, int64_t last) {
    for (int64_t item = first; item < last; item++) {
      const int b = static_cast<int>(item / s.n_head), h = static_cast<int>(item % s.n_head), g = h / s.group();
      const T* base = qkv + static_cast<int64_t>(b) * Tn * P;
      T* p = probs + item * Tn * Tn;
      gemm(false, true, Tn, Tn, hd, scale, base + s.q_offset + h * hd, P, base + s.k_offset + g * hd, P, T(0), p, Tn);
      if (pos2d) pos2d_scores_forward(p, Tn, 0, Tn, Tn, *pos2d, h);
      for (int i = 0; i < Tn; i++) {
        T* row = p + static_cast<int64_t>(i) * Tn;
        const int len = s.causal ? i + 1 : Tn;
        const T l = lse[item * Tn + i];
        for (int j = 0; j < len; j++) row[j] = fast_exp(row[j] - l);
        for (int j = len; j < Tn; j++) row[j] = 0;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Backward

// dqkv[B,T,P] += gradients of Q, K and V (the caller zeroes it), from dout [B,T,n_head*hd] and the
// forward's lse and qkv. Items are (batch, kv head) pairs, so that the query heads of a group,
// which all write the same dK/dV rows, run in one thread. tiles: attention_tiles_per_thread(s,
// true, ·) floats per thread, as in the forward. With pos2d, pos2d_partials holds [B, n_head,
// kPos2dPartial] scratch and its parameters' gradients are added to *pos2d_grad.
template <typename T>
void attention_backward(T* dqkv, T* tiles, T* pos2d_partials, const T* dout, const T* qkv, const T* lse,
                        const AttentionShape& s, const ScorePos2d<T>* pos2d = nullptr,
                        const ScorePos2dGrad<T>* pos2d_grad = nullptr) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim, od = s.out_dim(), rb = s.row_block();
  const T scale = T(1) / std::sqrt(T(hd));
  const int64_t items = static_cast<int64_t>(s.B) * s.n_kv_head, tile_size = attention_tile(s);
  team_barrier();  // a group reads the gradients of its whole sequence and writes its dQ/dK/dV rows
  team_for(items, items * s.group() * Tn * Tn * hd, [&](int64_t first, int64_t last) {
    T* pt = tiles + omp_get_thread_num() * attention_tiles_per_thread(s, true, pos2d);
    T* dpt = pt + tile_size;
    T* raw = dpt + tile_size;  // S before the (X)+ term, only with pos2d
    T* kt = raw + (pos2d ? tile_size : 0);  // Kᵀ [hd, T]
    T* vt = kt + attention_block(s);        // Vᵀ [hd, T] (Kᵀ again when V is K)
    for (int64_t item = first; item < last; item++) {
      const int b = static_cast<int>(item / s.n_kv_head), g = static_cast<int>(item % s.n_kv_head);
      const int64_t base = static_cast<int64_t>(b) * Tn * P;
      const T *k = qkv + base + s.k_offset + g * hd, *v = qkv + base + s.v_offset + g * hd;
      T *dk = dqkv + base + s.k_offset + g * hd, *dv = dqkv + base + s.v_offset + g * hd;
      transpose_rows(kt, Tn, k, P, Tn, hd);
      const T* v_t = kt;
      if (v != k) {
        transpose_rows(vt, Tn, v, P, Tn, hd);
        v_t = vt;
      }
      for (int h = g * s.group(); h < (g + 1) * s.group(); h++) {
        const T* q = qkv + base + s.q_offset + h * hd;
        T* dq = dqkv + base + s.q_offset + h * hd;
        const T* go = dout + static_cast<int64_t>(b) * Tn * od + h * hd;
        const T* row_lse = lse + (static_cast<int64_t>(b) * s.n_head + h) * Tn;
        T* partial = pos2d ? pos2d_partials + (static_cast<int64_t>(b) * s.n_head + h) * kPos2dPartial : nullptr;
        if (partial) std::fill(partial, partial + kPos2dPartial, T(0));
        for (int i0 = 0; i0 < Tn; i0 += rb) {
          const int i1 = std::min(Tn, i0 + rb), rows = i1 - i0, keys = s.key_end(i1);
          const T* q_rows = q + static_cast<int64_t>(i0) * P;
          const T* go_rows = go + static_cast<int64_t>(i0) * od;
          // P = exp(S' − lse), recomputed: S = scale · Q Kᵀ (+ the (X)+ term)  [rows, keys]
          tile_gemm(false, rows, keys, hd, scale, q_rows, P, kt, Tn, false, pt, keys);
          if (pos2d) {
            std::copy(pt, pt + static_cast<int64_t>(rows) * keys, raw);
            pos2d_scores_forward(pt, keys, i0, i1, keys, *pos2d, h);
          }
          for (int i = i0; i < i1; i++) {
            T* row = pt + static_cast<int64_t>(i - i0) * keys;
            const int len = s.causal ? i + 1 : keys;
            const T l = row_lse[i];
#pragma omp simd
            for (int j = 0; j < len; j++) row[j] = fast_exp(row[j] - l);
            for (int j = len; j < keys; j++) row[j] = 0;
          }
          // dV += Pᵀ dO;  dP = dO Vᵀ   [rows, keys]
          tile_gemm(true, keys, hd, rows, T(1), pt, keys, go_rows, od, true, dv, P);
          tile_gemm(false, rows, keys, hd, T(1), go_rows, od, v_t, Tn, false, dpt, keys);
          // dS' = P ⊙ (dP − D_i) with D_i = Σ_j P_ij dP_ij  (in place in dpt). FlashAttention uses
          // dO_i · O_i, the same in exact arithmetic; the row of P at hand makes each row of dS' sum
          // to zero to float rounding, as the gradient of b in (X)+ and of any shift of a row must.
          for (int i = i0; i < i1; i++) {
            const T* pr = pt + static_cast<int64_t>(i - i0) * keys;
            T* dr = dpt + static_cast<int64_t>(i - i0) * keys;
            const int len = s.causal ? i + 1 : keys;
            T dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < len; j++) dot += pr[j] * dr[j];
#pragma omp simd
            for (int j = 0; j < len; j++) dr[j] = pr[j] * (dr[j] - dot);
            for (int j = len; j < keys; j++) dr[j] = 0;
          }
          // the (X)+ gradients through S' = a·S + …, and dS = a·dS'
          if (pos2d) pos2d_scores_backward(partial, dpt, raw, keys, i0, i1, keys, *pos2d, h);
          // S = scale · Q Kᵀ, so the scale goes into the two products:  dQ += dS K;  dK += dSᵀ Q
          tile_gemm(false, rows, hd, keys, scale, dpt, keys, k, P, true, dq + static_cast<int64_t>(i0) * P, P);
          tile_gemm(true, keys, hd, rows, scale, dpt, keys, q_rows, P, true, dk, P);
        }
      }
    }
  });
  team_barrier();  // the projection's backward reads dqkv rows every thread wrote
  if (pos2d && omp_get_thread_num() == 0) pos2d_reduce(*pos2d_grad, pos2d_partials, s.B, s.n_head);
}

}  // namespace kvtie
