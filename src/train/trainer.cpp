#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/rng.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "kvtie/model.h"
#include "train/copy_task.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/progress.h"

namespace kvtie {

TrainResult train(const ModelConfig& mc, const TrainConfig& tc, const TrainOptions& options) {
  if (tc.threads > 0) omp_set_num_threads(tc.threads);
  if (tc.seq_len > mc.max_seq_len) fail("train.seq_len: {} exceeds model.max_seq_len {}", tc.seq_len, mc.max_seq_len);
  if (tc.task == "copy") {
    if (mc.head != Head::lm || !mc.causal) fail("train.task: 'copy' needs a causal LM (model.causal true, head lm)");
    if (mc.vocab_size < 3) fail("train.task: 'copy' needs model.vocab_size >= 3");
    if (tc.seq_len < 3) fail("train.seq_len: 'copy' needs at least 3 positions");
  }

  Transformer<float> model(mc, tc.batch_size, tc.seq_len);
  model.init_weights(tc.seed);
  AdamW<float> optimizer(model.num_params());
  Rng data_rng(tc.seed ^ 0xda7a5eedULL);
  const int64_t N = static_cast<int64_t>(tc.batch_size) * tc.seq_len;
  std::vector<int32_t> tokens(N), targets(N);

  std::unique_ptr<MetricsLog> log;
  if (options.write_files) {
    std::filesystem::create_directories(tc.out_dir);
    log = std::make_unique<MetricsLog>(tc.out_dir + "/metrics.jsonl");
  }
  Progress progress("train", tc.steps, Progress::detect(options.quiet), tc.log_every);
  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < tc.steps; step++) {
    model.zero_grad();
    double loss = 0.0;
    for (int micro = 0; micro < tc.grad_accum; micro++) {
      make_copy_batch(tokens.data(), targets.data(), tc.batch_size, tc.seq_len, mc.vocab_size, data_rng);
      loss += model.forward(tokens.data(), targets.data(), tc.batch_size, tc.seq_len) / tc.grad_accum;
      model.backward(1.0f / static_cast<float>(tc.grad_accum));
    }
    if (!std::isfinite(loss)) fail("step {}: loss is {} (diverged); lower train.lr", step, loss);
    const double lr = learning_rate(tc, step);
    const StepReport r = optimizer.step(model, tc, lr);
    if (r.skipped) {
      if (!std::isfinite(r.grad_norm)) fail("step {}: gradient norm is {}", step, r.grad_norm);
      result.skipped_steps++;
    }
    result.losses.push_back(loss);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double tokens_done = static_cast<double>(step + 1) * N * tc.grad_accum;
    if (log && ((step + 1) % tc.log_every == 0 || step == 0 || step + 1 == tc.steps))
      log->write({{"step", step + 1}, {"loss", loss}, {"lr", lr}, {"grad_norm", r.grad_norm},
                  {"skipped", r.skipped}, {"tokens", tokens_done}, {"elapsed_s", elapsed},
                  {"tokens_per_s", tokens_done / elapsed}});
    progress.update(step + 1, tokens_done, "tok", fmt::format("loss {:.4f}", loss));
  }
  progress.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.tokens_per_second = static_cast<double>(tc.steps) * N * tc.grad_accum / result.seconds;
  if (options.write_files) {
    result.checkpoint = tc.out_dir + "/model.safetensors";
    save_checkpoint(result.checkpoint, mc, model.params());
  }
  return result;
}

}  // namespace kvtie
