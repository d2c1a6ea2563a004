#pragma once
// The transformer of DESIGN.md §1 with every `share` variant, MHA/GQA/MQA, causal or
// bidirectional, and an LM (tied), per-token or pooled classification head. An image config makes
// it a ViT (docs/vision.md): patch embedding, optional class token, the same trunk and a pooled head.
//
// Parameters, gradients and activations live in one arena sized from the config and the largest
// batch the caller will run; forward/backward never allocate. T is float for real work and double
// for gradient checks.
#include <cstdint>
#include <memory>

#include "kvtie/config.h"
#include "kvtie/param_layout.h"

namespace kvtie {

template <typename T>
struct Activations;  // src/model/activations.h

template <typename T>
class Transformer {
 public:
  // max_seq may be below config.max_seq_len to save memory when only short windows are run.
  // trainable false builds an inference model: no gradients and no backward buffers (about a third
  // less memory), and backward() is an error.
  Transformer(const ModelConfig& config, int max_batch, int max_seq, bool trainable = true);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_batch_; }
  int max_seq() const { return max_seq_; }

  T* params() { return params_; }
  const T* params() const { return params_; }
  T* grads() { return grads_; }  // null for an inference model
  bool trainable() const { return grads_ != nullptr; }
  int64_t num_params() const { return layout_.total; }

  // Normal(0, std) for matrices and embeddings (0.02 as GPT-2, the default), zero biases,
  // LayerNorm weights 1.
  void init_weights(uint64_t seed, double std = 0.02);

  // tokens [B, Tn]; targets [B, Tn] (lm, token heads) or [B] (pooled head), -1 = not scored, or
  // null to only compute logits. Returns the mean loss over scored targets (0 when none).
  T forward(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  // The image model's forward: images [B, C, H, W] (config().image; normalised floats), labels [B]
  // (-1 = not scored) or null. The sequence is config().max_seq_len long: the class token (pool =
  // cls), then the patches. The model must have been built with max_seq = max_seq_len.
  T forward_images(const float* images, const int32_t* labels, int B);
  // grads += loss_scale · d(mean loss)/d(params) for the last forward, which must have had targets.
  // Follows either forward.
  void backward(T loss_scale = T(1));
  void zero_grad();

  const T* logits() const;   // [logits_rows(), config().n_outputs()] of the last forward
  // The pooled head's input [B, d_model] of the last forward (after LN_f: the class token's row or
  // the mean over positions): what a frozen model offers as image features. Null for other heads.
  const T* pooled() const;
  int64_t logits_rows() const;
  // The fused Q/K/V projection output [B, Tn, attn_proj_dim] of a layer in the last forward: the
  // prefill copies the prompt's K and V rows from it into the KV cache.
  const T* layer_qkv(int layer) const;
  // A layer's attention probabilities in the last forward into probs [B, n_head, Tn, Tn] (row =
  // query), recomputed: a forward keeps only each score row's log-sum-exp.
  void layer_attention(int layer, T* probs) const;
  double loss_sum() const { return loss_sum_; }  // Σ loss over scored targets of the last forward
  int64_t scored() const { return scored_; }

  size_t arena_bytes() const;

 private:
  void check_inputs(const int32_t* tokens, const int32_t* targets, int B, int Tn) const;
  void check_targets(const int32_t* targets, int B, int Tn) const;
  // The blocks, LN_f, the head and the loss, from the embedding output of the last forward.
  T forward_trunk(const int32_t* targets);
  // Threads of the team a forward or backward pass runs as (one parallel region per pass).
  int team_size() const;

  ModelConfig config_;
  ParamLayout layout_;
  int max_batch_, max_seq_, threads_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  std::unique_ptr<Activations<T>> acts_;
  // The last forward's shape and targets, for backward.
  int B_ = 0, T_ = 0;
  const int32_t* tokens_ = nullptr;
  const int32_t* targets_ = nullptr;
  double loss_sum_ = 0.0;
  int64_t scored_ = 0;
};

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace kvtie
