// Finite-difference checks of every kernel's backward pass (in double), reference checks of the
// attention forward pass and the AdamW update, and determinism of the reductions.
//
// Scheme: for a kernel out = f(x, θ) pick a fixed random R and the scalar loss L = Σ out ⊙ R, so
// that dL/dout = R. The backward is called with dout = R and every element of every analytic
// gradient is compared with the central difference (L(x + h) − L(x − h)) / 2h, h = 1e-6.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/patch_embed.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/residual.h"
#include "kernels/softmax_xent.h"
#include "kernels/tile_gemm.h"

namespace kvtie {
namespace {

using Vec = std::vector<double>;

constexpr double kStep = 1e-6;       // finite-difference step
constexpr double kMaxRelErr = 1e-6;  // the bar every gradient must pass
// Denominator floor of the relative error, as a fraction of the tensor's largest numerical
// gradient: the central difference carries ~1e-10·|L| of rounding noise, so elements whose
// gradient is (nearly) zero cannot be compared relative to themselves. The floor keeps the test
// sensitive to any error above ~1e-9 of the tensor's gradient scale.
constexpr double kFloorFrac = 1e-3;

Vec random_vec(size_t n, std::mt19937_64& rng, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// Central differences of L = Σ forward() ⊙ R with respect to every element of x (x is restored
// afterwards). The difference is taken per output element, Σ (out(x+h) − out(x−h)) ⊙ R / 2h, rather
// than as L(x+h) − L(x−h): outputs that do not depend on x[i] then cancel exactly instead of
// contributing the rounding noise of the whole sum.
using Forward = std::function<Vec()>;
Vec numeric_grad(Vec& x, const Forward& forward, const Vec& R, double h = kStep) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); i++) {
    const double saved = x[i];
    x[i] = saved + h;
    const Vec op = forward();
    x[i] = saved - h;
    const Vec om = forward();
    x[i] = saved;
    EXPECT_EQ(op.size(), R.size());
    double d = 0.0;
    for (size_t j = 0; j < R.size(); j++) d += (op[j] - om[j]) * R[j];
    g[i] = d / (2 * h);
  }
  forward();  // leave the forward state (saved statistics etc.) of the unperturbed x behind
  return g;
}

struct GradError {
  double max_rel = 0.0;  // max over elements of |a − n| / max(|a| + |n|, floor)
  size_t worst = 0;
  double analytic = 0.0, numeric = 0.0;
  double scale = 0.0;  // max |n|
};

// The one definition of "relative error" used by every check in this file.
GradError grad_error(const Vec& analytic, const Vec& numeric) {
  GradError e;
  EXPECT_EQ(analytic.size(), numeric.size());
  for (double n : numeric) e.scale = std::max(e.scale, std::abs(n));
  const double floor = 1e-8 + kFloorFrac * e.scale;
  for (size_t i = 0; i < std::min(analytic.size(), numeric.size()); i++) {
    const double a = analytic[i], n = numeric[i];
    double rel = std::abs(a - n) / std::max(std::abs(a) + std::abs(n), floor);
    if (std::isnan(rel)) rel = std::numeric_limits<double>::infinity();
    if (rel > e.max_rel || i == 0) {
      e.max_rel = rel;
      e.worst = i;
      e.analytic = a;
      e.numeric = n;
    }
  }
  return e;
}

void expect_grad_close(const std::string& what, const Vec& analytic, const Vec& numeric) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  const GradError e = grad_error(analytic, numeric);
  EXPECT_LT(e.max_rel, kMaxRelErr) << what << ": worst element " << e.worst << " analytic " << e.analytic
                                   << " numeric " << e.numeric << " (gradient scale " << e.scale << ")";
  // A check against an all-zero gradient proves nothing: make sure the case exercises something.
  EXPECT_GT(e.scale, 1e-3) << what << ": gradient is (nearly) zero everywhere";
}

// "Accumulate" contract: out = prefill + gradient. Returns the gradient part.
Vec minus(const Vec& a, const Vec& b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); i++) r[i] = a[i] - b[i];
  return r;
}

// ---------------------------------------------------------------------------------------------
// The checker itself must be able to fail.

TEST(KernelGradCheckHelper, DetectsAPerturbedGradient) {
  std::mt19937_64 rng(1);
  const int N = 4, C = 6, OC = 5;
  Vec inp = random_vec(N * C, rng), w = random_vec(OC * C, rng), b = random_vec(OC, rng), R = random_vec(N * OC, rng);
  Vec out(N * OC);
  Forward forward = [&] {
    linear_forward(out.data(), inp.data(), w.data(), b.data(), N, C, OC);
    return out;
  };
  Vec dinp(N * C), dw(OC * C, 0.0), db(OC, 0.0);
  linear_backward(dinp.data(), dw.data(), db.data(), R.data(), inp.data(), w.data(), N, C, OC);
  const Vec nw = numeric_grad(w, forward, R);
  EXPECT_LT(grad_error(dw, nw).max_rel, kMaxRelErr);

  // A relative perturbation of 1e-4 on a single element must be reported.
  Vec bad = dw;
  bad[7] *= 1.0 + 1e-4;
  const GradError e = grad_error(bad, nw);
  EXPECT_GT(e.max_rel, 10 * kMaxRelErr);
  EXPECT_EQ(e.worst, 7u);
  // So must a sign error, a missing element and a NaN.
  bad = dw;
  bad[3] = -bad[3];
  EXPECT_GT(grad_error(bad, nw).max_rel, 0.5);
  bad = dw;
  bad[0] = 0.0;
  EXPECT_GT(grad_error(bad, nw).max_rel, 0.5);
  bad = dw;
  bad[5] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_GT(grad_error(bad, nw).max_rel, 1.0);
  // And a gradient that is off by a tiny absolute amount on an element whose true gradient is
  // zero is tolerated only below the floor.
  Vec zeros(10, 0.0), ones(10, 0.0);
  ones[0] = 1.0;
  zeros[0] = 1.0;
  zeros[4] = 1e-5;  // 1e-5 of the scale: well above the ~1e-9 noise floor
  EXPECT_GT(grad_error(zeros, ones).max_rel, kMaxRelErr);
}

// ---------------------------------------------------------------------------------------------
// Embedding

void check_embedding(bool with_pos) {
  std::mt19937_64 rng(with_pos ? 11 : 12);
  const int B = 2, Tn = 5, d = 37, V = 6;  // d > 32 covers two column blocks of the backward
  // Repeated tokens, within and across sequences; token 5 never appears (its gradient must stay 0).
  const std::vector<int32_t> tokens = {0, 3, 3, 1, 0, 2, 3, 4, 0, 0};
  Vec tok = random_vec(static_cast<size_t>(V) * d, rng), pos = random_vec(static_cast<size_t>(Tn) * d, rng);
  const Vec R = random_vec(static_cast<size_t>(B) * Tn * d, rng);
  Vec out(R.size());
  Forward forward = [&] {
    embedding_forward(out.data(), tokens.data(), tok.data(), with_pos ? pos.data() : nullptr, B, Tn, d);
    return out;
  };
  // The backward accumulates: prefill and subtract.
  const Vec pre_tok = random_vec(tok.size(), rng), pre_pos = random_vec(pos.size(), rng);
  Vec dtok = pre_tok, dpos = pre_pos;
  embedding_backward(dtok.data(), with_pos ? dpos.data() : nullptr, R.data(), tokens.data(), B, Tn, d);
  const Vec gtok = minus(dtok, pre_tok);
  expect_grad_close("dtok_emb", gtok, numeric_grad(tok, forward, R));
  for (int i = 0; i < d; i++) EXPECT_EQ(gtok[5 * d + i], 0.0) << "unused token row must get no gradient";
  if (with_pos) {
    expect_grad_close("dpos_emb", minus(dpos, pre_pos), numeric_grad(pos, forward, R));
  } else {
    EXPECT_EQ(dpos, pre_pos) << "dpos_emb must be untouched without a position table";
  }
}

TEST(KernelGradCheck, EmbeddingWithPositions) { check_embedding(true); }
TEST(KernelGradCheck, EmbeddingWithoutPositions) { check_embedding(false); }

TEST(KernelForward, EmbeddingForwardValues) {
  const int B = 1, Tn = 3, d = 2;
  const std::vector<int32_t> tokens = {2, 0, 2};
  const Vec tok = {1, 2, 3, 4, 5, 6}, pos = {10, 20, 30, 40, 50, 60};
  Vec out(6);
  embedding_forward(out.data(), tokens.data(), tok.data(), pos.data(), B, Tn, d);
  EXPECT_EQ(out, (Vec{15, 26, 31, 42, 55, 66}));
  embedding_forward(out.data(), tokens.data(), tok.data(), static_cast<const double*>(nullptr), B, Tn, d);
  EXPECT_EQ(out, (Vec{5, 6, 1, 2, 5, 6}));
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

TEST(KernelGradCheck, LayerNorm) {
  std::mt19937_64 rng(21);
  const int N = 6, C = 70;  // C > 64 covers two column blocks of the dw/db reduction
  Vec inp = random_vec(static_cast<size_t>(N) * C, rng, -2.0, 2.0);
  Vec w = random_vec(C, rng, 0.5, 1.5), b = random_vec(C, rng);
  const Vec R = random_vec(inp.size(), rng);
  Vec out(inp.size()), mean(N), rstd(N);
  Forward forward = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
    return out;
  };
  forward();
  const Vec pre_w = random_vec(C, rng), pre_b = random_vec(C, rng);
  Vec dinp(inp.size(), 1e3), dw = pre_w, db = pre_b;  // dinp prefilled with garbage: it is overwritten
  layernorm_backward(dinp.data(), dw.data(), db.data(), R.data(), inp.data(), w.data(), mean.data(), rstd.data(), N, C);
  expect_grad_close("layernorm dinp", dinp, numeric_grad(inp, forward, R));
  expect_grad_close("layernorm dw (+=)", minus(dw, pre_w), numeric_grad(w, forward, R));
  expect_grad_close("layernorm db (+=)", minus(db, pre_b), numeric_grad(b, forward, R));
}

TEST(KernelForward, LayerNormForwardMatchesDefinition) {
  std::mt19937_64 rng(22);
  const int N = 3, C = 9;
  const Vec inp = random_vec(N * C, rng, -3, 3), w = random_vec(C, rng), b = random_vec(C, rng);
  Vec out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
  for (int n = 0; n < N; n++) {
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += inp[n * C + i] / C;
    for (int i = 0; i < C; i++) v += (inp[n * C + i] - m) * (inp[n * C + i] - m) / C;  // biased, as PyTorch
    EXPECT_NEAR(mean[n], m, 1e-14);
    EXPECT_NEAR(rstd[n], 1.0 / std::sqrt(v + 1e-5), 1e-12);
    for (int i = 0; i < C; i++)
      EXPECT_NEAR(out[n * C + i], (inp[n * C + i] - m) / std::sqrt(v + 1e-5) * w[i] + b[i], 1e-12);
  }
}

// ---------------------------------------------------------------------------------------------
// Linear

void check_linear(bool with_bias, bool with_dinp) {
  std::mt19937_64 rng(31 + 2 * with_bias + with_dinp);
  const int N = 5, C = 7, OC = 67;  // OC > 64 covers two column blocks of the bias reduction
  Vec inp = random_vec(static_cast<size_t>(N) * C, rng), w = random_vec(static_cast<size_t>(OC) * C, rng);
  Vec b = random_vec(OC, rng);
  const Vec R = random_vec(static_cast<size_t>(N) * OC, rng);
  Vec out(R.size());
  Forward forward = [&] {
    linear_forward(out.data(), inp.data(), w.data(), with_bias ? b.data() : nullptr, N, C, OC);
    return out;
  };
  const Vec pre_w = random_vec(w.size(), rng), pre_b = random_vec(b.size(), rng);
  Vec dinp(inp.size(), -7.0), dw = pre_w, db = pre_b;
  linear_backward(with_dinp ? dinp.data() : nullptr, dw.data(), with_bias ? db.data() : nullptr, R.data(), inp.data(),
                  w.data(), N, C, OC);
  if (with_dinp)
    expect_grad_close("linear dinp", dinp, numeric_grad(inp, forward, R));
  else
    EXPECT_EQ(dinp, Vec(inp.size(), -7.0)) << "null dinp: nothing written";
  expect_grad_close("linear dw (+=)", minus(dw, pre_w), numeric_grad(w, forward, R));
  if (with_bias)
    expect_grad_close("linear db (+=)", minus(db, pre_b), numeric_grad(b, forward, R));
  else
    EXPECT_EQ(db, pre_b);
}

TEST(KernelGradCheck, LinearWithBias) { check_linear(true, true); }
TEST(KernelGradCheck, LinearWithoutBias) { check_linear(false, true); }
TEST(KernelGradCheck, LinearWithoutDinp) { check_linear(true, false); }

TEST(KernelForward, LinearForwardValues) {
  // out = inp · wᵀ + b with w in PyTorch layout [OC, C].
  const Vec inp = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const Vec w = {1, 0, -1, 2, 1, 0};   // [2, 3]
  const Vec b = {0.5, -0.5};
  Vec out(4, 99.0);
  linear_forward(out.data(), inp.data(), w.data(), b.data(), 2, 3, 2);
  EXPECT_EQ(out, (Vec{-1.5, 3.5, -1.5, 12.5}));
  linear_forward(out.data(), inp.data(), w.data(), static_cast<const double*>(nullptr), 2, 3, 2);
  EXPECT_EQ(out, (Vec{-2, 4, -2, 13}));
}

// ---------------------------------------------------------------------------------------------
// GELU, residual, mean pool

TEST(KernelGradCheck, Gelu) {
  std::mt19937_64 rng(41);
  Vec inp = random_vec(200, rng, -5.0, 5.0);
  inp[0] = 0.0;
  const Vec R = random_vec(inp.size(), rng);
  Vec out(inp.size());
  const int64_t n = static_cast<int64_t>(inp.size());
  Forward forward = [&] {
    gelu_forward(out.data(), inp.data(), n);
    return out;
  };
  Vec dinp(inp.size(), 123.0);
  gelu_backward(dinp.data(), inp.data(), R.data(), n);
  expect_grad_close("gelu dinp", dinp, numeric_grad(inp, forward, R));
  // Exact (erf) GELU values, as torch.nn.functional.gelu(approximate='none').
  const Vec x = {-3.0, -1.0, 0.0, 0.5, 2.0};
  Vec y(x.size());
  gelu_forward(y.data(), x.data(), static_cast<int64_t>(x.size()));
  const Vec expect = {-0.00404969409489031, -0.15865525393145707, 0.0, 0.34573123063700656, 1.9544997361036416};
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(y[i], expect[i], 1e-15) << "gelu(" << x[i] << ")";
}

// The fused bias + GELU equals adding the bias then GELU, and leaves the biased input in place.
TEST(KernelGelu, BiasGeluEqualsBiasThenGelu) {
  std::mt19937_64 rng(52);
  const int64_t N = 7;
  const int OC = 13;
  const Vec x0 = random_vec(N * OC, rng, -3, 3), b = random_vec(OC, rng);
  Vec pre = x0, out(x0.size()), want_pre(x0.size()), want(x0.size());
  for (int64_t n = 0; n < N; n++)
    for (int i = 0; i < OC; i++) want_pre[n * OC + i] = x0[n * OC + i] + b[i];
  gelu_forward(want.data(), want_pre.data(), N * OC);
  bias_gelu_forward(out.data(), pre.data(), b.data(), N, OC);
  EXPECT_EQ(pre, want_pre);
  EXPECT_EQ(out, want);
  std::vector<float> xf(x0.begin(), x0.end()), bf(b.begin(), b.end()), of(xf.size()), wf(xf.size());
  for (int64_t n = 0; n < N; n++)
    for (int i = 0; i < OC; i++) wf[n * OC + i] = xf[n * OC + i] + bf[i];
  gelu_forward(of.data(), wf.data(), N * OC);  // float: the vectorised erf
  std::vector<float> pf = xf, gf(xf.size());
  bias_gelu_forward(gf.data(), pf.data(), bf.data(), N, OC);
  EXPECT_EQ(gf, of);
}

TEST(KernelGradCheck, Residual) {
  std::mt19937_64 rng(51);
  const int64_t n = 33;
  Vec a = random_vec(n, rng), b = random_vec(n, rng);
  const Vec R = random_vec(n, rng);
  Vec out(n);
  Forward forward = [&] {
    residual_forward(out.data(), a.data(), b.data(), n);
    return out;
  };
  const Vec pre_a = random_vec(n, rng), pre_b = random_vec(n, rng);
  Vec da = pre_a, db = pre_b;
  residual_backward(da.data(), R.data(), n);
  residual_backward(db.data(), R.data(), n);
  expect_grad_close("residual da (+=)", minus(da, pre_a), numeric_grad(a, forward, R));
  expect_grad_close("residual db (+=)", minus(db, pre_b), numeric_grad(b, forward, R));
}

TEST(KernelGradCheck, MeanPool) {
  std::mt19937_64 rng(61);
  const int B = 3, Tn = 5, d = 4;
  Vec inp = random_vec(static_cast<size_t>(B) * Tn * d, rng);
  const Vec R = random_vec(static_cast<size_t>(B) * d, rng);
  Vec out(R.size());
  Forward forward = [&] {
    mean_pool_forward(out.data(), inp.data(), B, Tn, d);
    return out;
  };
  forward();
  for (int b = 0; b < B; b++)
    for (int i = 0; i < d; i++) {
      double m = 0;
      for (int t = 0; t < Tn; t++) m += inp[(b * Tn + t) * d + i];
      EXPECT_NEAR(out[b * d + i], m / Tn, 1e-15);
    }
  Vec dinp(inp.size(), 5.0);
  mean_pool_backward(dinp.data(), R.data(), B, Tn, d);
  expect_grad_close("mean_pool dinp", dinp, numeric_grad(inp, forward, R));
}

TEST(KernelGradCheck, FirstPool) {
  std::mt19937_64 rng(62);
  const int B = 3, Tn = 4, d = 5;
  Vec inp = random_vec(static_cast<size_t>(B) * Tn * d, rng);
  const Vec R = random_vec(static_cast<size_t>(B) * d, rng);
  Vec out(R.size());
  Forward forward = [&] {
    first_pool_forward(out.data(), inp.data(), B, Tn, d);
    return out;
  };
  forward();
  for (int b = 0; b < B; b++)
    for (int i = 0; i < d; i++) EXPECT_EQ(out[b * d + i], inp[b * Tn * d + i]);
  Vec dinp(inp.size(), 5.0);  // overwritten, not accumulated
  first_pool_backward(dinp.data(), R.data(), B, Tn, d);
  expect_grad_close("first_pool dinp", dinp, numeric_grad(inp, forward, R));
}

// ---------------------------------------------------------------------------------------------
// Patch embedding

// The patch embedding as the convolution it is: out[b, n_cls + gy·gw + gx, o] =
// Σ_{c,i,j} W[o, c, i, j] · img[b, c, gy·p + i, gx·p + j] + bias[o], class rows = cls, + pos.
Vec naive_patch_embed(const Vec& img, const Vec& w, const Vec& bias, const Vec* cls, const Vec* pos,
                      const PatchGeometry& g, int B, int d) {
  const int p = g.patch, gw = g.grid_w(), S = g.seq();
  Vec out(static_cast<size_t>(B) * S * d);
  for (int b = 0; b < B; b++)
    for (int s = 0; s < S; s++)
      for (int o = 0; o < d; o++) {
        double v;
        if (s < g.n_cls) {
          v = (*cls)[o];
        } else {
          const int gy = (s - g.n_cls) / gw, gx = (s - g.n_cls) % gw;
          v = bias[o];
          for (int c = 0; c < g.channels; c++)
            for (int i = 0; i < p; i++)
              for (int j = 0; j < p; j++)
                v += w[((static_cast<size_t>(o) * g.channels + c) * p + i) * p + j] *
                     img[((static_cast<size_t>(b) * g.channels + c) * g.height + gy * p + i) * g.width + gx * p + j];
        }
        if (pos) v += (*pos)[static_cast<size_t>(s) * d + o];
        out[(static_cast<size_t>(b) * S + s) * d + o] = v;
      }
  return out;
}

void check_patch_embed(int n_cls, bool with_pos) {
  SCOPED_TRACE(testing::Message() << "n_cls " << n_cls << (with_pos ? ", positions" : ", no positions"));
  std::mt19937_64 rng(70 + n_cls + 2 * with_pos);
  // A 2×3 grid of 2×2 patches over 2 channels (rows ≠ columns); d > 32 covers two column blocks.
  const PatchGeometry g{2, 4, 6, 2, n_cls};
  const int B = 2, d = 37, K = g.patch_dim(), S = g.seq();
  const Vec img = random_vec(static_cast<size_t>(B) * g.channels * g.height * g.width, rng);
  Vec w = random_vec(static_cast<size_t>(d) * K, rng), bias = random_vec(d, rng), cls = random_vec(d, rng),
      pos = random_vec(static_cast<size_t>(S) * d, rng);
  const Vec R = random_vec(static_cast<size_t>(B) * S * d, rng);
  Vec out(R.size()), patches(static_cast<size_t>(B) * S * K);
  Forward forward = [&] {
    patch_embed_forward(out.data(), patches.data(), img.data(), w.data(), bias.data(), n_cls ? cls.data() : nullptr,
                        with_pos ? pos.data() : nullptr, g, B, d);
    return out;
  };
  forward();
  const Vec want = naive_patch_embed(img, w, bias, n_cls ? &cls : nullptr, with_pos ? &pos : nullptr, g, B, d);
  for (size_t i = 0; i < out.size(); i++) ASSERT_NEAR(out[i], want[i], 1e-13) << "element " << i;

  // The backward accumulates: prefill and subtract.
  const Vec pre_w = random_vec(w.size(), rng), pre_b = random_vec(d, rng), pre_c = random_vec(d, rng),
            pre_p = random_vec(pos.size(), rng);
  Vec dw = pre_w, db = pre_b, dcls = pre_c, dpos = pre_p;
  patch_embed_backward(dw.data(), db.data(), n_cls ? dcls.data() : nullptr, with_pos ? dpos.data() : nullptr, R.data(),
                       patches.data(), g, B, d);
  expect_grad_close("patch dw", minus(dw, pre_w), numeric_grad(w, forward, R));
  expect_grad_close("patch dbias", minus(db, pre_b), numeric_grad(bias, forward, R));
  if (n_cls)
    expect_grad_close("dcls", minus(dcls, pre_c), numeric_grad(cls, forward, R));
  else
    EXPECT_EQ(dcls, pre_c);
  if (with_pos)
    expect_grad_close("patch dpos", minus(dpos, pre_p), numeric_grad(pos, forward, R));
  else
    EXPECT_EQ(dpos, pre_p);
}

TEST(KernelGradCheck, PatchEmbed) { check_patch_embed(0, false); }
TEST(KernelGradCheck, PatchEmbedWithPositions) { check_patch_embed(0, true); }
TEST(KernelGradCheck, PatchEmbedWithClassTokenAndPositions) { check_patch_embed(1, true); }
TEST(KernelGradCheck, PatchEmbedWithClassToken) { check_patch_embed(1, false); }

TEST(KernelForward, PatchIm2colOrder) {
  // One 2-channel 4×4 image whose pixel values are their own (c, y, x) codes, patch 2: row s of the
  // patches is patch (s / 2, s % 2) of the grid, flattened as (c, i, j).
  const PatchGeometry g{2, 4, 4, 2, 1};
  Vec img(32);
  for (int c = 0; c < 2; c++)
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 4; x++) img[(c * 4 + y) * 4 + x] = 100 * c + 10 * y + x;
  Vec patches(static_cast<size_t>(g.seq()) * g.patch_dim(), -1.0);
  patch_im2col(patches.data(), img.data(), g, 1);
  for (int k = 0; k < 8; k++) EXPECT_EQ(patches[k], 0.0) << "the class row is zero";
  // Patch 1 of the grid is its top-right one: rows 0–1, columns 2–3.
  EXPECT_EQ(Vec(patches.begin() + 2 * 8, patches.begin() + 3 * 8), (Vec{2, 3, 12, 13, 102, 103, 112, 113}));
  // Patch 2 is bottom-left: rows 2–3, columns 0–1.
  EXPECT_EQ(Vec(patches.begin() + 3 * 8, patches.begin() + 4 * 8), (Vec{20, 21, 30, 31, 120, 121, 130, 131}));
}

TEST(KernelForward, Sincos2dTable) {
  // MAE's table for a 2×3 grid (rows y, columns x), d = 8: [sin x·ω, cos x·ω | sin y·ω, cos y·ω],
  // ω = (1, 1/100) for d/4 = 2; a class row of zeros first.
  const int d = 8;
  Vec t(static_cast<size_t>(1 + 6) * d, -1.0);
  sincos2d_table(t.data(), 2, 3, d, 1);
  for (int i = 0; i < d; i++) EXPECT_EQ(t[i], 0.0);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 3; x++) {
      const double* row = t.data() + (1 + y * 3 + x) * d;
      for (int k = 0; k < 2; k++) {
        const double w = k == 0 ? 1.0 : 0.01;
        EXPECT_NEAR(row[k], std::sin(x * w), 1e-15);
        EXPECT_NEAR(row[2 + k], std::cos(x * w), 1e-15);
        EXPECT_NEAR(row[4 + k], std::sin(y * w), 1e-15);
        EXPECT_NEAR(row[6 + k], std::cos(y * w), 1e-15);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy

TEST(KernelGradCheck, SoftmaxXent) {
  std::mt19937_64 rng(71);
  const int N = 7, V = 11;
  Vec logits = random_vec(static_cast<size_t>(N) * V, rng, -3.0, 3.0);
  logits[2 * V + 4] = 40.0;  // dominant logits: the max shift must keep these stable
  logits[3 * V + 7] = 40.0;
  const std::vector<int32_t> targets = {3, kIgnoreIndex, 4, 0, kIgnoreIndex, 10, 4};
  const double dloss = 0.37;
  const Vec R(N, dloss);  // L = dloss · Σ losses
  Vec losses(N), lse(N);
  Forward forward = [&] {
    softmax_xent_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
    return losses;
  };
  forward();
  for (int n = 0; n < N; n++) {
    if (targets[n] == kIgnoreIndex) {
      EXPECT_EQ(losses[n], 0.0) << "ignored row " << n;
      continue;
    }
    double mx = -1e300, s = 0;
    for (int i = 0; i < V; i++) mx = std::max(mx, logits[n * V + i]);
    for (int i = 0; i < V; i++) s += std::exp(logits[n * V + i] - mx);
    EXPECT_NEAR(lse[n], mx + std::log(s), 1e-12);
    EXPECT_NEAR(losses[n], mx + std::log(s) - logits[n * V + targets[n]], 1e-12);
    EXPECT_GE(losses[n], 0.0);
  }
  EXPECT_NEAR(losses[3], 40.0 - logits[3 * V], 1e-9);
  Vec dlogits(logits.size(), 9.0);
  softmax_xent_backward(dlogits.data(), logits.data(), lse.data(), targets.data(), dloss, N, V);
  expect_grad_close("softmax_xent dlogits", dlogits, numeric_grad(logits, forward, R));
  for (int n = 0; n < N; n++) {
    if (targets[n] != kIgnoreIndex) continue;
    for (int i = 0; i < V; i++) EXPECT_EQ(dlogits[n * V + i], 0.0) << "ignored row " << n << " col " << i;
  }
  // Each scored row's gradient sums to 0 (softmax minus one-hot).
  for (int n = 0; n < N; n++) {
    double s = 0;
    for (int i = 0; i < V; i++) s += dlogits[n * V + i];
    EXPECT_NEAR(s, 0.0, 1e-14);
  }

  // dlogits may alias logits.
  Vec inplace = logits;
  softmax_xent_backward(inplace.data(), inplace.data(), lse.data(), targets.data(), dloss, N, V);
  for (size_t i = 0; i < inplace.size(); i++) EXPECT_EQ(inplace[i], dlogits[i]) << i;
}

// ---------------------------------------------------------------------------------------------
// Attention

enum class Layout { none, kv, qk, qkv };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::none: return "none";
    case Layout::kv: return "kv";
    case Layout::qk: return "qk";
    case Layout::qkv: return "qkv";
  }
  return "?";
}

AttentionShape make_shape(Layout l, int B, int Tn, int H, int KV, int hd, bool causal) {
  AttentionShape s{};
  s.B = B;
  s.T = Tn;
  s.n_head = H;
  s.n_kv_head = KV;
  s.head_dim = hd;
  s.causal = causal;
  const int q = H * hd, kv = KV * hd;
  switch (l) {
    case Layout::none: s.q_offset = 0, s.k_offset = q, s.v_offset = q + kv, s.proj_dim = q + 2 * kv; break;
    case Layout::kv: s.q_offset = 0, s.k_offset = q, s.v_offset = q, s.proj_dim = q + kv; break;
    case Layout::qk: s.q_offset = 0, s.k_offset = 0, s.v_offset = q, s.proj_dim = 2 * q; break;
    case Layout::qkv: s.q_offset = 0, s.k_offset = 0, s.v_offset = 0, s.proj_dim = q; break;
  }
  return s;
}

size_t qkv_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.T * s.proj_dim; }
size_t out_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.T * s.out_dim(); }
size_t lse_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.n_head * s.T; }
size_t probs_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.n_head * s.T * s.T; }

// What a forward leaves for its backward: the output and each score row's log-sum-exp.
struct AttnForward {
  Vec out, lse;
};

// Tiles for every thread the kernels may use; `garbage` fills them, so that a kernel that read
// scratch it had not written would show.
Vec attention_tiles(const AttentionShape& s, bool backward, bool pos2d, double garbage = 0.0) {
  return Vec(static_cast<size_t>(omp_get_max_threads() * attention_tiles_per_thread(s, backward, pos2d)), garbage);
}

AttnForward run_attention_forward(const AttentionShape& s, const Vec& qkv, const ScorePos2d<double>* pos2d = nullptr) {
  AttnForward f{Vec(out_size(s), 1e9), Vec(lse_size(s), 1e9)};
  Vec tiles = attention_tiles(s, false, pos2d != nullptr, 42.0);
  attention_forward(f.out.data(), f.lse.data(), tiles.data(), qkv.data(), s, pos2d);
  return f;
}

Vec probabilities(const AttentionShape& s, const Vec& qkv, const AttnForward& f,
                  const ScorePos2d<double>* pos2d = nullptr) {
  Vec p(probs_size(s), 1e9);
  attention_probabilities(p.data(), qkv.data(), f.lse.data(), s, pos2d);
  return p;
}

// dqkv += the backward's gradient (dqkv starts at `pre`, zero by default).
Vec run_attention_backward(const AttentionShape& s, const Vec& qkv, const AttnForward& f, const Vec& dout,
                           Vec pre = {}, const ScorePos2d<double>* pos2d = nullptr,
                           const ScorePos2dGrad<double>* pos2d_grad = nullptr) {
  if (pre.empty()) pre.assign(qkv_size(s), 0.0);
  Vec tiles = attention_tiles(s, true, pos2d != nullptr, 42.0);
  Vec partials(static_cast<size_t>(s.B) * s.n_head * kPos2dPartial, 42.0);
  attention_backward(pre.data(), tiles.data(), partials.data(), dout.data(), qkv.data(), f.lse.data(),
                     s, pos2d, pos2d_grad);
  return pre;
}

// Plain loops, straight from the definition.
void naive_attention(Vec& out, Vec& probs, const Vec& qkv, const AttentionShape& s) {
  const int Tn = s.T, P = s.proj_dim, hd = s.head_dim;
  out.assign(out_size(s), 0.0);
  probs.assign(probs_size(s), 0.0);
  for (int b = 0; b < s.B; b++)
    for (int h = 0; h < s.n_head; h++) {
      const int g = h / (s.n_head / s.n_kv_head);
      auto q = [&](int t, int i) { return qkv[(static_cast<size_t>(b) * Tn + t) * P + s.q_offset + h * hd + i]; };
      auto k = [&](int t, int i) { return qkv[(static_cast<size_t>(b) * Tn + t) * P + s.k_offset + g * hd + i]; };
      auto v = [&](int t, int i) { return qkv[(static_cast<size_t>(b) * Tn + t) * P + s.v_offset + g * hd + i]; };
      for (int i = 0; i < Tn; i++) {
        std::vector<double> sc(Tn, -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int j = 0; j < Tn; j++) {
          if (s.causal && j > i) continue;
          double d = 0;
          for (int c = 0; c < hd; c++) d += q(i, c) * k(j, c);
          sc[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int j = 0; j < Tn; j++) sum += (s.causal && j > i) ? 0.0 : std::exp(sc[j] - mx);
        for (int j = 0; j < Tn; j++) {
          const double p = (s.causal && j > i) ? 0.0 : std::exp(sc[j] - mx) / sum;
          probs[((static_cast<size_t>(b) * s.n_head + h) * Tn + i) * Tn + j] = p;
          for (int c = 0; c < hd; c++)
            out[(static_cast<size_t>(b) * Tn + i) * s.out_dim() + h * hd + c] += p * v(j, c);
        }
      }
    }
}

struct AttnCase {
  Layout layout;
  int H, KV;
  bool causal;
};

std::string case_name(const AttnCase& c) {
  return std::string("share ") + layout_name(c.layout) + " H" + std::to_string(c.H) + " KV" + std::to_string(c.KV) +
         (c.causal ? " causal" : " bidirectional");
}

std::vector<AttnCase> attention_cases() {
  std::vector<AttnCase> cases;
  for (bool causal : {true, false}) {
    for (Layout l : {Layout::none, Layout::kv}) {
      cases.push_back({l, 2, 2, causal});  // MHA
      cases.push_back({l, 4, 2, causal});  // GQA
      cases.push_back({l, 4, 1, causal});  // MQA
    }
    // Q shares with K: only with n_kv_head == n_head.
    cases.push_back({Layout::qk, 2, 2, causal});
    cases.push_back({Layout::qkv, 2, 2, causal});
  }
  return cases;
}

constexpr int kB = 2, kT = 5, kHd = 3;

TEST(KernelGradCheck, AttentionAllLayouts) {
  for (const AttnCase& c : attention_cases()) {
    SCOPED_TRACE(case_name(c));
    const AttentionShape s = make_shape(c.layout, kB, kT, c.H, c.KV, kHd, c.causal);
    std::mt19937_64 rng(1000 + c.H * 10 + c.KV + 100 * static_cast<int>(c.layout) + 7 * c.causal);
    Vec qkv = random_vec(qkv_size(s), rng, -1.5, 1.5);
    const Vec R = random_vec(out_size(s), rng);
    Forward forward = [&] { return run_attention_forward(s, qkv).out; };
    const Vec dqkv = run_attention_backward(s, qkv, run_attention_forward(s, qkv), R);
    expect_grad_close(std::string("attention dqkv, ") + case_name(c), dqkv, numeric_grad(qkv, forward, R));
  }
}

TEST(KernelGradCheck, AttentionBackwardAccumulates) {
  const AttentionShape s = make_shape(Layout::kv, kB, kT, 4, 2, kHd, true);
  std::mt19937_64 rng(77);
  const Vec qkv = random_vec(qkv_size(s), rng), R = random_vec(out_size(s), rng);
  const AttnForward f = run_attention_forward(s, qkv);
  const Vec g = run_attention_backward(s, qkv, f, R);
  const Vec pre = random_vec(qkv.size(), rng);
  const Vec diff = minus(run_attention_backward(s, qkv, f, R, pre), pre);
  for (size_t i = 0; i < g.size(); i++) EXPECT_NEAR(diff[i], g[i], 1e-12) << i;
}

// The probabilities recomputed from the log-sum-exp: rows sum to 1, and with the causal mask
// everything above the diagonal is exactly 0.
void expect_probabilities(const Vec& probs, const Vec& ref, int BH, int Tn, bool causal) {
  for (size_t i = 0; i < probs.size(); i++) ASSERT_NEAR(probs[i], ref[i], 1e-14) << "probs " << i;
  for (int bh = 0; bh < BH; bh++)
    for (int i = 0; i < Tn; i++) {
      double sum = 0;
      for (int j = 0; j < Tn; j++) {
        const double p = probs[(static_cast<size_t>(bh) * Tn + i) * Tn + j];
        sum += p;
        if (causal && j > i) {
          ASSERT_EQ(p, 0.0) << "bh " << bh << " (" << i << ", " << j << ")";
        } else {
          ASSERT_GT(p, 0.0);
        }
      }
      ASSERT_NEAR(sum, 1.0, 1e-14);
    }
}

TEST(KernelAttention, ForwardMatchesNaiveReference) {
  for (const AttnCase& c : attention_cases()) {
    SCOPED_TRACE(case_name(c));
    const AttentionShape s = make_shape(c.layout, kB, kT, c.H, c.KV, kHd, c.causal);
    std::mt19937_64 rng(2000 + c.H * 10 + c.KV + 100 * static_cast<int>(c.layout) + 7 * c.causal);
    const Vec qkv = random_vec(qkv_size(s), rng, -2.0, 2.0);
    Vec ref_out, ref_probs;
    naive_attention(ref_out, ref_probs, qkv, s);
    const AttnForward f = run_attention_forward(s, qkv);
    for (size_t i = 0; i < f.out.size(); i++) EXPECT_NEAR(f.out[i], ref_out[i], 1e-13) << "out " << i;
    expect_probabilities(probabilities(s, qkv, f), ref_probs, kB * c.H, kT, c.causal);
  }
}

// gemm with beta 0 must ignore whatever C held (NaN included), as BLAS does, and write only the N
// columns of each row (the rest of the ldc stride is another tensor's); other betas scale C.
TEST(KernelGemm, BetaZeroOverwritesOnlyTheRowsColumns) {
  const int M = 3, N = 5, K = 4, ldc = 7;
  std::vector<float> a(M * K), b(K * N);
  for (int i = 0; i < M * K; i++) a[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  for (int i = 0; i < K * N; i++) b[i] = 0.125f * static_cast<float>(i % 5) + 0.25f;
  auto product = [&](int i, int j) {
    double sum = 0;
    for (int k = 0; k < K; k++) sum += static_cast<double>(a[i * K + k]) * b[k * N + j];
    return sum;
  };
  std::vector<float> c(M * ldc, std::numeric_limits<float>::quiet_NaN());
  gemm(false, false, M, N, K, 2.0f, a.data(), K, b.data(), N, 0.0f, c.data(), ldc);
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) EXPECT_NEAR(c[i * ldc + j], 2 * product(i, j), 1e-5) << i << "," << j;
    for (int j = N; j < ldc; j++) EXPECT_TRUE(std::isnan(c[i * ldc + j])) << "padding " << i << "," << j;
  }
  std::vector<float> d(M * ldc, 1.0f);
  gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.5f, d.data(), ldc);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) EXPECT_NEAR(d[i * ldc + j], 0.5 + product(i, j), 1e-5) << i << "," << j;
}

// The hand-written kernel on every row and column tail (6-row blocks, 16/8/masked columns), both
// layouts of A, padded strides and both modes, against the product in double; the padding of C
// stays untouched. The last shape is past the kernel's size limit, where OpenBLAS takes over.
TEST(KernelTileGemm, MatchesTheProductOnEveryTail) {
  struct Shape {
    int M, N, K;
  };
  std::vector<Shape> shapes;
  // Row blocks of 6 (AVX2) and 8 (AVX-512) and their remainders; columns in vectors of 8 or 16,
  // pairs of them, and masked tails.
  for (int M : {1, 5, 6, 7, 8, 9, 13, 15})
    for (int N : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 48}) shapes.push_back({M, N, 3});
  shapes.push_back({16, 64, 32});
  shapes.push_back({64, 1024, 64});
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const Shape& sh : shapes)
    for (bool trans_a : {false, true})
      for (bool accumulate : {false, true}) {
        SCOPED_TRACE(testing::Message() << sh.M << "x" << sh.N << "x" << sh.K << " trans_a " << trans_a
                                        << " accumulate " << accumulate);
        const int lda = (trans_a ? sh.M : sh.K) + 3, ldb = sh.N + 2, ldc = sh.N + 5;
        std::vector<float> a(static_cast<size_t>(trans_a ? sh.K : sh.M) * lda), b(static_cast<size_t>(sh.K) * ldb);
        for (float& x : a) x = u(rng);
        for (float& x : b) x = u(rng);
        std::vector<float> c(static_cast<size_t>(sh.M) * ldc);
        for (float& x : c) x = accumulate ? u(rng) : std::numeric_limits<float>::quiet_NaN();
        const std::vector<float> before = c;
        tile_gemm(trans_a, sh.M, sh.N, sh.K, 0.5f, a.data(), lda, b.data(), ldb, accumulate, c.data(), ldc);
        for (int i = 0; i < sh.M; i++) {
          for (int j = 0; j < sh.N; j++) {
            double sum = 0;
            for (int k = 0; k < sh.K; k++)
              sum += static_cast<double>(trans_a ? a[static_cast<size_t>(k) * lda + i] : a[static_cast<size_t>(i) * lda + k]) *
                     b[static_cast<size_t>(k) * ldb + j];
            const double want = 0.5 * sum + (accumulate ? before[static_cast<size_t>(i) * ldc + j] : 0.0);
            ASSERT_NEAR(c[static_cast<size_t>(i) * ldc + j], want, 1e-5 * (1 + std::sqrt(sh.K))) << i << "," << j;
          }
          for (int j = sh.N; j < ldc; j++)
            ASSERT_EQ(std::memcmp(&c[static_cast<size_t>(i) * ldc + j], &before[static_cast<size_t>(i) * ldc + j], 4), 0)
                << "padding " << i << "," << j;
        }
      }
}

// The float path (tile_gemm's own kernel, the transposed blocks) against the double path, whose
// gradients the checks above compare with finite differences: every layout, GQA, both masks, a
// length with row blocks and tails.
TEST(KernelAttention, FloatMatchesDouble) {
  for (Layout l : {Layout::none, Layout::kv, Layout::qk, Layout::qkv})
    for (bool causal : {true, false}) {
      SCOPED_TRACE(testing::Message() << layout_name(l) << (causal ? " causal" : " bidirectional"));
      const int KV = (l == Layout::none || l == Layout::kv) ? 2 : 4;
      const AttentionShape s = make_shape(l, 2, 45, 4, KV, 20, causal);
      std::mt19937_64 rng(23);
      const Vec qkv = random_vec(qkv_size(s), rng, -1.5, 1.5), R = random_vec(out_size(s), rng);
      const AttnForward f = run_attention_forward(s, qkv);
      const Vec d = run_attention_backward(s, qkv, f, R);
      const std::vector<float> qkv_f(qkv.begin(), qkv.end()), R_f(R.begin(), R.end());
      std::vector<float> out(out_size(s)), lse(lse_size(s)), dqkv(qkv_size(s), 0.0f);
      std::vector<float> tiles(static_cast<size_t>(omp_get_max_threads() * attention_tiles_per_thread(s, true, false)), 42.0f);
      attention_forward(out.data(), lse.data(), tiles.data(), qkv_f.data(), s);
      attention_backward(dqkv.data(), tiles.data(), static_cast<float*>(nullptr), R_f.data(), qkv_f.data(), lse.data(), s);
      for (size_t i = 0; i < out.size(); i++) ASSERT_NEAR(out[i], f.out[i], 2e-5) << "out " << i;
      for (size_t i = 0; i < lse.size(); i++) ASSERT_NEAR(lse[i], f.lse[i], 2e-5) << "lse " << i;
      for (size_t i = 0; i < dqkv.size(); i++) ASSERT_NEAR(dqkv[i], d[i], 1e-4) << "dqkv " << i;
    }
}

// A shape with several row blocks against the naive loops (output and recomputed probabilities)
// and against finite differences (step h: longer rows add up more rounding in each difference).
void check_row_blocks(const AttentionShape& s, uint64_t seed, double h, const std::string& what) {
  ASSERT_LT(s.row_block(), s.T);
  std::mt19937_64 rng(seed);
  Vec qkv = random_vec(qkv_size(s), rng, -1.5, 1.5);
  const Vec R = random_vec(out_size(s), rng);
  Vec ref_out, ref_probs;
  naive_attention(ref_out, ref_probs, qkv, s);
  const AttnForward f = run_attention_forward(s, qkv);
  for (size_t i = 0; i < f.out.size(); i++) ASSERT_NEAR(f.out[i], ref_out[i], 1e-13) << "out " << i;
  expect_probabilities(probabilities(s, qkv, f), ref_probs, s.B * s.n_head, s.T, s.causal);
  Forward forward = [&] { return run_attention_forward(s, qkv).out; };
  expect_grad_close(what, run_attention_backward(s, qkv, f, R), numeric_grad(qkv, forward, R, h));
}

// Long enough for the causal row blocks (16 rows, the last one short; a block sees only the keys
// up to its last row) to matter.
TEST(KernelAttention, CausalRowBlocksMatchReferenceAndGradients) {
  for (Layout l : {Layout::none, Layout::kv, Layout::qkv}) {
    SCOPED_TRACE(layout_name(l));
    const AttentionShape s = make_shape(l, 2, 37, 2, l == Layout::kv ? 1 : 2, kHd, true);
    check_row_blocks(s, 31 + static_cast<int>(l), kStep, std::string("blocked causal attention dqkv, ") + layout_name(l));
  }
}

// Bidirectional attention over more positions than one tile holds: row blocks against all keys.
TEST(KernelAttention, BidirectionalRowBlocksMatchReferenceAndGradients) {
  check_row_blocks(make_shape(Layout::kv, 1, 260, 2, 1, 2, false), 47, 1e-5, "blocked bidirectional attention dqkv");
}

// The (X)+ term across row blocks: the gradients of Q, K, V and of the term's own parameters
// (a, w, b per head), whose per-head partials add up block by block.
TEST(KernelGradCheck, AttentionPos2dAcrossRowBlocks) {
  const int H = 2, Tn = 260;
  const AttentionShape s = make_shape(Layout::qkv, 1, Tn, H, H, 2, false);
  ASSERT_LT(s.row_block(), Tn);
  std::mt19937_64 rng(53);
  Vec qkv = random_vec(qkv_size(s), rng, -1.5, 1.5);
  const Vec R = random_vec(out_size(s), rng);
  Vec theta = random_vec(static_cast<size_t>(H) * (2 + kPos2dChannels), rng, -0.5, 0.5);  // [a | b | w] per head
  Vec features(static_cast<size_t>(Tn) * kPos2dFeatures);
  pos2d_features(features.data(), Tn);
  auto params = [&] {
    return ScorePos2d<double>{theta.data(), theta.data() + 2 * H, theta.data() + H, features.data()};
  };
  Forward forward = [&] {
    const auto p = params();
    return run_attention_forward(s, qkv, &p).out;
  };
  const auto p = params();
  const AttnForward f = run_attention_forward(s, qkv, &p);
  Vec dtheta(theta.size(), 0.0);
  const ScorePos2dGrad<double> g{dtheta.data(), dtheta.data() + 2 * H, dtheta.data() + H};
  const Vec dqkv = run_attention_backward(s, qkv, f, R, {}, &p, &g);
  expect_grad_close("(X)+ attention dqkv", dqkv, numeric_grad(qkv, forward, R, 1e-5));
  const Vec numeric = numeric_grad(theta, forward, R, 1e-5);
  // a has a gradient; b and the query half of w shift every score of a row alike, which the
  // softmax removes: theirs is zero, and so must ours be.
  expect_grad_close("(X)+ scale", Vec(dtheta.begin(), dtheta.begin() + H), Vec(numeric.begin(), numeric.begin() + H));
  for (int h = 0; h < H; h++) {
    const double* w = dtheta.data() + 2 * H + h * kPos2dChannels;
    const double* wn = numeric.data() + 2 * H + h * kPos2dChannels;
    EXPECT_NEAR(dtheta[H + h], 0.0, 1e-9) << "bias of head " << h;
    for (int c = 0; c < kPos2dFeatures; c++) EXPECT_NEAR(w[c], 0.0, 1e-9) << "query weight " << c;
    expect_grad_close("(X)+ key weights of head " + std::to_string(h), Vec(w + kPos2dFeatures, w + kPos2dChannels),
                      Vec(wn + kPos2dFeatures, wn + kPos2dChannels));
  }
}

TEST(KernelAttention, CausalFirstTokenAttendsOnlyToItself) {
  // With the causal mask, output row 0 of each head is exactly V row 0 of its kv head.
  const AttentionShape s = make_shape(Layout::none, 1, 4, 4, 2, 3, true);
  std::mt19937_64 rng(3);
  const Vec qkv = random_vec(qkv_size(s), rng, -2, 2);
  const Vec out = run_attention_forward(s, qkv).out;
  for (int h = 0; h < 4; h++)
    for (int c = 0; c < 3; c++) EXPECT_DOUBLE_EQ(out[h * 3 + c], qkv[s.v_offset + (h / 2) * 3 + c]);
}

TEST(KernelAttention, SharedKvEqualsSeparateWithIdenticalKAndV) {
  for (bool causal : {true, false})
    for (int KV : {4, 2, 1}) {
      SCOPED_TRACE(std::string(causal ? "causal" : "bidirectional") + " KV" + std::to_string(KV));
      const int H = 4;
      const AttentionShape sn = make_shape(Layout::none, kB, kT, H, KV, kHd, causal);
      const AttentionShape sk = make_shape(Layout::kv, kB, kT, H, KV, kHd, causal);
      std::mt19937_64 rng(300 + KV + causal);
      const Vec qkv_kv = random_vec(qkv_size(sk), rng, -2, 2);
      // The same Q and K=V, written out as three separate column ranges.
      Vec qkv_none(qkv_size(sn));
      const int q = H * kHd, kv = KV * kHd;
      for (int r = 0; r < kB * kT; r++) {
        for (int i = 0; i < q + kv; i++) qkv_none[static_cast<size_t>(r) * sn.proj_dim + i] = qkv_kv[static_cast<size_t>(r) * sk.proj_dim + i];
        for (int i = 0; i < kv; i++)
          qkv_none[static_cast<size_t>(r) * sn.proj_dim + q + kv + i] = qkv_kv[static_cast<size_t>(r) * sk.proj_dim + q + i];
      }
      const AttnForward fn = run_attention_forward(sn, qkv_none), fk = run_attention_forward(sk, qkv_kv);
      for (size_t i = 0; i < fn.out.size(); i++) EXPECT_NEAR(fk.out[i], fn.out[i], 1e-13) << i;
      for (size_t i = 0; i < fn.lse.size(); i++) EXPECT_NEAR(fk.lse[i], fn.lse[i], 1e-13) << i;

      // Backward: the shared K=V gradient is dK + dV of the separate layout.
      const Vec R = random_vec(out_size(sn), rng);
      const Vec dn = run_attention_backward(sn, qkv_none, fn, R);
      const Vec dk = run_attention_backward(sk, qkv_kv, fk, R);
      for (int r = 0; r < kB * kT; r++) {
        for (int i = 0; i < q; i++)
          EXPECT_NEAR(dk[static_cast<size_t>(r) * sk.proj_dim + i], dn[static_cast<size_t>(r) * sn.proj_dim + i], 1e-13);
        for (int i = 0; i < kv; i++)
          EXPECT_NEAR(dk[static_cast<size_t>(r) * sk.proj_dim + q + i],
                      dn[static_cast<size_t>(r) * sn.proj_dim + q + i] + dn[static_cast<size_t>(r) * sn.proj_dim + q + kv + i],
                      1e-13);
      }
    }
}

// run_team's barrier: what a thread wrote before it is what every thread reads after it, round
// after round, in a team of 2 and in one of 5, more threads than the CI machines' cores (whose
// waiters must give up their cores for the others to arrive).
TEST(KernelTeam, BarrierSeparatesRounds) {
  for (int threads : {2, 5}) {
    constexpr int kRounds = 2000;
    std::vector<int> slot(threads, -1), wrong(threads, 0), team(threads, 0);
    run_team(threads, [&] {
      const int t = omp_get_thread_num();
      team[t] = omp_get_num_threads();
      for (int r = 0; r < kRounds; r++) {
        slot[t] = r;
        team_barrier();
        for (int u = 0; u < omp_get_num_threads(); u++) wrong[t] += slot[u] != r;
        team_barrier();  // nobody writes round r + 1 while another still reads round r
      }
    });
    EXPECT_EQ(team[0], threads);
    for (int t = 0; t < threads; t++) EXPECT_EQ(wrong[t], 0) << "thread " << t << " of " << threads;
  }
}

// One thread; two threads in a team the kernel opens itself; two threads of a team the caller
// runs (as a model pass does, kernels/parallel.h): the same bits.
TEST(KernelAttention, ForwardAndBackwardIndependentOfThreadCount) {
  const int saved = omp_get_max_threads();
  for (Layout l : {Layout::none, Layout::kv, Layout::qk, Layout::qkv}) {
    SCOPED_TRACE(layout_name(l));
    const int KV = (l == Layout::none || l == Layout::kv) ? 2 : 4;
    const AttentionShape s = make_shape(l, 3, 7, 4, KV, 5, true);
    std::mt19937_64 rng(17);
    const Vec qkv = random_vec(qkv_size(s), rng), R = random_vec(out_size(s), rng);
    omp_set_num_threads(1);
    const AttnForward f1 = run_attention_forward(s, qkv);
    const Vec d1 = run_attention_backward(s, qkv, f1, R);
    omp_set_num_threads(2);
    const AttnForward f2 = run_attention_forward(s, qkv);
    const Vec d2 = run_attention_backward(s, qkv, f2, R);
    AttnForward f3{Vec(out_size(s)), Vec(lse_size(s))};
    Vec d3(qkv_size(s), 0.0), tiles = attention_tiles(s, true, false);
    run_team(2, [&] {
      attention_forward(f3.out.data(), f3.lse.data(), tiles.data(), qkv.data(), s);
      attention_backward(d3.data(), tiles.data(), static_cast<double*>(nullptr), R.data(), qkv.data(), f3.lse.data(), s);
    });
    EXPECT_EQ(f1.out, f2.out);
    EXPECT_EQ(f1.lse, f2.lse);
    EXPECT_EQ(d1, d2);
    EXPECT_EQ(f1.out, f3.out);
    EXPECT_EQ(f1.lse, f3.lse);
    EXPECT_EQ(d1, d3);
  }
  omp_set_num_threads(saved);
}

// ---------------------------------------------------------------------------------------------
// AdamW: torch.optim.AdamW's update, written out.

struct TorchAdamW {
  double lr, beta1, beta2, eps, wd;
  std::vector<double> m, v;
  int64_t t = 0;
  void step(std::vector<double>& p, const std::vector<double>& grad, double grad_scale) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    t++;
    for (size_t i = 0; i < p.size(); i++) {
      const double g = grad[i] * grad_scale;
      p[i] *= 1.0 - lr * wd;
      m[i] = beta1 * m[i] + (1.0 - beta1) * g;
      v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
      const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
      const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
      p[i] -= lr / bc1 * m[i] / denom;
    }
  }
};

template <typename T>
void check_adamw(double grad_scale, double wd, double tol) {
  std::mt19937_64 rng(91);
  const size_t n = 101;
  const Vec p0 = random_vec(n, rng), g1 = random_vec(n, rng, -3, 3), g2 = random_vec(n, rng, -3, 3);
  TorchAdamW ref{1e-2, 0.9, 0.95, 1e-8, wd, {}, {}, 0};
  Vec pr = p0;
  std::vector<T> p(p0.begin(), p0.end()), m(n, T(0)), v(n, T(0));
  int64_t step = 0;
  for (const Vec* g : {&g1, &g2}) {
    step++;
    ref.step(pr, *g, grad_scale);
    const std::vector<T> gt(g->begin(), g->end());
    adamw_update(p.data(), gt.data(), m.data(), v.data(), {{0, static_cast<int64_t>(n), true}},
                 static_cast<int64_t>(n), AdamWStep{ref.lr, ref.beta1, ref.beta2, ref.eps, wd, step, grad_scale});
    for (size_t i = 0; i < n; i++) {
      EXPECT_NEAR(p[i], pr[i], tol * std::max(1.0, std::abs(pr[i]))) << "step " << step << " param " << i;
      EXPECT_NEAR(m[i], ref.m[i], tol * std::max(1.0, std::abs(ref.m[i]))) << "step " << step << " m " << i;
      EXPECT_NEAR(v[i], ref.v[i], tol * std::max(1.0, std::abs(ref.v[i]))) << "step " << step << " v " << i;
    }
  }
}

TEST(KernelAdamW, MatchesTorchFormulaDouble) { check_adamw<double>(1.0, 0.1, 1e-14); }
TEST(KernelAdamW, MatchesTorchFormulaGradScaleDouble) { check_adamw<double>(0.25, 0.1, 1e-14); }
TEST(KernelAdamW, MatchesTorchFormulaNoDecayDouble) { check_adamw<double>(1.0, 0.0, 1e-14); }
TEST(KernelAdamW, MatchesTorchFormulaFloat) { check_adamw<float>(0.5, 0.1, 2e-6); }

// Spans without decay are left undecayed, and threads slicing the buffer change nothing.
TEST(KernelAdamW, SpansAndThreads) {
  const int64_t n = 50000;  // enough for threads
  std::mt19937_64 rng(5);
  const Vec p0 = random_vec(n, rng), g = random_vec(n, rng);
  const std::vector<AdamWSpan> spans = {{0, 20000, true}, {20000, 7, false}, {20007, n - 20007, true}};
  const AdamWStep a{1e-2, 0.9, 0.95, 1e-8, 0.1, 1, 1.0};
  std::vector<Vec> results;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Vec p = p0, m(n, 0.0), v(n, 0.0);
    adamw_update(p.data(), g.data(), m.data(), v.data(), spans, n, a);
    results.push_back(p);
  }
  omp_set_num_threads(1);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  // At step 1 the update is p(1 − lr·wd) − lr·sign(g) (up to eps): decay shows in the first term.
  for (int64_t i : {int64_t{0}, int64_t{20003}, n - 1}) {
    const double decay = (i >= 20000 && i < 20007) ? 1.0 : 1.0 - 1e-3;
    EXPECT_NEAR(results[0][i], p0[i] * decay - 1e-2 * (g[i] > 0 ? 1 : -1), 1e-7) << i;  // eps/|g| ≪ 1e-7
  }
}

TEST(KernelAdamW, FirstStepByHand) {
  // Step 1 from zero moments: m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
  const double lr = 0.1, wd = 0.5, eps = 1e-8;
  double p = 2.0, g = -4.0, m = 0.0, v = 0.0;
  adamw_update(&p, &g, &m, &v, {{0, 1, true}}, 1, AdamWStep{lr, 0.9, 0.999, eps, wd, 1, 0.5});
  const double gs = -2.0;  // g · grad_scale
  EXPECT_NEAR(m, 0.1 * gs, 1e-15);
  EXPECT_NEAR(v, 0.001 * gs * gs, 1e-15);
  EXPECT_NEAR(p, 2.0 * (1 - lr * wd) - lr * gs / (std::abs(gs) + eps), 1e-12);
  EXPECT_NEAR(p, 1.9 + 0.1, 1e-7);
}

// ---------------------------------------------------------------------------------------------
// Reductions

TEST(KernelReduce, SumOfSquaresSameBitsForOneAndTwoThreads) {
  const int saved = omp_get_max_threads();
  std::mt19937_64 rng(101);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{63}, int64_t{64}, int64_t{1000}, int64_t{100003}}) {
    SCOPED_TRACE(n);
    const Vec x = random_vec(static_cast<size_t>(n), rng, -10, 10);
    const std::vector<float> xf(x.begin(), x.end());
    omp_set_num_threads(1);
    const double a = sum_of_squares(x.data(), n), af = sum_of_squares(xf.data(), n);
    omp_set_num_threads(2);
    const double b = sum_of_squares(x.data(), n), bf = sum_of_squares(xf.data(), n);
    omp_set_num_threads(3);
    const double c = sum_of_squares(x.data(), n);
    uint64_t ua, ub, uc;
    std::memcpy(&ua, &a, 8);
    std::memcpy(&ub, &b, 8);
    std::memcpy(&uc, &c, 8);
    EXPECT_EQ(ua, ub);
    EXPECT_EQ(ua, uc);
    EXPECT_EQ(std::memcmp(&af, &bf, 8), 0);
    double naive = 0;
    for (double xi : x) naive += xi * xi;
    EXPECT_NEAR(a, naive, 1e-12 * std::max(1.0, naive));
    double naive_f = 0;
    for (float xi : xf) naive_f += static_cast<double>(xi) * xi;
    EXPECT_NEAR(af, naive_f, 1e-12 * std::max(1.0, naive_f));
  }
  omp_set_num_threads(saved);
}

TEST(KernelReduce, AccumulateColumnSums) {
  std::mt19937_64 rng(111);
  for (int64_t C : {int64_t{1}, int64_t{64}, int64_t{130}}) {
    SCOPED_TRACE(C);
    const int64_t N = 13;
    const Vec src = random_vec(static_cast<size_t>(N * C), rng);
    const Vec pre = random_vec(static_cast<size_t>(C), rng);
    Vec dst = pre;
    accumulate_column_sums(dst.data(), src.data(), N, C);
    for (int64_t c = 0; c < C; c++) {
      double s = 0;  // the documented order: rows in order, then added to dst
      for (int64_t n = 0; n < N; n++) s += src[n * C + c];
      EXPECT_EQ(dst[c], pre[c] + s) << c;
    }
    // Same bits with a different thread count.
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    Vec d1 = pre;
    accumulate_column_sums(d1.data(), src.data(), N, C);
    omp_set_num_threads(2);
    Vec d2 = pre;
    accumulate_column_sums(d2.data(), src.data(), N, C);
    omp_set_num_threads(saved);
    EXPECT_EQ(d1, d2);
  }
  // N = 0 leaves dst unchanged.
  Vec dst = {1.5, -2.5};
  accumulate_column_sums(dst.data(), static_cast<const double*>(nullptr), 0, 2);
  EXPECT_EQ(dst, (Vec{1.5, -2.5}));
}

// A team of two with partial sums (each thread's own rows, then the partials in thread order) and
// a team of one: the same dw to rounding, added to what dw held; also for a weight too large for
// partials, which takes the other path.
TEST(KernelLinear, WeightGradPartialsInATeam) {
  const int saved = omp_get_max_threads();
  std::mt19937_64 rng(131);
  for (int OC : {24, 600}) {
    const int C = OC == 24 ? 10 : 500, N = 37;
    SCOPED_TRACE(testing::Message() << "OC " << OC << " partial " << weight_grad_partial(C, OC));
    const Vec dout = random_vec(static_cast<size_t>(N) * OC, rng), inp = random_vec(static_cast<size_t>(N) * C, rng);
    const Vec start = random_vec(static_cast<size_t>(OC) * C, rng);
    Vec one = start, two = start, partials(2 * static_cast<size_t>(std::max<int64_t>(weight_grad_partial(C, OC), 1)), 1e9);
    omp_set_num_threads(1);
    linear_weight_grad(one.data(), dout.data(), inp.data(), N, C, OC, partials.data());
    run_team(2, [&] { linear_weight_grad(two.data(), dout.data(), inp.data(), N, C, OC, partials.data()); });
    for (size_t i = 0; i < one.size(); i++) {
      double want = start[i];
      for (int n = 0; n < N; n++) want += dout[static_cast<size_t>(n) * OC + i / C] * inp[static_cast<size_t>(n) * C + i % C];
      ASSERT_NEAR(one[i], want, 1e-12) << i;
      ASSERT_NEAR(two[i], want, 1e-12) << i;
    }
  }
  omp_set_num_threads(saved);
}

TEST(KernelReduce, BackwardsIndependentOfThreadCount) {
  // Layer norm and embedding backward reductions promise a fixed summation order.
  const int saved = omp_get_max_threads();
  std::mt19937_64 rng(121);
  const int N = 40, C = 150;
  const Vec inp = random_vec(static_cast<size_t>(N) * C, rng), w = random_vec(C, rng), b = random_vec(C, rng);
  const Vec R = random_vec(inp.size(), rng);
  Vec out(inp.size()), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
  std::vector<int32_t> tokens(N);
  for (int i = 0; i < N; i++) tokens[i] = (i * 7) % 5;
  Vec results[2][5];
  for (int k = 0; k < 2; k++) {
    omp_set_num_threads(k + 1);
    Vec dinp(inp.size()), dw(C, 0.0), db(C, 0.0), dtok(5 * C, 0.0), dpos(10 * C, 0.0);
    layernorm_backward(dinp.data(), dw.data(), db.data(), R.data(), inp.data(), w.data(), mean.data(), rstd.data(), N, C);
    embedding_backward(dtok.data(), dpos.data(), R.data(), tokens.data(), 4, 10, C);
    results[k][0] = dinp, results[k][1] = dw, results[k][2] = db, results[k][3] = dtok, results[k][4] = dpos;
  }
  omp_set_num_threads(saved);
  for (int i = 0; i < 5; i++) EXPECT_EQ(results[0][i], results[1][i]) << "result " << i;
}

}  // namespace
}  // namespace kvtie
