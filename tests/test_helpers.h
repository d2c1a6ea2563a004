#pragma once
// Shared by the numeric tests: random parameters that make every gradient non-trivial, and error
// measures relative to a tensor's scale; the message of the Error a call must throw, and a check
// that a text contains a part.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "core/rng.h"
#include "kvtie/error.h"
#include "kvtie/model.h"

#define EXPECT_CONTAINS(s, part) EXPECT_NE((s).find(part), std::string::npos) << (s)

namespace kvtie {

// The message of the kvtie::Error that f() throws: one line, or a test failure (also when f()
// throws nothing).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no kvtie::Error";
  return "";
}

}  // namespace kvtie

namespace kvtie::test {

// Larger than the training init (std 0.3, non-zero biases, LayerNorm weights near 1) so that no
// path through the network is negligible.
template <typename T>
void randomize_params(Transformer<T>& model, uint64_t seed) {
  Rng rng(seed);
  for (const auto& t : model.layout().tensors) {
    const bool matrix = t.shape.size() >= 2;
    const bool norm_weight = !matrix && (t.name.ends_with(".weight") || t.name.ends_with(".scale"));
    for (int64_t i = 0; i < t.numel; i++) {
      const double r = rng.normal();
      model.params()[t.offset + i] = static_cast<T>(matrix ? 0.3 * r : norm_weight ? 1.0 + 0.1 * r : 0.1 * r);
    }
  }
}

// max |a − b| / max(max |b|, floor): the error relative to the reference tensor's scale. The floor
// (e.g. a fraction of the largest gradient in the model) keeps tensors whose exact gradient is 0,
// such as the key bias under softmax's shift invariance, from comparing rounding noise to noise.
template <typename A, typename B>
double scaled_error(const A* a, const B* b, int64_t n, double floor = 0.0) {
  double diff = 0.0, scale = floor;
  for (int64_t i = 0; i < n; i++) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

template <typename T>
double max_abs(const T* x, int64_t n) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) m = std::max(m, std::abs(static_cast<double>(x[i])));
  return m;
}

}  // namespace kvtie::test
