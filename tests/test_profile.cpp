// The profiler (kvtie/profile.h): the study's figures it must reproduce, each formula against an
// independent count (the parameter layout, the built model's arena, a loop over the cache's
// vectors), and the report's renderings.
#include <gtest/gtest.h>
#include <omp.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/profile_report.h"
#include "kvtie/config_file.h"
#include "kvtie/error.h"
#include "test_helpers.h"
#include "kvtie/model.h"
#include "kvtie/param_layout.h"
#include "kvtie/profile.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

ModelConfig preset(const std::string& name) {
  return parse_model_config(json::parse(find_preset(name).config_json).at("model"));
}

ModelConfig variant(const std::string& preset_name, const std::string& label) {
  return apply_variant(preset(preset_name), label);
}

double total(const ModelConfig& c) { return static_cast<double>(count_params(c).total()); }

double cut_percent(const ModelConfig& c, KvDType t = KvDType::fp16) {
  ModelConfig mha = c;
  mha.share = Share::none;
  mha.n_kv_head = c.n_head;
  return (1 - static_cast<double>(kv_cache_bytes_per_token(c, t)) / kv_cache_bytes_per_token(mha, t)) * 100;
}

// ---------------------------------------------------------------------------------------------
// The study's figures

TEST(ProfileStudy, Paper300mParameters) {
  EXPECT_NEAR(total(variant("paper-300m", "QKV")), 305.5e6, 305.5e6 * 1e-3);
  EXPECT_NEAR(total(variant("paper-300m", "Q-K=V")), 284.5e6, 284.5e6 * 1e-3);
  // With the tied LM head and the learned position table, no other convention needed.
  EXPECT_EQ(count_params(variant("paper-300m", "QKV")).total(), 305'534'976);
  EXPECT_EQ(count_params(variant("paper-300m", "Q-K=V")).total(), 284'542'976);
}

TEST(ProfileStudy, Paper1bParameters) {
  EXPECT_NEAR(total(variant("paper-1.2b", "QKV")), 1215e6, 1215e6 * 1e-3);
  EXPECT_NEAR(total(variant("paper-1.2b", "Q-K=V")), 1123e6, 1123e6 * 1e-3);
  EXPECT_EQ(count_params(variant("paper-1.2b", "QKV")).total(), 1'215'102'976);
}

TEST(ProfileStudy, Paper300mMacFormula) {
  const double qkv = study_macs(variant("paper-300m", "QKV"), 2048);
  const double kv = study_macs(variant("paper-300m", "Q-K=V"), 2048);
  const double qk = study_macs(variant("paper-300m", "Q=K-V"), 2048);
  const double one = study_macs(variant("paper-300m", "Q=K=V"), 2048);
  EXPECT_NEAR(qkv / 1e9, 792.69, 0.005);
  EXPECT_NEAR(kv / 1e9, 749.74, 0.005);
  EXPECT_EQ(kv, qk);
  EXPECT_NEAR(one / 1e9, 706.79, 0.005);
  EXPECT_NEAR((kv / qkv - 1) * 100, -5.42, 0.005);
  EXPECT_NEAR((one / qkv - 1) * 100, -10.84, 0.005);
  EXPECT_EQ(qkv, 792'689'901'568.0);  // exact: every term is an integer below 2^53
}

TEST(ProfileStudy, FormulaIsOurDenseCountForMha) {
  // The study's formula counts exactly the matrix products the dense kernel runs when n_kv_head =
  // n_head; ours differs by the causal pairs (and by GQA's narrower K/V).
  for (const char* label : {"QKV", "Q-K=V", "Q=K-V", "Q=K=V"}) {
    const ModelConfig c = variant("paper-300m", label);
    EXPECT_EQ(pass_cost(c, {.tokens = 2048, .dense_scores = true}).macs(), study_macs(c, 2048)) << label;
    const Cost causal = pass_cost(c, {.tokens = 2048});
    EXPECT_EQ(causal.scores.macs, 20.0 * 2 * 1024 * (2048.0 * 2049 / 2)) << label;
    EXPECT_LT(causal.macs(), study_macs(c, 2048)) << label;
  }
  const ModelConfig gqa = variant("paper-300m", "GQA-4");
  EXPECT_LT(pass_cost(gqa, {.tokens = 2048, .dense_scores = true}).macs(), study_macs(gqa, 2048));
}

TEST(ProfileStudy, Paper300mKvBytesAndCuts) {
  EXPECT_EQ(kv_cache_bytes_per_token(variant("paper-300m", "QKV"), KvDType::fp16), 80 * 1024);
  EXPECT_EQ(kv_cache_bytes_per_token(variant("paper-300m", "Q-K=V"), KvDType::fp16), 40 * 1024);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "Q-K=V")), 50);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "GQA-4")), 75);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "MQA")), 93.75);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "Q-GQA-4")), 87.5);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "Q-MQA")), 96.875);
}

TEST(ProfileStudy, Paper1bQMqaCut) {
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-1.2b", "Q-MQA")), 98.4375);
  // The slide's 96.9% is 1 − 1/32: plain MQA at 32 heads (or Q-MQA at the 300M model's 16).
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-1.2b", "MQA")), 96.875);
  EXPECT_DOUBLE_EQ(cut_percent(variant("paper-300m", "Q-MQA")), 96.875);
}

// ---------------------------------------------------------------------------------------------
// Formulas against independent counts

// Configs across every share, kv-head count, head type, position type and a head_dim that does
// not divide d_model.
std::vector<ModelConfig> config_grid() {
  std::vector<ModelConfig> out;
  for (int n_head : {1, 2, 4, 8})
    for (int kv = 1; kv <= n_head; kv++) {
      if (n_head % kv) continue;
      for (const char* share : {"none", "kv", "qk", "qkv"}) {
        if ((std::string(share) == "qk" || std::string(share) == "qkv") && kv != n_head) continue;
        for (const char* head : {"lm", "token", "pooled"}) {
          json j = {{"n_layer", 1 + n_head % 3},
                    {"n_head", n_head},
                    {"n_kv_head", kv},
                    {"d_model", 8 * n_head},
                    {"d_ff", 24},
                    {"vocab_size", 37},
                    {"max_seq_len", 11},
                    {"share", share},
                    {"head", head},
                    {"pos", n_head == 2 ? "none" : "learned"}};
          if (std::string(head) != "lm") j["n_classes"] = 5, j["causal"] = false;
          if (n_head == 4) j["head_dim"] = 6;
          out.push_back(parse_model_config(j));
        }
      }
    }
  // Image models: every share, both poolings, every position kind, GQA (3×8×12 in 4×4 patches).
  int i = 0;
  for (const char* share : {"none", "kv", "qk", "qkv"})
    for (const char* pool : {"cls", "mean"})
      for (const char* pos : {"learned", "sincos2d", "none"}) {
        const bool grouped = (i++ % 2) && (std::string(share) == "none" || std::string(share) == "kv");
        const json image = {{"channels", 3}, {"height", 8}, {"width", 12}, {"patch", 4}};
        out.push_back(parse_model_config(json{{"n_layer", 1 + i % 2},
                                              {"n_head", 4},
                                              {"n_kv_head", grouped ? 2 : 4},
                                              {"d_model", 16},
                                              {"d_ff", 24},
                                              {"share", share},
                                              {"pos", pos},
                                              {"n_classes", 5},
                                              {"pool", pool},
                                              {"score_pos2d", i % 3 == 0},
                                              {"image", image}}));
      }
  return out;
}

TEST(ProfileTheory, ParamsEqualTheLayoutForEveryConfig) {
  int checked = 0;
  auto all = config_grid();
  for (const char* p : {"paper-300m", "paper-1.2b"})
    for (const auto& label : study_variant_labels()) all.push_back(variant(p, label));
  for (const ModelConfig& c : all) {
    const ParamLayout layout = make_param_layout(c);
    const ParamCounts n = count_params(c);
    ASSERT_EQ(n.total(), layout.total) << to_json(c).dump();
    // Each component against the tensors named for it.
    int64_t emb = 0, qkv = 0, out = 0, mlp = 0, norms = 0, head = 0, pos2d = 0;
    for (const auto& t : layout.tensors) {
      const std::string& s = t.name;
      if (s.starts_with("tok_emb") || s.starts_with("pos_emb") || s.starts_with("patch_emb") || s == "cls_token")
        emb += t.numel;
      else if (s.find(".attn.out.") != std::string::npos)
        out += t.numel;
      else if (s.find(".attn.pos2d.") != std::string::npos)
        pos2d += t.numel;
      else if (s.find(".attn.") != std::string::npos)
        qkv += t.numel;
      else if (s.find(".mlp.") != std::string::npos)
        mlp += t.numel;
      else if (s.find("ln") != std::string::npos)
        norms += t.numel;
      else if (s.starts_with("head."))
        head += t.numel;
      else
        ADD_FAILURE() << "unclassified tensor " << s;
    }
    EXPECT_EQ(n.embeddings, emb);
    EXPECT_EQ(n.attn_qkv, qkv);
    EXPECT_EQ(n.attn_out, out);
    EXPECT_EQ(n.mlp, mlp);
    EXPECT_EQ(n.norms, norms);
    EXPECT_EQ(n.head, head);
    EXPECT_EQ(n.score_pos2d, pos2d);
    checked++;
  }
  EXPECT_GE(checked, 100);
}

TEST(ProfileTheory, ProjectionMacsAreWeightElementsPerToken) {
  // Every element of a block's weight matrices takes part in exactly one multiply-accumulate per
  // token, so the projection and MLP MACs of a pass are tokens × those elements, from the layout.
  for (const ModelConfig& c : config_grid()) {
    const ParamLayout layout = make_param_layout(c);
    double block_weights = 0;
    for (const auto& t : layout.tensors)
      if (t.shape.size() == 2 && t.name.starts_with("blocks.") && t.name.find(".pos2d.") == std::string::npos)
        block_weights += static_cast<double>(t.numel);  // (the (X)+ weights act per pair, not per token)
    for (int64_t B : {1, 3}) {
      const int64_t T = 7;
      const Cost k = pass_cost(c, {.tokens = T, .batch = B});
      EXPECT_EQ(k.qkv.macs + k.out.macs + k.mlp.macs, static_cast<double>(B * T) * block_weights);
      const double rows = c.head == Head::pooled ? B : B * T;
      EXPECT_EQ(k.head.macs, rows * c.d_model * c.n_outputs());
      const double pairs = c.causal ? T * (T + 1) / 2.0 : T * T;
      EXPECT_EQ(k.scores.macs, c.n_layer * B * 2.0 * c.n_head * c.head_dim * pairs);
      // Decode: one token per sequence attends to T keys.
      const Cost d = pass_cost(c, {.kind = PassKind::decode, .tokens = T, .batch = B});
      EXPECT_EQ(d.qkv.macs + d.out.macs + d.mlp.macs, static_cast<double>(B) * block_weights);
      EXPECT_EQ(d.scores.macs, c.n_layer * B * 2.0 * c.n_head * c.head_dim * T);
    }
  }
}

TEST(ProfileTheory, PatchEmbeddingMacsAreItsWeightElementsPerPatch) {
  int checked = 0;
  for (const ModelConfig& c : config_grid()) {
    const ParamLayout layout = make_param_layout(c);
    const ParamTensor* w = layout.find("patch_emb.weight");
    if (!c.is_image()) {
      EXPECT_EQ(w, nullptr);
      EXPECT_EQ(pass_cost(c, {.tokens = 7, .batch = 2}).embed.macs, 0);
      continue;
    }
    ASSERT_NE(w, nullptr);
    const Cost k = pass_cost(c, {.tokens = c.max_seq_len, .batch = 3});
    EXPECT_EQ(k.embed.macs, 3.0 * c.image.n_patches() * static_cast<double>(w->numel));
    EXPECT_EQ(k.macs(), k.embed.macs + k.qkv.macs + k.out.macs + k.scores.macs + k.mlp.macs + k.head.macs);
    checked++;
  }
  EXPECT_EQ(checked, 24);
}

TEST(ProfileTheory, TrainingStepIsThreeForwardsAndPrefillDropsLogits) {
  const ModelConfig c = variant("paper-300m", "Q-K=V");
  const Cost fwd = pass_cost(c, {.tokens = 512, .batch = 2, .loss = true});
  const Cost train = train_step_cost(c, 512, 2);
  EXPECT_DOUBLE_EQ(train.macs(), 3 * fwd.macs());
  EXPECT_DOUBLE_EQ(train.flops(), 3 * fwd.flops());
  const Cost pre = pass_cost(c, {.kind = PassKind::prefill, .tokens = 512, .batch = 2});
  const Cost no_loss = pass_cost(c, {.tokens = 512, .batch = 2});
  EXPECT_EQ(pre.head.macs, 2.0 * 1024 * 50304);  // the last token of each sequence
  EXPECT_EQ(pre.qkv.macs, no_loss.qkv.macs);
  EXPECT_EQ(pre.scores.macs, no_loss.scores.macs);
  EXPECT_GT(fwd.flops(), no_loss.flops());  // the loss adds FLOPs, not MACs
  EXPECT_EQ(fwd.macs(), no_loss.macs());
  EXPECT_GT(fwd.flops(), 2 * fwd.macs());  // elementwise work is counted
}

// The cache as a loop over what it stores: per token, layer, kv head and distinct K/V role one
// head vector, whose bytes are counted value by value.
int64_t kv_bytes_by_loop(const ModelConfig& c, KvDType t) {
  int64_t bytes = 0;
  for (int layer = 0; layer < c.n_layer; layer++)
    for (int h = 0; h < c.n_kv_head; h++)
      for (int role = 0; role < 2; role++) {
        if (role == 1 && c.v_offset() == c.k_offset()) continue;  // V is K: nothing more stored
        int64_t bits = 0;
        for (int i = 0; i < c.head_dim; i++)
          bits += t == KvDType::fp32 ? 32 : t == KvDType::int8 ? 8 : t == KvDType::int4 ? 4 : 16;
        // the scales: int8 one fp32 per vector, int4 one fp16 per started group of 32
        bytes += (bits + 7) / 8 + (t == KvDType::int8 ? 4 : t == KvDType::int4 ? 2 * ((c.head_dim + 31) / 32) : 0);
      }
  return bytes;
}

TEST(ProfileTheory, KvBytesMatchAnIndependentCount) {
  auto all = config_grid();
  for (const char* p : {"paper-300m", "paper-1.2b"})
    for (const auto& label : study_variant_labels()) all.push_back(variant(p, label));
  for (const ModelConfig& c : all) {
    for (KvDType t : kAllKvDTypes)
      EXPECT_EQ(kv_cache_bytes_per_token(c, t), kv_bytes_by_loop(c, t)) << kv_dtype_name(t);
    // The config's own helper, for the float formats.
    EXPECT_EQ(kv_cache_bytes_per_token(c, KvDType::fp16), kv_bytes_per_token(c, 2.0));
    EXPECT_EQ(kv_cache_bytes_per_token(c, KvDType::fp32), kv_bytes_per_token(c, 4.0));
    EXPECT_EQ(kv_cache_bytes(c, 13, 3, KvDType::int4), 39 * kv_cache_bytes_per_token(c, KvDType::int4));
  }
  EXPECT_EQ(kv_vector_bytes(64, KvDType::int8), 68);
  EXPECT_EQ(kv_vector_bytes(64, KvDType::int4), 36);
  EXPECT_EQ(kv_vector_bytes(5, KvDType::int4), 3 + 2);  // odd head_dim: the last byte is half used
  EXPECT_EQ(kv_vector_bytes(80, KvDType::int4), 40 + 3 * 2);  // the last group of 32 is half full
  const std::string e =
      error_of([] { kv_cache_bytes(variant("paper-1.2b", "QKV"), int64_t{1} << 40, 1 << 20, KvDType::fp32); });
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
}

TEST(ProfileTheory, ArenaBytesEqualTheBuiltModel) {
  const int threads = omp_get_max_threads();
  int built = 0;
  for (const ModelConfig& c : config_grid()) {
    if (c.n_head == 1 && c.head != Head::lm) continue;  // keep the test quick: a sample is enough
    for (int B : {1, 2}) {
      Transformer<float> f(c, B, c.max_seq_len - B);
      EXPECT_EQ(model_arena_bytes(c, B, c.max_seq_len - B, threads, 4), static_cast<int64_t>(f.arena_bytes()))
          << to_json(c).dump();
      built++;
    }
    Transformer<double> d(c, 1, 5);
    EXPECT_EQ(model_arena_bytes(c, 1, 5, threads, 8), static_cast<int64_t>(d.arena_bytes()));
  }
  EXPECT_GT(built, 50);
}

// ---------------------------------------------------------------------------------------------
// Variants, presets, dtypes

TEST(ProfileVariants, LabelsRoundTrip) {
  const ModelConfig base = preset("paper-300m");
  for (const auto& label : study_variant_labels()) EXPECT_EQ(variant_label(apply_variant(base, label)), label);
  EXPECT_EQ(apply_variant(base, "GQA-8").n_kv_head, 8);
  EXPECT_EQ(apply_variant(base, "Q-GQA-2").share, Share::kv);
  EXPECT_EQ(apply_variant(base, "MHA").share, Share::none);
}

TEST(ProfileVariants, BadLabelsAreErrorsNamingThem) {
  const ModelConfig base = preset("paper-300m");
  std::string e = error_of([&] { apply_variant(base, "GQA-3"); });
  EXPECT_NE(e.find("GQA-3"), std::string::npos) << e;
  EXPECT_NE(e.find("n_kv_head"), std::string::npos) << e;
  e = error_of([&] { apply_variant(base, "KQV"); });
  EXPECT_NE(e.find("'KQV'"), std::string::npos) << e;
  e = error_of([&] { apply_variant(base, "GQA-"); });
  EXPECT_NE(e.find("GQA-"), std::string::npos) << e;
  e = error_of([] { find_preset("paper-7b"); });
  EXPECT_NE(e.find("paper-7b"), std::string::npos) << e;
  EXPECT_NE(e.find("paper-300m"), std::string::npos) << e;
  e = error_of([] { parse_kv_dtype("fp8"); });
  EXPECT_NE(e.find("fp8"), std::string::npos) << e;
  EXPECT_EQ(parse_kv_dtype("int4"), KvDType::int4);
}

// ---------------------------------------------------------------------------------------------
// Measured

ModelConfig small() {
  return parse_model_config(json{{"n_layer", 3},
                                 {"n_head", 4},
                                 {"n_kv_head", 2},
                                 {"d_model", 32},
                                 {"d_ff", 64},
                                 {"vocab_size", 50},
                                 {"max_seq_len", 16},
                                 {"share", "kv"}});
}

TEST(ProfileMeasure, SmallModelAgreesWithTheory) {
  const Measurement m = measure(small(), {.tokens = 16, .batch = 2, .repeats = 1});
  EXPECT_EQ(m.built.n_layer, 3);
  EXPECT_TRUE(m.note.empty());
  EXPECT_EQ(m.arena_bytes, m.arena_bytes_theory);
  EXPECT_GT(m.forward_seconds, 0);
  EXPECT_EQ(m.forward_flops, pass_cost(small(), {.tokens = 16, .batch = 2}).flops());
  EXPECT_GT(m.forward_flops_dense, m.forward_flops);
  EXPECT_GE(m.peak_rss_bytes, m.arena_bytes);
  // The cache allocated exactly what the theory promises.
  ASSERT_TRUE(m.kv_cache_bytes);
  EXPECT_EQ(*m.kv_cache_bytes, kv_cache_bytes(m.built, 16, 2, KvDType::fp16));
  EXPECT_EQ(m.decode_steps, 15);  // at most T − 1: the prefill keeps one token
  ASSERT_TRUE(m.decode_tokens_per_second);
  EXPECT_GT(*m.decode_tokens_per_second, 0);
  double flops = 0;
  for (int ctx = 2; ctx <= 16; ctx++)
    flops += pass_cost(small(), {.kind = PassKind::decode, .tokens = ctx, .batch = 2}).flops();
  EXPECT_DOUBLE_EQ(m.decode_flops, flops);
}

TEST(ProfileMeasure, KvCacheBytesAgreeForEveryVariantAndDtype) {
  for (const auto& label : study_variant_labels()) {
    const ModelConfig c = apply_variant(parse_model_config(json{{"n_layer", 2},
                                                                {"n_head", 8},
                                                                {"d_model", 40},
                                                                {"head_dim", 5},
                                                                {"d_ff", 16},
                                                                {"vocab_size", 20},
                                                                {"max_seq_len", 6}}),
                                        label);
    for (KvDType t : kAllKvDTypes) {
      const Measurement m = measure(c, {.tokens = 6, .batch = 3, .repeats = 1, .dtype = t, .decode_steps = 2});
      ASSERT_TRUE(m.kv_cache_bytes) << label;
      EXPECT_EQ(*m.kv_cache_bytes, kv_cache_bytes(c, 6, 3, t)) << label << " " << kv_dtype_name(t);
    }
  }
  // A classifier has no decode path: nothing is reported rather than a made-up number.
  const ModelConfig cls = parse_model_config(json{{"n_layer", 1},
                                                  {"n_head", 2},
                                                  {"d_model", 8},
                                                  {"vocab_size", 9},
                                                  {"max_seq_len", 4},
                                                  {"head", "pooled"},
                                                  {"n_classes", 3},
                                                  {"causal", false}});
  const Measurement m = measure(cls, {.tokens = 4, .repeats = 1});
  EXPECT_FALSE(m.kv_cache_bytes);
  EXPECT_FALSE(m.decode_tokens_per_second);
}

TEST(ProfileMeasure, ImageModelAgreesWithTheory) {
  const json image = {{"channels", 1}, {"height", 28}, {"width", 28}, {"patch", 7}};
  const ModelConfig c = parse_model_config(json{{"n_layer", 2},
                                                {"n_head", 4},
                                                {"d_model", 32},
                                                {"share", "kv"},
                                                {"pos", "sincos2d"},
                                                {"pool", "cls"},
                                                {"n_classes", 10},
                                                {"image", image}});
  const Measurement m = measure(c, {.tokens = 17, .batch = 2, .repeats = 1});
  EXPECT_EQ(m.arena_bytes, m.arena_bytes_theory);
  EXPECT_GT(m.forward_seconds, 0);
  EXPECT_EQ(m.forward_flops, pass_cost(c, {.tokens = 17, .batch = 2}).flops());
  EXPECT_FALSE(m.kv_cache_bytes);  // no decode path
  // An image model runs all its positions, no fewer.
  const std::string e = error_of([&] { measure(c, {.tokens = 16, .repeats = 1}); });
  EXPECT_NE(e.find("--context"), std::string::npos) << e;
  EXPECT_NE(e.find("17"), std::string::npos) << e;
}

TEST(ProfileMeasure, LayersAreCutToFitTheBudget) {
  const ModelConfig c = small();
  const int threads = omp_get_max_threads();
  ModelConfig two = c;
  two.n_layer = 2;
  const int64_t budget = model_arena_bytes(two, 1, 16, threads, 4) + kv_cache_bytes(two, 16, 1, KvDType::fp16);
  EXPECT_EQ(measured_bytes(two, 16, 1, threads, KvDType::fp16), budget);
  EXPECT_EQ(layers_that_fit(c, 16, 1, threads, budget), 2);
  EXPECT_EQ(layers_that_fit(c, 16, 1, threads, budget - 1), 1);
  const Measurement m = measure(c, {.tokens = 16, .batch = 1, .repeats = 1, .memory_budget = budget});
  EXPECT_EQ(m.built.n_layer, 2);
  EXPECT_NE(m.note.find("2 of 3 layers"), std::string::npos) << m.note;
  EXPECT_NE(error_of([&] { measure(c, {.tokens = 16, .memory_budget = 1000}); }).find("--memory-budget"),
            std::string::npos);
  EXPECT_NE(error_of([&] { measure(c, {.tokens = 17}); }).find("--context"), std::string::npos);
}

TEST(ProfileMeasure, EveryVariantOfAModelRunsAtOneDepth) {
  // Wide projections, so that QKV needs visibly more memory per layer than Q-MQA.
  const ModelConfig c = parse_model_config(
      json{{"n_layer", 3}, {"n_head", 4}, {"d_model", 256}, {"d_ff", 64}, {"vocab_size", 50}, {"max_seq_len", 8}});
  const int threads = omp_get_max_threads();
  const ModelConfig small_kv = apply_variant(c, "Q-MQA");
  const int64_t budget = measured_bytes(small_kv, 8, 1, threads, KvDType::fp16);
  const int fits = layers_that_fit(c, 8, 1, threads, budget);
  ASSERT_LT(fits, 3);  // QKV alone would run deeper than it fits otherwise
  ModelProfile p = profile_model("m", "", c, nullptr, {.variants = {"QKV", "Q-MQA"}});
  measure_model(p, {.repeats = 1, .memory_budget = budget});
  for (const auto& v : p.variants) EXPECT_EQ(v.measured->built.n_layer, fits) << v.label;
  EXPECT_NE(p.variants[1].measured->note.find("every variant"), std::string::npos) << p.variants[1].measured->note;
}

// ---------------------------------------------------------------------------------------------
// The report

std::vector<ModelProfile> both_presets() {
  std::vector<ModelProfile> out;
  for (const char* name : {"paper-300m", "paper-1.2b"}) {
    const Preset& p = find_preset(name);
    out.push_back(profile_model(p.name, p.description, preset(name), &p.study, {}));
  }
  return out;
}

TEST(ProfileReport, TablesHoldTheStudysRowsAndOurs) {
  const auto profiles = both_presets();
  ASSERT_EQ(profiles[0].variants.size(), 8u);
  const std::string text = render_report(profiles, ReportFormat::table, "test");
  for (const char* s :
       {"305,534,976", "305.5M", "284.5M", "792.69", "749.74", "706.79", "80 KiB", "40 KiB", "96.875%", "98.4375%",
        "96.9%", "1,215,102,976", "Q-MQA: the study reports 96.9%; with 32 heads the cut is 1 − 1/64 = 98.4375%"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
  const std::string md = render_report(profiles, ReportFormat::markdown, "kvtie profile X");
  EXPECT_NE(md.find("Made by `kvtie profile X`"), std::string::npos);
  EXPECT_NE(md.find("|---|"), std::string::npos);
  const std::string csv = render_report(profiles, ReportFormat::csv, "test");
  EXPECT_EQ(csv.rfind("model,table,variant,column,value\n", 0), 0u);
  EXPECT_NE(csv.find("paper-300m,params,QKV,total,305534976\n"), std::string::npos);
}

TEST(ProfileReport, JsonHasExactFiguresAndNullMeasurements) {
  const json j = report_json(both_presets(), "test");
  const json& v = j["models"][0]["variants"][1];
  EXPECT_EQ(v["variant"], "Q-K=V");
  EXPECT_EQ(v["params"]["total"], 284'542'976);
  EXPECT_EQ(v["kv_cache"]["bytes_per_token"]["fp16"], 40960);
  EXPECT_EQ(v["kv_cache"]["cut_vs_qkv_mha_percent"], 50.0);
  EXPECT_EQ(v["study"]["params"], 284.5e6);
  EXPECT_TRUE(v["measured"].is_null());
  EXPECT_EQ(j["models"][1]["variants"][7]["kv_cache"]["cut_vs_qkv_mha_percent"], 98.4375);
}

TEST(ProfileReport, VariantSelection) {
  const ModelConfig tiny =
      parse_model_config(json{{"n_layer", 2}, {"n_head", 4}, {"d_model", 64}, {"vocab_size", 32}, {"max_seq_len", 32}});
  // The study's eight on a 4-head model: GQA-4 is QKV and Q-GQA-4 is Q-K=V; each listed once.
  const ModelProfile d = profile_model("tiny", "", tiny, nullptr, {});
  EXPECT_EQ(d.variants.size(), 6u);
  EXPECT_EQ(d.notes.size(), 2u);
  const ModelProfile k = profile_model("tiny", "", tiny, nullptr, {.variants = {"Q=K=V"}, .kv_heads = {2, 1}});
  ASSERT_EQ(k.variants.size(), 5u);
  EXPECT_EQ(k.variants[1].label, "GQA-2");
  EXPECT_EQ(k.variants[2].label, "Q-GQA-2");
  EXPECT_NE(error_of([&] { profile_model("tiny", "", tiny, nullptr, {.variants = {"GQA-3"}}); }).find("GQA-3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { profile_model("tiny", "", tiny, nullptr, {.kv_heads = {3}}); }).find("--kv-heads 3"),
            std::string::npos);
}

}  // namespace
}  // namespace kvtie
