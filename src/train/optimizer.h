#pragma once
// AdamW over a model's flat parameter buffer, with global-norm gradient clipping and the study's
// rule of skipping a step whose gradient norm is above a threshold.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/reduce.h"
#include "kvtie/model.h"
#include "train/train_config.h"

namespace kvtie {

struct StepReport {
  double grad_norm;
  bool skipped;
};

template <typename T>
class AdamW {
 public:
  explicit AdamW(int64_t n) : m_(n, T(0)), v_(n, T(0)) {}

  StepReport step(Transformer<T>& model, const TrainConfig& c, double lr) {
    const int64_t n = model.num_params();
    const double norm = std::sqrt(sum_of_squares(model.grads(), n));
    if (c.skip_grad_norm > 0 && !(norm <= c.skip_grad_norm)) return {norm, true};
    step_++;
    // As torch.nn.utils.clip_grad_norm_: the 1e-6 keeps a zero gradient finite.
    const double scale = c.grad_clip > 0 ? std::min(1.0, c.grad_clip / (norm + 1e-6)) : 1.0;
    for (const auto& t : model.layout().tensors) {
      const AdamWStep a{lr, c.beta1, c.beta2, c.eps, t.decay ? c.weight_decay : 0.0, step_, scale};
      adamw_update(model.params() + t.offset, model.grads() + t.offset, m_.data() + t.offset, v_.data() + t.offset,
                   t.numel, a);
    }
    return {norm, false};
  }

  // For checkpoints: the moments and the bias-correction step count.
  int64_t steps_taken() const { return step_; }
  std::vector<T>& first_moment() { return m_; }
  std::vector<T>& second_moment() { return v_; }
  void set_steps_taken(int64_t s) { step_ = s; }

 private:
  std::vector<T> m_, v_;  // allocated once, with the model
  int64_t step_ = 0;
};

}  // namespace kvtie
