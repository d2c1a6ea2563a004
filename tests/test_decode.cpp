// Cached decoding against the full forward: every share × (MHA, GQA, MQA), fp32 within 1e-5,
// quantised caches within stated tolerances, exact cache sizes, and clear errors at the limits.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "infer/decoder.h"
#include "kvtie/error.h"
#include "kvtie/profile.h"
#include "test_helpers.h"

namespace kvtie {
namespace {

ModelConfig small(Share share, int n_kv_head) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 4, c.n_kv_head = n_kv_head, c.head_dim = 8, c.d_ff = 64;
  c.vocab_size = 50, c.max_seq_len = 40, c.share = share;
  return c;
}

struct Variant {
  Share share;
  int kv;
};
std::vector<Variant> variants() {
  return {{Share::none, 4}, {Share::none, 2}, {Share::none, 1}, {Share::kv, 4},
          {Share::kv, 2},   {Share::kv, 1},   {Share::qk, 4},   {Share::qkv, 4}};
}

// Max |cached − full| / max |full| over the logits of every decoded position, for 3 sequences of
// different prompt lengths decoded together.
double cached_vs_full_error(const ModelConfig& c, KvDType dtype, int steps) {
  Transformer<float> model(c, 1, c.max_seq_len);
  test::randomize_params(model, 11);
  // Keep logits moderate so that a relative error means something.
  Rng rng(5);
  const std::vector<int> prompt_len = {5, 1, 9};
  std::vector<std::vector<int32_t>> seqs(3);
  for (int b = 0; b < 3; b++)
    for (int t = 0; t < prompt_len[b] + steps; t++) seqs[b].push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  Decoder dec(model, 3, 32, dtype);
  double worst = 0;
  std::vector<std::vector<float>> cached(3);
  for (int b = 0; b < 3; b++) {
    const float* l = dec.prefill(b, std::span(seqs[b]).first(prompt_len[b]));
    cached[b].assign(l, l + c.vocab_size);
  }
  for (int s = 0; s <= steps; s++) {
    for (int b = 0; b < 3; b++) {
      const int T = prompt_len[b] + s;  // the logits in cached[b] predict token T
      model.forward(seqs[b].data(), nullptr, 1, T);
      const float* full = model.logits() + static_cast<int64_t>(T - 1) * c.vocab_size;
      worst = std::max(worst, test::scaled_error(cached[b].data(), full, c.vocab_size));
    }
    if (s == steps) break;
    std::vector<int32_t> next(3);
    for (int b = 0; b < 3; b++) next[b] = seqs[b][prompt_len[b] + s];
    const float* logits = dec.step(next);
    for (int b = 0; b < 3; b++) cached[b].assign(logits + b * c.vocab_size, logits + (b + 1) * c.vocab_size);
  }
  return worst;
}

class Decode : public testing::TestWithParam<Variant> {};

TEST_P(Decode, Fp32CacheMatchesTheFullForward) {
  EXPECT_LT(cached_vs_full_error(small(GetParam().share, GetParam().kv), KvDType::fp32, 8), 1e-5);
}

TEST_P(Decode, QuantisedCachesStayWithinTolerance) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  const double bf16 = cached_vs_full_error(c, KvDType::bf16, 6), fp16 = cached_vs_full_error(c, KvDType::fp16, 6);
  const double int8 = cached_vs_full_error(c, KvDType::int8, 6), int4 = cached_vs_full_error(c, KvDType::int4, 6);
  fmt::print("logit error vs full forward: bf16 {:.2e}  fp16 {:.2e}  int8 {:.2e}  int4 {:.2e}\n", bf16, fp16, int8, int4);
  EXPECT_LT(bf16, 2e-2);
  EXPECT_LT(fp16, 5e-3);
  EXPECT_LT(int8, 3e-2);
  EXPECT_LT(int4, 0.5);
}

TEST_P(Decode, CacheAllocatesExactlyTheProfilersFigure) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  for (KvDType t : kAllKvDTypes) {
    KvCache cache(c, 3, 17, t);
    EXPECT_EQ(cache.bytes(), kv_cache_bytes(c, 17, 3, t)) << kv_dtype_name(t);
    // One tensor when V is K: half of what separate K and V need at the same kv heads.
    ModelConfig separate = c;
    separate.share = Share::none;
    if (c.v_is_k()) {
      EXPECT_EQ(2 * cache.bytes(), KvCache(separate, 3, 17, t).bytes());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, Decode, testing::ValuesIn(variants()), [](const auto& p) {
  return fmt::format("{}_kv{}", share_name(p.param.share), p.param.kv);
});

TEST(Decode, GreedyTokensAreTheSameWithAndWithoutTheCache) {
  const ModelConfig c = small(Share::kv, 2);
  Transformer<float> model(c, 1, c.max_seq_len);
  test::randomize_params(model, 3);
  std::vector<int32_t> seq = {4, 8, 15, 16};
  Decoder dec(model, 1, 32, KvDType::fp32);
  const float* l = dec.prefill(0, seq);
  std::vector<int32_t> cached_tokens, full_tokens;
  std::vector<int32_t> full = seq;
  for (int s = 0; s < 20; s++) {
    const int32_t a = static_cast<int32_t>(std::max_element(l, l + c.vocab_size) - l);
    cached_tokens.push_back(a);
    model.forward(full.data(), nullptr, 1, static_cast<int>(full.size()));
    const float* f = model.logits() + (full.size() - 1) * c.vocab_size;
    full_tokens.push_back(static_cast<int32_t>(std::max_element(f, f + c.vocab_size) - f));
    full.push_back(full_tokens.back());
    const int32_t next[1] = {a};
    l = dec.step(next);
  }
  EXPECT_EQ(cached_tokens, full_tokens);
}

TEST(Decode, LimitsAreClearErrors) {
  const ModelConfig c = small(Share::none, 4);
  Transformer<float> model(c, 1, c.max_seq_len);
  Decoder dec(model, 1, 4, KvDType::int8);
  EXPECT_THROW(dec.prefill(0, std::vector<int32_t>{}), Error);
  EXPECT_THROW(dec.prefill(0, std::vector<int32_t>{1, 2, 3, 4, 5}), Error);
  dec.prefill(0, std::vector<int32_t>{1, 2, 3});
  const int32_t t[1] = {7};
  dec.step(t);  // position 3: the last one
  try {
    dec.step(t);
    FAIL() << "no error past the capacity";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dec.cache().length(0), 4);  // nothing was overwritten
}

}  // namespace
}  // namespace kvtie
