#pragma once
// How one head vector (head_dim floats of one token) is stored in the KV cache. int8 and int4 are
// symmetric per-vector quantisation: the codes, then one fp32 scale (max |x| / 127 or / 7). The byte
// sizes are kv_vector_bytes() of include/kvtie/profile.h, the profiler's contract.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kvtie/profile.h"

namespace kvtie {

inline uint16_t to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// The integer decode path's query: x[0, n) rounded to int16 at ±32767 for its largest magnitude;
// returns what one unit of the codes is worth (0 for a zero vector).
inline float round_to_int16(int16_t* codes, const float* x, int n) {
  float most = 0;
  for (int i = 0; i < n; i++) most = std::max(most, std::abs(x[i]));
  const float mul = most > 0 ? 32767.0f / most : 0.0f;
  for (int i = 0; i < n; i++) codes[i] = static_cast<int16_t>(std::nearbyint(x[i] * mul));
  return most / 32767.0f;
}

inline void kv_encode(uint8_t* dst, const float* x, int hd, KvDType t) {
  switch (t) {
    case KvDType::fp32: std::memcpy(dst, x, sizeof(float) * hd); return;
    case KvDType::bf16:
      for (int i = 0; i < hd; i++) {
        const uint16_t h = to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvDType::fp16:
      for (int i = 0; i < hd; i++) {
        const _Float16 h = static_cast<_Float16>(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvDType::int8:
    case KvDType::int4: {
      const bool int8 = t == KvDType::int8;
      const float qmax = int8 ? 127.f : 7.f;
      float amax = 0;
      for (int i = 0; i < hd; i++) amax = std::max(amax, std::abs(x[i]));
      const float scale = amax > 0 ? amax / qmax : 1.f;
      const float inv = 1.f / scale;
      if (int8) {
        for (int i = 0; i < hd; i++) dst[i] = static_cast<uint8_t>(static_cast<int8_t>(std::lrint(x[i] * inv)));
        std::memcpy(dst + hd, &scale, 4);
      } else {
        const size_t packed = (static_cast<size_t>(hd) + 1) / 2;
        std::memset(dst, 0, packed);
        for (int i = 0; i < hd; i++) {
          const int q = static_cast<int>(std::lrint(x[i] * inv)) & 0xf;  // two's complement nibble
          dst[i / 2] |= static_cast<uint8_t>(i % 2 ? q << 4 : q);
        }
        std::memcpy(dst + packed, &scale, 4);
      }
      return;
    }
  }
}

inline void kv_decode(float* x, const uint8_t* src, int hd, KvDType t) {
  switch (t) {
    case KvDType::fp32: std::memcpy(x, src, sizeof(float) * hd); return;
    case KvDType::bf16:
      for (int i = 0; i < hd; i++) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        x[i] = from_bf16(h);
      }
      return;
    case KvDType::fp16:
      for (int i = 0; i < hd; i++) {
        _Float16 h;
        std::memcpy(&h, src + 2 * i, 2);
        x[i] = static_cast<float>(h);
      }
      return;
    case KvDType::int8: {
      float scale;
      std::memcpy(&scale, src + hd, 4);
      for (int i = 0; i < hd; i++) x[i] = static_cast<float>(static_cast<int8_t>(src[i])) * scale;
      return;
    }
    case KvDType::int4: {
      const size_t packed = (static_cast<size_t>(hd) + 1) / 2;
      float scale;
      std::memcpy(&scale, src + packed, 4);
      for (int i = 0; i < hd; i++) {
        const int nib = (src[i / 2] >> (i % 2 ? 4 : 0)) & 0xf;
        x[i] = static_cast<float>(nib >= 8 ? nib - 16 : nib) * scale;
      }
      return;
    }
  }
}

}  // namespace kvtie
