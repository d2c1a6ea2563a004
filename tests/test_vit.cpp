// The vision transformer (docs/vision.md): the whole model's gradients against central finite
// differences in double for every share variant, GQA/MQA, the (X)+ score term, class-token and
// mean pooling, a per-patch head (the set model) and every position embedding; the forward entry
// points' contracts; checkpoints.
#include <gtest/gtest.h>
#include <omp.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "test_helpers.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

struct VitCase {
  const char* share;
  int n_kv_head;
  const char* pool;  // "cls", "mean", or "patch": a per-patch head (head token) instead of pooling
  const char* pos;
  bool pos2d = false;
};

std::string vit_case_name(const VitCase& c) {
  return fmt::format("{}_kv{}_{}_{}{}", c.share, c.n_kv_head, c.pool, c.pos, c.pos2d ? "_pos2d" : "");
}

// 2 channels of 4×6 in 2×2 patches: a 2×3 grid (rows ≠ columns), 6 patches (+ the class token).
json vit_json(const VitCase& k) {
  json j{{"n_layer", 2},
              {"n_head", 4},
              {"n_kv_head", k.n_kv_head},
              {"d_model", 8},
              {"head_dim", 2},
              {"d_ff", 12},
              {"share", k.share},
              {"pos", k.pos},
              {"score_pos2d", k.pos2d},
              {"n_classes", 3},
              {"image", {{"channels", 2}, {"height", 4}, {"width", 6}, {"patch", 2}}}};
  if (std::string(k.pool) == "patch") j["head"] = "token";
  else j["pool"] = k.pool;
  return j;
}

std::vector<VitCase> all_vit_cases() {
  return {
      // Every share, each pooling and position kind among them.
      {"none", 4, "cls", "learned"},
      {"kv", 4, "mean", "learned"},
      {"qk", 4, "cls", "sincos2d"},
      {"qkv", 4, "mean", "sincos2d"},
      {"qkv", 4, "cls", "none"},
      // Grouped kv heads.
      {"none", 2, "mean", "learned"},
      {"kv", 1, "cls", "sincos2d"},
      // The (X)+ score term.
      {"kv", 2, "cls", "learned", true},
      {"qk", 4, "mean", "sincos2d", true},
      // One prediction per patch, as the set anomaly model scores each item.
      {"kv", 4, "patch", "none"},
      {"none", 2, "patch", "learned"},
  };
}

std::vector<float> random_images(const ModelConfig& c, int B, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> images(static_cast<size_t>(B) * c.image.pixels());
  for (float& x : images) x = static_cast<float>(rng.normal());
  return images;
}

class VitGradcheck : public testing::TestWithParam<VitCase> {};

TEST_P(VitGradcheck, MatchesFiniteDifferences) {
  const ModelConfig c = parse_model_config(vit_json(GetParam()));
  ASSERT_TRUE(c.is_image());
  const int B = 3;
  Transformer<double> model(c, B, c.max_seq_len);
  test::randomize_params(model, 7);
  // A class token on the scale of the patch rows: one of std 0.1 (a vector's scale above) under a
  // zero sin-cos row makes its LayerNorm nearly singular, and the h = 1e-5 difference quotient then
  // carries an O(h²) truncation error of ~1e-6 (it shrinks as h², so the gradient is right).
  if (const ParamTensor* cls = model.layout().find("cls_token"))
    for (int64_t i = 0; i < cls->numel; i++) model.params()[cls->offset + i] *= 10;
  const std::vector<float> images = random_images(c, B, 3);
  // One image (or, per patch, every fourth patch) not scored.
  std::vector<int32_t> labels = {2, -1, 0};
  if (c.head == Head::token) {
    labels.resize(static_cast<size_t>(B) * c.max_seq_len);
    for (size_t i = 0; i < labels.size(); i++) labels[i] = i % 4 == 1 ? -1 : static_cast<int32_t>(i % 3);
  }
  const double loss = model.forward_images(images.data(), labels.data(), B);
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
      const double up = model.forward_images(images.data(), labels.data(), B);
      p = saved - h;
      const double down = model.forward_images(images.data(), labels.data(), B);
      p = saved;
      numeric[i] = (up - down) / (2 * h);
    }
    const double err = test::scaled_error(analytic.data() + t.offset, numeric.data(), t.numel, floor);
    EXPECT_LT(err, 1e-6) << t.name;
    if (t.name.starts_with("patch_emb") || t.name == "cls_token" || t.name.starts_with("pos_emb")) {
      EXPECT_GT(test::max_abs(analytic.data() + t.offset, t.numel), 1e-4) << t.name << ": no gradient reached it";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, VitGradcheck, testing::ValuesIn(all_vit_cases()),
                         [](const testing::TestParamInfo<VitCase>& p) { return vit_case_name(p.param); });

TEST(Vit, LayoutNamesAndShapes) {
  const ModelConfig c = parse_model_config(vit_json({"kv", 2, "cls", "learned"}));
  EXPECT_EQ(c.max_seq_len, 7);  // 6 patches + the class token
  const ParamLayout L = make_param_layout(c);
  EXPECT_EQ(L.tok_emb, -1);
  EXPECT_EQ(L.find("tok_emb.weight"), nullptr);
  ASSERT_NE(L.find("patch_emb.weight"), nullptr);
  EXPECT_EQ(L.find("patch_emb.weight")->shape, (std::vector<int64_t>{8, 2 * 2 * 2}));
  EXPECT_EQ(L.find("patch_emb.bias")->shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(L.find("cls_token")->shape, (std::vector<int64_t>{8}));
  EXPECT_FALSE(L.find("cls_token")->decay);
  EXPECT_EQ(L.find("pos_emb.weight")->shape, (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(L.find("head.weight")->shape, (std::vector<int64_t>{3, 8}));

  const ParamLayout mean = make_param_layout(parse_model_config(vit_json({"kv", 2, "mean", "sincos2d"})));
  EXPECT_EQ(mean.find("cls_token"), nullptr);
  EXPECT_EQ(mean.find("pos_emb.weight"), nullptr);  // the sin-cos table is fixed, not a parameter
  EXPECT_EQ(mean.cls_token, -1);
  EXPECT_EQ(mean.pos_emb, -1);
}

TEST(Vit, InitialisedClassTokenIsZeroAndPatchWeightsRandom) {
  const ModelConfig c = parse_model_config(vit_json({"none", 4, "cls", "learned"}));
  Transformer<float> model(c, 1, c.max_seq_len);
  model.init_weights(1);
  const ParamTensor* cls = model.layout().find("cls_token");
  const ParamTensor* w = model.layout().find("patch_emb.weight");
  EXPECT_EQ(test::max_abs(model.params() + cls->offset, cls->numel), 0.0);
  EXPECT_GT(test::max_abs(model.params() + w->offset, w->numel), 0.0);
}

// Shuffling the patches is what the position embedding must see: without positions (and without
// the (X)+ term) a mean-pooled ViT is invariant to the patch order; with them it is not.
TEST(Vit, PositionsBreakPatchPermutationInvariance) {
  for (const char* pos : {"none", "learned", "sincos2d"}) {
    SCOPED_TRACE(pos);
    const ModelConfig c = parse_model_config(vit_json({"kv", 2, "mean", pos}));
    Transformer<double> model(c, 1, c.max_seq_len);
    test::randomize_params(model, 5);
    std::vector<float> image = random_images(c, 1, 9);
    model.forward_images(image.data(), nullptr, 1);
    const std::vector<double> before(model.logits(), model.logits() + 3);
    // Swap the first two patches (columns 0–1 and 2–3 of rows 0–1) in both channels.
    for (int ch = 0; ch < 2; ch++)
      for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++) std::swap(image[(ch * 4 + y) * 6 + x], image[(ch * 4 + y) * 6 + 2 + x]);
    model.forward_images(image.data(), nullptr, 1);
    const double diff = test::scaled_error(model.logits(), before.data(), 3);
    if (std::string(pos) == "none")
      EXPECT_LT(diff, 1e-12);
    else
      EXPECT_GT(diff, 1e-6);
  }
}

// The batch rows are independent: image b's logits do not depend on the other images.
TEST(Vit, BatchRowsAreIndependent) {
  const ModelConfig c = parse_model_config(vit_json({"qkv", 4, "cls", "sincos2d"}));
  Transformer<double> model(c, 3, c.max_seq_len);
  test::randomize_params(model, 11);
  const std::vector<float> images = random_images(c, 3, 4);
  model.forward_images(images.data(), nullptr, 3);
  const std::vector<double> all(model.logits(), model.logits() + 9);
  for (int b = 0; b < 3; b++) {
    model.forward_images(images.data() + b * c.image.pixels(), nullptr, 1);
    EXPECT_LT(test::scaled_error(model.logits(), all.data() + 3 * b, 3), 1e-13) << "image " << b;
  }
}

// The same thread count gives the same bits. Another thread count splits the rows of the GEMMs
// differently, and BLAS kernels may round a row differently at another offset of their tile, so
// across counts the gradients agree to float rounding, not bit for bit.
TEST(Vit, SameBitsForTheSameThreadCountCloseAcrossCounts) {
  const ModelConfig c = parse_model_config(vit_json({"kv", 2, "cls", "learned", true}));
  const std::vector<float> images = random_images(c, 4, 8);
  const std::vector<int32_t> labels = {0, 1, 2, 1};
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Transformer<float> model(c, 4, c.max_seq_len);
    model.init_weights(3);
    const float loss = model.forward_images(images.data(), labels.data(), 4);
    model.backward();
    std::vector<float> out(model.grads(), model.grads() + model.num_params());
    out.push_back(loss);
    return out;
  };
  const int saved = omp_get_max_threads();
  const auto one = run(1), two = run(2);
  EXPECT_EQ(one, run(1));
  EXPECT_EQ(two, run(2));
  omp_set_num_threads(saved);
  float scale = 0;
  for (float g : one) scale = std::max(scale, std::abs(g));
  for (size_t i = 0; i < one.size(); i++) EXPECT_NEAR(one[i], two[i], 1e-5 * scale) << i;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Vit, EntryPointsRefuseTheOtherInput) {
  const ModelConfig vit = parse_model_config(vit_json({"none", 4, "mean", "learned"}));
  Transformer<float> model(vit, 2, vit.max_seq_len);
  const std::vector<int32_t> tokens = {0, 1, 2, 3, 4, 5};
  EXPECT_NE(error_of([&] { model.forward(tokens.data(), nullptr, 1, 6); }).find("forward_images"), std::string::npos);
  const std::vector<float> images = random_images(vit, 3, 1);
  EXPECT_NE(error_of([&] { model.forward_images(images.data(), nullptr, 3); }).find("batch 3"), std::string::npos);
  const std::vector<int32_t> bad = {0, 3};
  EXPECT_NE(error_of([&] { model.forward_images(images.data(), bad.data(), 2); }).find("target 3"), std::string::npos);
  // Built for fewer positions than the image has (as `kvtie init` builds it): no forward.
  Transformer<float> short_model(vit, 1, 2);
  EXPECT_NE(error_of([&] { short_model.forward_images(images.data(), nullptr, 1); }).find("max_seq"),
            std::string::npos);

  ModelConfig lm;
  lm.n_layer = 1, lm.d_model = 8, lm.n_head = 2, lm.n_kv_head = 2, lm.head_dim = 4, lm.d_ff = 8, lm.vocab_size = 7,
  lm.max_seq_len = 4;
  Transformer<float> token_model(lm, 1, 4);
  EXPECT_NE(error_of([&] { token_model.forward_images(images.data(), nullptr, 1); }).find("token model"),
            std::string::npos);
}

TEST(Vit, BackwardNeedsLabels) {
  const ModelConfig c = parse_model_config(vit_json({"none", 4, "mean", "learned"}));
  Transformer<double> model(c, 1, c.max_seq_len);
  const std::vector<float> image = random_images(c, 1, 2);
  model.forward_images(image.data(), nullptr, 1);
  EXPECT_NE(error_of([&] { model.backward(); }).find("targets"), std::string::npos);
}

TEST(Vit, CheckpointRoundTrip) {
  const ModelConfig c = parse_model_config(vit_json({"kv", 1, "cls", "sincos2d", true}));
  Transformer<float> model(c, 2, c.max_seq_len);
  model.init_weights(4);
  const std::string path = testing::TempDir() + "/vit_roundtrip.safetensors";
  save_checkpoint(path, c, model.params(), WeightDType::f32);
  EXPECT_EQ(to_json(read_checkpoint_config(path)), to_json(c));
  const auto loaded = load_checkpoint(path, 2, 0);
  ASSERT_EQ(loaded->num_params(), model.num_params());
  const std::vector<float> a(model.params(), model.params() + model.num_params());
  const std::vector<float> b(loaded->params(), loaded->params() + loaded->num_params());
  EXPECT_EQ(a, b);
  const std::vector<float> images = random_images(c, 2, 6);
  model.forward_images(images.data(), nullptr, 2);
  loaded->forward_images(images.data(), nullptr, 2);
  EXPECT_EQ(std::vector<float>(model.logits(), model.logits() + 6),
            std::vector<float>(loaded->logits(), loaded->logits() + 6));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace kvtie
