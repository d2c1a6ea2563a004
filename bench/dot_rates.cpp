// The arithmetic floor of the decode group kernels (MQA, GQA: several query heads per kv head).
// Each cached position costs every query head of its group a score and a value sum: 2·G·head_dim
// multiply-adds, whatever the cache's format. The kernels do them with one kind of dot-product
// instruction per format (kernels/decode_group.cpp):
//   fp32: FMAs, 16 multiply-adds each, for scores and value sums;
//   bf16: vdpbf16ps for the scores, 32 each but twice over (the query as hi + lo bf16, so that the
//         scores are as exact as float arithmetic), and FMAs for the value sums;
//   int8: vpdpwssd on int16 queries, codes and weights, 32 each, for both.
// This measures how many of each instruction one core retires per ns (12 independent chains, no
// memory operands), and from that the fastest the kernels could read a cache if they did nothing
// but those instructions on every thread: the ceiling their arithmetic puts on the cache's GB/s,
// beside the read bandwidth. Where the ceiling is below 70% of the read bandwidth, no kernel that
// keeps these instructions can reach #5's 70% of the memory roof on this machine.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <string>
#include <vector>

#include "kernels/simd.h"
#include "kvtie/error.h"
#include "kvtie/profile.h"
#include "roofs.h"

namespace {

using namespace kvtie;

#if defined(KVTIE_SIMD_AVX512_VNNI) && defined(KVTIE_SIMD_AVX512_BF16)
// 12 instructions on independent accumulators (zmm4 … zmm15) from zmm0 and zmm1.
#define KVTIE_TWELVE(op)                                                                                      \
  op " %%zmm0, %%zmm1, %%zmm4\n" op " %%zmm0, %%zmm1, %%zmm5\n" op " %%zmm0, %%zmm1, %%zmm6\n" op            \
     " %%zmm0, %%zmm1, %%zmm7\n" op " %%zmm0, %%zmm1, %%zmm8\n" op " %%zmm0, %%zmm1, %%zmm9\n" op             \
     " %%zmm0, %%zmm1, %%zmm10\n" op " %%zmm0, %%zmm1, %%zmm11\n" op " %%zmm0, %%zmm1, %%zmm12\n" op          \
     " %%zmm0, %%zmm1, %%zmm13\n" op " %%zmm0, %%zmm1, %%zmm14\n" op " %%zmm0, %%zmm1, %%zmm15\n"
#define KVTIE_ACCUMULATORS "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

// Instructions per ns on this core: the best of a few windows of 12·n of them.
template <class F>
double per_ns(F&& twelve_n, int64_t n) {
  asm volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n vpxord %%zmm1, %%zmm1, %%zmm1" ::: "xmm0", "xmm1");
  return 12.0 * static_cast<double>(n) / bench::best_seconds([&] { twelve_n(n); }, 0.2) * 1e-9;
}

struct Rates {
  double fma, dpwssd, dpbf16;  // instructions per ns, one core
};

Rates measure_rates() {
  constexpr int64_t n = 2'000'000;
  Rates r{};
  r.fma = per_ns([](int64_t k) { while (k--) asm volatile(KVTIE_TWELVE("vfmadd231ps") ::: KVTIE_ACCUMULATORS); }, n);
  r.dpwssd = per_ns([](int64_t k) { while (k--) asm volatile(KVTIE_TWELVE("vpdpwssd") ::: KVTIE_ACCUMULATORS); }, n);
  r.dpbf16 = per_ns([](int64_t k) { while (k--) asm volatile(KVTIE_TWELVE("vdpbf16ps") ::: KVTIE_ACCUMULATORS); }, n);
  return r;
}

// The ns of one core's dot-product instructions per cached position of one kv head (group heads of
// head_dim), as the group kernels issue them.
double floor_ns(KvDType t, int group, int hd, const Rates& r) {
  const double mads = 2.0 * group * hd;  // half scores, half value sums
  switch (t) {
    case KvDType::fp32: return mads / 16 / r.fma;
    case KvDType::bf16: return 2 * (mads / 2) / 32 / r.dpbf16 + (mads / 2) / 16 / r.fma;
    case KvDType::int8: return mads / 32 / r.dpwssd;
    default: fail("dot_rates: no floor for {} rows", kv_dtype_name(t));
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The decode group kernels' arithmetic floor: dot-product instruction rates and the cache GB/s they allow"};
  int heads = 8, kv_heads = 1, head_dim = 64;
  std::vector<std::string> dtypes{"fp32", "bf16", "int8"};
  bool json = false;
  app.add_option("--heads", heads, "Query heads")->capture_default_str();
  app.add_option("--kv-heads", kv_heads, "KV heads (fewer than --heads: GQA/MQA)")->capture_default_str();
  app.add_option("--head-dim", head_dim, "Head size")->capture_default_str();
  app.add_option("--dtype", dtypes, "Cache dtypes: fp32, bf16, int8")->capture_default_str();
  app.add_flag("--json", json, "One JSON object per line");
  CLI11_PARSE(app, argc, argv);
  try {
    if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0 || head_dim < 1)
      fail("dot_rates: --heads {} must be a positive multiple of --kv-heads {}, --head-dim positive", heads, kv_heads);
#if defined(KVTIE_SIMD_AVX512_VNNI) && defined(KVTIE_SIMD_AVX512_BF16)
    const int group = heads / kv_heads, threads = omp_get_max_threads();
    const Rates r = measure_rates();
    const double bw = bench::read_bandwidth_gbs();
    if (json)
      fmt::print("{}\n", nlohmann::json{{"fma_per_ns", r.fma}, {"dpwssd_per_ns", r.dpwssd},
                                        {"dpbf16_per_ns", r.dpbf16}, {"threads", threads}, {"read_gbs", bw}}
                             .dump());
    else
      fmt::print("dot-product instructions per ns, one core: vfmadd231ps {:.2f}, vpdpwssd {:.2f}, vdpbf16ps {:.2f} "
                 "(zmm); {} threads; read bandwidth {:.1f} GB/s\ngroup {} (× {} kv heads), head_dim {}\n\n"
                 "{:<6} {:>5} {:>10} {:>13} {:>14} {:>8}\n",
                 r.fma, r.dpwssd, r.dpbf16, threads, bw, group, kv_heads, head_dim, "share", "dtype", "floor ns",
                 "bytes/pos", "ceiling GB/s", "of read");
    for (const bool shared : {false, true})
      for (const auto& name : dtypes) {
        const KvDType t = parse_kv_dtype(name, "--dtype");
        const double ns = floor_ns(t, group, head_dim, r);
        const double bytes = static_cast<double>(kv_vector_bytes(head_dim, t)) * (shared ? 1 : 2);
        const double ceiling = threads * bytes / ns;  // bytes per ns = GB/s
        const std::string label = shared ? "K=V" : "K, V";
        if (json)
          fmt::print("{}\n", nlohmann::json{{"share", label}, {"dtype", name}, {"group", group},
                                            {"floor_ns_per_pos", ns}, {"bytes_per_pos", bytes},
                                            {"ceiling_gbs", ceiling}, {"of_read", ceiling / bw}}
                                 .dump());
        else
          fmt::print("{:<6} {:>5} {:>10.2f} {:>13.0f} {:>14.1f} {:>7.0f}%\n", label, name, ns, bytes, ceiling,
                     100 * ceiling / bw);
      }
#else
    fail("dot_rates: this build has no AVX-512 VNNI and BF16 decode path, whose instructions it measures");
#endif
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
