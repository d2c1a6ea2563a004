// Cached decoding against the full forward: every share × (MHA, GQA, MQA), fp32 within 1e-5,
// quantised caches within stated tolerances, exact cache sizes, and clear errors at the limits.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "core/aligned_block.h"
#include "infer/decoder.h"
#include "kernels/decode_attention.h"
#include "kernels/decode_linear.h"
#include "kernels/kv_codec.h"
#include "kernels/parallel.h"
#include "kernels/tile_order.h"
#include "kvtie/error.h"
#include "kvtie/profile.h"
#include "test_helpers.h"

namespace kvtie {
namespace {

ModelConfig small(Share share, int n_kv_head) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 4, c.n_kv_head = n_kv_head, c.head_dim = 8, c.d_ff = 64;
  c.vocab_size = 50, c.max_seq_len = 40, c.share = share;
  return c;
}

struct Variant {
  Share share;
  int kv;
};
std::vector<Variant> variants() {
  return {{Share::none, 4}, {Share::none, 2}, {Share::none, 1}, {Share::kv, 4},
          {Share::kv, 2},   {Share::kv, 1},   {Share::qk, 4},   {Share::qkv, 4}};
}

// Max |cached − full| / max |full| over the logits of every decoded position, for 3 sequences of
// different prompt lengths decoded together. The full forward runs in double on the same (float)
// weights. An fp32 full forward rounds too, about as much as the cached decode at head_dim 64
// with these weights, and by how much depends on how its BLAS splits products by threads: against
// it, Q-K=V with 4 kv heads read 8.9e-6 with 1 thread and 1.04e-5 with 2; against double, 3–4e-6.
double cached_vs_full_error(const ModelConfig& c, KvDType dtype, int steps) {
  Transformer<float> model(c, 1, c.max_seq_len);
  test::randomize_params(model, 11);
  Transformer<double> exact(c, 1, c.max_seq_len);
  std::copy(model.params(), model.params() + model.num_params(), exact.params());
  // Keep logits moderate so that a relative error means something.
  Rng rng(5);
  const std::vector<int> prompt_len = {5, 1, 9};
  std::vector<std::vector<int32_t>> seqs(3);
  for (int b = 0; b < 3; b++)
    for (int t = 0; t < prompt_len[b] + steps; t++) seqs[b].push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  Decoder dec(model, 3, 32, dtype);
  double worst = 0;
  std::vector<std::vector<float>> cached(3);
  for (int b = 0; b < 3; b++) {
    const float* l = dec.prefill(b, std::span(seqs[b]).first(prompt_len[b]));
    cached[b].assign(l, l + c.vocab_size);
  }
  for (int s = 0; s <= steps; s++) {
    for (int b = 0; b < 3; b++) {
      const int T = prompt_len[b] + s;  // the logits in cached[b] predict token T
      exact.forward(seqs[b].data(), nullptr, 1, T);
      const double* full = exact.logits() + static_cast<int64_t>(T - 1) * c.vocab_size;
      worst = std::max(worst, test::scaled_error(cached[b].data(), full, c.vocab_size));
    }
    if (s == steps) break;
    std::vector<int32_t> next(3);
    for (int b = 0; b < 3; b++) next[b] = seqs[b][prompt_len[b] + s];
    const float* logits = dec.step(next);
    for (int b = 0; b < 3; b++) cached[b].assign(logits + b * c.vocab_size, logits + (b + 1) * c.vocab_size);
  }
  return worst;
}

class Decode : public testing::TestWithParam<Variant> {};

TEST_P(Decode, Fp32CacheMatchesTheFullForward) {
  EXPECT_LT(cached_vs_full_error(small(GetParam().share, GetParam().kv), KvDType::fp32, 8), 1e-5);
}

TEST_P(Decode, QuantisedCachesStayWithinTolerance) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  const double bf16 = cached_vs_full_error(c, KvDType::bf16, 6), fp16 = cached_vs_full_error(c, KvDType::fp16, 6);
  const double int8 = cached_vs_full_error(c, KvDType::int8, 6), int4 = cached_vs_full_error(c, KvDType::int4, 6);
  fmt::print("logit error vs full forward: bf16 {:.2e}  fp16 {:.2e}  int8 {:.2e}  int4 {:.2e}\n", bf16, fp16, int8, int4);
  EXPECT_LT(bf16, 2e-2);
  EXPECT_LT(fp16, 5e-3);
  EXPECT_LT(int8, 3e-2);
  EXPECT_LT(int4, 0.5);
}

// At head_dim 32 int8 takes the integer path. Against the same decoder widening the codes
// to float, its logits differ by a fraction of what the format itself costs (the int16 rounding of
// q and of the value weights; these large random weights amplify it), and its error against the
// full forward is no larger.
TEST_P(Decode, IntegerPathMatchesWideningToFloat) {
  ModelConfig c = small(GetParam().share, GetParam().kv);
  c.d_model = 64, c.n_head = 2, c.head_dim = 32;
  c.n_kv_head = std::min(c.n_kv_head, 2);
  if (c.q_is_k()) c.n_kv_head = 2;
  const KvDType t = KvDType::int8;
  Transformer<float> model(c, 1, c.max_seq_len);
  test::randomize_params(model, 13);
  std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  std::vector<std::vector<float>> logits(2);
  for (int path = 0; path < 2; path++) {
    set_decode_int_path(path == 0);
    Decoder dec(model, 1, 32, t);
    const float* l = dec.prefill(0, prompt);
    for (int s = 0; s < 12; s++) {
      const int32_t next[1] = {static_cast<int32_t>((s * 7 + 3) % c.vocab_size)};
      l = dec.step(next);
      logits[path].insert(logits[path].end(), l, l + c.vocab_size);
    }
  }
  set_decode_int_path(true);
  const double e = test::scaled_error(logits[0].data(), logits[1].data(), static_cast<int64_t>(logits[0].size()));
  set_decode_int_path(false);
  const double ef = cached_vs_full_error(c, t, 6);
  set_decode_int_path(true);
  const double ei = cached_vs_full_error(c, t, 6);
  fmt::print("{}: integer vs float path {:.2e}; against the full forward: float path {:.2e}, integer path {:.2e}\n",
             kv_dtype_name(t), e, ef, ei);
  EXPECT_LT(e, 0.15 * ef) << kv_dtype_name(t);
  EXPECT_LE(ei, 1.02 * ef) << kv_dtype_name(t);
}

// The bytes the allocator was asked for (AlignedBlock's count, not the cache's own word) equal the
// profiler's figure, at every dtype, and for a cache large enough to take 2 MiB-aligned huge pages.
TEST_P(Decode, CacheAllocatesExactlyTheProfilersFigure) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  for (KvDType t : kAllKvDTypes) {
    const int large = static_cast<int>((int64_t{8} << 20) / (3 * kv_cache_bytes_per_token(c, t))) + 7;
    for (int capacity : {17, large}) {
      const int64_t before = AlignedBlock::live_bytes();
      KvCache cache(c, 3, capacity, t);
      const int64_t allocated = AlignedBlock::live_bytes() - before;
      EXPECT_EQ(allocated, kv_cache_bytes(c, capacity, 3, t)) << kv_dtype_name(t) << " × " << capacity;
      EXPECT_EQ(cache.bytes(), allocated);
      EXPECT_EQ(cache.figures(c).bytes, allocated);
      // One tensor when V is K: half of what separate K and V need at the same kv heads.
      ModelConfig separate = c;
      separate.share = Share::none;
      if (c.v_is_k()) {
        EXPECT_EQ(2 * cache.bytes(), KvCache(separate, 3, capacity, t).bytes());
      }
    }
    EXPECT_GT(kv_cache_bytes(c, large, 3, t), 8 << 20);  // the huge-page case is covered
  }
}

// The start line's figures: what QKV would need is the same cache with K and V apart at every head.
TEST_P(Decode, FiguresStateWhatQkvWouldNeed) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  const KvCacheFigures f = KvCache(c, 2, 9, KvDType::bf16).figures(c);
  EXPECT_EQ(f.qkv_bytes, int64_t{2} * c.n_layer * 2 * c.n_head * 9 * c.head_dim * 2);  // K and V, bf16
  EXPECT_EQ(f.qkv_bytes / f.bytes, (c.v_is_k() ? 2 : 1) * c.n_head / c.n_kv_head);
  EXPECT_EQ(f.v_is_k, c.v_is_k());
  EXPECT_CONTAINS(f.line(), fmt::format("kv cache: 2 layers × {} kv head", c.n_kv_head));
  EXPECT_CONTAINS(f.line(), "× 9 pos × 8 × bf16");
  EXPECT_CONTAINS(f.line(), c.v_is_k() ? "K=V shared" : "K and V");
}

// Greedy decoding through the cache picks the same tokens as the full forward over the prefix.
TEST_P(Decode, GreedyTokensAreTheSameWithAndWithoutTheCache) {
  const ModelConfig c = small(GetParam().share, GetParam().kv);
  Transformer<float> model(c, 1, c.max_seq_len);
  test::randomize_params(model, 3);
  std::vector<int32_t> seq = {4, 8, 15, 16};
  Decoder dec(model, 1, 32, KvDType::fp32);
  const float* l = dec.prefill(0, seq);
  std::vector<int32_t> cached_tokens, full_tokens;
  std::vector<int32_t> full = seq;
  for (int s = 0; s < 20; s++) {
    const int32_t a = static_cast<int32_t>(std::max_element(l, l + c.vocab_size) - l);
    cached_tokens.push_back(a);
    model.forward(full.data(), nullptr, 1, static_cast<int>(full.size()));
    const float* f = model.logits() + (full.size() - 1) * c.vocab_size;
    full_tokens.push_back(static_cast<int32_t>(std::max_element(f, f + c.vocab_size) - f));
    full.push_back(full_tokens.back());
    const int32_t next[1] = {a};
    l = dec.step(next);
  }
  EXPECT_EQ(cached_tokens, full_tokens);
}

// At head_dim 64 and 8 query heads the decoder takes the paths the benchmarks time: fp32 rows read
// in place, groups of 2 and 8 heads (MQA) through decode_group, int8 through the integer path.
// int8's bound is wider than at head_dim 8: these large random weights amplify the format's own
// rounding (one scale per 64 elements) more; what it costs a trained model is eval's to say
// (docs/inference.md).
TEST_P(Decode, BenchmarkedHeadSizeMatchesTheFullForward) {
  ModelConfig c = small(GetParam().share, GetParam().kv == 1 ? 1 : 2 * GetParam().kv);
  c.d_model = 128, c.n_head = 8, c.head_dim = 64, c.d_ff = 256;
  const double fp32 = cached_vs_full_error(c, KvDType::fp32, 6);
  const double bf16 = cached_vs_full_error(c, KvDType::bf16, 4), int8 = cached_vs_full_error(c, KvDType::int8, 4);
  fmt::print("head_dim 64, group {}: fp32 {:.2e}  bf16 {:.2e}  int8 {:.2e}\n", c.n_head / c.n_kv_head, fp32, bf16, int8);
  EXPECT_LT(fp32, 1e-5);
  EXPECT_LT(bf16, 2e-2);
  EXPECT_LT(int8, 8e-2);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, Decode, testing::ValuesIn(variants()), [](const auto& p) {
  return fmt::format("{}_kv{}", share_name(p.param.share), p.param.kv);
});

TEST(Decode, LimitsAreClearErrors) {
  const ModelConfig c = small(Share::none, 4);
  Transformer<float> model(c, 1, c.max_seq_len);
  Decoder dec(model, 1, 4, KvDType::int8);
  EXPECT_THROW(dec.prefill(0, std::vector<int32_t>{}), Error);
  EXPECT_THROW(dec.prefill(0, std::vector<int32_t>{1, 2, 3, 4, 5}), Error);
  dec.prefill(0, std::vector<int32_t>{1, 2, 3});
  const int32_t t[1] = {7};
  dec.step(t);  // position 3: the last one
  try {
    dec.step(t);
    FAIL() << "no error past the capacity";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dec.cache().length(0), 4);  // nothing was overwritten
}

// A step runs as one team of omp_get_max_threads() threads: 1, 2 or 3 of them give the same
// logits, bit for bit, for every variant and cache format, with an inactive sequence in the batch
// (the linear layers compute each output whole on one thread; the attention merges fixed chunks).
TEST(Decode, StepIsTheSameForAnyThreadCount) {
  const int saved = omp_get_max_threads();
  for (const Variant& v : variants())
    for (KvDType t : {KvDType::fp32, KvDType::int8}) {
      const ModelConfig c = small(v.share, v.kv);
      Transformer<float> model(c, 1, c.max_seq_len);
      test::randomize_params(model, 13);
      std::vector<std::vector<float>> logits;
      for (int threads : {1, 2, 3}) {
        // The prompts on one thread: the full forward's BLAS splits its rows by the team's size.
        omp_set_num_threads(1);
        Decoder dec(model, 3, 24, t);
        for (int b = 0; b < 3; b++) dec.prefill(b, std::vector<int32_t>(static_cast<size_t>(2 + 3 * b), 4 + b));
        omp_set_num_threads(threads);
        std::vector<float> all;
        for (int s = 0; s < 6; s++) {
          const std::vector<int32_t> next = {7 + s, s % 2 ? -1 : 11, 3};
          const float* l = dec.step(next);
          all.insert(all.end(), l, l + 3 * c.vocab_size);
        }
        logits.push_back(all);
      }
      const std::string what = fmt::format("{} {}", variant_label(c), kv_dtype_name(t));
      EXPECT_EQ(logits[1], logits[0]) << what << ", 2 threads";
      EXPECT_EQ(logits[2], logits[0]) << what << ", 3 threads";
    }
  omp_set_num_threads(saved);
}

// The sliding window: two sequences decoded well past the cache's 12 positions and the model's
// max_seq_len of 40 keep their last 5 tokens whenever they fill the cache. At every step each
// sequence's window is the tail of everything it was given, never longer than the cache, and its
// logits equal a full forward over exactly the window's tokens (positions 0 … |window| − 1).
TEST(Decode, SlidingWindowEqualsAFullForwardOverTheWindow) {
  for (Share share : {Share::none, Share::kv}) {
    const ModelConfig c = small(share, 2);
    Transformer<float> model(c, 1, c.max_seq_len);
    test::randomize_params(model, 7);
    const int capacity = 12, keep = 5;
    Decoder dec(model, 2, capacity, KvDType::fp32, keep);
    Rng rng(9);
    std::vector<std::vector<int32_t>> seen(2);
    for (int t = 0; t < 3; t++) seen[0].push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
    for (int t = 0; t < capacity; t++) seen[1].push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
    dec.prefill(0, seen[0]);
    dec.prefill(1, seen[1]);  // full: its first step slides
    double worst = 0;
    const int steps = 2 * c.max_seq_len;
    for (int s = 0; s < steps; s++) {
      std::vector<int32_t> next(2);
      for (int b = 0; b < 2; b++) seen[b].push_back(next[b] = static_cast<int32_t>(rng.below(c.vocab_size)));
      const float* logits = dec.step(next);
      for (int b = 0; b < 2; b++) {
        const std::span<const int32_t> w = dec.window(b);
        ASSERT_LE(static_cast<int>(w.size()), capacity);
        ASSERT_EQ(dec.cache().length(b), static_cast<int>(w.size()));
        ASSERT_TRUE(std::equal(w.begin(), w.end(), seen[b].end() - static_cast<int64_t>(w.size())))
            << "the window is not the tail of the sequence at step " << s;
        model.forward(w.data(), nullptr, 1, static_cast<int>(w.size()));
        const float* full = model.logits() + static_cast<int64_t>(w.size() - 1) * c.vocab_size;
        worst = std::max(worst, test::scaled_error(logits + b * c.vocab_size, full, c.vocab_size));
      }
    }
    EXPECT_LT(worst, 1e-5) << share_name(share);
    // A slide happens only when the cache is full: sequence 0 at its 10th step and then every
    // 12 − 5 = 7 steps (11 times in 80 steps), sequence 1 at its first step and every 7 (12 times).
    EXPECT_EQ(dec.slides(), 11 + 12);
  }
}

TEST(Decode, SlidingWindowKeepMustLeaveRoom) {
  const ModelConfig c = small(Share::kv, 2);
  Transformer<float> model(c, 1, c.max_seq_len);
  EXPECT_THROW(Decoder(model, 1, 12, KvDType::fp32, 12), Error);
  EXPECT_THROW(Decoder(model, 1, 12, KvDType::fp32, -1), Error);
  EXPECT_THROW(Decoder(model, 1, 100, KvDType::fp32, 40), Error);  // the limit is max_seq_len 40
  EXPECT_NO_THROW(Decoder(model, 1, 12, KvDType::fp32, 11));
}

// ---------------------------------------------------------------------------------------------
// The decode kernel on its own: every instruction-set path against a naive double-precision
// attention over the dequantised rows, and the vector paths against the scalar fallback.

std::vector<DecodeIsa> compiled_isas() {
  std::vector<DecodeIsa> isas;
  for (DecodeIsa i : {DecodeIsa::scalar, DecodeIsa::avx2, DecodeIsa::avx512})
    if (decode_isa_compiled(i)) isas.push_back(i);
  return isas;
}

// int4 keeps one fp16 scale per group of 32: an outlier costs precision in its own group only,
// and every element is within half a step (its group's max |x| / 14) of its value.
TEST(KvCodec, Int4GroupsConfineAnOutlier) {
  const int hd = 80;  // groups of 32, 32 and 16
  std::vector<float> x(hd), back(hd);
  Rng rng(31);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  x[3] = 40.0f;  // the outlier, in group 0
  std::vector<uint8_t> stored(kv_vector_bytes(hd, KvDType::int4));
  ASSERT_EQ(stored.size(), 40u + 3 * 2);
  kv_encode(stored.data(), x.data(), hd, KvDType::int4);
  kv_decode(back.data(), stored.data(), hd, KvDType::int4);
  for (int g = 0; g < 3; g++) {
    float amax = 0, worst = 0;
    for (int i = 32 * g; i < std::min(hd, 32 * g + 32); i++) amax = std::max(amax, std::abs(x[i]));
    for (int i = 32 * g; i < std::min(hd, 32 * g + 32); i++) worst = std::max(worst, std::abs(back[i] - x[i]));
    EXPECT_LE(worst, amax / 14 * 1.002f) << "group " << g;  // fp16 rounding of the scale
    if (g > 0) {
      EXPECT_LT(worst, 40.0f / 14 / 4) << "group " << g << " paid for group 0's outlier";
    }
  }
  EXPECT_NEAR(back[3], 40.0f, 1e-2);  // the largest of a group is exact up to the fp16 scale
  const std::vector<float> zero(hd, 0.0f);  // a zero group decodes to zero (no 0 · inf)
  kv_encode(stored.data(), zero.data(), hd, KvDType::int4);
  kv_decode(back.data(), stored.data(), hd, KvDType::int4);
  EXPECT_EQ(back, zero);
}

// Dequantisation is exact: each vector path's float rows times their scale are kv_decode()'s
// values bit for bit, for head sizes with every kind of tail, and the row padding is zero.
TEST(DecodeKernel, VectorDequantisationIsExact) {
  Rng rng(17);
  for (int hd : {1, 5, 8, 13, 16, 24, 31, 32, 33, 47, 64, 72}) {
    for (KvDType t : kAllKvDTypes) {
      const int rows = 7;
      const int64_t vb = kv_vector_bytes(hd, t), stride = (hd + 15) / 16 * 16 + 16;
      std::vector<uint8_t> stored(static_cast<size_t>(rows) * vb);
      std::vector<float> x(hd), expect(static_cast<size_t>(rows) * hd);
      for (int j = 0; j < rows; j++) {
        for (auto& v : x) v = static_cast<float>(3 * rng.normal());
        kv_encode(stored.data() + j * vb, x.data(), hd, t);
        kv_decode(expect.data() + static_cast<int64_t>(j) * hd, stored.data() + j * vb, hd, t);
      }
      for (DecodeIsa isa : compiled_isas()) {
        std::vector<float> got(static_cast<size_t>(rows) * stride, std::nanf("")), scales(rows, std::nanf(""));
        kv_rows_to_float(isa, got.data(), stride, scales.data(), stored.data(), vb, rows, hd, t);
        int bad = 0;
        for (int j = 0; j < rows; j++) {
          for (int i = 0; i < hd; i++)
            bad += got[j * stride + i] * scales[j] != expect[static_cast<int64_t>(j) * hd + i];
          for (int64_t i = hd; i < stride; i++) bad += got[j * stride + i] != 0.0f;
        }
        EXPECT_EQ(bad, 0) << decode_isa_name(isa) << " " << kv_dtype_name(t) << " hd " << hd;
      }
    }
  }
}

// out[b, head] = Σ_t softmax_t(q·k_t / √hd) v_t in double, over kv_decode()'s rows.
std::vector<double> naive_attention(const std::vector<float>& q, const KvCache& cache, const std::vector<int>& lengths,
                                    const DecodeShape& s) {
  const int hd = s.head_dim, G = s.n_head / s.n_kv_head, B = static_cast<int>(lengths.size());
  std::vector<double> out(static_cast<size_t>(B) * s.n_head * hd, 0.0);
  std::vector<float> k(hd), v(hd);
  for (int b = 0; b < B; b++)
    for (int head = 0; head < s.n_head; head++) {
      const int g = head / G;
      const float* qh = q.data() + (static_cast<int64_t>(b) * s.n_head + head) * hd;
      std::vector<double> score(lengths[b]);
      double m = -1e300, l = 0;
      for (int t = 0; t < lengths[b]; t++) {
        kv_decode(k.data(), cache.keys(0, b, g) + t * cache.vector_bytes(), hd, cache.dtype());
        double dot = 0;
        for (int i = 0; i < hd; i++) dot += static_cast<double>(qh[i]) * k[i];
        score[t] = dot / std::sqrt(static_cast<double>(hd));
        m = std::max(m, score[t]);
      }
      double* o = out.data() + (static_cast<int64_t>(b) * s.n_head + head) * hd;
      for (int t = 0; t < lengths[b]; t++) {
        const double p = std::exp(score[t] - m);
        l += p;
        kv_decode(v.data(), cache.values(0, b, g) + t * cache.vector_bytes(), hd, cache.dtype());
        for (int i = 0; i < hd; i++) o[i] += p * v[i];
      }
      for (int i = 0; i < hd; i++) o[i] /= l;
    }
  return out;
}

// Layer 0 of sequence b holds lengths[b] random rows: keys ~ N(0, 1.5²), values ~ N(0, 1).
void fill_random(KvCache& cache, const ModelConfig& c, const std::vector<int>& lengths, Rng& rng) {
  std::vector<float> k(static_cast<size_t>(c.n_kv_head) * c.head_dim), v(k.size());
  for (int b = 0; b < static_cast<int>(lengths.size()); b++) {
    for (int pos = 0; pos < lengths[b]; pos++) {
      for (auto& x : k) x = static_cast<float>(1.5 * rng.normal());
      for (auto& x : v) x = static_cast<float>(rng.normal());
      cache.write(0, b, pos, k.data(), c.v_is_k() ? nullptr : v.data());
    }
    cache.set_length(b, lengths[b]);
  }
}

// Random caches of every format; head sizes that leave tails (not a multiple of 8 or 16); K=V and
// separate V; MHA, GQA and MQA groups (decode_group.h's path serves groups in blocks of 8 heads,
// 2, 4 or 8 heads per pass: groups of 2, 3, 5, 8 and 16); lengths of 1, one that ends mid-tile and one that crosses the
// kDecodeChunk boundary into a second work item.
TEST(DecodeKernel, VectorPathsEqualTheScalarFallback) {
  const std::vector<int> lengths = {1, 45, kDecodeChunk + 77};
  const int B = static_cast<int>(lengths.size()), capacity = kDecodeChunk + 77;
  Rng rng(23);
  double worst_naive = 0, worst_scalar = 0, worst_int8 = 0;
  for (int hd : {5, 8, 13, 16, 24, 32, 37, 64, 72, 96, 128}) {
    for (Share share : {Share::none, Share::kv}) {
      for (auto [n_head, n_kv] : {std::pair{2, 2}, std::pair{4, 2}, std::pair{6, 2}, std::pair{10, 2}, std::pair{3, 1},
                                  std::pair{8, 1}, std::pair{16, 1}}) {
        ModelConfig c;
        c.n_layer = 1, c.n_head = n_head, c.n_kv_head = n_kv, c.head_dim = hd, c.share = share;
        const DecodeShape shape{n_head, n_kv, hd};
        std::vector<float> q(static_cast<size_t>(B) * n_head * hd);
        for (auto& x : q) x = static_cast<float>(rng.normal());
        for (KvDType t : kAllKvDTypes) {
          KvCache cache(c, B, capacity, t);
          fill_random(cache, c, lengths, rng);
          const std::vector<double> expect = naive_attention(q, cache, lengths, shape);
          std::vector<float> scalar(expect.size());
          decode_attention(scalar.data(), q.data(), static_cast<int64_t>(n_head) * hd, cache, 0, lengths.data(), B,
                           shape, DecodeIsa::scalar);
          const std::string what = fmt::format("{} hd {} {} heads / {} kv", kv_dtype_name(t), hd, n_head, n_kv);
          // The integer path of int8 (head sizes a multiple of 32) rounds q and the value weights
          // to int16: ~1/65534 of their largest, well below the codes' own rounding.
          const bool int_path = t == KvDType::int8 && hd % 32 == 0;
          const double naive_tol = int_path ? 1e-4 : 1e-5;
          const double e0 = test::scaled_error(scalar.data(), expect.data(), static_cast<int64_t>(expect.size()));
          EXPECT_LT(e0, naive_tol) << "scalar vs naive, " << what;
          (naive_tol > 1e-5 ? worst_int8 : worst_naive) = std::max(naive_tol > 1e-5 ? worst_int8 : worst_naive, e0);
          for (DecodeIsa isa : compiled_isas()) {
            if (isa == DecodeIsa::scalar) continue;
            std::vector<float> got(expect.size(), std::nanf(""));
            decode_attention(got.data(), q.data(), static_cast<int64_t>(n_head) * hd, cache, 0, lengths.data(), B,
                             shape, isa);
            // The scalar path of int8 rounds as the integer path does; the group path of the
            // vector ones (several heads per kv head) widens the codes to float exactly.
            const double e = test::scaled_error(got.data(), scalar.data(), static_cast<int64_t>(got.size()));
            EXPECT_LT(e, naive_tol) << decode_isa_name(isa) << " vs scalar, " << what;
            EXPECT_LT(test::scaled_error(got.data(), expect.data(), static_cast<int64_t>(got.size())), naive_tol)
                << decode_isa_name(isa) << " vs naive, " << what;
            worst_scalar = std::max(worst_scalar, e);
          }
        }
      }
    }
  }
  fmt::print("decode kernel: scalar vs naive {:.2e} (int8 path {:.2e}), vector vs scalar {:.2e} (best path: {})\n",
             worst_naive, worst_int8, worst_scalar, decode_isa_name(decode_isa_best()));
}

// int8 rows with one query head per kv head at head_dim 64 and 128 take the byte path (VNNI
// vpdpbusd, the int16 query and value weights split into bytes) where the build has it. Its
// integer sums are the widening path's, so its results are too, bit for bit: K=V and separate V,
// lengths that end mid-tile, fill whole tiles and cross into a second work item.
TEST(DecodeKernel, IntegerBytePathEqualsTheWideningPathBitForBit) {
  const std::vector<int> lengths = {1, 3, 45, 64, 67, kDecodeChunk + 77};
  const int B = static_cast<int>(lengths.size()), heads = 3;
  Rng rng(41);
  for (int hd : {64, 128}) {
    for (Share share : {Share::none, Share::kv}) {
      ModelConfig c;
      c.n_layer = 1, c.n_head = heads, c.n_kv_head = heads, c.head_dim = hd, c.share = share;
      KvCache cache(c, B, kDecodeChunk + 77, KvDType::int8);
      fill_random(cache, c, lengths, rng);
      std::vector<float> q(static_cast<size_t>(B) * heads * hd);
      for (auto& x : q) x = static_cast<float>(3 * rng.normal());
      std::vector<std::vector<float>> out(2, std::vector<float>(q.size(), std::nanf("")));
      for (int bytes = 0; bytes < 2; bytes++) {
        set_decode_int_bytes(bytes == 1);
        decode_attention(out[bytes].data(), q.data(), static_cast<int64_t>(heads) * hd, cache, 0, lengths.data(), B,
                         {heads, heads, hd});
      }
      set_decode_int_bytes(true);
      int differ = 0, finite = 0;
      for (size_t i = 0; i < q.size(); i++) {
        differ += std::memcmp(&out[0][i], &out[1][i], sizeof(float)) != 0;
        finite += std::isfinite(out[1][i]);
      }
      EXPECT_EQ(differ, 0) << "hd " << hd << (c.v_is_k() ? " K=V" : " separate V");
      EXPECT_EQ(finite, static_cast<int>(q.size()));
    }
  }
}

// A decode step runs as one team (Decoder::step): every thread calls decode_attention with the
// step's shared DecodeAttentionWork. That gives what a call outside any team gives, bit for bit,
// twice in a row (the work list rebuilt for other lengths), and so does a team calling without
// `work` (its first thread does it all). 3 threads, more than the CI machines' cores.
TEST(DecodeKernel, TeamCallEqualsACallOutsideATeam) {
  std::vector<int> lengths = {1, 45, 2 * kDecodeChunk + 77};
  const int B = static_cast<int>(lengths.size()), hd = 64;
  Rng rng(43);
  for (Share share : {Share::none, Share::kv})
    for (int n_kv : {8, 2, 1})
      for (KvDType t : {KvDType::fp32, KvDType::bf16, KvDType::int8}) {
        ModelConfig c;
        c.n_layer = 1, c.n_head = 8, c.n_kv_head = n_kv, c.head_dim = hd, c.share = share;
        const DecodeShape shape{8, n_kv, hd};
        KvCache cache(c, B, 2 * kDecodeChunk + 77, t);
        fill_random(cache, c, lengths, rng);
        std::vector<float> q(static_cast<size_t>(B) * 8 * hd);
        for (auto& x : q) x = static_cast<float>(rng.normal());
        std::vector<int> shorter = lengths;
        shorter.back() = kDecodeChunk + 3;
        const int64_t n = static_cast<int64_t>(q.size());
        std::vector<float> alone(n), alone_short(n), team(n, std::nanf("")), team_short(n, std::nanf("")),
            first_only(n, std::nanf(""));
        decode_attention(alone.data(), q.data(), 8 * hd, cache, 0, lengths.data(), B, shape);
        decode_attention(alone_short.data(), q.data(), 8 * hd, cache, 0, shorter.data(), B, shape);
        DecodeAttentionWork work;
        run_team(3, [&] {
          decode_attention(team.data(), q.data(), 8 * hd, cache, 0, lengths.data(), B, shape, DecodeIsa::best, &work);
          team_barrier();
          decode_attention(team_short.data(), q.data(), 8 * hd, cache, 0, shorter.data(), B, shape, DecodeIsa::best,
                           &work);
          team_barrier();
          decode_attention(first_only.data(), q.data(), 8 * hd, cache, 0, lengths.data(), B, shape);
        });
        const std::string what = fmt::format("{} {} / {} kv", kv_dtype_name(t), c.v_is_k() ? "K=V" : "K, V", n_kv);
        EXPECT_EQ(std::memcmp(team.data(), alone.data(), n * sizeof(float)), 0) << what;
        EXPECT_EQ(std::memcmp(team_short.data(), alone_short.data(), n * sizeof(float)), 0) << what;
        EXPECT_EQ(std::memcmp(first_only.data(), alone.data(), n * sizeof(float)), 0) << what;
        EXPECT_NE(std::memcmp(alone.data(), alone_short.data(), n * sizeof(float)), 0) << what;
      }
}

// The decode step's linear layers: every path against a double-precision product, for every row
// count it handles itself (1 … 8) and one it hands to BLAS, widths with tails, odd output counts.
TEST(DecodeKernel, DecodeLinearMatchesADoubleProduct) {
  Rng rng(29);
  double worst = 0;
  for (int N = 1; N <= kDecodeLinearMaxRows + 1; N++)
    for (int C : {3, 16, 37, 64, 200})
      for (int OC : {1, 2, 17, 40}) {
        std::vector<float> x(static_cast<size_t>(N) * C), w(static_cast<size_t>(OC) * C), b(OC);
        for (auto& v : x) v = static_cast<float>(rng.normal());
        for (auto& v : w) v = static_cast<float>(rng.normal());
        for (auto& v : b) v = static_cast<float>(rng.normal());
        std::vector<double> expect(static_cast<size_t>(N) * OC);
        for (int n = 0; n < N; n++)
          for (int o = 0; o < OC; o++) {
            double a = b[o];
            for (int c = 0; c < C; c++) a += static_cast<double>(x[n * C + c]) * w[o * C + c];
            expect[n * OC + o] = a;
          }
        for (DecodeIsa isa : compiled_isas()) {
          for (bool bias : {true, false}) {
            std::vector<float> got(expect.size(), std::nanf(""));
            decode_linear(got.data(), x.data(), w.data(), bias ? b.data() : nullptr, N, C, OC, isa);
            std::vector<double> want = expect;
            if (!bias)
              for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) want[n * OC + o] -= b[o];
            // Relative to √C, the typical size of a sum of C products of unit normals (a lone output
            // can cancel to near zero).
            const double e =
                test::scaled_error(got.data(), want.data(), static_cast<int64_t>(got.size()), std::sqrt(1.0 * C));
            EXPECT_LT(e, 1e-6) << decode_isa_name(isa) << " N " << N << " C " << C << " OC " << OC;
            worst = std::max(worst, e);
          }
        }
      }
  fmt::print("decode linear: worst {:.2e} against double\n", worst);
}

// The decode kernels' tile order (tile_order.h): every tile of the item once, each starting a whole
// number of tiles in, each run in position order, and the runs in turn.
TEST(DecodeKernel, TileOrderReadsEveryTileOnceAndEachRunInOrder) {
  for (const int runs : {1, 2, kReadStreams})
    for (const int len : {1, 31, 32, 33, 96, 100, 7 * 32, kDecodeChunk, kDecodeChunk - 5}) {
      const int begin = 3 * kDecodeChunk, tile = 32, tiles = (len + tile - 1) / tile;
      const TileOrder order(begin, begin + len, tile, runs);
      const std::string what = fmt::format("{} runs, {} positions", runs, len);
      ASSERT_EQ(order.size(), tiles) << what;
      std::vector<int> firsts, seen(tiles, 0);
      for (int t = 0; t < order.size(); t++) firsts.push_back(order[t]);
      for (const int f : firsts) {
        ASSERT_EQ((f - begin) % tile, 0) << what;
        ASSERT_TRUE(f >= begin && f < begin + len) << what;
        seen[(f - begin) / tile]++;
      }
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), tiles) << what;
      // The first `used` reads start the runs, in position order; then each read continues the
      // run read `used` reads before it, a tile further on.
      const int used = std::min(runs, tiles);
      for (int t = 1; t < used; t++) EXPECT_LT(firsts[t - 1], firsts[t]) << what;
      for (int t = used; t < tiles; t++) EXPECT_EQ(firsts[t], firsts[t - used] + tile) << what << ", read " << t;
    }
}

}  // namespace
}  // namespace kvtie
