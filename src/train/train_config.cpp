#include "train/train_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <numbers>
#include <set>

#include "kvtie/error.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

template <typename V>
void read(const json& j, std::string_view where, const char* key, V& out, double lo, double hi) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  if constexpr (std::is_same_v<V, std::string>) {
    if (!v.is_string()) fail("{}.{}: must be a string, got {}", where, key, v.dump());
    out = v.get<std::string>();
  } else {
    if (!v.is_number()) fail("{}.{}: must be a number, got {}", where, key, v.dump());
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) fail("{}.{}: {} is out of range [{}, {}]", where, key, v.dump(), lo, hi);
    if constexpr (std::is_integral_v<V>) {
      if (x != std::floor(x)) fail("{}.{}: must be an integer, got {}", where, key, v.dump());
      out = static_cast<V>(v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>()));
    } else {
      out = x;
    }
  }
}

}  // namespace

TrainConfig parse_train_config(const json& j, std::string_view where) {
  if (!j.is_object()) fail("{}: must be a JSON object", where);
  static const std::set<std::string> known = {
      "task", "steps", "batch_size", "seq_len", "grad_accum", "lr", "min_lr_ratio", "warmup_steps", "weight_decay",
      "beta1", "beta2", "eps", "grad_clip", "skip_grad_norm", "seed", "log_every", "threads", "out_dir",
      "data", "train_tokens", "val_tokens", "tokenizer", "val_every", "val_max_tokens", "ckpt_every", "keep_last", "test_examples"};
  for (const auto& item : j.items())
    if (!known.count(item.key())) fail("{}.{}: unknown key", where, item.key());
  TrainConfig c;
  read(j, where, "task", c.task, 0, 0);
  read(j, where, "steps", c.steps, 1, 1e12);
  read(j, where, "batch_size", c.batch_size, 1, 1 << 20);
  read(j, where, "seq_len", c.seq_len, 2, 1 << 20);
  read(j, where, "grad_accum", c.grad_accum, 1, 1 << 20);
  read(j, where, "lr", c.lr, 0, 10);
  read(j, where, "min_lr_ratio", c.min_lr_ratio, 0, 1);
  read(j, where, "warmup_steps", c.warmup_steps, 0, 1e12);
  read(j, where, "weight_decay", c.weight_decay, 0, 10);
  read(j, where, "beta1", c.beta1, 0, 0.999999);
  read(j, where, "beta2", c.beta2, 0, 0.999999);
  read(j, where, "eps", c.eps, 0, 1);
  read(j, where, "grad_clip", c.grad_clip, 0, 1e12);
  read(j, where, "skip_grad_norm", c.skip_grad_norm, 0, 1e12);
  read(j, where, "seed", c.seed, 0, 1.8e19);
  read(j, where, "log_every", c.log_every, 1, 1e12);
  read(j, where, "threads", c.threads, 0, 4096);
  read(j, where, "out_dir", c.out_dir, 0, 0);
  read(j, where, "data", c.data, 0, 0);
  read(j, where, "train_tokens", c.train_tokens, 0, 0);
  read(j, where, "val_tokens", c.val_tokens, 0, 0);
  read(j, where, "tokenizer", c.tokenizer, 0, 0);
  read(j, where, "val_every", c.val_every, 0, 1e12);
  read(j, where, "val_max_tokens", c.val_max_tokens, 0, 1e15);
  read(j, where, "ckpt_every", c.ckpt_every, 0, 1e12);
  read(j, where, "keep_last", c.keep_last, 1, 1e6);
  read(j, where, "test_examples", c.test_examples, 1, 1e8);
  static const std::set<std::string> tasks = {"induction", "lm", "reverse", "sort", "sub", "swap", "copy"};
  if (!tasks.count(c.task))
    fail("{}.task: unknown task '{}' (induction, lm, reverse, sort, sub, swap, copy)", where, c.task);
  if (c.out_dir.empty()) fail("{}.out_dir: must not be empty", where);
  return c;
}

json to_json(const TrainConfig& c) {
  return json{{"task", c.task},         {"steps", c.steps},
              {"batch_size", c.batch_size}, {"seq_len", c.seq_len},
              {"grad_accum", c.grad_accum}, {"lr", c.lr},
              {"min_lr_ratio", c.min_lr_ratio}, {"warmup_steps", c.warmup_steps},
              {"weight_decay", c.weight_decay}, {"beta1", c.beta1},
              {"beta2", c.beta2},           {"eps", c.eps},
              {"grad_clip", c.grad_clip},   {"skip_grad_norm", c.skip_grad_norm},
              {"seed", c.seed},             {"log_every", c.log_every},
              {"threads", c.threads},       {"out_dir", c.out_dir},
              {"data", c.data}, {"train_tokens", c.train_tokens}, {"val_tokens", c.val_tokens},
              {"tokenizer", c.tokenizer},   {"val_every", c.val_every},
              {"val_max_tokens", c.val_max_tokens}, {"ckpt_every", c.ckpt_every},
              {"keep_last", c.keep_last}, {"test_examples", c.test_examples}};
}

double learning_rate(const TrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  const double min_lr = c.lr * c.min_lr_ratio;
  const double span = static_cast<double>(std::max<int64_t>(1, c.steps - c.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (c.lr - min_lr);
}

}  // namespace kvtie
