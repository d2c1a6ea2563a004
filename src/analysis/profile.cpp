// The profiler's formulas: the one place that counts parameters, MACs/FLOPs, KV-cache and arena
// bytes. docs/profile.md derives each; tests/test_profile.cpp checks them against independent
// counts (the parameter layout, the built model's arena) and the study's figures.
#include "kvtie/profile.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/attention.h"
#include "model/activations.h"
#include "kvtie/error.h"

namespace kvtie {

// ---------------------------------------------------------------------------------------------
// KV cache

namespace {
// int8's one scale per head vector is an fp32: the integer kernel multiplies by it directly, and at
// head_dim 64 it costs 4 of 68 bytes. int4's scales are fp16, one per group: at head_dim 64, 4 of
// 36 bytes.
constexpr int64_t kInt8ScaleBytes = 4, kInt4ScaleBytes = 2;

int kv_bits(KvDType t) {
  switch (t) {
    case KvDType::fp32:
      return 32;
    case KvDType::bf16:
    case KvDType::fp16:
      return 16;
    case KvDType::int8:
      return 8;
    case KvDType::int4:
      return 4;
  }
  return 0;
}

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail("{}: the byte count overflows 64 bits", what);
  return r;
}
}  // namespace

std::string_view kv_dtype_name(KvDType t) {
  switch (t) {
    case KvDType::fp32:
      return "fp32";
    case KvDType::bf16:
      return "bf16";
    case KvDType::fp16:
      return "fp16";
    case KvDType::int8:
      return "int8";
    case KvDType::int4:
      return "int4";
  }
  return "?";
}

KvDType parse_kv_dtype(std::string_view name, std::string_view what) {
  for (KvDType t : kAllKvDTypes)
    if (kv_dtype_name(t) == name) return t;
  fail("{}: unknown KV-cache dtype '{}' (known: fp32, bf16, fp16, int8, int4)", what, name);
}

int64_t kv_vector_bytes(int head_dim, KvDType t) {
  const int64_t bits = static_cast<int64_t>(head_dim) * kv_bits(t);
  const int64_t packed = (bits + 7) / 8;  // int4 with an odd head_dim still fills whole bytes
  if (t == KvDType::int8) return packed + kInt8ScaleBytes;
  if (t == KvDType::int4) return packed + kInt4ScaleBytes * ((head_dim + kInt4Group - 1) / kInt4Group);
  return packed;
}

int64_t kv_cache_bytes_per_token(const ModelConfig& c, KvDType t) {
  const int64_t tensors = c.v_is_k() ? 1 : 2;  // with V = K the cache holds K only
  return static_cast<int64_t>(c.n_layer) * tensors * c.n_kv_head * kv_vector_bytes(c.head_dim, t);
}

int64_t kv_cache_bytes(const ModelConfig& c, int64_t context, int64_t batch, KvDType t) {
  if (context < 0 || batch < 0) fail("KV cache: context {} and batch {} must be non-negative", context, batch);
  return checked_mul(checked_mul(kv_cache_bytes_per_token(c, t), context, "KV cache"), batch, "KV cache");
}

// ---------------------------------------------------------------------------------------------
// Parameters

ParamCounts count_params(const ModelConfig& c) {
  const int64_t L = c.n_layer, d = c.d_model, P = c.attn_proj_dim(), q = c.q_dim(), ff = c.d_ff;
  ParamCounts p;
  const int64_t inputs = c.is_image() ? d * c.image.patch_dim() + d + c.n_cls_tokens() * d  // patch_emb, cls_token
                                      : static_cast<int64_t>(c.vocab_size) * d;               // tok_emb
  p.embeddings = inputs + (c.pos == PosEmb::learned ? c.max_seq_len * d : 0);
  p.attn_qkv = L * (P * d + P);
  p.attn_out = L * (d * q + d);
  p.mlp = L * (2 * d * ff + ff + d);
  p.norms = L * 4 * d + 2 * d;
  p.head = c.head == Head::lm ? 0 : static_cast<int64_t>(c.n_classes) * (d + 1);
  p.score_pos2d = c.score_pos2d ? L * c.n_head * (kPos2dChannels + 2) : 0;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Compute

namespace {
// FLOPs per element of the operations that are not matrix products. One FLOP per arithmetic
// operation or transcendental (exp, erf); per-row work (a LayerNorm's rsqrt, a softmax's 1/sum) is
// below 1/d of the row and left out.
constexpr double kLayerNormFlops = 7;  // Σx, x−μ, (x−μ)², Σ, ·rstd, ·γ, +β
constexpr double kSoftmaxFlops = 6;    // ·1/√hd, max, −max, exp, Σ, ·1/Σ
constexpr double kGeluFlops = 5;       // x/√2, erf, 1+, ·½, ·x
constexpr double kLossFlops = 4;       // log-sum-exp per logit: max, −max, exp, Σ
constexpr double kAddFlops = 1;        // a bias, a residual, the position embedding, a pooled sum
}  // namespace

double Cost::macs() const {
  return embed.macs + qkv.macs + out.macs + scores.macs + mlp.macs + head.macs + misc.macs;
}
double Cost::flops() const {
  return embed.flops() + qkv.flops() + out.flops() + scores.flops() + mlp.flops() + head.flops() + misc.flops();
}
Cost Cost::scaled(double f) const {
  Cost r = *this;
  for (Term* t : {&r.embed, &r.qkv, &r.out, &r.scores, &r.mlp, &r.head, &r.misc}) {
    t->macs *= f;
    t->other *= f;
  }
  return r;
}

Cost pass_cost(const ModelConfig& c, const PassShape& s) {
  const double L = c.n_layer, d = c.d_model, P = c.attn_proj_dim(), q = c.q_dim(), ff = c.d_ff;
  const double V = c.n_outputs(), B = static_cast<double>(s.batch), T = static_cast<double>(s.tokens);
  const bool decode = s.kind == PassKind::decode;
  const double N = B * (decode ? 1 : T);  // rows through the blocks
  // (query, key) pairs per head and sequence.
  const double pairs = decode ? T : (c.causal && !s.dense_scores) ? T * (T + 1) / 2 : T * T;
  const bool pooled = c.head == Head::pooled;
  // A generator needs logits of the last position only; a pooled head reads every position.
  const double logit_rows = pooled || s.kind != PassKind::forward ? B : N;
  const double lnf_rows = pooled || s.kind == PassKind::forward ? N : B;

  Cost k;
  if (c.is_image()) {  // the patch embedding: one [C·p·p] → [d] linear layer (with bias) per patch
    const double patch_rows = N - B * (decode ? 0 : c.n_cls_tokens());
    k.embed = {patch_rows * c.image.patch_dim() * d, patch_rows * d * kAddFlops};
  }
  k.qkv = {L * N * d * P, L * N * P * kAddFlops};
  k.out = {L * N * q * d, L * N * d * kAddFlops};
  // Q·Kᵀ and P·V each cost head_dim MACs per pair and head; n_head · head_dim = q.
  // The (X)+ term adds a·S + u_i + v_j per pair (u, v: kPos2dFeatures MACs per position).
  const double pos2d_flops = c.score_pos2d ? 3 * pairs + 4.0 * kPos2dFeatures * T : 0;
  k.scores = {L * B * 2 * q * pairs, L * B * c.n_head * (pairs * kSoftmaxFlops + pos2d_flops)};
  k.mlp = {L * N * 2 * d * ff, L * N * ((ff + d) * kAddFlops + ff * kGeluFlops)};
  k.head = {logit_rows * d * V, logit_rows * V * ((c.head == Head::lm ? 0 : kAddFlops) + (s.loss ? kLossFlops : 0))};
  k.misc.other = (c.pos != PosEmb::none ? N * d * kAddFlops : 0) +
                 L * N * d * (2 * kLayerNormFlops + 2 * kAddFlops) + lnf_rows * d * kLayerNormFlops +
                 (pooled && c.pool == Pool::mean ? N * d * kAddFlops : 0);
  return k;
}

Cost train_step_cost(const ModelConfig& c, int64_t tokens, int64_t batch) {
  return pass_cost(c, {.kind = PassKind::forward, .tokens = tokens, .batch = batch, .loss = true}).scaled(3);
}

double study_macs(const ModelConfig& c, int64_t tokens) {
  const double T = static_cast<double>(tokens), d = c.d_model, ff = c.d_ff, V = c.vocab_size;
  const double projections = c.share == Share::none ? 3 : c.share == Share::qkv ? 1 : 2;
  return c.n_layer * ((projections + 1) * T * d * d + 2 * T * T * d + 2 * T * d * ff) + T * d * V;
}

// ---------------------------------------------------------------------------------------------
// Variants and presets

const std::vector<std::string>& study_variant_labels() {
  static const std::vector<std::string> labels = {"QKV", "Q-K=V", "Q=K-V", "Q=K=V", "GQA-4", "MQA", "Q-GQA-4", "Q-MQA"};
  return labels;
}

ModelConfig apply_variant(const ModelConfig& base, std::string_view label) {
  const std::string s(label);
  Share share = Share::none;
  int kv = base.n_head;
  auto groups = [&](const std::string& rest) {
    if (rest.empty() || rest.size() > 6 || rest.find_first_not_of("0123456789") != std::string::npos)
      fail("--variants: '{}' needs a kv-head count, e.g. GQA-4", s);
    return std::stoi(rest);
  };
  if (s == "QKV" || s == "MHA") {
  } else if (s == "Q-K=V") {
    share = Share::kv;
  } else if (s == "Q=K-V") {
    share = Share::qk;
  } else if (s == "Q=K=V") {
    share = Share::qkv;
  } else if (s == "MQA") {
    kv = 1;
  } else if (s == "Q-MQA") {
    share = Share::kv;
    kv = 1;
  } else if (s.starts_with("GQA-")) {
    kv = groups(s.substr(4));
  } else if (s.starts_with("Q-GQA-")) {
    share = Share::kv;
    kv = groups(s.substr(6));
  } else {
    fail("--variants: unknown variant '{}' (known: QKV, Q-K=V, Q=K-V, Q=K=V, GQA-g, MQA, Q-GQA-g, Q-MQA)", s);
  }
  ModelConfig c = base;
  c.share = share;
  c.n_kv_head = kv;
  // The config parser owns the rules (kv heads divide heads, Q=K needs every head): reuse it.
  return parse_model_config(to_json(c), fmt::format("variant {}: model", s));
}

namespace {
StudyFigures study_300m() {
  StudyFigures f;
  f.params = {{"QKV", 305.5e6}, {"Q-K=V", 284.5e6}};
  f.macs_tokens = 2048;
  f.macs = {{"QKV", 792.69e9}, {"Q-K=V", 749.74e9}, {"Q=K-V", 749.74e9}, {"Q=K=V", 706.79e9}};
  f.kv_bytes_per_token_fp16 = {{"QKV", 80 * 1024}, {"Q-K=V", 40 * 1024}};
  f.kv_cut_percent = {{"Q-K=V", 50}, {"GQA-4", 75}, {"MQA", 93.75}, {"Q-GQA-4", 87.5}, {"Q-MQA", 96.875}};
  return f;
}

StudyFigures study_1b() {
  StudyFigures f;
  f.params = {{"QKV", 1215e6}, {"Q-K=V", 1123e6}};
  f.kv_cut_percent = {{"Q-MQA", 96.9}};  // the slide's label; ours is 98.4375% (docs/profile.md)
  return f;
}
}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"paper-300m", "The study's 300M model: 20 layers, d_model 1024, 16 heads, d_ff 4096",
       R"({"model": {"n_layer": 20, "n_head": 16, "d_model": 1024, "d_ff": 4096, "vocab_size": 50304,
                     "max_seq_len": 2048}})",
       study_300m()},
      {"paper-1.2b", "The study's 1.2B model: 22 layers, d_model 2048, 32 heads, d_ff 8192",
       R"({"model": {"n_layer": 22, "n_head": 32, "d_model": 2048, "d_ff": 8192, "vocab_size": 50304,
                     "max_seq_len": 2048}})",
       study_1b()},
  };
  return all;
}

const Preset& find_preset(std::string_view name) {
  std::string known;
  for (const Preset& p : presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  fail("--preset: unknown preset '{}' (known: {})", name, known);
}

// ---------------------------------------------------------------------------------------------
// Memory of the built model

int64_t model_arena_bytes(const ModelConfig& c, int max_batch, int max_seq, int threads, int element_bytes) {
  // Mirrors the plan in src/model/activations.h buffer by buffer; a test builds models and
  // compares, so a change there that is not made here fails.
  const int64_t B = max_batch, S = max_seq, N = B * S, d = c.d_model, P = c.attn_proj_dim(), q = c.q_dim();
  const int64_t ff = c.d_ff, params = count_params(c).total();
  const int64_t rows = c.head == Head::pooled ? B : N;
  int64_t bytes = 0;
  auto buf = [&](int64_t count, int64_t size) { bytes += (count * size + 63) / 64 * 64; };
  auto t = [&](int64_t count) { buf(count, element_bytes); };
  t(params);
  t(params);
  if (c.is_image())
    t(N * c.image.patch_dim());  // the images' patches (im2col)
  else
    buf(N, 4);  // tokens
  buf(N, 4);    // targets
  t(N * d);
  if (c.pos == PosEmb::sincos2d) t(static_cast<int64_t>(c.max_seq_len) * d);  // the fixed position table
  for (int l = 0; l < c.n_layer; l++) {
    t(N * d), t(N), t(N);  // ln1, mean, rstd
    t(N * P);
    t(B * c.n_head * S);      // log-sum-exp of each attention score row
    t(N * q), t(N * d);       // attention output, residual
    t(N * d), t(N), t(N);     // ln2
    t(N * ff), t(N * ff), t(N * d);
  }
  t(N * d), t(N), t(N);  // ln_f
  if (c.head == Head::pooled) t(B * d), t(B * d);
  t(rows * c.n_outputs());
  t(rows), t(rows);                                   // losses, log-sum-exp
  t(N * d), t(N * d);                                 // dres, dlnf
  t(N * d), t(N * d), t(N * P), t(N * q), t(N * ff);  // the backward's scratch
  // the attention's score tiles per thread, the (X)+ partials and position features
  const AttentionShape largest{max_batch, max_seq, c.n_head, c.n_kv_head, c.head_dim, 0, 0, 0, 0, c.causal};
  t(threads * attention_tiles_per_thread_max(largest, true, c.score_pos2d));
  if (c.score_pos2d) t(B * c.n_head * kPos2dPartial);
  t(threads * weight_grad_partials(c));  // the weight gradients' partial sums
  if (c.score_pos2d) t(S * kPos2dFeatures);
  return std::max<int64_t>(bytes, 64);
}

}  // namespace kvtie
