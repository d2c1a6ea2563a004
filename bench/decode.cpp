// Decode throughput through the KV cache, per variant × cache dtype × context × batch, beside the
// roofline: the bytes one step must read (weights once + every cached row it attends to) divided
// by the memory bandwidth this program measures in the same run. Also the concurrency table: how
// many sequences of a given context fit a fixed cache budget, and their aggregate tokens/s.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "core/rng.h"
#include "infer/decoder.h"
#include "kvtie/profile.h"

namespace {

using namespace kvtie;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Read bandwidth: best of several threaded sums over a buffer far larger than the caches.
double read_bandwidth_gbs() {
  std::vector<float> buf(size_t{256} << 20 >> 2, 1.0f);  // 256 MiB
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    const auto t = Clock::now();
    float total = 0;  // float, so the loop vectorises and measures memory, not adder latency
#pragma omp parallel for simd reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(buf.size()); i++) total += buf[i];
    const double s = since(t);
    if (total < 0) fmt::print("");  // keep the sum alive
    best = std::max(best, static_cast<double>(buf.size()) * 4 / s / 1e9);
  }
  return best;
}

// Fills the cache of every sequence with `length` random rows, as a long prefill would.
void fill_cache(KvCache& cache, const ModelConfig& c, int length) {
  Rng rng(1);
  std::vector<float> row(static_cast<size_t>(c.n_kv_head) * c.head_dim);
  for (auto& x : row) x = static_cast<float>(rng.normal());
  for (int b = 0; b < cache.batch(); b++) {
    for (int l = 0; l < c.n_layer; l++)
      for (int t = 0; t < length; t++) {
        row[t % row.size()] = static_cast<float>(rng.normal());  // rows differ without a full redraw
        cache.write(l, b, t, row.data(), row.data());
      }
    cache.set_length(b, length);
  }
}

struct Point {
  std::string variant, dtype;
  int context, batch;
  double tokens_per_s, roofline_tokens_per_s;
};

Point measure(const ModelConfig& c, KvDType dtype, int context, int batch, int steps, double bw_gbs) {
  Transformer<float> model(c, 1, 1);
  model.init_weights(1);
  Decoder dec(model, batch, context + steps, dtype);
  fill_cache(dec.cache(), c, context);
  std::vector<int32_t> tokens(batch, 1);
  dec.step(tokens);  // warm-up
  const auto t = Clock::now();
  for (int s = 1; s < steps; s++) dec.step(tokens);
  const double per_step = since(t) / (steps - 1);
  // Bytes one step reads: the weights once, and each sequence's cached rows at ~context positions.
  const double weights = 4.0 * static_cast<double>(model.num_params());
  const double cache = static_cast<double>(batch) * (context + steps / 2.0) *
                       static_cast<double>(kv_cache_bytes_per_token(c, dtype));
  const double roofline_step = (weights + cache) / (bw_gbs * 1e9);
  return {variant_label(c), std::string(kv_dtype_name(dtype)), context, batch, batch / per_step, batch / roofline_step};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode tokens/s through the KV cache against the memory roofline"};
  std::vector<int> contexts = {256, 1024, 4096, 8192, 16384};
  std::vector<int> batches = {1, 8};
  std::vector<std::string> dtypes = {"fp32", "bf16", "int8"};
  int layers = 6, d = 512, heads = 8, vocab = 8192, steps = 6;
  double budget_gib = 1.0;
  int budget_context = 4096;
  bool json = false;
  app.add_option("--context", contexts, "Context lengths")->capture_default_str();
  app.add_option("--batch", batches, "Batch sizes")->capture_default_str();
  app.add_option("--dtype", dtypes, "Cache dtypes")->capture_default_str();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--d-model", d)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--steps", steps, "Decode steps timed per point")->capture_default_str();
  app.add_option("--budget-gib", budget_gib, "Cache budget of the concurrency table")->capture_default_str();
  app.add_option("--budget-context", budget_context, "Context of the concurrency table")->capture_default_str();
  app.add_flag("--json", json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);

  const double bw = read_bandwidth_gbs();
  ModelConfig base;
  base.n_layer = layers, base.d_model = d, base.n_head = heads, base.head_dim = d / heads, base.d_ff = 4 * d;
  base.vocab_size = vocab;
  base.max_seq_len = std::max(*std::max_element(contexts.begin(), contexts.end()), budget_context) + steps + 1;
  const std::vector<std::pair<Share, int>> variants = {{Share::none, heads}, {Share::kv, heads}, {Share::qkv, heads},
                                                       {Share::none, 1},     {Share::kv, 1}};
  if (!json) {
    fmt::print("decode: {} layers, d_model {}, {} heads, vocab {}, {} threads; read bandwidth {:.1f} GB/s\n\n", layers,
               d, heads, vocab, omp_get_max_threads(), bw);
    fmt::print("{:<8} {:>5} {:>7} {:>5} {:>11} {:>11} {:>9}\n", "variant", "dtype", "context", "batch", "tokens/s",
               "roofline", "% roof");
  } else {
    fmt::print("{}\n", nlohmann::json{{"bandwidth_gbs", bw}, {"threads", omp_get_max_threads()}}.dump());
  }
  for (const auto& [share, kv] : variants)
    for (const auto& dt : dtypes)
      for (int ctx : contexts)
        for (int b : batches) {
          ModelConfig c = base;
          c.share = share, c.n_kv_head = kv;
          const Point p = measure(c, parse_kv_dtype(dt), ctx, b, steps, bw);
          if (json)
            fmt::print("{}\n", nlohmann::json{{"variant", p.variant}, {"dtype", p.dtype}, {"context", p.context},
                                              {"batch", p.batch}, {"tokens_per_s", p.tokens_per_s},
                                              {"roofline_tokens_per_s", p.roofline_tokens_per_s}}
                                   .dump());
          else
            fmt::print("{:<8} {:>5} {:>7} {:>5} {:>11.1f} {:>11.1f} {:>8.0f}%\n", p.variant, p.dtype, p.context, p.batch,
                       p.tokens_per_s, p.roofline_tokens_per_s, 100 * p.tokens_per_s / p.roofline_tokens_per_s);
          std::fflush(stdout);
        }

  // Concurrency: sequences of budget_context tokens that fit the budget, and their throughput.
  if (!json)
    fmt::print("\nconcurrency: {:.1f} GiB cache budget, {} tokens of context per sequence\n{:<8} {:>5} {:>10} {:>11}\n",
               budget_gib, budget_context, "variant", "dtype", "sequences", "tokens/s");
  for (const auto& [share, kv] : variants)
    for (const auto& dt : dtypes) {
      ModelConfig c = base;
      c.share = share, c.n_kv_head = kv;
      const KvDType t = parse_kv_dtype(dt);
      const int64_t fit = static_cast<int64_t>(budget_gib * (1 << 30)) / kv_cache_bytes(c, budget_context + steps, 1, t);
      const Point p = measure(c, t, budget_context, static_cast<int>(std::max<int64_t>(1, fit)), 3, bw);
      if (json)
        fmt::print("{}\n", nlohmann::json{{"concurrency", true}, {"variant", p.variant}, {"dtype", p.dtype},
                                          {"sequences", fit}, {"tokens_per_s", p.tokens_per_s}}
                               .dump());
      else
        fmt::print("{:<8} {:>5} {:>10} {:>11.1f}\n", p.variant, p.dtype, fit, p.tokens_per_s);
      std::fflush(stdout);
    }
  return 0;
}
