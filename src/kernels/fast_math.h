#pragma once
// exp and erf for float that the compiler can vectorise (no calls, no branches), accurate to a
// few ulp: glibc's scalar expf/erff were about a tenth of a training step. The double overloads
// are the standard library's, so the double-precision gradient checks see exact functions.
#include <bit>
#include <cmath>
#include <cstdint>

namespace kvtie {

// Cephes' expf: e^x = 2^n · e^r with n = round(x·log2 e), |r| ≤ ln2/2, e^r by a degree-7 polynomial.
// Inputs below −87.3 give ~1e-38 instead of 0 and above 88.7 saturate; callers pass x − max ≤ 0.
inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;  // not fmin/fmax: those are calls (NaN rules)
  // Round to nearest by adding and removing 1.5·2^23 (std::floor would stop vectorisation: it may
  // raise FE_INEXACT).
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 split in two for exactness
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}
inline double fast_exp(double x) { return std::exp(x); }

// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7 exactly, ≤ 6e-7 in float arithmetic), odd.
// Absolute error: fine for GELU's 1 + erf, not for erf of tiny x on its own.
inline float fast_erf(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * fast_exp(-a * a);
  return std::copysign(y, x);
}
inline double fast_erf(double x) { return std::erf(x); }

}  // namespace kvtie
