#pragma once
// Token + learned position embedding.
#include <algorithm>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

// out[B,T,d] = tok_emb[tokens[b,t]] + pos_emb[t]   (pos_emb may be null: no position term)
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* tok_emb, const T* pos_emb, int B, int Tn, int d) {
  const int64_t N = static_cast<int64_t>(B) * Tn;
  team_for(N, N * d, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const T* te = tok_emb + static_cast<int64_t>(tokens[n]) * d;
      T* o = out + n * d;
      if (pos_emb) {
        const T* pe = pos_emb + (n % Tn) * d;
        for (int i = 0; i < d; i++) o[i] = te[i] + pe[i];
      } else {
        for (int i = 0; i < d; i++) o[i] = te[i];  // not std::copy: GCC 12 warns of a 32-byte memmove at d = 2
      }
    }
  });
}

// dtok_emb[tokens[b,t]] += dout[b,t];  dpos_emb[t] += dout[b,t]
// Threads own column ranges and walk the tokens in order: repeated tokens never race and the
// summation order is fixed.
template <typename T>
void embedding_backward(T* dtok_emb, T* dpos_emb, const T* dout, const int32_t* tokens, int B, int Tn, int d) {
  constexpr int kCols = 32;
  const int64_t N = static_cast<int64_t>(B) * Tn;
  team_reduce((d + kCols - 1) / kCols, N * d, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const int c0 = static_cast<int>(k) * kCols, c1 = std::min(d, c0 + kCols);
      for (int64_t n = 0; n < N; n++) {
        const T* g = dout + n * d;
        T* te = dtok_emb + static_cast<int64_t>(tokens[n]) * d;
        for (int i = c0; i < c1; i++) te[i] += g[i];
        if (dpos_emb) {
          T* pe = dpos_emb + (n % Tn) * d;
          for (int i = c0; i < c1; i++) pe[i] += g[i];
        }
      }
    }
  });
}

}  // namespace kvtie
