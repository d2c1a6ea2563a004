#include "kvtie/config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <set>

#include "kvtie/error.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

// Reads an integer field; rejects non-integers and values outside [lo, hi].
int read_int(const json& j, std::string_view where, const char* key, int64_t lo, int64_t hi,
             int fallback, bool required) {
  if (!j.contains(key)) {
    if (required) fail("{}.{}: missing (required)", where, key);
    return fallback;
  }
  const json& v = j.at(key);
  if (!v.is_number_integer()) {
    if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
        std::abs(v.get<double>()) < 9e15) {
      const auto n = static_cast<int64_t>(v.get<double>());
      if (n < lo || n > hi) fail("{}.{}: {} is out of range [{}, {}]", where, key, n, lo, hi);
      return static_cast<int>(n);
    }
    fail("{}.{}: must be an integer, got {}", where, key, v.dump());
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    fail("{}.{}: {} is out of range [{}, {}]", where, key, v.dump(), lo, hi);
  const int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) fail("{}.{}: {} is out of range [{}, {}]", where, key, n, lo, hi);
  return static_cast<int>(n);
}

bool read_bool(const json& j, std::string_view where, const char* key, bool fallback) {
  if (!j.contains(key)) return fallback;
  if (!j.at(key).is_boolean()) fail("{}.{}: must be true or false, got {}", where, key, j.at(key).dump());
  return j.at(key).get<bool>();
}

std::string read_enum(const json& j, std::string_view where, const char* key,
                      std::initializer_list<const char*> allowed, const char* fallback) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  std::string names;
  for (const char* a : allowed) {
    if (v.is_string() && v.get<std::string>() == a) return a;
    names += names.empty() ? "" : ", ";
    names += a;
  }
  fail("{}.{}: must be one of {}, got {}", where, key, names, v.dump());
}

constexpr int64_t kMaxDim = 1 << 20;
// Token ids are int32 in memory and in .npy files.
constexpr int64_t kMaxVocab = std::numeric_limits<int32_t>::max();

}  // namespace

int ModelConfig::attn_proj_dim() const {
  switch (share) {
    case Share::none: return q_dim() + 2 * kv_dim();
    case Share::kv: return q_dim() + kv_dim();
    case Share::qk: return 2 * q_dim();
    case Share::qkv: return q_dim();
  }
  return 0;
}

int ModelConfig::v_offset() const {
  switch (share) {
    case Share::none: return q_dim() + kv_dim();
    case Share::kv: return k_offset();
    case Share::qk: return q_dim();
    case Share::qkv: return 0;
  }
  return 0;
}

namespace {

// The "image" object of an image model: every field required, patch dividing both sides.
ImageInput parse_image(const json& j, const std::string& where) {
  if (!j.is_object())
    fail("{}: must be an object {{\"channels\", \"height\", \"width\", \"patch\"}}, got {}", where, j.dump());
  static const std::set<std::string> known = {"channels", "height", "width", "patch"};
  for (const auto& item : j.items())
    if (!known.count(item.key())) fail("{}.{}: unknown key", where, item.key());
  ImageInput g;
  g.channels = read_int(j, where, "channels", 1, 4096, 0, true);
  g.height = read_int(j, where, "height", 1, 1 << 16, 0, true);
  g.width = read_int(j, where, "width", 1, 1 << 16, 0, true);
  g.patch = read_int(j, where, "patch", 1, 1 << 16, 0, true);
  if (g.height % g.patch != 0 || g.width % g.patch != 0)
    fail("{}.patch: {} does not divide the {}×{} image (height × width)", where, g.patch, g.height, g.width);
  const int64_t patch_values = static_cast<int64_t>(g.channels) * g.patch * g.patch;
  if (patch_values > kMaxDim)
    fail("{}.patch: a patch of channels × patch² = {} values is too large", where, patch_values);
  if (static_cast<int64_t>(g.grid_h()) * g.grid_w() >= kMaxDim)
    fail("{}.patch: {} patches are too many", where, static_cast<int64_t>(g.grid_h()) * g.grid_w());
  return g;
}

}  // namespace

ModelConfig parse_model_config(const json& j, std::string_view where) {
  if (!j.is_object()) fail("{}: must be a JSON object", where);
  static const std::set<std::string> known = {
      "n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "vocab_size", "max_seq_len", "head_dim",
      "share", "causal", "pos", "score_pos2d", "head", "n_classes", "image", "pool"};
  for (const auto& item : j.items())
    if (!known.count(item.key())) fail("{}.{}: unknown key", where, item.key());

  ModelConfig c;
  const bool image = j.contains("image");
  if (image) {
    c.input = Input::image;
    c.image = parse_image(j.at("image"), fmt::format("{}.image", where));
  }
  c.n_layer = read_int(j, where, "n_layer", 1, 1024, c.n_layer, true);
  c.n_head = read_int(j, where, "n_head", 1, 4096, c.n_head, true);
  c.n_kv_head = read_int(j, where, "n_kv_head", 1, 4096, c.n_head, false);
  c.d_model = read_int(j, where, "d_model", 1, kMaxDim, c.d_model, true);
  c.d_ff = read_int(j, where, "d_ff", 1, kMaxDim, 4 * c.d_model, false);
  if (image) {
    if (j.contains("vocab_size"))
      fail("{}.vocab_size: an image model reads pixels, not tokens: leave vocab_size out", where);
    c.vocab_size = 0;
  } else {
    c.vocab_size = read_int(j, where, "vocab_size", 1, kMaxVocab, c.vocab_size, true);
  }
  const std::string share = read_enum(j, where, "share", {"none", "kv", "qk", "qkv"}, "none");
  c.share = share == "none" ? Share::none : share == "kv" ? Share::kv : share == "qk" ? Share::qk : Share::qkv;
  c.causal = read_bool(j, where, "causal", !image);
  const std::string pos = read_enum(j, where, "pos", {"learned", "none", "sincos2d"}, "learned");
  c.pos = pos == "learned" ? PosEmb::learned : pos == "none" ? PosEmb::none : PosEmb::sincos2d;
  c.score_pos2d = read_bool(j, where, "score_pos2d", false);
  const std::string head = read_enum(j, where, "head", {"lm", "token", "pooled"}, image ? "pooled" : "lm");
  c.head = head == "lm" ? Head::lm : head == "token" ? Head::token : Head::pooled;
  c.n_classes = read_int(j, where, "n_classes", 0, kMaxDim, 0, false);
  const std::string pool = read_enum(j, where, "pool", {"mean", "cls"}, "mean");
  c.pool = pool == "cls" ? Pool::cls : Pool::mean;
  if (image) {
    // The sequence is the patches (after the class token): its length follows from the image.
    const int positions = c.image.n_patches() + c.n_cls_tokens();
    c.max_seq_len = read_int(j, where, "max_seq_len", 1, kMaxDim, positions, false);
    if (c.max_seq_len != positions)
      fail("{}.max_seq_len: the image has {} patches{}, so {} positions, got {} (leave max_seq_len out: it is "
           "derived)",
           where, c.image.n_patches(), c.n_cls_tokens() ? " + a class token" : "", positions, c.max_seq_len);
  } else {
    c.max_seq_len = read_int(j, where, "max_seq_len", 1, kMaxDim, c.max_seq_len, true);
  }

  if (j.contains("head_dim")) {
    c.head_dim = read_int(j, where, "head_dim", 1, kMaxDim, 0, true);
  } else {
    if (c.d_model % c.n_head != 0)
      fail("{}.d_model: {} is not divisible by n_head {} (set head_dim to choose another width)", where,
           c.d_model, c.n_head);
    c.head_dim = c.d_model / c.n_head;
  }
  if (c.n_kv_head > c.n_head)
    fail("{}.n_kv_head: {} exceeds n_head {}", where, c.n_kv_head, c.n_head);
  if (c.n_head % c.n_kv_head != 0)
    fail("{}.n_kv_head: n_head {} is not a multiple of n_kv_head {}", where, c.n_head, c.n_kv_head);
  if (c.q_is_k() && c.n_kv_head != c.n_head)
    fail("{}.share: '{}' makes Q and K one projection, so n_kv_head must equal n_head ({}), got {}", where,
         share, c.n_head, c.n_kv_head);
  if (static_cast<int64_t>(c.n_head) * c.head_dim > kMaxDim)
    fail("{}.head_dim: n_head × head_dim = {} is too large", where, static_cast<int64_t>(c.n_head) * c.head_dim);
  if (image) {
    if (c.causal) fail("{}.causal: image models attend bidirectionally: causal must be false", where);
    // A per-patch head scores each patch: with patch 1 on a 1×n "image" of feature vectors, each item
    // of a set (the set anomaly task, docs/vision.md).
    if (c.head == Head::lm)
      fail("{}.head: an image model has no vocabulary: head must be 'pooled' or 'token', got 'lm'", where);
    if (c.pos == PosEmb::sincos2d && c.d_model % 4 != 0)
      fail("{}.pos: 'sincos2d' splits d_model into 4 sin/cos blocks (x and y): d_model {} is not a multiple of 4",
           where, c.d_model);
  }
  if (c.head == Head::lm && c.n_classes != 0)
    fail("{}.n_classes: only classification heads ('token', 'pooled') take n_classes", where);
  if (c.head != Head::lm && c.n_classes < 1)
    fail("{}.n_classes: head '{}' needs n_classes >= 1", where, head);
  if (c.score_pos2d && c.causal)
    fail("{}.score_pos2d: the 2D score term is defined for non-causal attention only (set causal: false)", where);
  if (j.contains("pool") && c.head != Head::pooled)
    fail("{}.pool: only the 'pooled' head pools (head is '{}')", where, head);
  if (!image) {
    if (c.pos == PosEmb::sincos2d)
      fail("{}.pos: 'sincos2d' is a table over the patch grid: image models only (add an \"image\" object)", where);
    if (c.pool == Pool::cls)
      fail("{}.pool: 'cls' prepends a class token to image patches: image models only (add an \"image\" object)",
           where);
  }
  return c;
}

std::string_view pos_name(PosEmb p) {
  switch (p) {
    case PosEmb::learned: return "learned";
    case PosEmb::none: return "none";
    case PosEmb::sincos2d: return "sincos2d";
  }
  return "?";
}

json to_json(const ModelConfig& c) {
  json j{{"n_layer", c.n_layer},
         {"n_head", c.n_head},
         {"n_kv_head", c.n_kv_head},
         {"d_model", c.d_model},
         {"d_ff", c.d_ff},
         {"vocab_size", c.vocab_size},
         {"max_seq_len", c.max_seq_len},
         {"head_dim", c.head_dim},
         {"share", share_name(c.share)},
         {"causal", c.causal},
         {"pos", pos_name(c.pos)},
         {"score_pos2d", c.score_pos2d},
         {"head", c.head == Head::lm ? "lm" : c.head == Head::token ? "token" : "pooled"},
         {"n_classes", c.n_classes}};
  if (c.is_image()) {
    // A token model's JSON stays as it always was; an image model has no vocabulary.
    j.erase("vocab_size");
    j["image"] = {{"channels", c.image.channels},
                  {"height", c.image.height},
                  {"width", c.image.width},
                  {"patch", c.image.patch}};
    if (c.head == Head::pooled) j["pool"] = c.pool == Pool::cls ? "cls" : "mean";
  }
  return j;
}

std::string_view share_name(Share s) {
  switch (s) {
    case Share::none: return "none";
    case Share::kv: return "kv";
    case Share::qk: return "qk";
    case Share::qkv: return "qkv";
  }
  return "?";
}

std::string variant_label(const ModelConfig& c) {
  std::string base;
  switch (c.share) {
    case Share::none: base = "QKV"; break;
    case Share::kv: base = "Q-K=V"; break;
    case Share::qk: base = "Q=K-V"; break;
    case Share::qkv: base = "Q=K=V"; break;
  }
  if (c.n_kv_head == c.n_head) return base;
  // GQA-g has g kv heads (g groups). The study writes shared-KV grouped variants Q-GQA / Q-MQA.
  const std::string grouping = c.n_kv_head == 1 ? "MQA" : fmt::format("GQA-{}", c.n_kv_head);
  return c.share == Share::kv ? "Q-" + grouping : grouping;
}

int64_t kv_bytes_per_token(const ModelConfig& c, double bytes_per_value) {
  const int tensors = c.v_is_k() ? 1 : 2;
  return static_cast<int64_t>(static_cast<double>(c.n_layer) * tensors * c.kv_dim() * bytes_per_value);
}

}  // namespace kvtie
