#pragma once
// Incremental inference over a KV cache: prefill a prompt with the batched forward (its K/V rows
// go into the cache), then decode one token per sequence per step, each step reading the cache
// instead of recomputing the prefix.
#include <cstdint>
#include <span>

#include "core/arena.h"
#include "infer/kv_cache.h"
#include "kvtie/model.h"

namespace kvtie {

class Decoder {
 public:
  // The model must have an LM head and room for the longest prompt (max_seq ≥ prompt length).
  Decoder(Transformer<float>& model, int batch, int capacity, KvDType dtype);

  KvCache& cache() { return cache_; }
  int batch() const { return cache_.batch(); }

  // Runs `tokens` as the whole prompt of sequence `seq` (replacing what it held); returns the
  // logits [vocab] that predict the token after the prompt.
  const float* prefill(int seq, std::span<const int32_t> tokens);
  // Appends tokens[b] to every sequence b < batch() and returns logits [batch, vocab]. A token of
  // -1 leaves its sequence as it is (a finished sequence in a batch still running); its logits are
  // meaningless.
  const float* step(std::span<const int32_t> tokens);

 private:
  Transformer<float>& model_;
  KvCache cache_;
  Arena arena_;
  float *x_, *ln_, *qkv_, *att_, *branch_, *fc_, *logits_, *mean_, *rstd_;
  std::vector<int> lengths_;
};

}  // namespace kvtie
