#pragma once
// The study's five synthetic sequence tasks: a sequence of L digits 0–9 in, one digit class out per
// position, solved by a bidirectional encoder with a per-token head. The input digits are token ids
// 0–9: an embedding row per digit is exactly a linear layer on one-hot digits (its bias folds into
// the position embedding).
//
//   REVERSE  y_i = x_{L−1−i}
//   SORT     y = x sorted ascending
//   SUB      y_i = 9 − x_i
//   SWAP     the two halves exchanged (an odd middle digit stays in place)
//   COPY     y_i = x_i
//
// A seeded generator draws a fixed held-out test set first; training sequences are drawn fresh
// for every batch and any that equals a test sequence is redrawn, so the two never overlap.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/rng.h"
#include "data/batch_source.h"

namespace kvtie {

enum class SyntheticTask { reverse, sort, sub, swap, copy };
constexpr int kDigits = 10;

std::optional<SyntheticTask> parse_synthetic_task(std::string_view name);
std::string_view synthetic_task_name(SyntheticTask task);

// y [L] = the task's target for input digits x [L].
void synthetic_target(SyntheticTask task, const int32_t* x, int32_t* y, int L);

// The held-out set: n distinct sequences of `length` digits with their targets, [n, length] each.
struct SyntheticTestSet {
  int length = 0;
  std::vector<int32_t> inputs, targets;
  int64_t size() const { return length ? static_cast<int64_t>(inputs.size()) / length : 0; }
};

class SyntheticTaskSource : public BatchSource {
 public:
  // Errors when 10^length is too small to hold n_test distinct test sequences and still train.
  SyntheticTaskSource(SyntheticTask task, int length, int n_test, uint64_t seed);

  void next(int32_t* tokens, int32_t* targets, int B, int T) override;
  nlohmann::json state() const override { return {{"rng", rng_.state()}}; }
  void restore(const nlohmann::json& s) override { rng_.set_state(s.at("rng").get<std::array<uint64_t, 4>>()); }

  const SyntheticTestSet& test_set() const { return test_; }

 private:
  void draw(int32_t* x, Rng& rng) const;
  static uint64_t fingerprint(const int32_t* x, int L);

  SyntheticTask task_;
  int length_;
  SyntheticTestSet test_;
  std::unordered_set<uint64_t> test_prints_;  // a colliding train draw is redrawn: safe side
  Rng rng_;
};

}  // namespace kvtie
