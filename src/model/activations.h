#pragma once
// Every buffer one forward/backward pass of the transformer touches, planned in one arena.
// Sizes are for the largest batch [max_batch, max_seq]; a smaller call uses a prefix of each.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/patch_embed.h"
#include "kvtie/config.h"

namespace kvtie {

// What one block keeps from its forward pass for its backward pass.
template <typename T>
struct BlockActivations {
  T *ln1, *ln1_mean, *ln1_rstd;  // [N,d], [N], [N]
  T* qkv;                        // [N,P] fused projections
  T* att_lse;                    // [B,n_head,T] log-sum-exp of each attention score row
  T* att;                        // [N,n_head*hd] attention output before the out projection
  T* res_att;                    // [N,d] residual stream after the attention branch
  T *ln2, *ln2_mean, *ln2_rstd;  // [N,d], [N], [N]
  T* fc;                         // [N,d_ff] before GELU
  T* fc_gelu;                    // [N,d_ff] after GELU
  T* res_out;                    // [N,d] block output
};

// Gradient buffers reused by every block in turn during the backward pass.
template <typename T>
struct BlockScratch {
  T* branch;               // [N,d] output of a branch's last linear (forward) / LayerNorm input grad (backward)
  T* dln = nullptr;        // [N,d] gradient at a LayerNorm output; this and the rest: trainable models only
  T* dqkv = nullptr;       // [N,P]
  T* datt = nullptr;       // [N,n_head*hd]
  T* dff = nullptr;        // [N,d_ff]
  T* attn_tiles;           // the attention's score tiles, one set per thread (attention.h)
  T* pos2d_partials = nullptr;  // [B,n_head,kPos2dPartial], trainable (X)+ models only
  T* dw_partials = nullptr;     // weight_grad_partials(c) per thread, trainable models only (linear.h)
};

// Floats per thread the weight gradients' partial sums need: the most any linear layer takes.
inline int64_t weight_grad_partials(const ModelConfig& c) {
  const int d = c.d_model;
  int64_t most = std::max({weight_grad_partial(d, c.attn_proj_dim()), weight_grad_partial(c.q_dim(), d),
                           weight_grad_partial(d, c.d_ff), weight_grad_partial(c.d_ff, d),
                           weight_grad_partial(d, c.n_outputs())});
  if (c.is_image()) most = std::max(most, weight_grad_partial(c.image.patch_dim(), d));
  return most;
}

template <typename T>
struct Activations {
  // trainable false plans no gradients and no backward buffers (an inference model).
  Activations(const ModelConfig& c, int64_t param_count, int max_batch, int max_seq, int threads, bool trainable)
      : blocks(c.n_layer) {
    const int64_t N = static_cast<int64_t>(max_batch) * max_seq, d = c.d_model;
    const int64_t rows = c.head == Head::pooled ? max_batch : N;
    arena.plan(&params, param_count);
    if (trainable) arena.plan(&grads, param_count);
    if (c.is_image())
      arena.plan(&patches, N * c.image.patch_dim());
    else
      arena.plan(&tokens, N);
    arena.plan(&targets, N);
    arena.plan(&emb, N * d);
    if (c.pos == PosEmb::sincos2d) arena.plan(&pos_table, static_cast<int64_t>(c.max_seq_len) * d);
    for (auto& a : blocks) {
      arena.plan(&a.ln1, N * d);
      arena.plan(&a.ln1_mean, N);
      arena.plan(&a.ln1_rstd, N);
      arena.plan(&a.qkv, N * c.attn_proj_dim());
      arena.plan(&a.att_lse, static_cast<int64_t>(max_batch) * c.n_head * max_seq);
      arena.plan(&a.att, N * c.q_dim());
      arena.plan(&a.res_att, N * d);
      arena.plan(&a.ln2, N * d);
      arena.plan(&a.ln2_mean, N);
      arena.plan(&a.ln2_rstd, N);
      arena.plan(&a.fc, N * c.d_ff);
      arena.plan(&a.fc_gelu, N * c.d_ff);
      arena.plan(&a.res_out, N * d);
    }
    arena.plan(&lnf, N * d);
    arena.plan(&lnf_mean, N);
    arena.plan(&lnf_rstd, N);
    if (c.head == Head::pooled) {
      arena.plan(&pooled, max_batch * d);
      if (trainable) arena.plan(&dpooled, max_batch * d);
    }
    arena.plan(&logits, rows * c.n_outputs());
    arena.plan(&losses, rows);
    arena.plan(&lse, rows);
    arena.plan(&scratch.branch, N * d);  // the forward's branch output too
    const AttentionShape largest{max_batch, max_seq, c.n_head, c.n_kv_head, c.head_dim, 0, 0, 0, 0, c.causal};
    arena.plan(&scratch.attn_tiles, threads * attention_tiles_per_thread_max(largest, trainable, c.score_pos2d));
    if (trainable) {
      arena.plan(&dres, N * d);
      arena.plan(&dlnf, N * d);
      arena.plan(&scratch.dln, N * d);
      arena.plan(&scratch.dqkv, N * c.attn_proj_dim());
      arena.plan(&scratch.datt, N * c.q_dim());
      arena.plan(&scratch.dff, N * c.d_ff);
      if (c.score_pos2d) arena.plan(&scratch.pos2d_partials, static_cast<int64_t>(max_batch) * c.n_head * kPos2dPartial);
      arena.plan(&scratch.dw_partials, threads * weight_grad_partials(c));
    }
    if (c.score_pos2d) arena.plan(&pos2d_features, static_cast<int64_t>(max_seq) * kPos2dFeatures);
    arena.allocate();
    if (c.score_pos2d) kvtie::pos2d_features(pos2d_features, max_seq);
    if (c.pos == PosEmb::sincos2d)
      sincos2d_table(pos_table, c.image.grid_h(), c.image.grid_w(), c.d_model, c.n_cls_tokens());
  }

  Arena arena;
  T *params, *grads = nullptr;  // grads: trainable models only
  int32_t *tokens = nullptr, *targets;  // tokens: token models only
  T* patches = nullptr;    // [N, C·p·p] the im2col of the images (image models only)
  T* emb;                  // [N,d] embedding output, the first block's input
  T* pos_table = nullptr;  // [max_seq_len, d] the fixed sin-cos table (pos = sincos2d only)
  std::vector<BlockActivations<T>> blocks;
  T *lnf, *lnf_mean, *lnf_rstd;
  T *pooled = nullptr, *dpooled = nullptr;  // [B,d], pooled head only (the mean or the class row)
  T* logits;                                // [rows, n_outputs]; holds dlogits after backward
  T *losses, *lse;                          // [rows]
  T *dres = nullptr, *dlnf = nullptr;       // [N,d], trainable models only
  BlockScratch<T> scratch;
  T* pos2d_features = nullptr;  // [max_seq, kPos2dFeatures], score_pos2d only
};

}  // namespace kvtie
