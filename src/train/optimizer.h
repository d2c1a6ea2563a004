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
    if (spans_.empty()) spans_ = decay_spans(model.layout());
    adamw_update(model.params(), model.grads(), m_.data(), v_.data(), spans_, n,
                 {lr, c.beta1, c.beta2, c.eps, c.weight_decay, step_, scale});
    return {norm, false};
  }

  // For checkpoints: the moments and the bias-correction step count.
  int64_t steps_taken() const { return step_; }
  std::vector<T>& first_moment() { return m_; }
  std::vector<T>& second_moment() { return v_; }
  void set_steps_taken(int64_t s) { step_ = s; }

 private:
  // Neighbouring tensors with the same decay setting merge into one span.
  static std::vector<AdamWSpan> decay_spans(const ParamLayout& layout) {
    std::vector<AdamWSpan> spans;
    for (const auto& t : layout.tensors) {
      if (!spans.empty() && spans.back().decay == t.decay && spans.back().offset + spans.back().numel == t.offset)
        spans.back().numel += t.numel;
      else
        spans.push_back({t.offset, t.numel, t.decay});
    }
    return spans;
  }

  std::vector<T> m_, v_;  // allocated once, with the model
  std::vector<AdamWSpan> spans_;
  int64_t step_ = 0;
};

}  // namespace kvtie
