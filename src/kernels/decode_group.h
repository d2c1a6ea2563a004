#pragma once
// Decode attention for the query heads that share one kv head (GQA and MQA: group = n_head /
// n_kv_head ≥ 2), vectorised across those heads.
//
// Each cached row costs 4·group·head_dim FLOPs (score and value sum per head) on head_dim·e bytes:
// at MQA with 8 heads that is 8 FLOPs per fp32 byte and 30 per int8 byte, past this kind of
// machine's balance point, so the arithmetic bounds the step and must run near the FMA rate. Here
// a row, read (and dequantised) once into L1, meets the queries of 8 heads at a time: their 8
// scores are one vector (8 dot products reduced together), the online softmax runs on those
// vectors (one exp for 8 heads), and the value sums are register-blocked (AVX2: 2 heads × 32
// elements; AVX-512: 16 dot products reduced per pass, 4 heads × 64 elements). On AVX-512, whole
// blocks of 8 heads of bf16 and int8 rows skip the horizontal sums altogether: a row's elements
// are broadcast to every lane pair and the query vectors hold the 8 heads' elements side by side
// (vdpbf16ps on the bf16 rows as stored, vpdpwssd on int8 codes widened once per tile). The
// per-head path of decode_attention.cpp instead walks the tile once per head, with a horizontal
// sum per score and a scalar softmax: fine for one head, 3–5× slower at eight.
#include <cstdint>

#include "kernels/decode_attention.h"
#include "kvtie/profile.h"

namespace kvtie {

// Positions [0, count) of one (sequence, kv head): `count` stored vectors at `stride` bytes.
struct DecodeGroupItem {
  const uint8_t* keys;
  const uint8_t* values;  // == keys when V is K: each row is read once for both roles
  int64_t stride;
  KvDType dtype;
  int count, head_dim, group;
  const float* q;  // [group, head_dim], the group's query heads
  float scale;     // of the scores, 1/√head_dim
  // int8 rows through the integer path (decode_attention.h) where this build has it (AVX-512);
  // otherwise, and for other formats, rows are widened to float a tile at a time.
  bool int_codes = false;
};

// Whether this build and shape have the path: AVX2 + FMA, head_dim a multiple of 32 up to 256,
// group ≥ 2.
bool decode_group_supported(int head_dim, int group);

// The online softmax over the item's positions: (max, sum) of each head in ml [2·group] and its
// value sums relative to that max in acc [group, head_dim], as decode_attention's items leave them.
// isa: avx2 or avx512 (an Error when this build lacks it).
void decode_group_attend(const DecodeGroupItem& item, float* ml, float* acc, DecodeIsa isa);

}  // namespace kvtie
