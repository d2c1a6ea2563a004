#pragma once
// Where training batches come from. A source's state (RNG, position in the data) is part of the
// training state, so a resumed run sees exactly the batches an uninterrupted one would have.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>

#include "kvtie/config.h"
#include "train/train_config.h"

namespace kvtie {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // tokens, targets: [B, T]; a target of -1 is not scored.
  virtual void next(int32_t* tokens, int32_t* targets, int B, int T) = 0;
  virtual nlohmann::json state() const = 0;
  virtual void restore(const nlohmann::json& state) = 0;
};

// The source of the token tasks: "induction" (built-in) or "lm" (train.data / train.train_tokens).
// The synthetic tasks are made in src/train/task.cpp.
std::unique_ptr<BatchSource> make_batch_source(const TrainConfig& train, const ModelConfig& model);

}  // namespace kvtie
