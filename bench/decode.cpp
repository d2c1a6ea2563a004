// Decode throughput through the KV cache, per variant × cache dtype × context × batch, beside the
// roofline: a step takes at least the bytes it must read (weights once + every cached row it
// attends to) over the memory bandwidth, and at least its FLOPs over the machine's FP32 rate (the
// SGEMM rate), both measured by this program in windows as long as the point's steps, one after
// each step. Rows whose arithmetic intensity is past the balance point of those two rates (MQA: 8
// query heads per cached row) are called bound by the second; `% mem roof` holds them to the
// first alone. (Where OPENBLAS_CORETYPE=Haswell is set, as on our 2-core VMs, SGEMM runs 256-bit
// FMAs, about half the 512-bit rate the AVX-512 decode kernels use: such rows can pass 100% of
// it.) Then the Q-K=V / QKV ratio of each point, the cached path against recomputing the prefix
// for every token (what `kvtie generate --no-cache` does) at one context, and the concurrency
// table: how many sequences of a given context fit a fixed cache budget, and their aggregate
// tokens/s.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "fill_cache.h"
#include "roofs.h"
#include "core/rng.h"
#include "infer/decoder.h"
#include "kernels/decode_attention.h"
#include "kvtie/profile.h"

namespace {

using namespace kvtie;
using bench::read_bandwidth_gbs;
using bench::read_window_gbs;
using bench::sgemm_window_gflops;
using bench::sgemm_gflops;
using bench::fill_cache;
using bench::Clock;
using bench::since;

struct Point {
  std::string variant, dtype;
  int context, batch;
  double tokens_per_s;
  double bytes, flops;                 // one step must read `bytes` and compute `flops`
  double bandwidth_gbs, sgemm_gflops;  // best windows, each as long as one of this point's steps
  // Per timed step, its tokens/s over the roofline of the two windows right after it.
  std::vector<double> paired;
  // The two roofs; the roofline is the lower.
  double memory_tokens_per_s() const { return batch * bandwidth_gbs * 1e9 / bytes; }
  double compute_tokens_per_s() const { return batch * sgemm_gflops * 1e9 / flops; }
  double roofline_tokens_per_s() const { return std::min(memory_tokens_per_s(), compute_tokens_per_s()); }
  const char* bound() const { return memory_tokens_per_s() <= compute_tokens_per_s() ? "memory" : "compute"; }
  double paired_median() const {
    if (paired.empty()) return 0;
    std::vector<double> v = paired;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
  // Another measurement of the same point: each rate keeps its best. The machine's bandwidth and
  // FLOP rate and the step's speed all move with the neighbours; the best of each is what the
  // machine and the code can do, and their ratio compares like with like.
  void keep_best(const Point& p) {
    tokens_per_s = std::max(tokens_per_s, p.tokens_per_s);
    bandwidth_gbs = std::max(bandwidth_gbs, p.bandwidth_gbs);
    sgemm_gflops = std::max(sgemm_gflops, p.sgemm_gflops);
    paired.insert(paired.end(), p.paired.begin(), p.paired.end());
  }
};

// A model of config c and its decoder, with room for `steps` more tokens, whose cache holds
// `context` random rows of every sequence, as after a long prefill.
struct FilledDecoder {
  Transformer<float> model;
  Decoder dec;
  FilledDecoder(const ModelConfig& c, KvDType dtype, int context, int batch, int steps)
      : model(c, 1, 1), dec(model, batch, context + steps, dtype) {
    model.init_weights(1);
    fill_cache(dec.cache(), c, context);
  }
};

// The best of `steps` − 1 timed decode steps (after one warm-up): on a shared machine a step that
// lost a core to another process says nothing about the code. After each timed step, a window of
// bandwidth and one of SGEMM, each as long as the step, and each side keeps its best: the same
// statistic for the step and its roofs, taken in the same moments. Each step is also paired with
// the roofline of the windows right after it: the median of those ratios asks what share of the
// machine of that moment the step used, which the best of each side, taken at different moments
// of a machine whose bandwidth swings by a third, cannot say.
Point measure(const ModelConfig& c, KvDType dtype, int context, int batch, int steps) {
  FilledDecoder f(c, dtype, context, batch, steps);
  const Transformer<float>& model = f.model;
  Decoder& dec = f.dec;
  // Bytes one step reads: the weights once (of the position table only each sequence's row), and
  // each sequence's cached rows at ~context positions.
  const double pos_table = c.pos == PosEmb::learned ? static_cast<double>(c.max_seq_len - batch) * c.d_model : 0.0;
  const double weights = 4.0 * (static_cast<double>(model.num_params()) - pos_table);
  const double cache = static_cast<double>(batch) * (context + steps / 2.0) *
                       static_cast<double>(kv_cache_bytes_per_token(c, dtype));
  const double bytes = weights + cache;
  // FLOPs of the step: every sequence's new token through the weights and over its ~context keys.
  const double flops =
      pass_cost(c, {.kind = PassKind::decode, .tokens = context + steps / 2, .batch = batch}).flops();
  std::vector<int32_t> tokens(batch, 1);
  dec.step(tokens);  // warm-up
  double per_step = 1e30, bw_gbs = 0, peak_gflops = 0;
  std::vector<double> paired;
  for (int s = 1; s < steps; s++) {
    const auto t = Clock::now();
    dec.step(tokens);
    const double took = since(t);
    const double bw = read_window_gbs(took), gflops = sgemm_window_gflops(took);
    per_step = std::min(per_step, took);
    bw_gbs = std::max(bw_gbs, bw);
    peak_gflops = std::max(peak_gflops, gflops);
    paired.push_back(1.0 / took / std::min(bw * 1e9 / bytes, gflops * 1e9 / flops));
  }
  return {variant_label(c), std::string(kv_dtype_name(dtype)), context, batch, batch / per_step, bytes,
          flops, bw_gbs, peak_gflops, paired};
}

// Q-K=V's tokens/s over QKV's, the steps of the two taken in turns: the median over the pairs of
// QKV's step time over Q-K=V's. Unlike the ratio of two best rates, each pair saw the same machine.
double interleaved_ratio(const ModelConfig& qkv, const ModelConfig& kv, KvDType dtype, int context, int batch,
                         int steps) {
  FilledDecoder fa(qkv, dtype, context, batch, steps), fb(kv, dtype, context, batch, steps);
  Decoder &da = fa.dec, &db = fb.dec;
  std::vector<int32_t> tokens(batch, 1);
  da.step(tokens), db.step(tokens);  // warm-up
  std::vector<double> ratios;
  for (int s = 1; s < steps; s++) {
    auto t = Clock::now();
    da.step(tokens);
    const double a = since(t);
    t = Clock::now();
    db.step(tokens);
    ratios.push_back(a / since(t));
  }
  std::nth_element(ratios.begin(), ratios.begin() + static_cast<std::ptrdiff_t>(ratios.size() / 2), ratios.end());
  return ratios[ratios.size() / 2];
}

// The attention kernel alone over a filled cache: GB/s of cached rows it reads (every layer, the
// best of `reps` passes), for one path.
double kernel_gbs(const ModelConfig& c, KvDType dtype, int context, int batch, DecodeIsa isa, int reps) {
  KvCache cache(c, batch, context, dtype);
  fill_cache(cache, c, context);
  std::vector<float> q(static_cast<size_t>(batch) * c.q_dim()), out(q.size());
  Rng rng(3);
  for (auto& x : q) x = static_cast<float>(rng.normal());
  std::vector<int> lengths(batch, context);
  const DecodeShape shape{c.n_head, c.n_kv_head, c.head_dim};
  std::vector<double> times;
  for (int r = 0; r <= reps; r++) {
    const auto t = Clock::now();
    for (int l = 0; l < c.n_layer; l++)
      decode_attention(out.data(), q.data(), c.q_dim(), cache, l, lengths.data(), batch, shape, isa);
    if (r > 0) times.push_back(since(t));  // the first pass warms up
  }
  return static_cast<double>(cache.bytes()) / *std::min_element(times.begin(), times.end()) / 1e9;
}

// Tokens/s of the no-cache path at `context`: each new token runs the full forward over the whole
// prefix (batch 1), as `kvtie generate --no-cache` does; the best of `reps` forwards.
double no_cache_tokens_per_s(const ModelConfig& c, int context, int reps) {
  Transformer<float> model(c, 1, context);
  model.init_weights(1);
  std::vector<int32_t> tokens(context);
  Rng rng(2);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(c.vocab_size));
  model.forward(tokens.data(), nullptr, 1, context);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < reps; r++) {
    const auto t = Clock::now();
    model.forward(tokens.data(), nullptr, 1, context);
    times.push_back(since(t));
  }
  return 1.0 / *std::min_element(times.begin(), times.end());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode tokens/s through the KV cache against the memory roofline"};
  std::vector<int> contexts = {256, 1024, 4096, 8192, 16384};
  std::vector<int> batches = {1, 8};
  std::vector<std::string> dtypes = {"fp32", "bf16", "int8"};
  int layers = 6, d = 512, heads = 8, vocab = 8192, steps = 6, rounds = 1;
  double budget_gib = 1.0;
  int budget_context = 4096, no_cache_context = 1024;
  bool kernel = false, no_int_path = false;
  std::string isa = "best";
  std::vector<std::string> only;
  bool json = false;
  app.add_option("--context", contexts, "Context lengths")->capture_default_str();
  app.add_option("--batch", batches, "Batch sizes")->capture_default_str();
  app.add_option("--dtype", dtypes, "Cache dtypes")->capture_default_str();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--d-model", d)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--steps", steps, "Decode steps per point: one warm-up, the rest timed")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  app.add_option("--rounds", rounds,
                 "Passes over every point; each keeps its best step rate, bandwidth and SGEMM rate, and pools "
                 "its paired ratios (shared machines drift)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--budget-gib", budget_gib, "Cache budget of the concurrency table; 0 skips it")->capture_default_str();
  app.add_option("--budget-context", budget_context, "Context of the concurrency table")->capture_default_str();
  app.add_option("--no-cache-context", no_cache_context,
                 "Context of the cached vs no-cache (recompute the prefix) table; 0 skips it")
      ->capture_default_str();
  app.add_option("--isa", isa, "Decode kernel path: best, avx512, avx2, scalar")
      ->check(CLI::IsMember({"best", "avx512", "avx2", "scalar"}))
      ->capture_default_str();
  app.add_flag("--kernel", kernel,
               "Only the attention kernel: GB/s of cache it reads, every path, per variant × dtype × context × batch");
  app.add_flag("--no-int-path", no_int_path, "int8/int4 caches widened to float instead of the integer path");
  app.add_option("--variants", only, "Only these: QKV, Q-K=V, Q=K=V, MQA, Q-MQA (default all)");
  app.add_flag("--json", json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);
  const DecodeIsa path = isa == "scalar" ? DecodeIsa::scalar
                         : isa == "avx2" ? DecodeIsa::avx2
                         : isa == "avx512" ? DecodeIsa::avx512
                                           : DecodeIsa::best;
  set_decode_isa(path);
  set_decode_int_path(!no_int_path);
  const std::string_view path_name = decode_isa_name(path == DecodeIsa::best ? decode_isa_best() : path);

  const double bw = read_bandwidth_gbs();
  ModelConfig base;
  base.n_layer = layers, base.d_model = d, base.n_head = heads, base.head_dim = d / heads, base.d_ff = 4 * d;
  base.vocab_size = vocab;
  base.max_seq_len =
      std::max({*std::max_element(contexts.begin(), contexts.end()), budget_context, no_cache_context}) + 2 * steps + 1;
  std::vector<std::pair<Share, int>> variants;
  for (const auto& [share, kv] : std::vector<std::pair<Share, int>>{
           {Share::none, heads}, {Share::kv, heads}, {Share::qkv, heads}, {Share::none, 1}, {Share::kv, 1}}) {
    ModelConfig c = base;
    c.share = share, c.n_kv_head = kv;
    if (only.empty() || std::find(only.begin(), only.end(), variant_label(c)) != only.end())
      variants.push_back({share, kv});
  }
  if (!json) {
    fmt::print("decode: {} layers, d_model {}, {} heads, vocab {}, {} threads, {} kernel{}; read bandwidth {:.1f} GB/s, "
               "SGEMM {:.1f} GFLOP/s\n\n",
               layers, d, heads, vocab, omp_get_max_threads(), path_name, no_int_path ? " (int8/int4 widened to float)" : "",
               bw, sgemm_gflops());
  }
  if (json)
    fmt::print("{}\n", nlohmann::json{{"bandwidth_gbs", bw}, {"sgemm_gflops", sgemm_gflops()},
                                      {"threads", omp_get_max_threads()}, {"kernel", path_name}, {"int_path", !no_int_path}}
                           .dump());
  else if (!kernel)
    fmt::print("{:<8} {:>5} {:>7} {:>5} {:>10} {:>10} {:>10} {:>7} {:>8} {:>9} {:>8} {:>6} {:>7}\n", "variant",
               "dtype", "context", "batch", "tokens/s", "mem roof", "flop roof", "bound", "% roof", "% mem roof",
               "% paired", "GB/s", "GFLOP/s");
  if (kernel) {
    std::vector<DecodeIsa> paths;
    for (DecodeIsa i : {DecodeIsa::scalar, DecodeIsa::avx2, DecodeIsa::avx512})
      if (decode_isa_compiled(i)) paths.push_back(i);
    if (!json) {
      fmt::print("attention kernel alone: GB/s of cache read\n{:<8} {:>5} {:>7} {:>5}", "variant", "dtype", "context",
                 "batch");
      for (DecodeIsa i : paths) fmt::print(" {:>8}", decode_isa_name(i));
      fmt::print("\n");
    }
    for (const auto& [share, kv] : variants)
      for (const auto& dt : dtypes)
        for (int ctx : contexts)
          for (int b : batches) {
            ModelConfig c = base;
            c.share = share, c.n_kv_head = kv;
            nlohmann::json j{{"kernel", true}, {"variant", variant_label(c)}, {"dtype", dt}, {"context", ctx}, {"batch", b}};
            if (!json) fmt::print("{:<8} {:>5} {:>7} {:>5}", variant_label(c), dt, ctx, b);
            for (DecodeIsa i : paths) {
              const double gbs = kernel_gbs(c, parse_kv_dtype(dt), ctx, b, i, std::max(2, steps - 1));
              j[std::string(decode_isa_name(i))] = gbs;
              if (!json) fmt::print(" {:>8.1f}", gbs);
            }
            if (json) fmt::print("{}", j.dump());
            fmt::print("\n");
            std::fflush(stdout);
          }
    return 0;
  }
  // Rounds over every point, the variants of one (dtype, context, batch) back to back, keeping each
  // point's best: on a shared machine the memory bandwidth moves with the neighbours, and a ratio of
  // two points is only fair when both had a quiet moment.
  const int n_variants = static_cast<int>(variants.size());
  std::vector<Point> points(static_cast<size_t>(n_variants) * dtypes.size() * contexts.size() * batches.size());
  auto index = [&](int v, size_t dt, size_t ctx, size_t b) {
    return ((static_cast<size_t>(v) * dtypes.size() + dt) * contexts.size() + ctx) * batches.size() + b;
  };
  for (int round = 0; round < rounds; round++)
    for (size_t dt = 0; dt < dtypes.size(); dt++)
      for (size_t ctx = 0; ctx < contexts.size(); ctx++)
        for (size_t b = 0; b < batches.size(); b++)
          for (int v = 0; v < n_variants; v++) {
            ModelConfig c = base;
            c.share = variants[static_cast<size_t>(v)].first, c.n_kv_head = variants[static_cast<size_t>(v)].second;
            const Point p = measure(c, parse_kv_dtype(dtypes[dt]), contexts[ctx], batches[b], steps);
            Point& best = points[index(v, dt, ctx, b)];
            if (round == 0)
              best = p;
            else
              best.keep_best(p);
          }
  for (const Point& p : points) {
    if (json)
      fmt::print("{}\n", nlohmann::json{{"variant", p.variant}, {"dtype", p.dtype}, {"context", p.context},
                                        {"batch", p.batch}, {"tokens_per_s", p.tokens_per_s},
                                        {"step_bytes", p.bytes}, {"step_flops", p.flops},
                                        {"roofline_tokens_per_s", p.roofline_tokens_per_s()},
                                        {"memory_roofline_tokens_per_s", p.memory_tokens_per_s()},
                                        {"compute_roofline_tokens_per_s", p.compute_tokens_per_s()},
                                        {"bound", p.bound()},
                                        {"paired_roofline_fraction", p.paired_median()},
                                        {"bandwidth_gbs", p.bandwidth_gbs},
                                        {"sgemm_gflops", p.sgemm_gflops}}
                             .dump());
    else
      fmt::print("{:<8} {:>5} {:>7} {:>5} {:>10.1f} {:>10.1f} {:>10.1f} {:>7} {:>7.0f}% {:>9.0f}% {:>7.0f}% {:>6.1f} "
                 "{:>7.1f}\n",
                 p.variant, p.dtype, p.context, p.batch, p.tokens_per_s, p.memory_tokens_per_s(),
                 p.compute_tokens_per_s(), p.bound(), 100 * p.tokens_per_s / p.roofline_tokens_per_s(),
                 100 * p.tokens_per_s / p.memory_tokens_per_s(), 100 * p.paired_median(), p.bandwidth_gbs,
                 p.sgemm_gflops);
  }
  std::fflush(stdout);

  // Q-K=V against QKV at every (dtype, context, batch) measured: the bytes predict ~2× at long context.
  auto find = [&](const std::string& variant, const Point& like) -> const Point* {
    for (const Point& p : points)
      if (p.variant == variant && p.dtype == like.dtype && p.context == like.context && p.batch == like.batch) return &p;
    return nullptr;
  };
  bool header = false;
  for (const Point& qkv : points) {
    if (qkv.variant != "QKV") continue;
    const Point* kv = find("Q-K=V", qkv);
    if (!kv) continue;
    const double measured = kv->tokens_per_s / qkv.tokens_per_s;
    ModelConfig a = base, b = base;
    a.share = Share::none, b.share = Share::kv, a.n_kv_head = b.n_kv_head = heads;
    const double interleaved =
        interleaved_ratio(a, b, parse_kv_dtype(qkv.dtype), qkv.context, qkv.batch, 2 * steps);
    // The bytes' ratio alone, apart from the bandwidth each point measured.
    const double bytes = qkv.bytes / kv->bytes;
    if (json) {
      fmt::print("{}\n", nlohmann::json{{"ratio", "Q-K=V/QKV"}, {"dtype", qkv.dtype}, {"context", qkv.context},
                                        {"batch", qkv.batch}, {"measured", measured}, {"interleaved", interleaved},
                                        {"roofline", bytes}}
                             .dump());
      continue;
    }
    if (!header)
      fmt::print("\nQ-K=V / QKV tokens/s (best of each; median of steps taken in turns; the bytes' ratio)\n"
                 "{:<5} {:>7} {:>5} {:>9} {:>11} {:>9}\n",
                 "dtype", "context", "batch", "measured", "interleaved", "roofline");
    header = true;
    fmt::print("{:<5} {:>7} {:>5} {:>8.2f}× {:>10.2f}× {:>8.2f}×\n", qkv.dtype, qkv.context, qkv.batch, measured,
               interleaved, bytes);
    std::fflush(stdout);
  }

  // The cache against recomputing the prefix for every token, batch 1, fp32 cache.
  if (no_cache_context > 0) {
    if (!json)
      fmt::print("\ncached vs no cache (the prefix recomputed for every token): context {}, batch 1, fp32\n"
                 "{:<8} {:>11} {:>11} {:>8}\n",
                 no_cache_context, "variant", "cached", "no cache", "ratio");
    for (const auto& [share, kv] : variants) {
      ModelConfig c = base;
      c.share = share, c.n_kv_head = kv;
      const Point cached = measure(c, KvDType::fp32, no_cache_context, 1, steps);
      const double full = no_cache_tokens_per_s(c, no_cache_context, 3);
      if (json)
        fmt::print("{}\n", nlohmann::json{{"no_cache", true}, {"variant", cached.variant}, {"context", no_cache_context},
                                          {"cached_tokens_per_s", cached.tokens_per_s},
                                          {"no_cache_tokens_per_s", full}, {"ratio", cached.tokens_per_s / full}}
                               .dump());
      else
        fmt::print("{:<8} {:>11.1f} {:>11.2f} {:>7.0f}×\n", cached.variant, cached.tokens_per_s, full,
                   cached.tokens_per_s / full);
      std::fflush(stdout);
    }
  }

  // Concurrency: sequences of budget_context tokens that fit the budget, and their throughput.
  if (budget_gib <= 0) return 0;
  if (!json)
    fmt::print("\nconcurrency: {:.1f} GiB cache budget, {} tokens of context per sequence\n{:<8} {:>5} {:>10} {:>11}\n",
               budget_gib, budget_context, "variant", "dtype", "sequences", "tokens/s");
  for (const auto& [share, kv] : variants)
    for (const auto& dt : dtypes) {
      ModelConfig c = base;
      c.share = share, c.n_kv_head = kv;
      const KvDType t = parse_kv_dtype(dt);
      const int64_t fit = static_cast<int64_t>(budget_gib * (1 << 30)) / kv_cache_bytes(c, budget_context + steps, 1, t);
      const Point p = measure(c, t, budget_context, static_cast<int>(std::max<int64_t>(1, fit)), 3);
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
