// Times one training step (forward + backward + AdamW) per attention variant and sets the achieved
// FLOP rate beside the SGEMM rate this machine reaches in the same run.
//
// FLOPs per token, as in the issue: 6·(matmul params + d·V) + 12·L·T·(n_head·hd); the attention
// term counts the full T×T scores (the kernel computes them, masked or not).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kvtie/model.h"
#include "train/optimizer.h"

namespace {

using namespace kvtie;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Best single-call rate of C[M,N] = A[M,K]·B[N,K]ᵀ over about half a second, after warm-up (the
// first calls pay for OpenBLAS's thread start and page faults).
double sgemm_gflops(int M, int N, int K) {
  std::vector<float> a(static_cast<size_t>(M) * K, 0.5f), b(static_cast<size_t>(N) * K, 0.25f), c(static_cast<size_t>(M) * N);
  auto call = [&] { gemm(false, true, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, c.data(), N); };
  call();
  call();
  double best = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < 0.5) {
    const auto t = Clock::now();
    call();
    best = std::max(best, 2.0 * M * N * K / seconds_since(t) / 1e9);
  }
  return best;
}

// The machine's SGEMM rate: the best over the model's own large GEMM shapes and a square one.
double machine_sgemm_gflops(int tokens, int d, int vocab) {
  return std::max({sgemm_gflops(tokens, 4 * d, d), sgemm_gflops(tokens, vocab, d), sgemm_gflops(1024, 1024, 1024)});
}

double flops_per_token(const ModelConfig& c, int seq) {
  const double d = c.d_model;
  const double per_layer = d * c.attn_proj_dim() + d * c.q_dim() + 2 * d * c.d_ff;
  return 6.0 * (c.n_layer * per_layer + d * c.vocab_size) + 12.0 * c.n_layer * seq * c.q_dim();
}

struct Result {
  std::string variant;
  double step_ms, tokens_per_s, gflops;
};

Result time_variant(ModelConfig c, int batch, int seq, int steps) {
  Transformer<float> model(c, batch, seq);
  model.init_weights(1);
  AdamW<float> opt(model.num_params());
  TrainConfig tc;
  Rng rng(2);
  std::vector<int32_t> x(static_cast<size_t>(batch) * seq), y(x.size());
  for (auto& t : x) t = static_cast<int32_t>(rng.below(c.vocab_size));
  for (auto& t : y) t = static_cast<int32_t>(rng.below(c.vocab_size));
  auto step = [&] {
    model.zero_grad();
    model.forward(x.data(), y.data(), batch, seq);
    model.backward();
    opt.step(model, tc, 1e-4);
  };
  step();  // warm up caches and OpenBLAS threads
  step();
  double best = 1e30;
  for (int i = 0; i < steps; i++) {
    const auto t = Clock::now();
    step();
    best = std::min(best, seconds_since(t));
  }
  const double tokens = static_cast<double>(batch) * seq;
  return {variant_label(c), best * 1e3, tokens / best, flops_per_token(c, seq) * tokens / best / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Training-step throughput per attention variant, against this machine's SGEMM rate"};
  int d = 256, layers = 4, heads = 4, seq = 128, batch = 16, vocab = 8192, steps = 5;
  bool json = false;
  std::vector<std::string> only;
  app.add_option("--d-model", d)->capture_default_str();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--vocab", vocab)->capture_default_str();
  app.add_option("--steps", steps, "Timed steps per variant (best is reported)")->capture_default_str();
  app.add_option("--variant", only, "Time only these variants (repeatable): QKV, Q-K=V, Q=K-V, Q=K=V, MQA, Q-MQA")
      ->check(CLI::IsMember({"QKV", "Q-K=V", "Q=K-V", "Q=K=V", "MQA", "Q-MQA"}));
  app.add_flag("--json", json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);

  const double sgemm = machine_sgemm_gflops(batch * seq, d, vocab);
  std::vector<ModelConfig> variants;
  for (auto [share, kv] : std::vector<std::pair<Share, int>>{{Share::none, heads},
                                                             {Share::kv, heads},
                                                             {Share::qk, heads},
                                                             {Share::qkv, heads},
                                                             {Share::none, 1},
                                                             {Share::kv, 1}}) {
    ModelConfig c;
    c.n_layer = layers, c.d_model = d, c.n_head = heads, c.n_kv_head = kv, c.head_dim = d / heads, c.d_ff = 4 * d;
    c.vocab_size = vocab, c.max_seq_len = seq, c.share = share;
    if (only.empty() || std::find(only.begin(), only.end(), variant_label(c)) != only.end()) variants.push_back(c);
  }
  if (!json) {
    fmt::print("train step: d_model {}, {} layers, {} heads, seq {}, batch {}, vocab {}, {} threads\n", d, layers, heads,
               seq, batch, vocab, omp_get_max_threads());
    fmt::print("SGEMM (OpenBLAS, measured now): {:.1f} GFLOP/s\n\n", sgemm);
    fmt::print("{:<8} {:>9} {:>10} {:>9} {:>8}\n", "variant", "ms/step", "tokens/s", "GFLOP/s", "% SGEMM");
  } else {
    fmt::print("{}\n", nlohmann::json{{"sgemm_gflops", sgemm}, {"threads", omp_get_max_threads()}}.dump());
  }
  for (const auto& c : variants) {
    const Result r = time_variant(c, batch, seq, steps);
    if (json)
      fmt::print("{}\n", nlohmann::json{{"variant", r.variant}, {"step_ms", r.step_ms}, {"tokens_per_s", r.tokens_per_s},
                                        {"gflops", r.gflops}, {"pct_sgemm", 100 * r.gflops / sgemm}}
                             .dump());
    else
      fmt::print("{:<8} {:>9.1f} {:>10.0f} {:>9.1f} {:>7.1f}%\n", r.variant, r.step_ms, r.tokens_per_s, r.gflops,
                 100 * r.gflops / sgemm);
  }
  return 0;
}
