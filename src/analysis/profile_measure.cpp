// The measured side of the profiler: build the model with random weights, time its forward pass
// and read the memory it took, to print beside the theory.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/units.h"
#include "kvtie/error.h"
#include "kvtie/model.h"
#include "kvtie/profile.h"

namespace kvtie {
namespace {

// Linux keeps the peak resident set (VmHWM) per process; writing 5 to clear_refs resets it, so
// the peak read after one model ran belongs to that model, not to a larger one before it.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // kilobytes on Linux
}

}  // namespace

int layers_that_fit(const ModelConfig& c, int64_t tokens, int batch, int threads, int64_t budget) {
  ModelConfig m = c;
  for (m.n_layer = c.n_layer; m.n_layer >= 1; m.n_layer--)
    if (model_arena_bytes(m, batch, static_cast<int>(tokens), threads, sizeof(float)) <= budget) return m.n_layer;
  return 0;
}

int check_measurable(const ModelConfig& c, const MeasureOptions& o) {
  if (o.tokens < 1 || o.tokens > c.max_seq_len)
    fail("--context: {} is outside [1, max_seq_len {}]: the measured forward pass needs a position for every token",
         o.tokens, c.max_seq_len);
  if (o.repeats < 1) fail("--repeats: must be at least 1, got {}", o.repeats);
  if (o.batch < 1) fail("--batch: must be at least 1, got {}", o.batch);
  const int threads = omp_get_max_threads(), T = static_cast<int>(o.tokens);
  const int layers = layers_that_fit(c, T, o.batch, threads, o.memory_budget);
  if (layers == 0) {
    ModelConfig one = c;
    one.n_layer = 1;
    fail("--memory-budget: {} is below the {} one layer needs at context {} and batch {}",
         format_bytes(static_cast<double>(o.memory_budget)),
         format_bytes(static_cast<double>(model_arena_bytes(one, o.batch, T, threads, sizeof(float)))), T, o.batch);
  }
  return layers;
}

Measurement measure(const ModelConfig& c, const MeasureOptions& o) {
  const int fit = check_measurable(c, o);
  const int layers = o.max_layers > 0 ? std::min(o.max_layers, fit) : fit;
  Measurement m;
  m.threads = omp_get_max_threads();
  const int T = static_cast<int>(o.tokens);
  m.built = c;
  m.built.n_layer = layers;
  m.memory_budget = o.memory_budget;
  m.whole_arena_bytes = model_arena_bytes(c, o.batch, T, m.threads, sizeof(float));
  if (fit < c.n_layer)
    m.note = fmt::format("measured with {} of {} layers: the whole model's arena ({}) exceeds the {} budget", layers,
                         c.n_layer, format_bytes(static_cast<double>(m.whole_arena_bytes)),
                         format_bytes(static_cast<double>(o.memory_budget)));
  else if (layers < c.n_layer)
    m.note = fmt::format("measured with {} of {} layers, the depth every variant measured with it fits", layers,
                         c.n_layer);

  m.peak_rss_reset = reset_peak_rss();
  {
    Transformer<float> model(m.built, o.batch, T);
    model.init_weights(o.seed);
    Rng rng(o.seed + 1);
    std::vector<int32_t> tokens(static_cast<size_t>(o.batch) * T);
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
    m.forward_seconds = std::numeric_limits<double>::infinity();
    for (int r = 0; r < o.repeats; r++) {
      const auto start = std::chrono::steady_clock::now();
      model.forward(tokens.data(), nullptr, o.batch, T);
      m.forward_seconds = std::min(m.forward_seconds,
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    m.arena_bytes = static_cast<int64_t>(model.arena_bytes());
    m.peak_rss_bytes = peak_rss_bytes();
    // The KV cache and decode path do not exist yet. When they do: build the cache for
    // [o.batch, T] here, set m.kv_cache_bytes to the bytes it allocated, and time decode steps
    // into m.decode_tokens_per_second; the report prints them beside the theory already.
  }
  m.arena_bytes_theory = model_arena_bytes(m.built, o.batch, T, m.threads, sizeof(float));
  const PassShape fwd{.kind = PassKind::forward, .tokens = T, .batch = o.batch};
  m.forward_flops = pass_cost(m.built, fwd).flops();
  PassShape dense = fwd;
  dense.dense_scores = true;
  m.forward_flops_dense = pass_cost(m.built, dense).flops();
  return m;
}

}  // namespace kvtie
