#pragma once
// Software prefetch spread over a stream: each row read asks for the bytes `Ahead` further on.
// Asked for a tile at a time instead, the burst of ~100 prefetches held up the arithmetic behind
// it, so memory and arithmetic took turns instead of overlapping (bench/decode_kernel).
#include <cstdint>

namespace kvtie {

// How far ahead of the row being read the decode kernels prefetch the KV cache. With the
// prefetches spread over the rows the fp32 kernel read its rows faster than a plain read of them
// on the AVX2 machine (16–20 GB/s; asked for a tile at a time, 13–17).
inline constexpr int64_t kCacheAhead = 4096;
// The value pass, twice as far. With separate V it reads its own stream. With K=V it reads the
// rows the score pass just read, so at kCacheAhead its prefetches would only repeat the score
// pass's: twice as far on, it asks for the tile after, and memory keeps streaming while the value
// arithmetic runs (on the AVX-512 machine, K=V fp32 48 → 62 GB/s; QKV unchanged).
inline constexpr int64_t kValueAhead = 2 * kCacheAhead;
// The score passes of the kernels that read bf16 rows or int8 codes as stored, one query head per
// kv head (attend_bf16, attend_int_bytes): as far as kValueAhead, where the next tile of 64 bf16
// rows starts. Alternated with kCacheAhead on the AVX-512 machine, at 8k × 8 the K=V attention
// alone took 1.09× (int8) and 1.04× (bf16, both with tiles of 64) less time from memory; 12 and
// 16 KiB gained less, and the group path (decode_group.cpp) lost 3–7% at 8 KiB (12-08).
inline constexpr int64_t kPackedAhead = kValueAhead;

// Asks for the cache lines of [p, p + bytes). Prefetches do not fault: asking past the end of a
// buffer is harmless.
inline void prefetch_bytes(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t x = 0; x < bytes; x += 64) __builtin_prefetch(c + x);
  __builtin_prefetch(c + bytes - 1);
}

// Asks for [row + offset, row + offset + bytes): the row read that far on.
inline void prefetch_at(const void* row, int64_t offset, int64_t bytes) {
  prefetch_bytes(static_cast<const char*>(row) + offset, bytes);
}

// Asks for [row + Ahead, row + Ahead + bytes): the row that far on in the stream.
template <int64_t Ahead>
inline void prefetch_ahead(const void* row, int64_t bytes) {
  prefetch_bytes(static_cast<const char*>(row) + Ahead, bytes);
}

}  // namespace kvtie
