#pragma once
// What train.task names, as the trainer needs it: where batches come from, how a micro-batch goes
// through the model, and how the held-out data is scored. Tasks: "lm" (packed token files),
// "induction" (a built-in causal copy LM), the study's synthetic tasks "reverse", "sort", "sub",
// "swap", "copy" (bidirectional, per-token), and "image" (a ViT on a labelled image data set,
// train.images; docs/vision.md), and "set-anomaly" (pick the odd item of a set of frozen image
// features, train.anomaly).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "data/batch_source.h"
#include "kvtie/model.h"
#include "train/train_config.h"

namespace kvtie {

struct TrainTask {
  // The token tasks' batch source; null for images.
  std::unique_ptr<BatchSource> source;
  // Draws the next micro-batch of train.batch_size examples and runs the model's forward on it
  // (with targets, so that backward can follow); returns the mean loss. Token tasks: source->next,
  // then model.forward.
  std::function<float(Transformer<float>&)> forward;
  // The data position (and anything else the task accumulates between validations), saved in
  // resumable checkpoints so that a resumed run continues exactly where the killed one was.
  std::function<nlohmann::json()> state;
  std::function<void(const nlohmann::json&)> restore;
  // Validation metrics, e.g. {"val_loss", "val_ppl", "val_tokens"}, {"val_loss", "val_acc",
  // "val_exact", "val_sequences"} or {"val_loss", "val_acc", "val_examples", "train_acc",
  // "train_loss", "epoch"}; empty when the task has no held-out data.
  std::function<nlohmann::json(Transformer<float>&)> validate;
  int seq_len = 0;              // positions per example: what the model is built for
  std::string unit = "tokens";  // what the throughput counts: "tokens", "images" or "sets"
  int64_t units_per_batch = 0;  // of that unit, per micro-batch
};

TrainTask make_train_task(const TrainConfig& train, const ModelConfig& model);

}  // namespace kvtie
