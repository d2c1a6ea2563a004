#include "infer/kv_cache.h"

#include <fmt/format.h>

#include "core/units.h"
#include "kernels/kv_codec.h"
#include "kvtie/error.h"

namespace kvtie {

KvCache::KvCache(const ModelConfig& c, int batch, int capacity, KvDType dtype)
    : n_layer_(c.n_layer),
      n_kv_head_(c.n_kv_head),
      head_dim_(c.head_dim),
      batch_(batch),
      capacity_(capacity),
      dtype_(dtype),
      v_is_k_(c.v_is_k()),
      vector_bytes_(kv_vector_bytes(c.head_dim, dtype)),
      lengths_(batch, 0) {
  if (batch < 1) fail("KV cache: batch {} must be at least 1", batch);
  if (capacity < 1) fail("KV cache: capacity {} must be at least 1", capacity);
  // One allocation of exactly kv_cache_bytes(), the profiler's figure (the pages are touched as
  // rows are written). Large caches are 2 MiB aligned and ask for transparent huge pages: the
  // decode kernel streams through every row of every step, and with 4 KiB pages that is a TLB miss
  // every 16 fp32 rows.
  constexpr int64_t kHuge = int64_t{2} << 20;
  const int64_t bytes = kv_cache_bytes(c, capacity, batch, dtype);
  const bool huge = bytes >= 4 * kHuge;
  block_ = AlignedBlock(bytes, huge ? kHuge : 64, huge);
}

uint8_t* KvCache::at(int layer, int tensor, int seq, int kv_head) const {
  const int64_t tensors = v_is_k_ ? 1 : 2;
  const int64_t index = ((static_cast<int64_t>(layer) * tensors + tensor) * batch_ + seq) * n_kv_head_ + kv_head;
  return reinterpret_cast<uint8_t*>(block_.data()) + index * capacity_ * vector_bytes_;
}

void KvCache::set_length(int seq, int length) {
  if (length > capacity_) fail("KV cache: sequence {} needs {} positions, capacity is {}", seq, length, capacity_);
  lengths_[seq] = length;
}

void KvCache::write(int layer, int seq, int pos, const float* k, const float* v) {
  if (pos >= capacity_)
    fail("KV cache: position {} of sequence {} is beyond the capacity of {} tokens", pos, seq, capacity_);
  for (int g = 0; g < n_kv_head_; g++) {
    kv_encode(at(layer, 0, seq, g) + pos * vector_bytes_, k + static_cast<int64_t>(g) * head_dim_, head_dim_, dtype_);
    if (!v_is_k_)
      kv_encode(at(layer, 1, seq, g) + pos * vector_bytes_, v + static_cast<int64_t>(g) * head_dim_, head_dim_, dtype_);
  }
}

KvCacheFigures KvCache::figures(const ModelConfig& c) const {
  ModelConfig unshared = c;
  unshared.share = Share::none;
  unshared.n_kv_head = c.n_head;
  return {n_layer_, n_kv_head_, capacity_, head_dim_, batch_, dtype_, v_is_k_, bytes(),
          kv_cache_bytes(unshared, capacity_, batch_, dtype_)};
}

std::string KvCacheFigures::line() const {
  return fmt::format("kv cache: {} layers × {} kv head{} × {} pos × {} × {}{}: {} ({} sequence{}; QKV would need {})",
                     layers, kv_heads, kv_heads == 1 ? "" : "s", positions, head_dim, kv_dtype_name(dtype),
                     v_is_k ? ", K=V shared" : ", K and V", format_bytes(static_cast<double>(bytes)), sequences,
                     sequences == 1 ? "" : "s", format_bytes(static_cast<double>(qkv_bytes)));
}

}  // namespace kvtie
