#pragma once
// The profiler's theory: parameters, multiply-accumulates/FLOPs and KV-cache bytes of any model
// config, and the measured side (build the model, time a forward pass, read the memory it used).
//
// Every formula lives in src/analysis/profile.cpp and is derived in docs/profile.md. The KV-cache
// byte count is the contract the cache allocator must meet: allocate kv_cache_bytes() exactly.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvtie/config.h"

namespace kvtie {

// ---------------------------------------------------------------------------------------------
// KV cache

// Element formats of the cache, all symmetric quantisation for the integer ones. int8: each stored
// head vector (head_dim values of one token, layer, kv head and tensor) carries one fp32 scale.
// int4: each group of kInt4Group elements of a head vector carries its own fp16 scale, so that
// one large element costs precision in its group only.
enum class KvDType { fp32, bf16, fp16, int8, int4 };
inline constexpr int kInt4Group = 32;
inline constexpr KvDType kAllKvDTypes[] = {KvDType::fp32, KvDType::bf16, KvDType::fp16, KvDType::int8, KvDType::int4};
std::string_view kv_dtype_name(KvDType t);
// "fp32", "bf16", "fp16", "int8", "int4"; anything else is an Error naming `what`.
KvDType parse_kv_dtype(std::string_view name, std::string_view what = "--dtype");

// Bytes of one stored head vector: ceil(head_dim · bits / 8), plus the scales: int8 4 bytes,
// int4 2 per group of kInt4Group elements (at head_dim 64: fp32 256, int8 68, int4 36).
int64_t kv_vector_bytes(int head_dim, KvDType t);
// Bytes one token adds to the cache, all layers: n_layer · (1 if V = K else 2) · n_kv_head · vector.
int64_t kv_cache_bytes_per_token(const ModelConfig& c, KvDType t);
// The whole cache for `batch` sequences of `context` tokens. Overflow is an Error.
int64_t kv_cache_bytes(const ModelConfig& c, int64_t context, int64_t batch, KvDType t);

// ---------------------------------------------------------------------------------------------
// Parameters

struct ParamCounts {
  int64_t embeddings = 0;  // tok_emb (+ pos_emb); the LM head is tied to tok_emb. Image models:
                           // patch_emb (+ cls_token) (+ pos_emb)
  int64_t attn_qkv = 0;    // the distinct Q/K/V projections, weights and biases
  int64_t attn_out = 0;    // the output projection, weight and bias
  int64_t mlp = 0;         // fc and proj, weights and biases
  int64_t norms = 0;       // ln1, ln2 of every block and ln_f
  int64_t head = 0;        // an untied classification head; 0 for the LM head
  int64_t score_pos2d = 0;  // the (X)+ score term's a, w, b per layer and head
  int64_t attention() const { return attn_qkv + attn_out + score_pos2d; }
  int64_t total() const { return embeddings + attn_qkv + attn_out + mlp + norms + head + score_pos2d; }
};
ParamCounts count_params(const ModelConfig& c);

// ---------------------------------------------------------------------------------------------
// Compute

// One term of a pass: multiply-accumulates of its matrix products and the other FLOPs that go with
// it (biases, softmax, GELU, ...). FLOPs = 2 · MACs + other.
struct Term {
  double macs = 0, other = 0;
  double flops() const { return 2 * macs + other; }
};

struct Cost {
  Term embed;   // the patch embedding of an image model (0 for tokens: a table lookup)
  Term qkv;     // the distinct Q/K/V projections
  Term out;     // the output projection
  Term scores;  // Q·Kᵀ and P·V over the attended (query, key) pairs, and the softmax
  Term mlp;     // fc, GELU, proj
  Term head;    // logits (and the loss in training)
  Term misc;    // LayerNorms, residual adds, position add, pooling: no matrix products
  double macs() const;
  double flops() const;
  Cost scaled(double factor) const;
};

// Which pass, over `batch` sequences.
//   forward: all `tokens` of each sequence, logits for every row (the training forward);
//   prefill: `tokens` prompt tokens, logits for the last token only;
//   decode:  one new token attending to `tokens` keys (the cache plus itself).
enum class PassKind { forward, prefill, decode };
struct PassShape {
  PassKind kind = PassKind::forward;
  int64_t tokens = 0;
  int64_t batch = 1;
  bool loss = false;          // add the softmax cross-entropy of the logits (training)
  bool dense_scores = false;  // count every (query, key) pair of the T×T tile, as the current
                              // attention kernel executes it, instead of only the causal ones
};
Cost pass_cost(const ModelConfig& c, const PassShape& s);
// Forward with the loss plus backward: 3 × the forward (docs/profile.md says why).
Cost train_step_cost(const ModelConfig& c, int64_t tokens, int64_t batch);

// The study's MAC formula for one sequence of T tokens:
//   n_layer · ((projections + 1)·T·d² + 2·T²·d + 2·T·d·d_ff) + T·d·V,
// projections = the number of distinct Q/K/V matrices (3, 2, 2, 1), blind to n_kv_head.
double study_macs(const ModelConfig& c, int64_t tokens);

// ---------------------------------------------------------------------------------------------
// Variants and presets

// The study's eight rows: QKV, Q-K=V, Q=K-V, Q=K=V, GQA-4, MQA, Q-GQA-4, Q-MQA.
const std::vector<std::string>& study_variant_labels();
// `base` turned into the variant a label names (the names of variant_label(): QKV, Q-K=V, Q=K-V,
// Q=K=V, GQA-g, MQA, Q-GQA-g, Q-MQA; also MHA = QKV). Impossible combinations are Errors.
ModelConfig apply_variant(const ModelConfig& base, std::string_view label);

// What the study reports for a preset, printed beside our figures (labels as variant_label()).
struct StudyFigures {
  std::vector<std::pair<std::string, double>> params;
  int64_t macs_tokens = 0;  // the sequence length of the MAC figures
  std::vector<std::pair<std::string, double>> macs;
  std::vector<std::pair<std::string, int64_t>> kv_bytes_per_token_fp16;
  std::vector<std::pair<std::string, double>> kv_cut_percent;
};

struct Preset {
  std::string name;
  std::string description;
  std::string config_json;  // a run config {"model": {...}}, to which --set applies
  StudyFigures study;
};
const std::vector<Preset>& presets();
const Preset& find_preset(std::string_view name);  // Error naming the preset and listing the known

// ---------------------------------------------------------------------------------------------
// Memory of the built model

// Bytes of the arena Transformer<T>(c, max_batch, max_seq) allocates with `threads` OpenMP
// threads: parameters, gradients, every block's saved activations and the backward's scratch,
// each buffer rounded up to 64 bytes. Equals Transformer<T>::arena_bytes() exactly.
int64_t model_arena_bytes(const ModelConfig& c, int max_batch, int max_seq, int threads, int element_bytes);

// ---------------------------------------------------------------------------------------------
// Measured

struct MeasureOptions {
  int64_t tokens = 0;  // context T (≤ max_seq_len): the forward pass and the cache's capacity
  int batch = 1;
  int repeats = 2;                           // timed forward passes and decode runs; the fastest counts (the first
                                             // faults pages in)
  int64_t memory_budget = int64_t{8} << 30;  // arena + KV cache must fit; layers are cut until they do
  int max_layers = 0;                        // a further cap (0: none), so that every variant runs at one depth
  KvDType dtype = KvDType::fp16;
  int decode_steps = 16;  // decode steps timed, the last ones before the cache holds T tokens
  uint64_t seed = 0;
};

struct Measurement {
  ModelConfig built;  // the model that ran: n_layer may be below the config's
  std::string note;   // why layers were cut; empty when the whole model ran
  int threads = 0;
  int64_t memory_budget = 0;
  int64_t whole_model_bytes = 0;  // measured_bytes() of the config's n_layer, which may not have fit
  int64_t arena_bytes_theory = 0;
  int64_t arena_bytes = 0;         // Transformer<float>::arena_bytes()
  int64_t peak_rss_bytes = 0;      // VmHWM while this model ran (process-wide when it cannot be reset)
  bool peak_rss_reset = false;     // whether the peak was reset before building, so it is this model's
  double forward_seconds = 0;      // fastest forward of [batch, tokens], logits for every row
  double forward_flops = 0;        // pass_cost(forward) of `built`, causal pairs only
  double forward_flops_dense = 0;  // the same with the full T×T score tiles the kernel runs
  double flops_per_second() const { return forward_flops / forward_seconds; }
  double dense_flops_per_second() const { return forward_flops_dense / forward_seconds; }
  // The decode path, for causal LMs only (empty otherwise): the bytes the KV cache allocated for
  // [batch, tokens] (kv_cache_bytes() promises them exactly), and `decode_steps` steps that fill
  // its last positions, timed.
  std::optional<int64_t> kv_cache_bytes;
  int decode_steps = 0;
  double decode_seconds = 0;
  double decode_flops = 0;  // Σ pass_cost(decode) over the contexts of the timed steps
  std::optional<double> decode_tokens_per_second;
};

// Whether the model has a decode path (a causal LM head) and so a KV cache to measure.
bool has_kv_cache(const ModelConfig& c);
// Bytes measure() needs for `c`: the model's arena plus, for a causal LM, its KV cache.
int64_t measured_bytes(const ModelConfig& c, int64_t tokens, int batch, int threads, KvDType dtype);
// The largest n_layer ≤ c.n_layer whose measured_bytes fit `budget`; 0 when not even one layer fits.
int layers_that_fit(const ModelConfig& c, int64_t tokens, int batch, int threads, int64_t budget,
                    KvDType dtype = KvDType::fp16);
// An Error unless measure(c, o) can run: T within max_seq_len, one layer within the budget.
// Returns the layers it will build.
int check_measurable(const ModelConfig& c, const MeasureOptions& o);
// Builds Transformer<float> with random weights, times its forward pass, fills a KV cache from it
// (the prefill) and times decode steps.
Measurement measure(const ModelConfig& c, const MeasureOptions& o);

}  // namespace kvtie
