#pragma once
// Incremental inference over a KV cache: prefill a prompt with the batched forward (its K/V rows
// go into the cache), then decode one token per sequence per step, each step reading the cache
// instead of recomputing the prefix.
//
// A sequence that reaches the end of the cache (its capacity, or the model's max_seq_len) is an
// error — unless the decoder was built with a sliding window (window_keep > 0): then, before the
// token that would not fit, the sequence keeps only its last window_keep tokens, which are
// prefilled again at positions 0 … window_keep − 1, and decoding goes on from there. Learned
// absolute positions therefore never pass max_seq_len, and the logits are always exactly those of
// a full forward over the tokens in the window (tested), the way a model that crops its context
// to the last max_seq_len tokens sees it — only the window moves in steps of
// (limit − window_keep) tokens instead of one, so that the re-prefill is paid once per step.
#include <cstdint>
#include <span>
#include <vector>

#include "core/arena.h"
#include "infer/kv_cache.h"
#include "kernels/decode_attention.h"
#include "kvtie/model.h"

namespace kvtie {

class Decoder {
 public:
  // The model must have an LM head and room for the longest prompt (max_seq ≥ prompt length).
  // window_keep > 0 turns on the sliding window (above); it must be below the window's limit,
  // min(capacity, max_seq_len).
  Decoder(Transformer<float>& model, int batch, int capacity, KvDType dtype, int window_keep = 0);

  KvCache& cache() { return cache_; }
  int batch() const { return cache_.batch(); }
  // Positions a sequence may hold: min(capacity, max_seq_len).
  int limit() const;
  // With a sliding window: the tokens sequence `seq` holds now (what its cache rows were computed
  // from), and how many times any sequence slid.
  std::span<const int32_t> window(int seq) const { return windows_.at(seq); }
  int64_t slides() const { return slides_; }

  // Runs `tokens` as the whole prompt of sequence `seq` (replacing what it held); returns the
  // logits [vocab] that predict the token after the prompt.
  const float* prefill(int seq, std::span<const int32_t> tokens);
  // Appends tokens[b] to every sequence b < batch() and returns logits [batch, vocab]. A token of
  // -1 leaves its sequence as it is (a finished sequence in a batch still running); its logits are
  // meaningless.
  const float* step(std::span<const int32_t> tokens);

 private:
  // Runs the forward over `tokens` and stores their K/V rows as positions [0, T) of `seq`.
  void fill(int seq, std::span<const int32_t> tokens);

  Transformer<float>& model_;
  KvCache cache_;
  Arena arena_;
  float *x_, *ln_, *qkv_, *att_, *branch_, *fc_, *logits_, *mean_, *rstd_;
  std::vector<int> lengths_;
  DecodeAttentionWork attention_work_;  // shared by the step's team
  int window_keep_ = 0;
  std::vector<std::vector<int32_t>> windows_;  // with a sliding window only
  int64_t slides_ = 0;
};

}  // namespace kvtie
