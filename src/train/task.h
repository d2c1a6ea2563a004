#pragma once
// What train.task names, as the trainer needs it: where batches come from and how the held-out
// data is scored. Tasks: "lm" (packed token files), "induction" (a built-in causal copy LM) and
// the study's synthetic tasks "reverse", "sort", "sub", "swap", "copy" (bidirectional, per-token).
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>

#include "data/batch_source.h"
#include "kvtie/model.h"
#include "train/train_config.h"

namespace kvtie {

struct TrainTask {
  std::unique_ptr<BatchSource> source;
  // Validation metrics, e.g. {"val_loss", "val_ppl", "val_tokens"} or {"val_loss", "val_acc",
  // "val_exact", "val_sequences"}; empty when the task has no held-out data.
  std::function<nlohmann::json(Transformer<float>&)> validate;
};

TrainTask make_train_task(const TrainConfig& train, const ModelConfig& model);

}  // namespace kvtie
