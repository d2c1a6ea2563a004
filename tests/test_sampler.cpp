// What the sampling options do: greedy at temperature 0, top-k and top-p keep exactly the tokens
// they should, and the draws follow the softmax of the kept logits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "infer/sampler.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

// Token → times drawn in n draws.
std::map<int32_t, int> draws(SamplerConfig config, const std::vector<float>& logits, int n) {
  Sampler s(config);
  std::map<int32_t, int> seen;
  for (int i = 0; i < n; i++) seen[s.sample(logits.data(), static_cast<int>(logits.size()))]++;
  return seen;
}

// Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (ids in a shuffled order).
const std::vector<float> kLogits = {std::log(0.0625f), std::log(0.5f), std::log(0.125f), std::log(0.0625f),
                                    std::log(0.25f)};

TEST(Sampler, TemperatureZeroIsGreedy) {
  const auto seen = draws({.temperature = 0}, kLogits, 50);
  EXPECT_EQ(seen, (std::map<int32_t, int>{{1, 50}}));
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  const auto seen = draws({.temperature = 1, .top_k = 2, .seed = 4}, kLogits, 3000);
  ASSERT_EQ(seen.size(), 2u);
  // Renormalised over the two kept: 2/3 and 1/3.
  EXPECT_NEAR(seen.at(1) / 3000.0, 2.0 / 3, 0.03);
  EXPECT_NEAR(seen.at(4) / 3000.0, 1.0 / 3, 0.03);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // 0.5 + 0.25 = 0.75 reaches 0.7: tokens 1 and 4. At 0.8 token 2 joins (0.875).
  auto seen = draws({.temperature = 1, .top_p = 0.7, .seed = 5}, kLogits, 2000);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(4));
  seen = draws({.temperature = 1, .top_p = 0.8, .seed = 5}, kLogits, 2000);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen.count(2));
  EXPECT_NEAR(seen.at(2) / 2000.0, 0.125 / 0.875, 0.03);
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  const auto seen = draws({.temperature = 1, .seed = 6}, kLogits, 8000);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_NEAR(seen.at(1) / 8000.0, 0.5, 0.02);
  EXPECT_NEAR(seen.at(0) / 8000.0, 0.0625, 0.01);
  // A low temperature sharpens: at 0.25 token 1 has 0.5⁴ / Σ p⁴ ≈ 0.94.
  const auto sharp = draws({.temperature = 0.25, .seed = 6}, kLogits, 4000);
  EXPECT_GT(sharp.at(1) / 4000.0, 0.9);
}

TEST(Sampler, SameSeedSameDraws) {
  EXPECT_EQ(draws({.temperature = 1, .seed = 9}, kLogits, 200), draws({.temperature = 1, .seed = 9}, kLogits, 200));
}

TEST(Sampler, BadOptionsAreErrors) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.top_k = -1}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5}), Error);
}

}  // namespace
}  // namespace kvtie
