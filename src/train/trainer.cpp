#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/atomic_file.h"
#include "data/prepare.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "kvtie/model.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/task.h"
#include "train/train_checkpoint.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;

// A resumed run re-runs the steps after its checkpoint: drop their records from the log first.
void truncate_metrics(const std::string& path, int64_t last_step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j["step"].get<int64_t>() <= last_step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void copy_tokenizer(const std::string& from, const std::string& to) {
  for (const char* name : {"vocab.json", "merges.txt"}) {
    const std::string src = from + "/" + name;
    if (!fs::exists(src)) fail("train.tokenizer: {} not found", src);
    write_file_atomic(to + "/" + name, read_file(src));
  }
}

}  // namespace

std::string run_config_path(const std::string& out_dir) { return out_dir + "/config.json"; }

TrainResult train(const ModelConfig& mc, const TrainConfig& tc, const TrainOptions& options) {
  if (tc.threads > 0) omp_set_num_threads(tc.threads);
  TrainTask task = make_train_task(tc, mc);

  Transformer<float> model(mc, tc.batch_size, task.seq_len);
  model.init_weights(tc.seed, tc.init_std);
  AdamW<float> optimizer(model.num_params());
  TrainProgress progress;
  std::unique_ptr<MetricsLog> log;
  if (options.write_files) {
    fs::create_directories(tc.out_dir);
    const std::string metrics = tc.out_dir + "/metrics.jsonl";
    if (options.resume) {
      progress = load_train_checkpoint(tc.out_dir, model, optimizer);
      task.restore(progress.data);
      truncate_metrics(metrics, progress.step);
    } else if (latest_checkpoint_step(tc.out_dir)) {
      fail("train.out_dir: {} already holds a run's checkpoints; continue it with --resume {} or choose another "
           "out_dir",
           tc.out_dir, tc.out_dir);
    }
    write_file_atomic(run_config_path(tc.out_dir),
                      nlohmann::json{{"model", to_json(mc)}, {"train", to_json(tc)}}.dump(2) + "\n");
    if (!tc.tokenizer.empty()) copy_tokenizer(tc.tokenizer, tc.out_dir);
    else if (!tc.data.empty()) copy_tokenizer(manifest_tokenizer(tc.data), tc.out_dir);
    log = std::make_unique<MetricsLog>(metrics, /*append=*/options.resume);
  } else if (options.resume) {
    fail("resuming needs the run's files");
  }

  const int64_t N = task.units_per_batch;  // tokens or images per micro-batch
  const std::string per_s = task.unit + "_per_s";
  TrainResult result;
  result.unit = task.unit;
  result.first_step = progress.step;
  auto validate = [&](int64_t step) {
    if (!task.validate) return;
    result.val = task.validate(model);
    result.val_loss = result.val.at("val_loss").get<double>();
    if (log) {
      nlohmann::json record = {{"step", step}};
      record.update(result.val);
      log->write(record);
    }
  };

  Progress bar("train", tc.steps, Progress::detect(options.quiet), tc.log_every);
  const char* rate_unit = task.unit == "tokens" ? "tok" : task.unit == "images" ? "img" : "set";
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = progress.step; step < tc.steps; step++) {
    model.zero_grad();
    double loss = 0.0;
    for (int micro = 0; micro < tc.grad_accum; micro++) {
      loss += task.forward(model) / tc.grad_accum;
      model.backward(1.0f / static_cast<float>(tc.grad_accum));
    }
    if (!std::isfinite(loss)) fail("step {}: loss is {} (diverged); lower train.lr", step + 1, loss);
    const double lr = learning_rate(tc, step);
    const StepReport r = optimizer.step(model, tc, lr);
    if (r.skipped) {
      if (!std::isfinite(r.grad_norm)) fail("step {}: gradient norm is {}", step + 1, r.grad_norm);
      progress.skipped_steps++;
    }
    progress.step = step + 1;
    result.losses.push_back(loss);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double tokens_done = static_cast<double>(progress.step - result.first_step) * N * tc.grad_accum;
    if (log && (progress.step % tc.log_every == 0 || progress.step == 1 || progress.step == tc.steps))
      log->write({{"step", progress.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", r.grad_norm},
                  {"skipped", r.skipped}, {task.unit, static_cast<double>(progress.step) * N * tc.grad_accum},
                  {"elapsed_s", elapsed}, {per_s, tokens_done / elapsed}});
    bar.update(progress.step, tokens_done, rate_unit, fmt::format("loss {:.4f}", loss));
    if (tc.val_every > 0 && progress.step % tc.val_every == 0 && progress.step != tc.steps) validate(progress.step);
    if (log && tc.ckpt_every > 0 && (progress.step % tc.ckpt_every == 0 || progress.step == tc.steps)) {
      progress.data = task.state();
      save_train_checkpoint(tc.out_dir, model, optimizer, progress, tc.keep_last);
    }
  }
  bar.finish();
  validate(progress.step);
  result.skipped_steps = progress.skipped_steps;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.per_second =
      static_cast<double>(progress.step - result.first_step) * N * tc.grad_accum / std::max(result.seconds, 1e-9);
  if (options.write_files) {
    result.checkpoint = tc.out_dir + "/model.safetensors";
    save_checkpoint(result.checkpoint, mc, model.params());
  }
  return result;
}

}  // namespace kvtie
