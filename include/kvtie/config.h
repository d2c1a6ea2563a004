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
// Tied LM head, per-token classes, one class per sequence read from the pooled positions (`Pool`).
enum class Head { lm, token, pooled };
// Learned absolute positions, none, or (images only) the fixed 2D sin-cos table of MAE.
enum class PosEmb { learned, none, sincos2d };
// What the model reads: token ids, or images cut into patches (docs/vision.md).
enum class Input { tokens, image };
// How a pooled head sees the sequence: the mean over positions, or the output of a class token
// prepended at position 0 (image inputs only).
enum class Pool { mean, cls };

// An image input [channels, height, width] cut into patch × patch squares; patch divides both sides.
struct ImageInput {
  int channels = 0, height = 0, width = 0, patch = 0;
  int grid_h() const { return height / patch; }
  int grid_w() const { return width / patch; }
  int n_patches() const { return grid_h() * grid_w(); }
  int patch_dim() const { return channels * patch * patch; }  // one flattened patch: (c, i, j)
  int64_t pixels() const { return static_cast<int64_t>(channels) * height * width; }
};

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
  // Image models: vocab_size is 0, head is pooled, causal is false and max_seq_len is derived:
  // n_patches, + 1 for the class token.
  Input input = Input::tokens;
  ImageInput image;
  Pool pool = Pool::mean;

  bool is_image() const { return input == Input::image; }
  int n_cls_tokens() const { return pool == Pool::cls ? 1 : 0; }

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

// `where` prefixes error messages, e.g. "configs/tiny.json: model". An "image" object
// {"channels", "height", "width", "patch"} makes an image model (docs/vision.md).
ModelConfig parse_model_config(const nlohmann::json& j, std::string_view where = "model");
nlohmann::json to_json(const ModelConfig& c);

std::string_view share_name(Share s);
std::string_view pos_name(PosEmb p);  // the config value: "learned", "none", "sincos2d"
// The study's name for the variant, e.g. "Q-K=V", "GQA-2", "Q-MQA".
std::string variant_label(const ModelConfig& c);

// Bytes the KV cache needs for one token (all layers), at `bytes_per_value` per element.
int64_t kv_bytes_per_token(const ModelConfig& c, double bytes_per_value);

}  // namespace kvtie
