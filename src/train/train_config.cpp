#include "train/train_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
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

std::vector<std::string> read_strings(const json& j, const std::string& where, const char* key) {
  if (!j.contains(key)) return {};
  const json& v = j.at(key);
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) fail("{}.{}: must be a list of paths, got {}", where, key, v.dump());
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string() || e.get<std::string>().empty())
      fail("{}.{}: every entry must be a non-empty path, got {}", where, key, e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

constexpr const char* kImageFormats[] = {"fashion-mnist", "mnist",    "idx",           "cifar10",
                                         "cifar100",      "cifar100-coarse", "tinyimagenet"};

// train.images: {"format", "paths", "test_paths", "augment": {"crop_padding", "flip"}}.
ImageDataConfig parse_images(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: must be an object {{\"format\", \"paths\", ...}}, got {}", where, j.dump());
  static const std::set<std::string> known = {"format", "paths", "test_paths", "augment"};
  for (const auto& item : j.items())
    if (!known.count(item.key())) fail("{}.{}: unknown key", where, item.key());
  ImageDataConfig c;
  if (!j.contains("format")) fail("{}.format: required ({})", where, fmt::join(kImageFormats, ", "));
  read(j, where, "format", c.format, 0, 0);
  if (std::find(std::begin(kImageFormats), std::end(kImageFormats), c.format) == std::end(kImageFormats))
    fail("{}.format: unknown image format '{}' ({})", where, c.format, fmt::join(kImageFormats, ", "));
  c.paths = read_strings(j, where, "paths");
  c.test_paths = read_strings(j, where, "test_paths");
  if (c.paths.empty() && c.format != "fashion-mnist")
    fail("{}.paths: format '{}' needs the data's folder or files (only fashion-mnist has a default)", where,
         c.format);
  if (j.contains("augment")) {
    const json& a = j.at("augment");
    const std::string aw = where + ".augment";
    if (!a.is_object()) fail("{}: must be an object {{\"crop_padding\", \"flip\"}}, got {}", aw, a.dump());
    for (const auto& item : a.items())
      if (item.key() != "crop_padding" && item.key() != "flip") fail("{}.{}: unknown key", aw, item.key());
    read(a, aw, "crop_padding", c.crop_padding, 0, 1 << 16);
    if (a.contains("flip")) {
      if (!a.at("flip").is_boolean()) fail("{}.flip: must be true or false, got {}", aw, a.at("flip").dump());
      c.flip = a.at("flip").get<bool>();
    }
  }
  return c;
}

// train.anomaly: {"features", "set_size"}.
SetAnomalyConfig parse_anomaly(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: must be an object {{\"features\", \"set_size\"}}, got {}", where, j.dump());
  for (const auto& item : j.items())
    if (item.key() != "features" && item.key() != "set_size") fail("{}.{}: unknown key", where, item.key());
  SetAnomalyConfig c;
  if (!j.contains("features")) fail("{}.features: required (a trained image model's .safetensors)", where);
  read(j, where, "features", c.features, 0, 0);
  read(j, where, "set_size", c.set_size, 2, 4096);
  return c;
}

}  // namespace

TrainConfig parse_train_config(const json& j, std::string_view where) {
  if (!j.is_object()) fail("{}: must be a JSON object", where);
  static const std::set<std::string> known = {
      "task", "steps", "batch_size", "seq_len", "grad_accum", "lr", "min_lr_ratio", "warmup_steps", "weight_decay",
      "beta1", "beta2", "eps", "grad_clip", "skip_grad_norm", "seed", "log_every", "threads", "out_dir",
      "data", "train_tokens", "val_tokens", "tokenizer", "val_every", "val_max_tokens", "ckpt_every", "keep_last", "test_examples",
      "schedule", "lr_step_every", "lr_step_gamma", "images", "init_std", "anomaly"};
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
  read(j, where, "init_std", c.init_std, 0, 10);
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
  read(j, where, "schedule", c.schedule, 0, 0);
  read(j, where, "lr_step_every", c.lr_step_every, 0, 1e12);
  read(j, where, "lr_step_gamma", c.lr_step_gamma, 0, 1);
  static const std::set<std::string> tasks = {"induction", "lm",   "reverse", "sort",       "sub",
                                              "swap",      "copy", "image",   "set-anomaly"};
  if (!tasks.count(c.task))
    fail("{}.task: unknown task '{}' (induction, lm, reverse, sort, sub, swap, copy, image, set-anomaly)", where,
         c.task);
  if (c.schedule != "cosine" && c.schedule != "step")
    fail("{}.schedule: unknown schedule '{}' (cosine, step)", where, c.schedule);
  if (c.schedule == "step" && c.lr_step_every < 1)
    fail("{}.lr_step_every: schedule 'step' needs lr_step_every >= 1 (steps between decays)", where);
  const std::string images_where = fmt::format("{}.images", where);
  const bool reads_images = c.task == "image" || c.task == "set-anomaly";
  if (reads_images) {
    if (!j.contains("images"))
      fail("{}: task '{}' needs an images object, e.g. {{\"format\": \"fashion-mnist\"}}", images_where, c.task);
    c.images = parse_images(j.at("images"), images_where);
  } else if (j.contains("images")) {
    fail("{}: only tasks 'image' and 'set-anomaly' read images (task is '{}')", images_where, c.task);
  }
  const std::string anomaly_where = fmt::format("{}.anomaly", where);
  if (c.task == "set-anomaly") {
    if (!j.contains("anomaly"))
      fail("{}: task 'set-anomaly' needs {{\"features\": \"<a trained ViT's model.safetensors>\"}}", anomaly_where);
    c.anomaly = parse_anomaly(j.at("anomaly"), anomaly_where);
  } else if (j.contains("anomaly")) {
    fail("{}: only task 'set-anomaly' takes it (task is '{}')", anomaly_where, c.task);
  }
  if (c.out_dir.empty()) fail("{}.out_dir: must not be empty", where);
  return c;
}

json to_json(const TrainConfig& c) {
  json j{{"task", c.task},         {"steps", c.steps},
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
              {"keep_last", c.keep_last}, {"test_examples", c.test_examples},
              {"schedule", c.schedule}, {"lr_step_every", c.lr_step_every}, {"lr_step_gamma", c.lr_step_gamma},
              {"init_std", c.init_std}};
  if (c.task == "set-anomaly") j["anomaly"] = json{{"features", c.anomaly.features}, {"set_size", c.anomaly.set_size}};
  if (c.task == "image" || c.task == "set-anomaly")
    j["images"] = json{{"format", c.images.format}, {"paths", c.images.paths}, {"test_paths", c.images.test_paths},
                       {"augment", {{"crop_padding", c.images.crop_padding}, {"flip", c.images.flip}}}};
  return j;
}

double learning_rate(const TrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.schedule == "step") return c.lr * std::pow(c.lr_step_gamma, static_cast<double>(step / c.lr_step_every));
  const double min_lr = c.lr * c.min_lr_ratio;
  const double span = static_cast<double>(std::max<int64_t>(1, c.steps - c.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (c.lr - min_lr);
}

}  // namespace kvtie
