#pragma once
// The built-in "induction" language-modelling task: [x1 … xk, SEP, x1 … xk] with random xi. Only the
// copied half is scored, so a model that learns to look back (an induction head) drives the loss
// toward 0 while the unscored first half stays at chance.
#include <array>
#include <cstdint>

#include "core/rng.h"
#include "data/batch_source.h"

namespace kvtie {

constexpr int32_t kCopySeparator = 0;

// tokens, targets: [B, Tn]; targets are next tokens inside the copy, -1 elsewhere. Needs vocab ≥ 3.
void make_copy_batch(int32_t* tokens, int32_t* targets, int B, int Tn, int vocab, Rng& rng);

class CopyTask : public BatchSource {
 public:
  CopyTask(int vocab, uint64_t seed) : vocab_(vocab), rng_(seed) {}
  void next(int32_t* tokens, int32_t* targets, int B, int T) override {
    make_copy_batch(tokens, targets, B, T, vocab_, rng_);
  }
  nlohmann::json state() const override { return {{"rng", rng_.state()}}; }
  void restore(const nlohmann::json& s) override { rng_.set_state(s.at("rng").get<std::array<uint64_t, 4>>()); }

 private:
  int vocab_;
  Rng rng_;
};

}  // namespace kvtie
