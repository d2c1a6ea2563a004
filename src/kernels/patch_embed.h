#pragma once
// Patch embedding of a vision transformer: images cut into p×p squares, each flattened and sent
// through one linear layer (a Conv2d with kernel = stride = p), then an optional class token and
// a position embedding.
//
// Sequence layout of one image, S = n_cls + (H/p)·(W/p) rows: the n_cls class-token rows first,
// then the patches in row-major order over the patch grid (row s = n_cls + gy·(W/p) + gx). Within
// a patch the values are flattened as (c, i, j), the order of a Conv2d weight [d, C, p, p], so that
// weight reshaped to [d, C·p·p] is this kernel's weight (and PyTorch's x.unfold gives the same rows).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/linear.h"
#include "kernels/parallel.h"

namespace kvtie {

struct PatchGeometry {
  int channels, height, width, patch;
  int n_cls;  // class-token rows before the patches (0 or 1)
  int grid_w() const { return width / patch; }
  int n_patches() const { return (height / patch) * grid_w(); }
  int seq() const { return n_cls + n_patches(); }
  int patch_dim() const { return channels * patch * patch; }
};

// images [B, C, H, W] → patches [B, S, C·p·p] (im2col). Class-token rows are zero, so that one GEMM
// over all B·S rows gives them nothing but the bias, which the forward then replaces.
template <typename T, typename In>
void patch_im2col(T* patches, const In* images, const PatchGeometry& g, int B) {
  const int p = g.patch, gw = g.grid_w(), S = g.seq(), K = g.patch_dim();
  const int64_t rows = static_cast<int64_t>(B) * S;
  team_for(rows, rows * K, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      T* out = patches + r * K;
      const int64_t b = r / S;
      const int s = static_cast<int>(r % S) - g.n_cls;
      if (s < 0) {
        std::fill(out, out + K, T(0));
        continue;
      }
      const int y0 = (s / gw) * p, x0 = (s % gw) * p;
      for (int c = 0; c < g.channels; c++) {
        const In* plane = images + (b * g.channels + c) * static_cast<int64_t>(g.height) * g.width;
        for (int i = 0; i < p; i++) {
          const In* src = plane + static_cast<int64_t>(y0 + i) * g.width + x0;
          T* dst = out + (c * p + i) * p;
          for (int j = 0; j < p; j++) dst[j] = static_cast<T>(src[j]);
        }
      }
    }
  });
}

// out[B, S, d]: patch rows = patches · wᵀ + bias, class rows = cls; then + pos[s] on every row.
// images [B, C, H, W]; patches [B, S, C·p·p] is written (the backward reads it); w [d, C·p·p],
// bias [d], cls [d] (null when n_cls = 0), pos [S, d] (null: no position term).
template <typename T, typename In>
void patch_embed_forward(T* out, T* patches, const In* images, const T* w, const T* bias, const T* cls,
                         const T* pos, const PatchGeometry& g, int B, int d) {
  const int S = g.seq(), K = g.patch_dim();
  const int64_t rows = static_cast<int64_t>(B) * S;
  patch_im2col(patches, images, g, B);
  linear_forward(out, patches, w, bias, rows, K, d);
  if (!pos && g.n_cls == 0) return;
  team_for(rows, rows * d, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      T* o = out + r * d;
      const int s = static_cast<int>(r % S);
      if (s < g.n_cls) std::copy(cls, cls + d, o);
      if (pos) {
        const T* pe = pos + static_cast<int64_t>(s) * d;
        for (int i = 0; i < d; i++) o[i] += pe[i];
      }
    }
  });
}

// From dout [B, S, d]: dw += Σ_patch-rows doutᵀ · patches;  dbias += Σ_patch-rows dout;
// dcls += Σ_b dout[b, 0] (null when n_cls = 0);  dpos[s] += Σ_b dout[b, s] (null: none).
// No gradient flows to the images. Threads own column ranges and walk the rows in order, so the
// sums of dbias, dcls and dpos do not depend on the thread count. dw_partials: linear_weight_grad's.
template <typename T>
void patch_embed_backward(T* dw, T* dbias, T* dcls, T* dpos, const T* dout, const T* patches, const PatchGeometry& g,
                          int B, int d, T* dw_partials = nullptr) {
  const int S = g.seq(), K = g.patch_dim();
  const int64_t rows = static_cast<int64_t>(B) * S;
  // Class rows of `patches` are zero: they add nothing to dw.
  linear_weight_grad(dw, dout, patches, rows, K, d, dw_partials);
  constexpr int kCols = 32;
  team_reduce((d + kCols - 1) / kCols, rows * d, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const int c0 = static_cast<int>(k) * kCols, c1 = std::min(d, c0 + kCols);
      for (int64_t r = 0; r < rows; r++) {
        const T* gr = dout + r * d;
        const int s = static_cast<int>(r % S);
        T* to = s < g.n_cls ? dcls : dbias;
        for (int i = c0; i < c1; i++) to[i] += gr[i];
        if (dpos) {
          T* pe = dpos + static_cast<int64_t>(s) * d;
          for (int i = c0; i < c1; i++) pe[i] += gr[i];
        }
      }
    }
  });
}

// The fixed 2D sin-cos position table of MAE (get_2d_sincos_pos_embed) for a grid_h × grid_w grid:
// table [n_cls + grid_h·grid_w, d], class rows zero. Of each patch row, the first d/2 channels
// encode the patch's column x and the last d/2 its row y, each as [sin(t·ω_k) for k < d/4,
// cos(t·ω_k) for k < d/4] with ω_k = 10000^(−k/(d/4)). d must be a multiple of 4.
template <typename T>
void sincos2d_table(T* table, int grid_h, int grid_w, int d, int n_cls) {
  const int q = d / 4;
  std::fill(table, table + static_cast<int64_t>(n_cls) * d, T(0));
  for (int y = 0; y < grid_h; y++)
    for (int x = 0; x < grid_w; x++) {
      T* row = table + (static_cast<int64_t>(n_cls) + static_cast<int64_t>(y) * grid_w + x) * d;
      for (int k = 0; k < q; k++) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / q);
        row[k] = static_cast<T>(std::sin(x * omega));
        row[q + k] = static_cast<T>(std::cos(x * omega));
        row[2 * q + k] = static_cast<T>(std::sin(y * omega));
        row[3 * q + k] = static_cast<T>(std::cos(y * omega));
      }
    }
}

}  // namespace kvtie
