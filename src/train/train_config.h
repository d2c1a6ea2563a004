#pragma once
// The "train" section of a run config: what to train on and the optimiser recipe (the study's
// AdamW defaults: β (0.9, 0.95), weight decay 0.1, clip 1.0, warmup then cosine to lr/10, and a step
// whose gradient norm exceeds 100 is skipped; or step decay, as the study's image runs use).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvtie {

// train.images: the labelled image data set of task "image" (docs/configs.md). `paths` is what
// open_image_dataset takes for both splits (a folder: the split picks the files; empty for
// Debian's Fashion-MNIST); `test_paths`, when set, names the test split's own files.
struct ImageDataConfig {
  std::string format;  // fashion-mnist, mnist, idx, cifar10, cifar100, cifar100-coarse, tinyimagenet
  std::vector<std::string> paths, test_paths;
  int crop_padding = 0;  // training views: random crop from the image padded by this much
  bool flip = false;     // training views: horizontal flip with probability 1/2
};

// train.anomaly: task "set-anomaly" (docs/vision.md). The items of a set are the pooled features
// of the frozen image model `features` on train.images.
struct SetAnomalyConfig {
  std::string features;  // a trained image model's .safetensors
  int set_size = 10;     // items per set: set_size − 1 of one class, 1 of another
};

struct TrainConfig {
  std::string task = "induction";  // see src/train/task.h
  int test_examples = 1000;        // held-out sequences of a synthetic task
  ImageDataConfig images;          // tasks "image" and "set-anomaly"
  SetAnomalyConfig anomaly;        // task "set-anomaly"; test_examples is its number of test sets
  std::string data;                      // manifest.json of `kvtie data prepare` (task "lm")
  std::string train_tokens, val_tokens;  // or .npy token streams for task "lm"
  std::string tokenizer;                 // directory copied beside the checkpoints, if set
  int64_t steps = 200;
  int batch_size = 16;
  int seq_len = 32;
  int grad_accum = 1;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 20;
  std::string schedule = "cosine";  // "cosine" or "step"
  int64_t lr_step_every = 0;        // schedule "step": multiply lr by lr_step_gamma every N steps
  double lr_step_gamma = 0.1;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;        // 0 disables clipping
  double skip_grad_norm = 100.0;  // 0 disables skipping
  double init_std = 0.02;  // Normal(0, init_std) for matrices and embeddings
  uint64_t seed = 1;
  int64_t log_every = 10;
  int64_t val_every = 0;       // validation loss every N steps (0: only at the end, if val_tokens)
  int64_t val_max_tokens = 0;  // cap on validation tokens (0: all)
  int64_t ckpt_every = 0;      // resumable checkpoint every N steps (0: only at the end)
  int keep_last = 3;           // checkpoints kept
  int threads = 0;  // 0: OpenMP's default
  std::string out_dir = "runs/train";
};

TrainConfig parse_train_config(const nlohmann::json& j, std::string_view where = "train");
nlohmann::json to_json(const TrainConfig& c);

// Learning rate at 0-based step: linear warmup to lr, then cosine decay to lr·min_lr_ratio
// (schedule "cosine"), or lr·lr_step_gamma^⌊step / lr_step_every⌋ (schedule "step": the steps
// count from 0, so with a warmup the first decay still comes at step lr_step_every).
double learning_rate(const TrainConfig& c, int64_t step);

}  // namespace kvtie
