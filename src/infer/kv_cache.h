#pragma once
// The KV cache: per layer, one buffer [batch, n_kv_head, capacity, vector] for K and one for V
// **only when V is not K** (share none / qk). With share kv or qkv a token's key row is its value
// row: it is stored once, written once, and the decode kernel reads it once for both roles.
//
// One allocation of exactly kv_cache_bytes() (the profiler's figure); nothing grows later. A
// sequence that would pass its capacity is an Error, never a silent overwrite.
#include <cstdint>
#include <vector>

#include "core/aligned_block.h"
#include "kvtie/config.h"
#include "kvtie/profile.h"

namespace kvtie {

// What a cache holds, and what the same cache would need with K and V apart at every query head
// (QKV): the figures of the line `kvtie generate` prints at start, and of its --json.
struct KvCacheFigures {
  int layers, kv_heads, positions, head_dim, sequences;
  KvDType dtype;
  bool v_is_k;
  int64_t bytes, qkv_bytes;
  // "kv cache: 6 layers × 1 kv head × 2048 pos × 64 × bf16, K=V shared: 1.5 MiB (1 sequence; QKV
  // would need 12.0 MiB)"
  std::string line() const;
};

class KvCache {
 public:
  KvCache(const ModelConfig& config, int batch, int capacity, KvDType dtype);

  int batch() const { return batch_; }
  int capacity() const { return capacity_; }
  KvDType dtype() const { return dtype_; }
  bool v_is_k() const { return v_is_k_; }
  int64_t bytes() const { return block_.bytes(); }  // what was allocated
  int64_t vector_bytes() const { return vector_bytes_; }

  int length(int seq) const { return lengths_[seq]; }
  void set_length(int seq, int length);  // after writing positions [0, length)
  void reset(int seq) { lengths_[seq] = 0; }

  // Stores one token's rows for a layer: k and v are [n_kv_head, head_dim] (v null when V is K).
  void write(int layer, int seq, int pos, const float* k, const float* v);
  // The first stored vector of (layer, seq, kv head); positions follow at vector_bytes() strides.
  const uint8_t* keys(int layer, int seq, int kv_head) const { return at(layer, 0, seq, kv_head); }
  const uint8_t* values(int layer, int seq, int kv_head) const { return at(layer, v_is_k_ ? 0 : 1, seq, kv_head); }

  // What the cache holds (bytes: what was allocated) and what it would have needed without sharing.
  KvCacheFigures figures(const ModelConfig& config) const;

 private:
  uint8_t* at(int layer, int tensor, int seq, int kv_head) const;

  int n_layer_, n_kv_head_, head_dim_, batch_, capacity_;
  KvDType dtype_;
  bool v_is_k_;
  int64_t vector_bytes_;
  AlignedBlock block_;
  std::vector<int> lengths_;
};

}  // namespace kvtie
