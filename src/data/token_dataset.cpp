#include "data/token_dataset.h"

#include <numeric>

#include "core/rng.h"
#include "kvtie/error.h"

namespace kvtie {

PackedLoader::PackedLoader(std::vector<int32_t> tokens, int seq_len, uint64_t seed, std::string source)
    : tokens_(std::move(tokens)), seq_len_(seq_len), seed_(seed), source_(std::move(source)) {
  const int64_t n = static_cast<int64_t>(tokens_.size());
  if (n < seq_len + 1)
    fail("{}: {} tokens, fewer than one training window of seq_len + 1 = {}", source_, n, seq_len + 1);
  order_.resize((n - 1) / seq_len);
  shuffle();
}

void PackedLoader::shuffle() {
  std::iota(order_.begin(), order_.end(), 0);
  Rng rng(seed_ + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch_ + 1));
  for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; i--)
    std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
}

void PackedLoader::next(int32_t* tokens, int32_t* targets, int B, int T) {
  if (T != seq_len_) fail("{}: loader built for seq_len {}, asked for {}", source_, seq_len_, T);
  for (int b = 0; b < B; b++) {
    if (position_ == windows()) {
      epoch_++;
      position_ = 0;
      shuffle();
    }
    const int32_t* w = tokens_.data() + order_[position_++] * seq_len_;
    std::copy(w, w + T, tokens + static_cast<int64_t>(b) * T);
    std::copy(w + 1, w + T + 1, targets + static_cast<int64_t>(b) * T);
  }
}

void PackedLoader::restore(const nlohmann::json& s) {
  const int64_t epoch = s.at("epoch").get<int64_t>(), position = s.at("position").get<int64_t>();
  if (epoch < 0 || position < 0 || position > windows())
    fail("{}: saved data position (epoch {}, window {}) does not fit this data ({} windows)", source_, epoch, position,
         windows());
  epoch_ = epoch;
  position_ = position;
  shuffle();
}

}  // namespace kvtie
