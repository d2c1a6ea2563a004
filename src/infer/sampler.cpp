#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kvtie/error.h"

namespace kvtie {

Sampler::Sampler(SamplerConfig config) : config_(config), rng_(config.seed) {
  if (!(config.temperature >= 0)) fail("--temperature must be >= 0");
  if (config.top_k < 0) fail("--top-k must be >= 0");
  if (!(config.top_p > 0 && config.top_p <= 1)) fail("--top-p must be in (0, 1]");
}

int32_t Sampler::sample(const float* logits, int vocab) {
  if (config_.temperature == 0) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  order_.resize(vocab);
  std::iota(order_.begin(), order_.end(), 0);
  const int k = config_.top_k > 0 ? std::min(config_.top_k, vocab) : vocab;
  // Highest logits first; ties by id so the order is deterministic.
  auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), higher);
  probs_.resize(k);
  const double top = logits[order_[0]];
  double sum = 0;
  for (int i = 0; i < k; i++) sum += probs_[i] = std::exp((logits[order_[i]] - top) / config_.temperature);
  int keep = k;
  if (config_.top_p < 1) {
    double mass = 0;
    for (int i = 0; i < k; i++) {
      mass += probs_[i] / sum;
      if (mass >= config_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (int i = 0; i < keep; i++) total += probs_[i];
  double r = rng_.uniform() * total;
  for (int i = 0; i < keep; i++) {
    r -= probs_[i];
    if (r < 0) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace kvtie
