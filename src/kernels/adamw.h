#pragma once
// AdamW (decoupled weight decay, as torch.optim.AdamW) over a flat parameter buffer.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/parallel.h"

namespace kvtie {

struct AdamWStep {
  double lr;
  double beta1, beta2, eps;
  double weight_decay;  // for the spans marked decay
  int64_t step;         // 1-based, for the bias corrections
  double grad_scale;    // gradient clipping factor (1 when not clipping)
};

// A run of the flat buffer with one weight-decay setting (a tensor, or several in a row).
struct AdamWSpan {
  int64_t offset, numel;
  bool decay;
};

// One pass over the whole buffer: each thread takes one contiguous slice and walks the spans that
// cross it, so a step is one parallel region however many tensors the model has. Every element's
// update depends only on its own values, so the slicing never changes a result.
template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, const std::vector<AdamWSpan>& spans, int64_t n,
                  const AdamWStep& a) {
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  const T decay_on = static_cast<T>(1.0 - a.lr * a.weight_decay);
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2);
  const T step_size = static_cast<T>(a.lr / bc1), inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
  const T eps = static_cast<T>(a.eps), gs = static_cast<T>(a.grad_scale);
#pragma omp parallel if (worth_threads(n))
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
    for (const AdamWSpan& span : spans) {
      const int64_t begin = std::max(lo, span.offset), end = std::min(hi, span.offset + span.numel);
      const T decay = span.decay ? decay_on : T(1);
#pragma omp simd
      for (int64_t i = begin; i < end; i++) {
        const T g = grad[i] * gs;
        m[i] = b1 * m[i] + (T(1) - b1) * g;
        v[i] = b2 * v[i] + (T(1) - b2) * g * g;
        param[i] = param[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
      }
    }
  }
}

}  // namespace kvtie
