#pragma once
// Text generation for a batch of prompts: prefill each prompt, then decode all sequences together
// one token per step through the KV cache — or, with use_cache off, recompute the whole prefix at
// every step (the study's way, kept to verify and to measure against).
//
// A request must fit the cache: prompt + max_new ≤ its capacity (max_seq_len, or less under
// kv_budget_bytes), else it is an error before anything runs — unless sliding_window is set: then
// a sequence that fills the cache keeps its last window_keep tokens (default: half the capacity)
// and goes on (Decoder says how). The no-cache path slides at the same points, so both give the
// same tokens.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infer/kv_cache.h"
#include "infer/sampler.h"
#include "kvtie/model.h"
#include "kvtie/profile.h"
#include "kvtie/tokenizer.h"

namespace kvtie {

struct GenerateOptions {
  int max_new = 64;
  SamplerConfig sampler;
  std::vector<std::string> stop;  // stop strings; "<|endoftext|>" also stops
  bool use_cache = true;
  KvDType kv_dtype = KvDType::fp32;
  // The cache's capacity from a memory budget: at most the positions whose rows (every sequence,
  // every layer) fit it. 0: from the prompts and max_new alone.
  int64_t kv_budget_bytes = 0;
  bool sliding_window = false;
  int window_keep = 0;  // tokens kept when the window slides; 0: half the capacity
  // Called once the request is checked, before the prefill: what the cache holds (none without
  // use_cache).
  std::function<void(const std::optional<KvCacheFigures>&)> on_start;
};

struct Generation {
  std::string text;  // the continuation (without the prompt, cut before a stop string)
  int prompt_tokens = 0, new_tokens = 0;
};

struct GenerateStats {
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t decode_tokens = 0;
  int64_t window_slides = 0;  // times a sequence's window slid (sliding_window only)
  std::optional<KvCacheFigures> cache;  // what the cache held (none without use_cache)
};

// on_text(seq, piece) streams each sequence's new text as soon as it is final.
std::vector<Generation> generate(Transformer<float>& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                 const GenerateOptions& options,
                                 const std::function<void(int, const std::string&)>& on_text, GenerateStats* stats);

}  // namespace kvtie
