#pragma once
// How one head vector (head_dim floats of one token) is stored in the KV cache. int8 and int4 are
// symmetric quantisation. int8: the codes, then one fp32 scale (max |x| / 127). int4: the codes, two
// per byte (element 2k in the low nibble of byte k), then one fp16 scale per group of kInt4Group
// elements (the group's max |x| / 7). The byte sizes are kv_vector_bytes() of
// include/kvtie/profile.h, the profiler's contract.
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
// x as hi + lo bf16 (16 significant bits): the bf16 kernels' queries, whose products with bf16
// rows are exact in fp32.
inline void split_bf16(float x, uint16_t& hi, uint16_t& lo) {
  hi = to_bf16(x);
  lo = to_bf16(x - from_bf16(hi));
}

// The integer decode path's query: x[0, n) rounded to int16 at ±32767 for its largest magnitude;
// returns what one unit of the codes is worth (0 for a zero vector).
inline float round_to_int16(int16_t* codes, const float* x, int n) {
  float most = 0;
  for (int i = 0; i < n; i++) most = std::max(most, std::abs(x[i]));
  const float mul = most > 0 ? 32767.0f / most : 0.0f;
  for (int i = 0; i < n; i++) codes[i] = static_cast<int16_t>(std::nearbyint(x[i] * mul));
  return most / 32767.0f;
}

// int4: where group g's fp16 scale is stored, the scale as float, and code i (−8 … 7).
inline int64_t int4_scale_offset(int hd, int g) { return (static_cast<int64_t>(hd) + 1) / 2 + 2 * g; }
inline float int4_scale(const uint8_t* src, int hd, int g) {
  _Float16 h;
  std::memcpy(&h, src + int4_scale_offset(hd, g), 2);
  return static_cast<float>(h);
}
inline int int4_code(const uint8_t* src, int i) {
  const int nib = (src[i / 2] >> (i % 2 ? 4 : 0)) & 0xf;
  return nib >= 8 ? nib - 16 : nib;
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
    case KvDType::int8: {
      float amax = 0;
      for (int i = 0; i < hd; i++) amax = std::max(amax, std::abs(x[i]));
      const float scale = amax > 0 ? amax / 127.f : 1.f;
      const float inv = 1.f / scale;
      for (int i = 0; i < hd; i++) dst[i] = static_cast<uint8_t>(static_cast<int8_t>(std::lrint(x[i] * inv)));
      std::memcpy(dst + hd, &scale, 4);
      return;
    }
    case KvDType::int4: {
      std::memset(dst, 0, (static_cast<size_t>(hd) + 1) / 2);
      for (int g = 0; g * kInt4Group < hd; g++) {
        const int from = g * kInt4Group, to = std::min(hd, from + kInt4Group);
        float amax = 0;
        for (int i = from; i < to; i++) amax = std::max(amax, std::abs(x[i]));
        // The codes are rounded against the stored (fp16) scale, so that decoding multiplies them
        // by exactly the scale they were made with.
        const _Float16 scale = static_cast<_Float16>(std::min(amax / 7.f, 65504.f));  // fp16's largest
        const float s = static_cast<float>(scale), inv = s > 0 ? 1.f / s : 0.f;
        for (int i = from; i < to; i++) {
          const long q = std::clamp(std::lrint(x[i] * inv), -7L, 7L) & 0xf;  // two's complement nibble
          dst[i / 2] |= static_cast<uint8_t>(i % 2 ? q << 4 : q);
        }
        std::memcpy(dst + int4_scale_offset(hd, g), &scale, 2);
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
    case KvDType::int4:
      for (int i = 0; i < hd; i++) x[i] = static_cast<float>(int4_code(src, i)) * int4_scale(src, hd, i / kInt4Group);
      return;
  }
}

}  // namespace kvtie
