// kvtie against PyTorch: logits, loss, every parameter gradient and 10 AdamW steps of the tiny
// models in tests/reference/reference.safetensors (made by make_reference.py; no PyTorch needed
// here), language models and ViTs (image cases: CASE/images instead of CASE/tokens). Double
// precision must agree to rounding; float32 within fp32 tolerance.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "test_helpers.h"
#include "train/optimizer.h"

namespace kvtie {
namespace {

const SafetensorsFile& fixture() {
  static const SafetensorsFile f = SafetensorsFile::load(std::string(KVTIE_TEST_DATA) + "/reference/reference.safetensors");
  return f;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& [key, value] : fixture().metadata()) names.push_back(key);
  return names;
}

template <typename T>
std::vector<T> tensor(const std::string& name) {
  const SafeTensor& t = fixture().get(name);
  std::vector<T> v(t.numel());
  read_floats(t, v.data(), t.numel(), "reference");
  return v;
}

template <typename T>
struct Tolerance;
template <>
struct Tolerance<double> {
  static constexpr double forward = 1e-10, grad = 1e-9, adamw = 1e-9, grad_floor = 1e-3;
};
template <>
struct Tolerance<float> {
  // AdamW divides by √v: parameters whose exact gradient is 0 (the (X)+ bias and query-position
  // weights, shifted out by the softmax) take full-size steps on float rounding noise, and 10 such
  // steps move the loss by ~2e-5 relative. Double agrees to 1e-9, so the formulas are right.
  // A tensor's gradient is compared relative to its largest value, but never below grad_floor of
  // the model's largest gradient. The key bias's exact gradient is 0 (the softmax shifts it out),
  // so float leaves it only rounding noise of about one ulp of the largest gradients: 1.3e-7 of
  // them on the AVX-512 machine, over 1e-4 of a 1e-3 floor.
  static constexpr double forward = 1e-5, grad = 1e-4, adamw = 5e-5, grad_floor = 1e-2;
};

template <typename T>
void check_case(const std::string& name) {
  const ModelConfig c = parse_model_config(nlohmann::json::parse(fixture().metadata().at(name)), name);
  const std::vector<int32_t> targets = read_i32(fixture().get(name + "/targets"), name);
  // Token models read CASE/tokens [B, T]; image models CASE/images [B, C, H, W] (float32 values).
  const SafeTensor& in = fixture().get(name + (c.is_image() ? "/images" : "/tokens"));
  const int B = static_cast<int>(in.shape[0]), Tn = c.is_image() ? c.max_seq_len : static_cast<int>(in.shape[1]);
  std::vector<int32_t> tokens;
  std::vector<float> images;
  if (c.is_image()) {
    ASSERT_EQ(in.shape, (std::vector<int64_t>{B, c.image.channels, c.image.height, c.image.width}));
    images.resize(in.numel());
    read_floats(in, images.data(), in.numel(), name);
  } else {
    tokens = read_i32(in, name);
  }
  Transformer<T> model(c, B, c.max_seq_len);
  for (const auto& t : model.layout().tensors)
    read_floats(fixture().get(name + "/param/" + t.name), model.params() + t.offset, t.numel, name);
  auto forward = [&] {
    return c.is_image() ? model.forward_images(images.data(), targets.data(), B)
                        : model.forward(tokens.data(), targets.data(), B, Tn);
  };

  const T loss = forward();
  const auto want_logits = tensor<double>(name + "/logits");
  ASSERT_EQ(static_cast<int64_t>(want_logits.size()), model.logits_rows() * c.n_outputs());
  EXPECT_LT(test::scaled_error(model.logits(), want_logits.data(), want_logits.size()), Tolerance<T>::forward);
  const double want_loss = tensor<double>(name + "/loss")[0];
  EXPECT_LT(std::abs(loss - want_loss) / want_loss, Tolerance<T>::forward);

  model.zero_grad();
  model.backward();
  const double floor = Tolerance<T>::grad_floor * test::max_abs(model.grads(), model.num_params());
  for (const auto& t : model.layout().tensors) {
    const auto want = tensor<double>(name + "/grad/" + t.name);
    EXPECT_LT(test::scaled_error(model.grads() + t.offset, want.data(), t.numel, floor), Tolerance<T>::grad) << t.name;
  }

  // 10 AdamW steps with clipping, constant lr, on the same batch (the script's recipe).
  for (const auto& t : model.layout().tensors)
    read_floats(fixture().get(name + "/param/" + t.name), model.params() + t.offset, t.numel, name);
  TrainConfig tc;
  tc.weight_decay = 0.1;
  tc.grad_clip = 1.0;
  tc.skip_grad_norm = 0;
  AdamW<T> opt(model.num_params());
  const auto want_losses = tensor<double>(name + "/adamw_losses");
  for (size_t step = 0; step < want_losses.size(); step++) {
    model.zero_grad();
    const T l = forward();
    EXPECT_LT(std::abs(l - want_losses[step]) / want_losses[step], Tolerance<T>::adamw) << "step " << step;
    model.backward();
    opt.step(model, tc, 1e-2);
  }
  if (fixture().find(name + "/adamw_final/tok_emb.weight")) {
    for (const auto& t : model.layout().tensors) {
      const auto want = tensor<double>(name + "/adamw_final/" + t.name);
      EXPECT_LT(test::scaled_error(model.params() + t.offset, want.data(), t.numel), Tolerance<T>::adamw) << t.name;
    }
  }
}

class Reference : public testing::TestWithParam<std::string> {};

TEST_P(Reference, DoubleMatchesPyTorch) { check_case<double>(GetParam()); }
TEST_P(Reference, FloatMatchesPyTorch) { check_case<float>(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Cases, Reference, testing::ValuesIn(case_names()),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Reference, FixtureHasEveryVariant) {
  std::set<std::string> shares, pools, image_pos;
  for (const auto& name : case_names()) {
    const auto j = nlohmann::json::parse(fixture().metadata().at(name));
    shares.insert(j["share"].get<std::string>());
    if (j.contains("image")) {
      pools.insert(j["pool"].get<std::string>());
      image_pos.insert(j["pos"].get<std::string>());
    }
  }
  EXPECT_EQ(shares, (std::set<std::string>{"none", "kv", "qk", "qkv"}));
  EXPECT_EQ(pools, (std::set<std::string>{"cls", "mean"}));
  EXPECT_EQ(image_pos, (std::set<std::string>{"learned", "sincos2d"}));
  EXPECT_GE(case_names().size(), 20u);
}

}  // namespace
}  // namespace kvtie
