// The whole model's gradients against central finite differences, in double precision, for every
// share variant × (MHA, GQA, MQA where allowed) × (causal, bidirectional) and every head.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <vector>

#include "test_helpers.h"

namespace kvtie {
namespace {

struct Case {
  Share share;
  int n_kv_head;
  bool causal;
  Head head;
  PosEmb pos = PosEmb::learned;
  bool pos2d = false;
};

std::string case_name(const Case& c) {
  return fmt::format("{}_kv{}_{}_{}{}{}", share_name(c.share), c.n_kv_head, c.causal ? "causal" : "bidir",
                     c.head == Head::lm ? "lm" : c.head == Head::token ? "token" : "pooled",
                     c.pos == PosEmb::none ? "_nopos" : "", c.pos2d ? "_pos2d" : "");
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (Share s : {Share::none, Share::kv, Share::qk, Share::qkv})
    for (int kv : {4, 2, 1})
      for (bool causal : {true, false}) {
        if ((s == Share::qk || s == Share::qkv) && kv != 4) continue;
        cases.push_back({s, kv, causal, Head::lm});
      }
  cases.push_back({Share::kv, 2, false, Head::token});
  cases.push_back({Share::qkv, 4, false, Head::pooled});
  cases.push_back({Share::none, 1, false, Head::pooled});
  cases.push_back({Share::qk, 4, true, Head::token, PosEmb::none});
  // The (X)+ score term, bidirectional only, with every share (and GQA/MQA where allowed).
  for (auto [s, kv] : std::vector<std::pair<Share, int>>{
           {Share::none, 4}, {Share::none, 1}, {Share::kv, 2}, {Share::qk, 4}, {Share::qkv, 4}})
    cases.push_back({s, kv, false, Head::token, PosEmb::learned, true});
  return cases;
}

class ModelGradcheck : public testing::TestWithParam<Case> {};

TEST_P(ModelGradcheck, MatchesFiniteDifferences) {
  const Case& k = GetParam();
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 8;
  c.n_head = 4;
  c.head_dim = 2;
  c.n_kv_head = k.n_kv_head;
  c.d_ff = 12;
  c.vocab_size = 11;
  c.max_seq_len = 6;
  c.share = k.share;
  c.causal = k.causal;
  c.head = k.head;
  c.pos = k.pos;
  c.score_pos2d = k.pos2d;
  c.n_classes = k.head == Head::lm ? 0 : 3;
  const int B = 2, Tn = 5;  // shorter than max_seq_len: unused position rows must get zero gradient
  Transformer<double> model(c, B, Tn);
  test::randomize_params(model, 7);

  Rng rng(3);
  std::vector<int32_t> tokens(B * Tn), targets(B * Tn);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(c.vocab_size));
  for (auto& t : targets) t = static_cast<int32_t>(rng.below(c.n_outputs()));
  targets[3] = -1;  // an ignored position
  const double loss = model.forward(tokens.data(), targets.data(), B, Tn);
  ASSERT_TRUE(std::isfinite(loss));
  model.zero_grad();
  model.backward();
  const std::vector<double> analytic(model.grads(), model.grads() + model.num_params());

  const double floor = 1e-3 * test::max_abs(analytic.data(), model.num_params());
  const double h = 1e-5;
  for (const auto& t : model.layout().tensors) {
    std::vector<double> numeric(t.numel);
    for (int64_t i = 0; i < t.numel; i++) {
      double& p = model.params()[t.offset + i];
      const double saved = p;
      p = saved + h;
      const double up = model.forward(tokens.data(), targets.data(), B, Tn);
      p = saved - h;
      const double down = model.forward(tokens.data(), targets.data(), B, Tn);
      p = saved;
      numeric[i] = (up - down) / (2 * h);
    }
    const double err = test::scaled_error(analytic.data() + t.offset, numeric.data(), t.numel, floor);
    EXPECT_LT(err, 1e-6) << t.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ModelGradcheck, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<Case>& p) { return case_name(p.param); });

// The check above must be able to fail: a model whose gradient is wrong in one element is caught.
TEST(ModelGradcheck, DetectsAWrongGradient) {
  ModelConfig c;
  c.n_layer = 1, c.d_model = 8, c.n_head = 2, c.n_kv_head = 2, c.head_dim = 4, c.d_ff = 8, c.vocab_size = 7,
  c.max_seq_len = 4;
  Transformer<double> model(c, 1, 4);
  test::randomize_params(model, 1);
  const std::vector<int32_t> tokens = {1, 2, 3, 4}, targets = {2, 3, 4, 5};
  model.forward(tokens.data(), targets.data(), 1, 4);
  model.backward();
  std::vector<double> wrong(model.grads(), model.grads() + model.num_params());
  const std::vector<double> right = wrong;
  wrong[model.layout().blocks[0].attn_w + 5] += 1e-3;
  EXPECT_GT(test::scaled_error(wrong.data(), right.data(), model.num_params()), 1e-6);
}

// K=V sharing is the same function as separate K and V projections that happen to be equal, and
// the shared gradient is the sum of the two roles' gradients.
TEST(ModelGradcheck, SharedKvEqualsTiedSeparateProjections) {
  ModelConfig kv;
  kv.n_layer = 1, kv.d_model = 8, kv.n_head = 4, kv.n_kv_head = 2, kv.head_dim = 2, kv.d_ff = 8, kv.vocab_size = 9,
  kv.max_seq_len = 5, kv.share = Share::kv;
  ModelConfig none = kv;
  none.share = Share::none;
  Transformer<double> shared(kv, 1, 5), separate(none, 1, 5);
  test::randomize_params(shared, 5);
  // Copy every tensor by name; V gets K's values.
  for (const auto& t : separate.layout().tensors) {
    std::string src = t.name;
    for (const char* role : {".attn.k.", ".attn.v."})
      if (auto pos = src.find(role); pos != std::string::npos) src.replace(pos, 8, ".attn.k_v.");
    const ParamTensor* s = shared.layout().find(src);
    ASSERT_NE(s, nullptr) << src;
    std::copy(shared.params() + s->offset, shared.params() + s->offset + s->numel, separate.params() + t.offset);
  }
  const std::vector<int32_t> tokens = {1, 5, 2, 8, 3}, targets = {5, 2, 8, 3, 0};
  const double a = shared.forward(tokens.data(), targets.data(), 1, 5);
  const double b = separate.forward(tokens.data(), targets.data(), 1, 5);
  EXPECT_NEAR(a, b, 1e-12);
  shared.backward();
  separate.backward();
  const ParamTensor* kvw = shared.layout().find("blocks.0.attn.k_v.weight");
  const ParamTensor* kw = separate.layout().find("blocks.0.attn.k.weight");
  const ParamTensor* vw = separate.layout().find("blocks.0.attn.v.weight");
  for (int64_t i = 0; i < kvw->numel; i++)
    EXPECT_NEAR(shared.grads()[kvw->offset + i], separate.grads()[kw->offset + i] + separate.grads()[vw->offset + i],
                1e-12);
}

}  // namespace
}  // namespace kvtie
