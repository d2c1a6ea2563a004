// The decode attention kernel alone, and what bounds it. For each share (QKV: a K and a V row per
// cached position; Q-K=V: one row for both) × cache dtype, on one layer of 8 kv heads:
//   - `L3`: the kernel's time per cached position on a cache that fits in L3 — its arithmetic;
//   - `read`: a plain sum of the same rows, split into the same work items — the memory alone;
//   - `mem`: the kernel on a cache far larger than L3 — arithmetic and memory together.
// A kernel that overlapped its arithmetic with the memory would take max(L3, read) from memory;
// one that does not, L3 + read. `overlap` places `mem` between the two (100%: fully overlapped,
// 0%: serialised). Beside them the machine's read bandwidth (the probe of bench/decode).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "infer/kv_cache.h"
#include "kernels/decode_attention.h"
#include "kernels/prefetch.h"
#include "kvtie/config.h"
#include "kvtie/error.h"
#include "kvtie/profile.h"
#include "fill_cache.h"
#include "roofs.h"

namespace {

using namespace kvtie;

KvCache filled_cache(const ModelConfig& c, int batch, int length, KvDType dtype) {
  KvCache cache(c, batch, length, dtype);
  bench::fill_cache(cache, c, length);
  return cache;
}

// Best seconds of one decode_attention call over all sequences.
double kernel_seconds(const KvCache& cache, const ModelConfig& c, int batch, int length) {
  std::vector<float> q(static_cast<size_t>(batch) * c.q_dim()), out(q.size());
  Rng rng(2);
  for (auto& x : q) x = static_cast<float>(rng.normal());
  const std::vector<int> lengths(batch, length);
  const DecodeShape shape{c.n_head, c.n_kv_head, c.head_dim};
  return bench::best_seconds(
      [&] { decode_attention(out.data(), q.data(), c.q_dim(), cache, 0, lengths.data(), batch, shape); });
}

// Best seconds of summing every cached row, split and read as the kernel reads them: (sequence,
// kv head, kDecodeChunk positions) items in runs of consecutive items per thread, the K and V rows
// of an item side by side, each stream prefetched kCacheAhead ahead. (Read one item at a time
// without the prefetch, the sum reached 10–20 GB/s, a third of the machine's rate: no reference.)
double read_seconds(const KvCache& cache, const ModelConfig& c, int batch, int length) {
  struct Item {
    const uint8_t *k, *v;
    int64_t bytes;
  };
  const int64_t vb = cache.vector_bytes();
  std::vector<Item> items;
  for (int b = 0; b < batch; b++)
    for (int g = 0; g < c.n_kv_head; g++)
      for (int first = 0; first < length; first += kDecodeChunk) {
        const uint8_t* k = cache.keys(0, b, g) + first * vb;
        const uint8_t* v = cache.v_is_k() ? nullptr : cache.values(0, b, g) + first * vb;
        items.push_back({k, v, std::min(kDecodeChunk, length - first) * vb});
      }
  const int64_t n = static_cast<int64_t>(items.size());
  constexpr int kLanes = 16;
  float total = 0;
  // 64 bytes of each stream at a time, as 16 floats (the bits' sum, only to keep the reads).
  auto add64 = [](float* acc, const uint8_t* p) {
    float x[kLanes];
    std::memcpy(x, p, sizeof(x));
#pragma omp simd
    for (int l = 0; l < kLanes; l++) acc[l] += x[l];
  };
  const double best = bench::best_seconds([&] {
#pragma omp parallel reduction(+ : total)
    {
      float acc[kLanes] = {};
      const int64_t run_length = decode_run_length(n, omp_get_num_threads());
#pragma omp for schedule(dynamic, run_length)
      for (int64_t i = 0; i < n; i++) {
        const Item& it = items[i];
        const int64_t whole = it.bytes / 64 * 64;
        for (int64_t at = 0; at < whole; at += 64) {
          prefetch_ahead<kCacheAhead>(it.k + at, 64);
          add64(acc, it.k + at);
          if (it.v) {
            prefetch_ahead<kCacheAhead>(it.v + at, 64);
            add64(acc, it.v + at);
          }
        }
      }
      for (float x : acc) total += x;
    }
  });
  if (total == 1) fmt::print("");  // keep the sums alive
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The decode attention kernel from L3 and from memory, against a plain read of the same rows"};
  int l3_context = 1024, mem_context = 16384, mem_batch = 8, heads = 8, kv_heads = 8, head_dim = 64, rounds = 3;
  std::vector<std::string> dtypes{"fp32", "bf16", "int8"};
  bool json = false;
  app.add_option("--l3-context", l3_context, "Positions of the L3-resident cache (batch 1)")->capture_default_str();
  app.add_option("--mem-context", mem_context, "Positions per sequence of the cache far larger than L3")->capture_default_str();
  app.add_option("--mem-batch", mem_batch, "Sequences of the cache far larger than L3")->capture_default_str();
  app.add_option("--heads", heads, "Query heads")->capture_default_str();
  app.add_option("--kv-heads", kv_heads, "KV heads (fewer than --heads: GQA/MQA)")->capture_default_str();
  app.add_option("--head-dim", head_dim, "Head size")->capture_default_str();
  app.add_option("--dtype", dtypes, "Cache dtypes: fp32, bf16, fp16, int8, int4")->capture_default_str();
  app.add_option("--rounds", rounds, "Alternated measurements; each column keeps its best")->capture_default_str();
  app.add_flag("--json", json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);
  try {
    if (l3_context < 1 || mem_context < 1 || mem_batch < 1 || rounds < 1)
      fail("decode_kernel: the contexts, --mem-batch and --rounds must be positive");
    if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0)
      fail("decode_kernel: --heads {} must be a positive multiple of --kv-heads {}", heads, kv_heads);
    const double bw = bench::read_bandwidth_gbs();
    if (!json)
      fmt::print("decode kernel: {} heads, {} kv heads, head_dim {}, {} threads, {} path; L3 cache: 1 × {} positions, "
                 "memory: {} × {} positions; read bandwidth {:.1f} GB/s\n\n"
                 "{:<6} {:>5} {:>10} {:>11} {:>10} {:>8} {:>8} {:>9} {:>6}\n",
                 heads, kv_heads, head_dim, omp_get_max_threads(), decode_isa_name(decode_isa_resolve(DecodeIsa::best)),
                 l3_context, mem_batch, mem_context, bw, "share", "dtype", "L3 ns/pos", "read ns/pos", "mem ns/pos",
                 "overlap", "mem GB/s", "read GB/s", "probe");
    for (const Share share : {Share::none, Share::kv})
      for (const auto& name : dtypes) {
        const KvDType dtype = parse_kv_dtype(name, "--dtype");
        ModelConfig c;
        c.n_layer = 1, c.n_head = heads, c.n_kv_head = kv_heads, c.head_dim = head_dim, c.d_model = heads * head_dim;
        c.share = share, c.max_seq_len = std::max(l3_context, mem_context);
        // Per thread and per cached position of one kv head, so that the columns compare per core.
        const double threads = omp_get_max_threads();
        const KvCache small = filled_cache(c, 1, l3_context, dtype);
        const KvCache big = filled_cache(c, mem_batch, mem_context, dtype);
        // Alternated, each keeping its best: the machine's bandwidth drifts by tens of percent.
        double l3_s = 1e30, read_s = 1e30, mem_s = 1e30, probe = 0;
        for (int r = 0; r < rounds; r++) {
          l3_s = std::min(l3_s, kernel_seconds(small, c, 1, l3_context));
          probe = std::max(probe, bench::read_bandwidth_gbs());
          read_s = std::min(read_s, read_seconds(big, c, mem_batch, mem_context));
          mem_s = std::min(mem_s, kernel_seconds(big, c, mem_batch, mem_context));
        }
        const double positions = double(mem_batch) * mem_context * kv_heads;
        const double l3 = l3_s * threads / (double(l3_context) * kv_heads);
        const double read = read_s * threads / positions, mem = mem_s * threads / positions;
        const double overlapped = std::max(l3, read), serial = l3 + read;
        const double overlap = std::clamp((serial - mem) / (serial - overlapped), 0.0, 1.0);
        const double bytes = static_cast<double>(big.bytes());
        const std::string label = share == Share::none ? "QKV" : "Q-K=V";
        if (json)
          fmt::print("{}\n", nlohmann::json{{"share", label}, {"dtype", name}, {"l3_ns_per_pos", l3 * 1e9},
                                           {"read_ns_per_pos", read * 1e9}, {"mem_ns_per_pos", mem * 1e9},
                                           {"overlap", overlap}, {"mem_gbs", bytes / mem_s / 1e9},
                                           {"read_gbs", bytes / read_s / 1e9}, {"probe_gbs", probe}}
                                 .dump());
        else
          fmt::print("{:<6} {:>5} {:>10.1f} {:>11.1f} {:>10.1f} {:>7.0f}% {:>8.1f} {:>9.1f} {:>6.1f}\n", label, name,
                     l3 * 1e9, read * 1e9, mem * 1e9, 100 * overlap, bytes / mem_s / 1e9, bytes / read_s / 1e9, probe);
      }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
