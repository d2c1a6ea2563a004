#include "kvtie/model.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/rng.h"
#include "kernels/embedding.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/parallel.h"
#include "kernels/patch_embed.h"
#include "kernels/pool.h"
#include "kernels/softmax_xent.h"
#include "kvtie/error.h"
#include "model/activations.h"
#include "model/block.h"

namespace kvtie {

template <typename T>
Transformer<T>::Transformer(const ModelConfig& config, int max_batch, int max_seq, bool trainable)
    : config_(config),
      layout_(make_param_layout(config)),
      max_batch_(max_batch),
      max_seq_(max_seq),
      threads_(omp_get_max_threads()) {
  if (max_batch < 1) fail("batch size must be at least 1, got {}", max_batch);
  if (max_seq < 1 || max_seq > config.max_seq_len)
    fail("sequence length {} is outside [1, max_seq_len {}]", max_seq, config.max_seq_len);
  if (config.is_image() && config.max_seq_len != config.image.n_patches() + config.n_cls_tokens())
    fail("image model: max_seq_len {} is not the {} patches{}", config.max_seq_len, config.image.n_patches(),
         config.n_cls_tokens() ? " + 1 class token" : "");
  acts_ = std::make_unique<Activations<T>>(config_, layout_.total, max_batch, max_seq, threads_, trainable);
  params_ = acts_->params;
  grads_ = acts_->grads;
  std::fill(params_, params_ + layout_.total, T(0));
  if (trainable) zero_grad();
}

template <typename T>
Transformer<T>::~Transformer() = default;

template <typename T>
size_t Transformer<T>::arena_bytes() const {
  return acts_->arena.bytes();
}

template <typename T>
void Transformer<T>::init_weights(uint64_t seed, double std) {
  Rng rng(seed);
  for (const auto& t : layout_.tensors) {
    T* p = params_ + t.offset;
    const bool is_matrix = t.shape.size() >= 2;
    // LayerNorm weights and the (X)+ score scale start at 1: the identity they multiply.
    const bool is_norm_weight = !is_matrix && (t.name.ends_with(".weight") || t.name.ends_with(".scale"));
    for (int64_t i = 0; i < t.numel; i++)
      p[i] = is_matrix ? static_cast<T>(std * rng.normal()) : is_norm_weight ? T(1) : T(0);
  }
}

template <typename T>
void Transformer<T>::zero_grad() {
  if (!grads_) fail("this model was built for inference: it has no gradients");
  std::fill(grads_, grads_ + layout_.total, T(0));
}

template <typename T>
void Transformer<T>::check_inputs(const int32_t* tokens, const int32_t* targets, int B, int Tn) const {
  if (config_.is_image()) fail("this is an image model: call forward_images, not forward");
  if (B < 1 || B > max_batch_) fail("batch {} is outside [1, {}]", B, max_batch_);
  if (Tn < 1 || Tn > max_seq_) fail("sequence length {} is outside [1, {}]", Tn, max_seq_);
  const int64_t N = static_cast<int64_t>(B) * Tn;
  for (int64_t n = 0; n < N; n++)
    if (tokens[n] < 0 || tokens[n] >= config_.vocab_size)
      fail("token {} at position {} is outside the vocabulary [0, {})", tokens[n], n, config_.vocab_size);
  check_targets(targets, B, Tn);
}

template <typename T>
void Transformer<T>::check_targets(const int32_t* targets, int B, int Tn) const {
  if (!targets) return;
  const int64_t rows = config_.head == Head::pooled ? B : static_cast<int64_t>(B) * Tn;
  for (int64_t n = 0; n < rows; n++)
    if (targets[n] < -1 || targets[n] >= config_.n_outputs())
      fail("target {} at position {} is outside [0, {}) (or -1 to skip)", targets[n], n, config_.n_outputs());
}

template <typename T>
const T* Transformer<T>::layer_qkv(int layer) const {
  return acts_->blocks.at(layer).qkv;
}

template <typename T>
void Transformer<T>::layer_attention(int layer, T* probs) const {
  const auto& a = acts_->blocks.at(layer);
  const auto pos2d = score_pos2d(params_, layout_.blocks[layer], acts_->pos2d_features);
  attention_probabilities(probs, a.qkv, a.att_lse, attention_shape(config_, B_, T_), pos2d ? &*pos2d : nullptr);
}

template <typename T>
int64_t Transformer<T>::logits_rows() const {
  return config_.head == Head::pooled ? B_ : static_cast<int64_t>(B_) * T_;
}

template <typename T>
const T* Transformer<T>::logits() const {
  return acts_->logits;
}

template <typename T>
const T* Transformer<T>::pooled() const {
  return acts_->pooled;
}

template <typename T>
T Transformer<T>::forward(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  check_inputs(tokens, targets, B, Tn);
  Activations<T>& a = *acts_;
  const T* w = params_;
  B_ = B;
  T_ = Tn;
  std::copy(tokens, tokens + static_cast<int64_t>(B) * Tn, a.tokens);
  embedding_forward(a.emb, a.tokens, w + layout_.tok_emb, layout_.pos_emb >= 0 ? w + layout_.pos_emb : nullptr, B,
                    Tn, config_.d_model);
  return forward_trunk(targets);
}

namespace {
PatchGeometry patch_geometry(const ModelConfig& c) {
  return {c.image.channels, c.image.height, c.image.width, c.image.patch, c.n_cls_tokens()};
}
}  // namespace

template <typename T>
T Transformer<T>::forward_images(const float* images, const int32_t* labels, int B) {
  const ModelConfig& c = config_;
  if (!c.is_image()) fail("this is a token model: call forward, not forward_images");
  if (B < 1 || B > max_batch_) fail("batch {} is outside [1, {}]", B, max_batch_);
  const int S = c.max_seq_len;
  if (max_seq_ != S)
    fail("the model was built for {} positions, an image needs all {} (build it with max_seq = max_seq_len)",
         max_seq_, S);
  check_targets(labels, B, S);
  Activations<T>& a = *acts_;
  const T* w = params_;
  B_ = B;
  T_ = S;
  const T* pos = layout_.pos_emb >= 0 ? w + layout_.pos_emb : a.pos_table;  // null with pos = none
  patch_embed_forward(a.emb, a.patches, images, w + layout_.patch_w, w + layout_.patch_b,
                      layout_.cls_token >= 0 ? w + layout_.cls_token : nullptr, pos, patch_geometry(c), B,
                      c.d_model);
  return forward_trunk(labels);
}

template <typename T>
int Transformer<T>::team_size() const {
  return std::min(omp_get_max_threads(), threads_);  // the scratch holds threads_ sets of tiles
}

template <typename T>
T Transformer<T>::forward_trunk(const int32_t* targets) {
  Activations<T>& a = *acts_;
  const ModelConfig& c = config_;
  const int B = B_, Tn = T_, d = c.d_model;
  const int64_t N = static_cast<int64_t>(B) * Tn, rows = logits_rows();
  const T* w = params_;
  targets_ = nullptr;
  if (targets) {
    std::copy(targets, targets + rows, a.targets);
    targets_ = a.targets;
  }
  run_team(team_size(), [&] {
    const T* x = a.emb;
    for (int l = 0; l < c.n_layer; l++) {
      block_forward(a.blocks[l], a.scratch, x, w, layout_.blocks[l], c, B, Tn, a.pos2d_features);
      x = a.blocks[l].res_out;
    }
    layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, x, w + layout_.lnf_w, w + layout_.lnf_b, N, d);
    switch (c.head) {
      case Head::lm: linear_forward(a.logits, a.lnf, w + layout_.tok_emb, static_cast<const T*>(nullptr), N, d, c.vocab_size); break;
      case Head::token: linear_forward(a.logits, a.lnf, w + layout_.head_w, w + layout_.head_b, N, d, c.n_classes); break;
      case Head::pooled:
        if (c.pool == Pool::cls)
          first_pool_forward(a.pooled, a.lnf, B, Tn, d);
        else
          mean_pool_forward(a.pooled, a.lnf, B, Tn, d);
        linear_forward(a.logits, a.pooled, w + layout_.head_w, w + layout_.head_b, B, d, c.n_classes);
        break;
    }
    if (targets_) softmax_xent_forward(a.losses, a.lse, a.logits, a.targets, rows, c.n_outputs());
  });

  loss_sum_ = 0.0;
  scored_ = 0;
  if (!targets_) return T(0);
  for (int64_t n = 0; n < rows; n++) {
    loss_sum_ += a.losses[n];
    scored_ += a.targets[n] != kIgnoreIndex;
  }
  return scored_ ? static_cast<T>(loss_sum_ / static_cast<double>(scored_)) : T(0);
}

template <typename T>
void Transformer<T>::backward(T loss_scale) {
  if (!grads_) fail("this model was built for inference: it has no gradients, so no backward");
  if (!targets_) fail("backward needs a forward pass with targets");
  Activations<T>& a = *acts_;
  const ModelConfig& c = config_;
  const int B = B_, Tn = T_, d = c.d_model;
  const int64_t N = static_cast<int64_t>(B) * Tn, rows = logits_rows();
  const T* w = params_;
  T* g = grads_;
  if (scored_ == 0) return;  // nothing was scored: the loss is constant

  T* dlogits = a.logits;  // overwritten in place
  run_team(team_size(), [&] {
    softmax_xent_backward(dlogits, a.logits, a.lse, a.targets, loss_scale / static_cast<T>(scored_), rows,
                          c.n_outputs());
    switch (c.head) {
      case Head::lm: linear_backward(a.dlnf, g + layout_.tok_emb, static_cast<T*>(nullptr), dlogits, a.lnf, w + layout_.tok_emb, N, d, c.vocab_size, a.scratch.dw_partials); break;
      case Head::token: linear_backward(a.dlnf, g + layout_.head_w, g + layout_.head_b, dlogits, a.lnf, w + layout_.head_w, N, d, c.n_classes, a.scratch.dw_partials); break;
      case Head::pooled:
        linear_backward(a.dpooled, g + layout_.head_w, g + layout_.head_b, dlogits, a.pooled, w + layout_.head_w, B, d, c.n_classes, a.scratch.dw_partials);
        if (c.pool == Pool::cls)
          first_pool_backward(a.dlnf, a.dpooled, B, Tn, d);
        else
          mean_pool_backward(a.dlnf, a.dpooled, B, Tn, d);
        break;
    }
    const T* last = c.n_layer ? a.blocks.back().res_out : a.emb;
    layernorm_backward(a.dres, g + layout_.lnf_w, g + layout_.lnf_b, a.dlnf, last, w + layout_.lnf_w, a.lnf_mean,
                       a.lnf_rstd, N, d);
    for (int l = c.n_layer - 1; l >= 0; l--) {
      const T* x = l ? a.blocks[l - 1].res_out : a.emb;
      block_backward(a.dres, a.scratch, a.blocks[l], x, w, g, layout_.blocks[l], c, B, Tn, a.pos2d_features);
    }
    T* dpos = layout_.pos_emb >= 0 ? g + layout_.pos_emb : nullptr;  // the sin-cos table is fixed
    if (c.is_image()) {
      T* dcls = layout_.cls_token >= 0 ? g + layout_.cls_token : nullptr;
      patch_embed_backward(g + layout_.patch_w, g + layout_.patch_b, dcls, dpos, a.dres, a.patches, patch_geometry(c),
                           B, d, a.scratch.dw_partials);
    } else {
      embedding_backward(g + layout_.tok_emb, dpos, a.dres, a.tokens, B, Tn, d);
    }
  });
  targets_ = nullptr;  // the logits now hold gradients: a second backward would be wrong
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace kvtie
