// The measured side of the profiler: build the model with random weights, time its forward pass,
// fill a real KV cache from it and time decode steps, and read the memory it all took, to print
// beside the theory.
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
#include "infer/decoder.h"
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

bool has_kv_cache(const ModelConfig& c) { return c.head == Head::lm && c.causal; }

int64_t measured_bytes(const ModelConfig& c, int64_t tokens, int batch, int threads, KvDType dtype) {
  const int64_t arena = model_arena_bytes(c, batch, static_cast<int>(tokens), threads, sizeof(float));
  return arena + (has_kv_cache(c) ? kv_cache_bytes(c, tokens, batch, dtype) : 0);
}

int layers_that_fit(const ModelConfig& c, int64_t tokens, int batch, int threads, int64_t budget, KvDType dtype) {
  ModelConfig m = c;
  for (m.n_layer = c.n_layer; m.n_layer >= 1; m.n_layer--)
    if (measured_bytes(m, tokens, batch, threads, dtype) <= budget) return m.n_layer;
  return 0;
}

int check_measurable(const ModelConfig& c, const MeasureOptions& o) {
  if (o.tokens < 1 || o.tokens > c.max_seq_len)
    fail("--context: {} is outside [1, max_seq_len {}]: the measured forward pass needs a position for every token",
         o.tokens, c.max_seq_len);
  if (c.is_image() && o.tokens != c.max_seq_len)
    fail("--context: {} is not {}: an image model always runs all its positions ({} patches{})", o.tokens,
         c.max_seq_len, c.image.n_patches(), c.n_cls_tokens() ? " + the class token" : "");
  if (o.repeats < 1) fail("--repeats: must be at least 1, got {}", o.repeats);
  if (o.batch < 1) fail("--batch: must be at least 1, got {}", o.batch);
  if (o.decode_steps < 0) fail("--decode-steps: must be at least 0, got {}", o.decode_steps);
  const int threads = omp_get_max_threads(), T = static_cast<int>(o.tokens);
  const int layers = layers_that_fit(c, T, o.batch, threads, o.memory_budget, o.dtype);
  if (layers == 0) {
    ModelConfig one = c;
    one.n_layer = 1;
    fail("--memory-budget: {} is below the {} one layer needs at context {} and batch {}",
         format_bytes(static_cast<double>(o.memory_budget)),
         format_bytes(static_cast<double>(measured_bytes(one, T, o.batch, threads, o.dtype))), T, o.batch);
  }
  return layers;
}

Measurement measure(const ModelConfig& c, const MeasureOptions& o) {
  const int fit = check_measurable(c, o);
  const int layers = o.max_layers > 0 ? std::min(o.max_layers, fit) : fit;
  Measurement m;
  m.threads = omp_get_max_threads();
  const int T = static_cast<int>(o.tokens), B = o.batch;
  m.built = c;
  m.built.n_layer = layers;
  m.memory_budget = o.memory_budget;
  m.whole_model_bytes = measured_bytes(c, T, B, m.threads, o.dtype);
  if (fit < c.n_layer)
    m.note = fmt::format("measured with {} of {} layers: the whole model ({}) exceeds the {} budget", layers, c.n_layer,
                         format_bytes(static_cast<double>(m.whole_model_bytes)),
                         format_bytes(static_cast<double>(o.memory_budget)));
  else if (layers < c.n_layer)
    m.note =
        fmt::format("measured with {} of {} layers, the depth every variant measured with it fits", layers, c.n_layer);

  m.peak_rss_reset = reset_peak_rss();
  {
    Transformer<float> model(m.built, B, T);
    model.init_weights(o.seed);
    Rng rng(o.seed + 1);
    std::vector<int32_t> tokens;
    std::vector<float> images;
    if (c.is_image()) {
      images.resize(static_cast<size_t>(B) * c.image.pixels());
      for (float& x : images) x = static_cast<float>(rng.normal());
    } else {
      tokens.resize(static_cast<size_t>(B) * T);
      for (int32_t& t : tokens) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
    }
    m.forward_seconds = std::numeric_limits<double>::infinity();
    for (int r = 0; r < o.repeats; r++) {
      const auto start = std::chrono::steady_clock::now();
      if (c.is_image())
        model.forward_images(images.data(), nullptr, B);
      else
        model.forward(tokens.data(), nullptr, B, T);
      m.forward_seconds = std::min(m.forward_seconds, seconds_since(start));
    }
    m.arena_bytes = static_cast<int64_t>(model.arena_bytes());

    if (has_kv_cache(m.built)) {
      // Capacity T: the cache the theory counts. The timed forward already computed every layer's
      // K/V rows, so copying those of the first T − S tokens is the prefill (what Decoder::prefill
      // does, batched); S decode steps then fill the last positions with the sequences' own tokens.
      const ModelConfig& b = m.built;
      Decoder decoder(model, B, T, o.dtype);
      KvCache& cache = decoder.cache();
      m.kv_cache_bytes = cache.bytes();
      const int S = std::min(o.decode_steps, T - 1), prompt = T - S;
      for (int l = 0; l < b.n_layer; l++)
        for (int s = 0; s < B; s++)
          for (int t = 0; t < prompt; t++) {
            const float* row = model.layer_qkv(l) + (static_cast<int64_t>(s) * T + t) * b.attn_proj_dim();
            cache.write(l, s, t, row + b.k_offset(), b.v_is_k() ? nullptr : row + b.v_offset());
          }
      std::vector<int32_t> next(B);
      m.decode_seconds = std::numeric_limits<double>::infinity();
      for (int r = 0; r < o.repeats; r++) {  // each repeat rewinds to the prompt and decodes again
        for (int s = 0; s < B; s++) cache.set_length(s, prompt);
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < S; i++) {
          for (int s = 0; s < B; s++) next[s] = tokens[static_cast<size_t>(s) * T + prompt + i];
          decoder.step(next);
        }
        m.decode_seconds = std::min(m.decode_seconds, seconds_since(start));
      }
      m.decode_steps = S;
      for (int i = 0; i < S; i++)  // step i attends to prompt + i + 1 keys
        m.decode_flops += pass_cost(b, {.kind = PassKind::decode, .tokens = prompt + i + 1, .batch = B}).flops();
      if (S > 0) m.decode_tokens_per_second = static_cast<double>(B) * S / m.decode_seconds;
    }
    m.peak_rss_bytes = peak_rss_bytes();
  }
  m.arena_bytes_theory = model_arena_bytes(m.built, B, T, m.threads, sizeof(float));
  const PassShape fwd{.kind = PassKind::forward, .tokens = T, .batch = B};
  m.forward_flops = pass_cost(m.built, fwd).flops();
  PassShape dense = fwd;
  dense.dense_scores = true;
  m.forward_flops_dense = pass_cost(m.built, dense).flops();
  return m;
}

}  // namespace kvtie
