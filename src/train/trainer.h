#pragma once
// The training loop: batches from a task, forward/backward with gradient accumulation, AdamW with
// the schedule, validation, JSONL metrics, progress, resumable checkpoints and a final model.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "kvtie/config.h"
#include "train/train_config.h"

namespace kvtie {

struct TrainOptions {
  bool quiet = false;        // no progress output (--json)
  bool write_files = true;   // config.json, metrics.jsonl, checkpoints and model.safetensors in out_dir
  bool resume = false;       // continue from out_dir's newest checkpoint
};

struct TrainResult {
  std::vector<double> losses;  // one per optimiser step run by this call
  int64_t first_step = 0;      // 0, or the step a resumed run continued from
  int64_t skipped_steps = 0;
  double val_loss = -1;        // last validation loss (-1: no validation data)
  nlohmann::json val;          // last validation metrics (the task's, see src/train/task.h)
  double seconds = 0.0;
  std::string unit = "tokens";   // what per_second counts: "tokens", or "images" (task image)
  double per_second = 0.0;
  std::string checkpoint;      // the final model; empty when files are not written
};

TrainResult train(const ModelConfig& model, const TrainConfig& train, const TrainOptions& options);

// The run config a training run saved in its out_dir (for --resume).
std::string run_config_path(const std::string& out_dir);

}  // namespace kvtie
