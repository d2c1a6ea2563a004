#pragma once
// AdamW (decoupled weight decay, as torch.optim.AdamW) over one contiguous parameter range.
#include <cmath>
#include <cstdint>

#include "kernels/parallel.h"

namespace kvtie {

struct AdamWStep {
  double lr;
  double beta1, beta2, eps;
  double weight_decay;  // already zero for parameters that are not decayed
  int64_t step;         // 1-based, for the bias corrections
  double grad_scale;    // gradient clipping factor (1 when not clipping)
};

template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& a) {
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  const T decay = static_cast<T>(1.0 - a.lr * a.weight_decay);
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2);
  const T step_size = static_cast<T>(a.lr / bc1), inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
  const T eps = static_cast<T>(a.eps), gs = static_cast<T>(a.grad_scale);
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; i++) {
    const T g = grad[i] * gs;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    param[i] = param[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace kvtie
