// The vectorisable float exp and erf against the standard library over the ranges the kernels use.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/fast_math.h"

namespace kvtie {
namespace {

TEST(FastMath, ExpIsWithinAFewUlp) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(fast_exp(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_LT(fast_exp(-1000.0f), 1e-37f);  // saturates at the bottom of the range, never NaN
  EXPECT_GE(fast_exp(-1000.0f), 0.0f);
}

TEST(FastMath, ErfIsWithinItsBound) {
  double worst = 0;
  for (float x = -6.0f; x <= 6.0f; x += 0.0001f)
    worst = std::max(worst, std::abs(fast_erf(x) - std::erf(static_cast<double>(x))));
  // Absolute: GELU uses 1 + erf, where this is below 4 float ulp.
  EXPECT_LT(worst, 6e-7);
  EXPECT_EQ(fast_erf(-2.0f), -fast_erf(2.0f));
}

TEST(FastMath, DoubleIsTheStandardLibrary) {
  EXPECT_EQ(fast_exp(0.3), std::exp(0.3));
  EXPECT_EQ(fast_erf(0.3), std::erf(0.3));
}

}  // namespace
}  // namespace kvtie
