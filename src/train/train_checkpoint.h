#pragma once
// Resumable checkpoints of a training run, in train.out_dir:
//   ckpt-00000100.safetensors        the model (the ordinary checkpoint format)
//   ckpt-00000100.state.safetensors  AdamW moments + {step, optimiser step, data position, ...}
//   latest.json                      which pair is the newest complete one (written last)
// Every file is written atomically and latest.json only moves after both files are on disk, so
// a run killed at any moment leaves the previous checkpoint intact and findable.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "kvtie/model.h"
#include "train/optimizer.h"

namespace kvtie {

struct TrainProgress {
  int64_t step = 0;           // optimiser steps done
  int64_t skipped_steps = 0;
  nlohmann::json data;        // the batch source's state
};

void save_train_checkpoint(const std::string& dir, const Transformer<float>& model, AdamW<float>& optimizer,
                           const TrainProgress& progress, int keep_last);

// The newest complete checkpoint in dir, if any.
std::optional<int64_t> latest_checkpoint_step(const std::string& dir);

// Restores model weights, optimiser state and progress from dir's newest checkpoint.
TrainProgress load_train_checkpoint(const std::string& dir, Transformer<float>& model, AdamW<float>& optimizer);

}  // namespace kvtie
