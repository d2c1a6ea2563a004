#pragma once
// Attention of one new token per sequence over the KV cache (the decode step).
//
// For each (sequence, kv head) one pass over the cached positions, in tiles, with an online
// softmax, serves every query head of the group. With K=V (share kv / qkv) each cached row is
// read and dequantised once and used for both the score and the value sum. Threads split
// (sequence, kv head) pairs.
#include <cstdint>

namespace kvtie {

class KvCache;

struct DecodeShape {
  int n_head, n_kv_head, head_dim;
};

// q: [B, q_stride] (head h at columns h·hd); out: [B, n_head·hd]; positions [0, lengths[b]) of
// sequence b are attended (the new token's own row must already be in the cache).
void decode_attention(float* out, const float* q, int64_t q_stride, const KvCache& cache, int layer,
                      const int* lengths, int B, const DecodeShape& s);

}  // namespace kvtie
