#pragma once
// The training loop: batches from a task, forward/backward with gradient accumulation, AdamW with
// the schedule, JSONL metrics, progress, and a final checkpoint.
#include <string>
#include <vector>

#include "kvtie/config.h"
#include "train/train_config.h"

namespace kvtie {

struct TrainOptions {
  bool quiet = false;        // no progress output (--json)
  bool write_files = true;   // metrics.jsonl and model.safetensors under out_dir
};

struct TrainResult {
  std::vector<double> losses;  // one per optimiser step
  int64_t skipped_steps = 0;
  double seconds = 0.0;
  double tokens_per_second = 0.0;
  std::string checkpoint;      // empty when files are not written
};

TrainResult train(const ModelConfig& model, const TrainConfig& train, const TrainOptions& options);

}  // namespace kvtie
