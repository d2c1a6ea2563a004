// Training behaviour: determinism, the schedule, gradient accumulation, the skip rule, learning
// the copy task with every variant, and eval's windowing.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>

#include "core/rng.h"
#include "kvtie/error.h"
#include "test_helpers.h"
#include "data/copy_task.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace kvtie {
namespace {

ModelConfig tiny(Share share, int n_kv_head = 4) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 4, c.n_kv_head = n_kv_head, c.head_dim = 8, c.d_ff = 64;
  c.vocab_size = 16, c.max_seq_len = 16, c.share = share;
  return c;
}

TrainConfig quick(int64_t steps) {
  TrainConfig t;
  t.steps = steps;
  t.batch_size = 8;
  t.seq_len = 16;
  t.lr = 3e-3;
  t.warmup_steps = 5;
  t.seed = 11;
  return t;
}

TEST(Train, SameSeedAndThreadsGiveBitIdenticalLosses) {
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    const TrainResult a = train(tiny(Share::kv, 2), quick(20), {.quiet = true, .write_files = false});
    const TrainResult b = train(tiny(Share::kv, 2), quick(20), {.quiet = true, .write_files = false});
    ASSERT_EQ(a.losses.size(), 20u);
    for (size_t i = 0; i < a.losses.size(); i++) EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i;
    TrainConfig other = quick(20);
    other.seed = 12;
    EXPECT_NE(train(tiny(Share::kv, 2), other, {.quiet = true, .write_files = false}).losses[0], a.losses[0]);
  }
  omp_set_num_threads(2);
}

TEST(Train, ScheduleWarmsUpLinearlyThenDecaysToATenth) {
  TrainConfig t;
  t.lr = 1.0, t.steps = 110, t.warmup_steps = 10, t.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 9), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 10), 1.0);
  EXPECT_NEAR(learning_rate(t, 60), 0.55, 1e-12);  // halfway through the cosine
  EXPECT_NEAR(learning_rate(t, 110), 0.1, 1e-12);
  EXPECT_GT(learning_rate(t, 30), learning_rate(t, 31));
}

TEST(Train, StepScheduleMultipliesByGammaEveryNSteps) {
  TrainConfig t;
  t.lr = 1.0, t.steps = 1000, t.warmup_steps = 0, t.schedule = "step", t.lr_step_every = 100, t.lr_step_gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 99), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 100), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(t, 199), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(t, 200), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(t, 999), std::pow(0.5, 9));
  EXPECT_DOUBLE_EQ(learning_rate(t, 5000), std::pow(0.5, 50));  // past train.steps: still decaying, no floor
  // Warmup comes first; the decays still count from step 0, and min_lr_ratio plays no part.
  t.warmup_steps = 10, t.min_lr_ratio = 0.9;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 9), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 10), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 100), 0.5);
  // The cosine schedule is the default and is unchanged by the step keys.
  TrainConfig cosine = t;
  cosine.schedule = "cosine";
  TrainConfig plain;
  plain.lr = 1.0, plain.steps = 1000, plain.warmup_steps = 10, plain.min_lr_ratio = 0.9;
  for (int64_t s : {0, 10, 100, 500, 999}) EXPECT_EQ(learning_rate(cosine, s), learning_rate(plain, s)) << s;
  EXPECT_EQ(TrainConfig{}.schedule, "cosine");
}

TEST(Train, StepScheduleDrivesTheOptimiser) {
  TrainConfig t = quick(12);
  t.schedule = "step", t.lr_step_every = 4, t.lr_step_gamma = 0.1, t.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(learning_rate(t, 3), t.lr);
  EXPECT_DOUBLE_EQ(learning_rate(t, 4), t.lr * 0.1);
  TrainConfig frozen = t;
  frozen.lr_step_gamma = 0;  // the weights stop changing from step 4 on
  const auto r = train(tiny(Share::kv), frozen, {.quiet = true, .write_files = false});
  const auto s = train(tiny(Share::kv), t, {.quiet = true, .write_files = false});
  for (int i = 0; i < 5; i++) EXPECT_EQ(r.losses[i], s.losses[i]) << i;  // same schedule up to step 4
  EXPECT_NE(r.losses[6], s.losses[6]);
}

TEST(Train, InitStdScalesOnlyTheMatrices) {
  Transformer<float> a(tiny(Share::kv), 1, 16), b(tiny(Share::kv), 1, 16), c(tiny(Share::kv), 1, 16);
  a.init_weights(7);
  b.init_weights(7, 0.02);
  c.init_weights(7, 0.05);
  EXPECT_TRUE(std::equal(a.params(), a.params() + a.num_params(), b.params())) << "0.02 is the default";
  for (const auto& t : a.layout().tensors)
    for (int64_t i = 0; i < t.numel; i++) {
      const float x = a.params()[t.offset + i], y = c.params()[t.offset + i];
      if (t.shape.size() >= 2) ASSERT_NEAR(y, 2.5f * x, 1e-6f) << t.name;
      else ASSERT_EQ(x, y) << t.name;  // biases 0, LayerNorm weights 1
    }
  // And the trainer uses it: a different first loss, the default's losses unchanged.
  TrainConfig wide = quick(2);
  wide.init_std = 0.5;
  EXPECT_NE(train(tiny(Share::kv), wide, {.quiet = true, .write_files = false}).losses[0],
            train(tiny(Share::kv), quick(2), {.quiet = true, .write_files = false}).losses[0]);
}

TEST(Train, GradientAccumulationMatchesOneLargeBatch) {
  TrainConfig big = quick(6), accum = quick(6);
  big.batch_size = 8;
  accum.batch_size = 4;
  accum.grad_accum = 2;
  const auto a = train(tiny(Share::none), big, {.quiet = true, .write_files = false});
  const auto b = train(tiny(Share::none), accum, {.quiet = true, .write_files = false});
  for (size_t i = 0; i < a.losses.size(); i++) EXPECT_NEAR(a.losses[i], b.losses[i], 2e-5) << i;
}

TEST(Train, StepsAboveTheGradientNormLimitAreSkipped) {
  TrainConfig t = quick(5);
  t.skip_grad_norm = 1e-9;  // every step's norm is above this
  const auto r = train(tiny(Share::qkv), t, {.quiet = true, .write_files = false});
  EXPECT_EQ(r.skipped_steps, 5);
  // The weights never changed: the same as a run whose updates are all zero.
  TrainConfig frozen = quick(5);
  frozen.lr = 0;
  EXPECT_EQ(r.losses, train(tiny(Share::qkv), frozen, {.quiet = true, .write_files = false}).losses);
}

TEST(Train, CopyTaskIsLearnedByEveryVariant) {
  for (auto [share, kv] : std::vector<std::pair<Share, int>>{
           {Share::none, 4}, {Share::kv, 4}, {Share::qk, 4}, {Share::qkv, 4}, {Share::none, 1}, {Share::kv, 2}}) {
    TrainConfig t = quick(200);
    t.batch_size = 16;
    t.lr = 1e-2;
    const auto r = train(tiny(share, kv), t, {.quiet = true, .write_files = false});
    EXPECT_NEAR(r.losses.front(), std::log(16.0), 0.15) << share_name(share) << kv;
    double last10 = 0.0;
    for (size_t i = r.losses.size() - 10; i < r.losses.size(); i++) last10 += r.losses[i] / 10;
    EXPECT_LT(last10, 0.4) << share_name(share) << kv;  // chance is ln 16 = 2.77
  }
}

TEST(CopyTask, ScoresOnlyTheCopiedHalf) {
  Rng rng(1);
  std::vector<int32_t> x(9), y(9);
  make_copy_batch(x.data(), y.data(), 1, 9, 10, rng);
  // [a b c d SEP a b c d]: positions 4..7 predict the copy.
  EXPECT_EQ(x[4], kCopySeparator);
  for (int t = 0; t < 4; t++) EXPECT_EQ(x[5 + t], x[t]);
  for (int t = 0; t < 9; t++) EXPECT_EQ(y[t], t >= 4 && t < 8 ? x[t + 1] : -1) << t;
}

TEST(Evaluate, WindowsAreConsecutiveAndTheLastMayBeShorter) {
  ModelConfig c = tiny(Share::kv, 2);
  Transformer<float> batched(c, 3, c.max_seq_len), single(c, 1, c.max_seq_len);
  test::randomize_params(batched, 2);
  std::copy(batched.params(), batched.params() + batched.num_params(), single.params());
  Rng rng(4);
  std::vector<int32_t> tokens(70);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(c.vocab_size));

  const EvalResult r = evaluate_tokens(batched, tokens, "tokens");
  EXPECT_EQ(r.tokens, 70 - 5);  // windows of 16: 16+16+16+16+6, each predicts all but its first token
  double sum = 0.0;
  for (int start = 0; start < 70; start += 16) {
    const int len = std::min(16, 70 - start);
    std::vector<int32_t> y(len, -1);
    for (int t = 0; t + 1 < len; t++) y[t] = tokens[start + t + 1];
    single.forward(tokens.data() + start, y.data(), 1, len);
    sum += single.loss_sum();
  }
  EXPECT_NEAR(r.loss, sum / 65, 1e-5);
  EXPECT_NEAR(r.ppl, std::exp(r.loss), 1e-9 * r.ppl);
}

TEST(Evaluate, RejectsTokensOutsideTheVocabularyAndTooFewTokens) {
  Transformer<float> model(tiny(Share::none), 1, 16);
  EXPECT_THROW(evaluate_tokens(model, {1, 2, 16}, "t.npy"), Error);
  EXPECT_THROW(evaluate_tokens(model, {1}, "t.npy"), Error);
  EXPECT_THROW(evaluate_tokens(model, {}, "t.npy"), Error);
  try {
    evaluate_tokens(model, {1, -3, 2}, "t.npy");
    FAIL() << "a negative token was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.npy: token -3 at index 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvtie
