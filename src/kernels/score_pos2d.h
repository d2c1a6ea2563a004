#pragma once
// The study's "(X)+" score term for bidirectional attention (DESIGN.md §1):
//
//   S'_ij = a·S_ij + Σ_c w_c·P_ijc + b,   P_ij = [f(i) ; f(j)],
//
// f(t) the sin/cos features of position t (kPos2dFeatures channels each, so m = 2·kPos2dFeatures),
// and a, w [m], b learned per layer and head. The sum splits into a query-position part
// u_i = Σ w_c f_c(i) and a key-position part v_j = Σ w_{F+c} f_c(j). Softmax over j ignores u_i
// and b (their gradients are exactly zero); v_j is what lets a score depend on *which* position is
// read, so S' is no longer symmetric when Q = K.
#include <cmath>
#include <cstdint>
#include <vector>

namespace kvtie {

constexpr int kPos2dFeatures = 8;                 // per position: 4 frequencies × (sin, cos)
constexpr int kPos2dChannels = 2 * kPos2dFeatures;  // m: features of i, then of j

// f[t, c] for t < Tn: sin(t·ω_k), cos(t·ω_k) with ω_k = 10000^(−k/4), the transformer's
// sinusoids over kPos2dFeatures channels.
template <typename T>
void pos2d_features(T* f, int Tn) {
  for (int t = 0; t < Tn; t++)
    for (int k = 0; k < kPos2dFeatures / 2; k++) {
      const double w = std::pow(10000.0, -static_cast<double>(k) / (kPos2dFeatures / 2));
      f[t * kPos2dFeatures + 2 * k] = static_cast<T>(std::sin(t * w));
      f[t * kPos2dFeatures + 2 * k + 1] = static_cast<T>(std::cos(t * w));
    }
}

// One layer's parameters; each pointer is indexed by query head.
template <typename T>
struct ScorePos2d {
  const T* scale;     // a [n_head]
  const T* weight;    // w [n_head, m]
  const T* bias;      // b [n_head]
  const T* features;  // f [T, kPos2dFeatures]
};

// Gradients of one layer's parameters, same shapes as ScorePos2d.
template <typename T>
struct ScorePos2dGrad {
  T* scale;
  T* weight;
  T* bias;
};

// Σ_c w_c f_c(t) for one head's half of w (query half at w, key half at w + kPos2dFeatures).
template <typename T>
T pos2d_project(const T* w, const T* features, int t) {
  const T* f = features + t * kPos2dFeatures;
  T s = 0;
  for (int c = 0; c < kPos2dFeatures; c++) s += w[c] * f[c];
  return s;
}

// Rows [i0, i1) of head h's scores, S → S' in place: row i at tile + (i − i0)·ld, keys j < Tn.
template <typename T>
void pos2d_scores_forward(T* tile, int64_t ld, int i0, int i1, int Tn, const ScorePos2d<T>& p, int h) {
  const T a = p.scale[h], b = p.bias[h];
  const T* wq = p.weight + h * kPos2dChannels;
  const T* wk = wq + kPos2dFeatures;
  thread_local std::vector<T> v;  // v_j of this head; grows once to the longest sequence
  if (static_cast<int>(v.size()) < Tn) v.resize(Tn);
  for (int j = 0; j < Tn; j++) v[j] = pos2d_project(wk, p.features, j);
  for (int i = i0; i < i1; i++) {
    const T u = pos2d_project(wq, p.features, i) + b;
    T* row = tile + (i - i0) * ld;
    for (int j = 0; j < Tn; j++) row[j] = a * row[j] + u + v[j];
  }
}

// Per (batch, head) partial gradients, reduced over the batch afterwards in a fixed order so the
// result does not depend on the thread count. Layout of one partial: [a, b, w_0 … w_{m−1}].
constexpr int kPos2dPartial = 2 + kPos2dChannels;

// Rows [i0, i1) of head h (laid out as in pos2d_scores_forward): dscore holds dL/dS', scores holds
// S. Adds the rows' share to the head's partial (which the caller zeroes before the first rows) and
// turns dscore into dL/dS = a·dL/dS'.
template <typename T>
void pos2d_scores_backward(T* partial, T* dscore, const T* scores, int64_t ld, int i0, int i1, int Tn,
                           const ScorePos2d<T>& p, int h) {
  thread_local std::vector<T> col_sum;  // Σ_i dL/dS'_ij over these rows
  col_sum.assign(Tn, T(0));
  T da = 0, db = 0;
  T* dw = partial + 2;
  const T a = p.scale[h];
  for (int i = i0; i < i1; i++) {
    T* drow = dscore + (i - i0) * ld;
    const T* srow = scores + (i - i0) * ld;
    T row_sum = 0;
    for (int j = 0; j < Tn; j++) {
      da += drow[j] * srow[j];
      row_sum += drow[j];
      col_sum[j] += drow[j];
      drow[j] *= a;
    }
    db += row_sum;
    const T* fi = p.features + i * kPos2dFeatures;
    for (int c = 0; c < kPos2dFeatures; c++) dw[c] += row_sum * fi[c];
  }
  for (int j = 0; j < Tn; j++) {
    const T* fj = p.features + j * kPos2dFeatures;
    for (int c = 0; c < kPos2dFeatures; c++) dw[kPos2dFeatures + c] += col_sum[j] * fj[c];
  }
  partial[0] += da;
  partial[1] += db;
}

// grad += Σ_b partials[b, h] for every head, b in order.
template <typename T>
void pos2d_reduce(const ScorePos2dGrad<T>& g, const T* partials, int B, int n_head) {
  for (int b = 0; b < B; b++)
    for (int h = 0; h < n_head; h++) {
      const T* part = partials + (static_cast<int64_t>(b) * n_head + h) * kPos2dPartial;
      g.scale[h] += part[0];
      g.bias[h] += part[1];
      for (int c = 0; c < kPos2dChannels; c++) g.weight[h * kPos2dChannels + c] += part[2 + c];
    }
}

}  // namespace kvtie
