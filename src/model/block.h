#pragma once
// One pre-norm transformer block: x += Attn(LN1(x)); x += MLP(LN2(x)).
#include <algorithm>
#include <optional>

#include "kernels/attention.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/residual.h"
#include "kvtie/param_layout.h"
#include "model/activations.h"

namespace kvtie {

inline AttentionShape attention_shape(const ModelConfig& c, int B, int Tn) {
  return {B, Tn, c.n_head, c.n_kv_head, c.head_dim, c.attn_proj_dim(), c.q_offset(), c.k_offset(), c.v_offset(),
          c.causal};
}

// The (X)+ term's parameters of one block, or null when the config has none.
template <typename T>
std::optional<ScorePos2d<T>> score_pos2d(const T* w, const BlockOffsets& o, const T* features) {
  if (o.pos2d_scale < 0) return std::nullopt;
  return ScorePos2d<T>{w + o.pos2d_scale, w + o.pos2d_weight, w + o.pos2d_bias, features};
}

// x [N,d] → a.res_out [N,d]. Every thread of the model's team runs this; each kernel does the
// thread's share (kernels/parallel.h).
template <typename T>
void block_forward(BlockActivations<T>& a, BlockScratch<T>& s, const T* x, const T* w, const BlockOffsets& o,
                   const ModelConfig& c, int B, int Tn, const T* pos2d_features) {
  const int64_t N = static_cast<int64_t>(B) * Tn;
  const int d = c.d_model, P = c.attn_proj_dim(), QD = c.q_dim();
  layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, w + o.ln1_w, w + o.ln1_b, N, d);
  linear_forward(a.qkv, a.ln1, w + o.attn_w, w + o.attn_b, N, d, P);  // [N,P]: the distinct projections
  const auto pos2d = score_pos2d(w, o, pos2d_features);
  attention_forward(a.att, a.att_lse, s.attn_tiles, a.qkv, attention_shape(c, B, Tn), pos2d ? &*pos2d : nullptr);
  linear_forward(s.branch, a.att, w + o.out_w, w + o.out_b, N, QD, d);
  residual_forward(a.res_att, x, s.branch, N, d);
  layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res_att, w + o.ln2_w, w + o.ln2_b, N, d);
  linear_forward(a.fc, a.ln2, w + o.fc_w, static_cast<const T*>(nullptr), N, d, c.d_ff);
  bias_gelu_forward(a.fc_gelu, a.fc, w + o.fc_b, N, c.d_ff);
  linear_forward(s.branch, a.fc_gelu, w + o.proj_w, w + o.proj_b, N, c.d_ff, d);
  residual_forward(a.res_out, a.res_att, s.branch, N, d);
}

// dres [N,d]: gradient at the block output on entry, at the block input x on exit.
template <typename T>
void block_backward(T* dres, BlockScratch<T>& s, const BlockActivations<T>& a, const T* x, const T* w, T* g,
                    const BlockOffsets& o, const ModelConfig& c, int B, int Tn, const T* pos2d_features) {
  const int64_t N = static_cast<int64_t>(B) * Tn;
  const int d = c.d_model, P = c.attn_proj_dim(), QD = c.q_dim();
  // MLP branch
  linear_backward(s.dff, g + o.proj_w, g + o.proj_b, dres, a.fc_gelu, w + o.proj_w, N, c.d_ff, d, s.dw_partials);
  gelu_backward(s.dff, a.fc, s.dff, N, c.d_ff);
  linear_backward(s.dln, g + o.fc_w, g + o.fc_b, s.dff, a.ln2, w + o.fc_w, N, d, c.d_ff, s.dw_partials);
  layernorm_backward(s.branch, g + o.ln2_w, g + o.ln2_b, s.dln, a.res_att, w + o.ln2_w, a.ln2_mean, a.ln2_rstd, N, d);
  residual_backward(dres, s.branch, N, d);
  // Attention branch
  team_for(N, N * P, [&](int64_t n0, int64_t n1) { std::fill(s.dqkv + n0 * P, s.dqkv + n1 * P, T(0)); });
  linear_backward(s.datt, g + o.out_w, g + o.out_b, dres, a.att, w + o.out_w, N, QD, d, s.dw_partials);
  const auto pos2d = score_pos2d(w, o, pos2d_features);
  const ScorePos2dGrad<T> pos2d_grad{g + o.pos2d_scale, g + o.pos2d_weight, g + o.pos2d_bias};
  attention_backward(s.dqkv, s.attn_tiles, s.pos2d_partials, s.datt, a.qkv, a.att_lse, attention_shape(c, B, Tn),
                     pos2d ? &*pos2d : nullptr, pos2d ? &pos2d_grad : nullptr);
  linear_backward(s.dln, g + o.attn_w, g + o.attn_b, s.dqkv, a.ln1, w + o.attn_w, N, d, P, s.dw_partials);
  layernorm_backward(s.branch, g + o.ln1_w, g + o.ln1_b, s.dln, x, w + o.ln1_w, a.ln1_mean, a.ln1_rstd, N, d);
  residual_backward(dres, s.branch, N, d);
}

}  // namespace kvtie
