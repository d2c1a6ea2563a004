#pragma once
// Software prefetch spread over a stream: each row read asks for the bytes `Ahead` further on.
// Asked for a tile at a time instead, the burst of ~100 prefetches held up the arithmetic behind
// it, so memory and arithmetic took turns instead of overlapping (bench/decode_kernel).
#include <cstdint>

namespace kvtie {

// Asks for [row + Ahead, row + Ahead + bytes). Prefetches do not fault: asking past the end of
// a buffer is harmless.
template <int64_t Ahead>
inline void prefetch_ahead(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row) + Ahead;
  for (int64_t x = 0; x < bytes; x += 64) __builtin_prefetch(p + x);
  __builtin_prefetch(p + bytes - 1);
}

}  // namespace kvtie
