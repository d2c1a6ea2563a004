#pragma once
// Picks the next token from logits: greedy at temperature 0, else softmax(logits / temperature)
// restricted to the top-k tokens and to the smallest set whose probability reaches top-p.
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace kvtie {

struct SamplerConfig {
  double temperature = 1.0;  // 0: greedy
  int top_k = 0;             // 0: no limit
  double top_p = 1.0;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig config);
  int32_t sample(const float* logits, int vocab);

 private:
  SamplerConfig config_;
  Rng rng_;
  std::vector<int32_t> order_;
  std::vector<double> probs_;
};

}  // namespace kvtie
