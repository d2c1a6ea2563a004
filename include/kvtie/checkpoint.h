#pragma once
// Model checkpoints: one .safetensors file with the tensor names of DESIGN.md §5 (only the
// distinct projections) and the config as JSON in __metadata__["kvtie.config"].
#include <memory>
#include <string>

#include "kvtie/config.h"
#include "kvtie/model.h"

namespace kvtie {

enum class WeightDType { f32, bf16 };

// Writes atomically. params is laid out by make_param_layout(config).
void save_checkpoint(const std::string& path, const ModelConfig& config, const float* params,
                     WeightDType dtype = WeightDType::f32);

// The config stored in a checkpoint.
ModelConfig read_checkpoint_config(const std::string& path);

// Loads a checkpoint into a model built for it. The names, shapes and dtypes must match the
// model's layout exactly; the first mismatch is an Error naming the tensor.
// max_seq 0 (or above the config's) means the checkpoint's max_seq_len. The model is built for
// inference (no gradients): every caller generates, evaluates or extracts features; training
// resumes through load_checkpoint_into.
std::unique_ptr<Transformer<float>> load_checkpoint(const std::string& path, int max_batch, int max_seq = 0);
template <typename T>
void load_checkpoint_into(const std::string& path, Transformer<T>& model);

}  // namespace kvtie
