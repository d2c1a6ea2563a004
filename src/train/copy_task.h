#pragma once
// The built-in "copy" language-modelling task: [x1 … xk, SEP, x1 … xk] with random xi. Only the
// copied half is scored, so a model that learns to look back (an induction head) drives the loss
// toward 0 while the unscored first half stays at chance.
#include <cstdint>

#include "core/rng.h"

namespace kvtie {

constexpr int32_t kCopySeparator = 0;

// tokens, targets: [B, Tn]; targets are next tokens inside the copy, -1 elsewhere. Needs vocab ≥ 3.
void make_copy_batch(int32_t* tokens, int32_t* targets, int B, int Tn, int vocab, Rng& rng);

}  // namespace kvtie
