#pragma once
// The model config of DESIGN.md §4: parsed strictly (unknown keys and impossible combinations are
// errors naming the key), stored in checkpoints as JSON.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace kvtie {

// Which attention projections are one matrix. Names follow the config value; the study's labels
// are in variant_label().
enum class Share { none, kv, qk, qkv };
enum class Head { lm, token, pooled };  // tied LM head, per-token classes, mean-pooled classes
enum class PosEmb { learned, none };

struct ModelConfig {
  int n_layer = 4;
  int n_head = 4;
  int n_kv_head = 4;
  int d_model = 256;
  int d_ff = 1024;
  int vocab_size = 8192;
  int max_seq_len = 256;
  int head_dim = 64;
  Share share = Share::none;
  bool causal = true;
  PosEmb pos = PosEmb::learned;
  bool score_pos2d = false;
  Head head = Head::lm;
  int n_classes = 0;

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_kv_head * head_dim; }
  bool v_is_k() const { return share == Share::kv || share == Share::qkv; }
  bool q_is_k() const { return share == Share::qk || share == Share::qkv; }
  // Width of the fused projection output: the distinct projections side by side.
  int attn_proj_dim() const;
  // Offsets of Q, K and V inside a fused projection row; shared roles share an offset.
  int q_offset() const { return 0; }
  int k_offset() const { return q_is_k() ? 0 : q_dim(); }
  int v_offset() const;
  int n_outputs() const { return head == Head::lm ? vocab_size : n_classes; }
};

// `where` prefixes error messages, e.g. "configs/tiny.json: model".
ModelConfig parse_model_config(const nlohmann::json& j, std::string_view where = "model");
nlohmann::json to_json(const ModelConfig& c);

std::string_view share_name(Share s);
// The study's name for the variant, e.g. "Q-K=V", "GQA-2", "Q-MQA".
std::string variant_label(const ModelConfig& c);

// Bytes the KV cache needs for one token (all layers), at `bytes_per_value` per element.
int64_t kv_bytes_per_token(const ModelConfig& c, double bytes_per_value);

}  // namespace kvtie
