#pragma once
// Perplexity through the KV-cache path: the same windows as evaluate_tokens(), but every
// prediction comes from a decode step that reads the cache, so the quality cost of a cache format
// (bf16, int8, int4) is measured, not assumed.
#include "infer/kv_cache.h"
#include "train/evaluate.h"

namespace kvtie {

EvalResult evaluate_tokens_cached(Transformer<float>& model, const std::vector<int32_t>& tokens, KvDType dtype,
                                  int batch, const std::string& source);

}  // namespace kvtie
