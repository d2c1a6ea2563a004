// The study's synthetic tasks: each generator on known inputs, the held-out set's separation from
// training, bad configs, and a behavioural check that every share variant learns COPY.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "data/synthetic_tasks.h"
#include "kvtie/error.h"
#include "train/task.h"
#include "train/trainer.h"

namespace kvtie {
namespace {

std::vector<int32_t> target(SyntheticTask task, const std::vector<int32_t>& x) {
  std::vector<int32_t> y(x.size(), -7);
  synthetic_target(task, x.data(), y.data(), static_cast<int>(x.size()));
  return y;
}

TEST(SyntheticTasks, KnownInputsGiveKnownTargets) {
  const std::vector<int32_t> x = {3, 1, 4, 1, 5, 9, 2, 6};
  EXPECT_EQ(target(SyntheticTask::reverse, x), (std::vector<int32_t>{6, 2, 9, 5, 1, 4, 1, 3}));
  EXPECT_EQ(target(SyntheticTask::sort, x), (std::vector<int32_t>{1, 1, 2, 3, 4, 5, 6, 9}));
  EXPECT_EQ(target(SyntheticTask::sub, x), (std::vector<int32_t>{6, 8, 5, 8, 4, 0, 7, 3}));
  EXPECT_EQ(target(SyntheticTask::swap, x), (std::vector<int32_t>{5, 9, 2, 6, 3, 1, 4, 1}));
  EXPECT_EQ(target(SyntheticTask::copy, x), x);
  // An odd length keeps its middle digit in place when the halves swap.
  EXPECT_EQ(target(SyntheticTask::swap, {1, 2, 7, 3, 4}), (std::vector<int32_t>{3, 4, 7, 1, 2}));
  EXPECT_EQ(target(SyntheticTask::reverse, {1, 2, 7, 3, 4}), (std::vector<int32_t>{4, 3, 7, 2, 1}));
}

TEST(SyntheticTasks, NamesRoundTrip) {
  for (auto t : {SyntheticTask::reverse, SyntheticTask::sort, SyntheticTask::sub, SyntheticTask::swap,
                 SyntheticTask::copy})
    EXPECT_EQ(parse_synthetic_task(synthetic_task_name(t)), t);
  EXPECT_FALSE(parse_synthetic_task("rotate").has_value());
}

// With length 4 there are only 10^4 sequences, so a leaky sampler would hit the test set often.
TEST(SyntheticTasks, TrainingNeverDrawsATestSequence) {
  SyntheticTaskSource source(SyntheticTask::sort, 4, 1500, 9);
  const SyntheticTestSet& test = source.test_set();
  ASSERT_EQ(test.size(), 1500);
  std::set<std::vector<int32_t>> held_out;
  for (int64_t n = 0; n < test.size(); n++) {
    std::vector<int32_t> x(test.inputs.begin() + n * 4, test.inputs.begin() + (n + 1) * 4);
    EXPECT_EQ(std::vector<int32_t>(test.targets.begin() + n * 4, test.targets.begin() + (n + 1) * 4),
              target(SyntheticTask::sort, x));
    held_out.insert(x);
  }
  EXPECT_EQ(held_out.size(), 1500u) << "test sequences are distinct";
  std::vector<int32_t> x(64 * 4), y(x.size());
  int seen = 0;
  for (int batch = 0; batch < 50; batch++) {
    source.next(x.data(), y.data(), 64, 4);
    for (int b = 0; b < 64; b++) {
      const std::vector<int32_t> seq(x.begin() + b * 4, x.begin() + (b + 1) * 4);
      seen += held_out.count(seq);
      EXPECT_EQ(std::vector<int32_t>(y.begin() + b * 4, y.begin() + (b + 1) * 4), target(SyntheticTask::sort, seq));
    }
  }
  EXPECT_EQ(seen, 0);
}

TEST(SyntheticTasks, SameSeedSameData) {
  SyntheticTaskSource a(SyntheticTask::reverse, 8, 10, 3), b(SyntheticTask::reverse, 8, 10, 3),
      c(SyntheticTask::reverse, 8, 10, 4);
  EXPECT_EQ(a.test_set().inputs, b.test_set().inputs);
  EXPECT_NE(a.test_set().inputs, c.test_set().inputs);
}

TEST(SyntheticTasks, TooShortForADisjointTestSetIsAnError) {
  EXPECT_THROW(SyntheticTaskSource(SyntheticTask::copy, 2, 50, 1), Error);
}

ModelConfig encoder(Share share) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 2, c.n_kv_head = 2, c.head_dim = 16, c.d_ff = 64;
  c.vocab_size = 10, c.max_seq_len = 16, c.share = share, c.causal = false, c.head = Head::token, c.n_classes = 10;
  return c;
}

TrainConfig study_recipe(const std::string& task) {
  TrainConfig t;
  t.task = task;
  t.steps = 150;
  t.batch_size = 32;
  t.seq_len = 16;
  t.lr = 3e-3;
  t.warmup_steps = 10;
  t.weight_decay = 0;
  t.beta2 = 0.999;
  t.grad_clip = 5;
  t.test_examples = 200;
  return t;
}

TEST(SyntheticTasks, WrongModelIsAClearError) {
  ModelConfig causal = encoder(Share::none);
  causal.causal = true;
  EXPECT_THROW(make_train_task(study_recipe("copy"), causal), Error);
  ModelConfig wide = encoder(Share::none);
  wide.vocab_size = 16;
  EXPECT_THROW(make_train_task(study_recipe("copy"), wide), Error);
}

// Behavioural, not timed: every share variant, with and without the (X)+ term, learns COPY to
// > 95% held-out accuracy in a short run.
class LearnsCopy : public testing::TestWithParam<std::pair<Share, bool>> {};

TEST_P(LearnsCopy, Above95PercentHeldOut) {
  ModelConfig c = encoder(GetParam().first);
  c.score_pos2d = GetParam().second;
  const TrainResult r = train(c, study_recipe("copy"), {.quiet = true, .write_files = false});
  ASSERT_TRUE(r.val.contains("val_acc"));
  EXPECT_GT(r.val["val_acc"].get<double>(), 0.95);
  EXPECT_EQ(r.val["val_sequences"].get<int64_t>(), 200);
  EXPECT_LT(r.val["val_loss"].get<double>(), r.losses.front());
}

INSTANTIATE_TEST_SUITE_P(EveryShare, LearnsCopy,
                         testing::Values(std::pair{Share::none, false}, std::pair{Share::kv, false},
                                         std::pair{Share::qk, false}, std::pair{Share::qkv, false},
                                         std::pair{Share::qk, true}, std::pair{Share::qkv, true}),
                         [](const auto& p) {
                           return std::string(share_name(p.param.first)) + (p.param.second ? "_pos2d" : "");
                         });

}  // namespace
}  // namespace kvtie
