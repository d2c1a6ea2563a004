#pragma once
// Language-model batches from a packed token stream: documents joined with <|endoftext|>, cut into
// consecutive windows of T+1 tokens (T inputs, T next-token targets: every position is a real
// token, so nothing is padded and nothing unscored is counted). Windows are visited in a seeded
// shuffled order, reshuffled each epoch; (epoch, position) is the loader's whole state.
#include <cstdint>
#include <string>
#include <vector>

#include "data/batch_source.h"

namespace kvtie {

class PackedLoader : public BatchSource {
 public:
  // `source` names the token file in errors.
  PackedLoader(std::vector<int32_t> tokens, int seq_len, uint64_t seed, std::string source);
  void next(int32_t* tokens, int32_t* targets, int B, int T) override;
  nlohmann::json state() const override { return {{"epoch", epoch_}, {"position", position_}}; }
  void restore(const nlohmann::json& s) override;

  int64_t windows() const { return static_cast<int64_t>(order_.size()); }
  int64_t epoch() const { return epoch_; }

 private:
  void shuffle();

  std::vector<int32_t> tokens_;
  int seq_len_;
  uint64_t seed_;
  std::string source_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0, position_ = 0;
};

}  // namespace kvtie
