#include "data/copy_task.h"

#include "kernels/softmax_xent.h"

namespace kvtie {

void make_copy_batch(int32_t* tokens, int32_t* targets, int B, int Tn, int vocab, Rng& rng) {
  const int k = (Tn - 1) / 2;  // copied length; an odd leftover position at the end is padding
  for (int b = 0; b < B; b++) {
    int32_t* x = tokens + static_cast<int64_t>(b) * Tn;
    int32_t* y = targets + static_cast<int64_t>(b) * Tn;
    for (int t = 0; t < k; t++) x[t] = 1 + static_cast<int32_t>(rng.below(vocab - 1));
    x[k] = kCopySeparator;
    for (int t = 0; t < k; t++) x[k + 1 + t] = x[t];
    for (int t = 2 * k + 1; t < Tn; t++) x[t] = kCopySeparator;
    // Position t predicts x[t+1]; score the predictions of the copied tokens only.
    for (int t = 0; t < Tn; t++) y[t] = (t >= k && t < 2 * k) ? x[t + 1] : kIgnoreIndex;
  }
}

}  // namespace kvtie
