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
#include <string>
#include <vector>

#include "roofs.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kvtie/model.h"
#include "train/optimizer.h"

namespace {

using namespace kvtie;
using bench::Clock;
using bench::since;

struct GemmShape {
  int M, N, K;
};

// C[M,N] = A[M,K]·B[N,K]ᵀ, the product of a linear layer's forward, on buffers of its own.
class Sgemm {
 public:
  explicit Sgemm(GemmShape s)
      : s_(s), a_(static_cast<size_t>(s.M) * s.K, 0.5f), b_(static_cast<size_t>(s.N) * s.K, 0.25f),
        c_(static_cast<size_t>(s.M) * s.N) {}
  void call() { gemm(false, true, s_.M, s_.N, s_.K, 1.0f, a_.data(), s_.K, b_.data(), s_.K, 0.0f, c_.data(), s_.N); }
  double flops() const { return 2.0 * s_.M * s_.N * s_.K; }

  // Best single-call rate over about half a second, after warm-up (the first calls pay for
  // OpenBLAS's thread start and page faults).
  double peak_gflops() {
    call();
    call();
    return flops() / bench::best_seconds([&] { call(); }, 0.5) / 1e9;
  }
  // The rate of back-to-back calls over at least `seconds`: one window as long as a training step.
  double window_gflops(double seconds) {
    return bench::window_rate([&] { call(); return flops(); }, seconds) / 1e9;
  }

 private:
  GemmShape s_;
  std::vector<float> a_, b_, c_;
};

// Of the model's large GEMM shapes and a square one, the one OpenBLAS runs fastest.
GemmShape fastest_shape(int tokens, int d, int vocab, double* peak) {
  GemmShape best{};
  *peak = 0;
  for (GemmShape s : {GemmShape{tokens, 4 * d, d}, GemmShape{tokens, vocab, d}, GemmShape{1024, 1024, 1024}}) {
    const double r = Sgemm(s).peak_gflops();
    if (r > *peak) *peak = r, best = s;
  }
  return best;
}

double flops_per_token(const ModelConfig& c, int seq) {
  const double d = c.d_model;
  const double per_layer = d * c.attn_proj_dim() + d * c.q_dim() + 2 * d * c.d_ff;
  return 6.0 * (c.n_layer * per_layer + d * c.vocab_size) + 12.0 * c.n_layer * seq * c.q_dim();
}

struct Result {
  std::string variant;
  double step_ms, tokens_per_s, gflops, sgemm_gflops;
};

// Each timed step is followed by an SGEMM window of the same length, and each side keeps its best:
// the same statistic over windows of the same length, interleaved, so that the ratio does not
// depend on which one caught the machine's quiet moments. A window lasts at least kMinWindow: a
// tiny model's 20 ms step would hold one or two calls, the first of them waking BLAS's threads.
constexpr double kMinWindow = 0.2;
Result time_variant(ModelConfig c, int batch, int seq, int steps, Sgemm& sgemm) {
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
  double best = 1e30, best_sgemm = 0;
  for (int i = 0; i < steps; i++) {
    const auto t = Clock::now();
    step();
    const double took = since(t);
    best = std::min(best, took);
    best_sgemm = std::max(best_sgemm, sgemm.window_gflops(std::max(took, kMinWindow)));
  }
  const double tokens = static_cast<double>(batch) * seq;
  return {variant_label(c), best * 1e3, tokens / best, flops_per_token(c, seq) * tokens / best / 1e9, best_sgemm};
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

  double peak = 0;
  Sgemm sgemm(fastest_shape(batch * seq, d, vocab, &peak));
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
    fmt::print("SGEMM (OpenBLAS, measured now): best single call {:.1f} GFLOP/s; `SGEMM` below: the best of\n"
               "windows as long as a step (at least {} s), one after each timed step\n\n",
               peak, kMinWindow);
    fmt::print("{:<8} {:>9} {:>10} {:>9} {:>9} {:>8}\n", "variant", "ms/step", "tokens/s", "GFLOP/s", "SGEMM", "% SGEMM");
  } else {
    fmt::print("{}\n", nlohmann::json{{"sgemm_peak_gflops", peak}, {"threads", omp_get_max_threads()}}.dump());
  }
  for (const auto& c : variants) {
    const Result r = time_variant(c, batch, seq, steps, sgemm);
    const double pct = 100 * r.gflops / r.sgemm_gflops;
    if (json)
      fmt::print("{}\n", nlohmann::json{{"variant", r.variant}, {"step_ms", r.step_ms}, {"tokens_per_s", r.tokens_per_s},
                                        {"gflops", r.gflops}, {"sgemm_gflops", r.sgemm_gflops}, {"pct_sgemm", pct}}
                             .dump());
    else
      fmt::print("{:<8} {:>9.1f} {:>10.0f} {:>9.1f} {:>9.1f} {:>7.1f}%\n", r.variant, r.step_ms, r.tokens_per_s, r.gflops,
                 r.sgemm_gflops, pct);
  }
  return 0;
}
