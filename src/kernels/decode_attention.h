#pragma once
// Attention of one new token per sequence over the KV cache (the decode step).
//
// For each (sequence, kv head) one pass over the cached positions, in tiles, with an online
// softmax, serves every query head of the group. With K=V (share kv / qkv) each cached row is
// read and dequantised once and used for both the score and the value sum. Threads split
// (sequence, kv head, chunk of kDecodeChunk positions) items; the chunks' partial softmax states
// are merged in position order afterwards, so the result does not depend on the thread count.
//
// The row arithmetic is vectorised (AVX-512 or AVX2, chosen at compile time, with a plain C++
// fallback that is also the reference the tests compare the vector paths with). Dequantisation
// happens on the fly, a tile at a time. fp32 rows are read in place. bf16/fp16 rows are widened
// into an L1-resident float tile, but with AVX-512 BF16 bf16 rows are read as stored, by one query
// head per kv head (head_dim 64 or 128) and by whole blocks of 8 heads (decode_group.h). int8 rows
// stay integer — the query is rounded to int16 once, scores are int32 dot products with the codes
// (VNNI vpdpwssd where present; with one query head per kv head at head_dim 64 or 128, VNNI
// vpdpbusd on the codes as stored, the int16 operands split into bytes), the value sum runs on
// int16-rounded softmax weights — and each row's scale is folded into its score and its weight,
// one multiply per row instead of per element. (Head sizes that are not a multiple of 32 widen int8
// to float too, and so does the group path of decode_group.h, but on AVX-512.) int4 rows, whose
// scale changes every kInt4Group elements, are widened to float with their scales applied.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>

#include "kvtie/profile.h"

namespace kvtie {

class KvCache;

struct DecodeShape {
  int n_head, n_kv_head, head_dim;
};

// Which instruction set the row arithmetic uses. `best` is the widest this build was compiled for.
enum class DecodeIsa { scalar, avx2, avx512, best };
// Whether this build contains the path (avx2 needs __AVX2__ + __FMA__, avx512 needs AVX-512 F/BW/VL).
bool decode_isa_compiled(DecodeIsa isa);
DecodeIsa decode_isa_best();
// What `best` resolves to from now on, process-wide (benchmarks compare the paths with it); an
// Error when the path is not compiled. Default: the widest compiled path.
void set_decode_isa(DecodeIsa isa);
// Whether int8 caches with a head size that is a multiple of 32 (up to 256) take the integer
// path (default) or are widened to float like the other formats; process-wide, for tests and
// benchmarks that compare the two.
void set_decode_int_path(bool enabled);
// Whether int8 rows with one query head per kv head at head_dim 64 or 128 take the byte path
// (VNNI vpdpbusd on the codes as stored; default where compiled) or widen the codes to int16; both
// give the same results, bit for bit. Process-wide, for the test that checks that.
void set_decode_int_bytes(bool enabled);
// The path a call with `isa` takes (best → the process-wide choice); an Error when not compiled.
DecodeIsa decode_isa_resolve(DecodeIsa isa);
std::string_view decode_isa_name(DecodeIsa isa);

// Positions per work item: a long sequence is split so that one (sequence, kv head) pair still
// keeps every thread busy (MQA at batch 1). Fixed, so results do not depend on the thread count;
// threads take runs of consecutive items, so that each still reads one long stream.
inline constexpr int kDecodeChunk = 1024;
// How many consecutive items a thread takes at a time, of `items` shared by `threads`: long
// streams, yet small enough runs (1/8 of a thread's share) that a thread losing its core on a
// shared machine does not hold up the others for long. Which thread takes an item never changes
// the result.
inline int64_t decode_run_length(int64_t items, int threads) {
  return std::max<int64_t>(1, items / (8 * int64_t{threads}));
}

// The work list of a decode_attention call and its items' partial states, which the threads of
// a team making the call together share; its buffers are kept from call to call.
struct DecodeAttentionWork {
  DecodeAttentionWork();
  ~DecodeAttentionWork();
  struct State;
  std::unique_ptr<State> state;
};

// q: [B, q_stride] (head h at columns h·hd); out: [B, n_head·hd]; positions [0, lengths[b]) of
// sequence b are attended (the new token's own row must already be in the cache).
// Called outside a parallel region, it opens a team of its own when the work is worth threads.
// Inside a team (a decode step runs as one, see Decoder::step) every thread calls it with the same
// `work`, after a barrier that completes q and the cache rows, and the team's next barrier must
// come before `out` is read or the next call; without `work` the team's first thread does it all.
void decode_attention(float* out, const float* q, int64_t q_stride, const KvCache& cache, int layer,
                      const int* lengths, int B, const DecodeShape& s, DecodeIsa isa = DecodeIsa::best,
                      DecodeAttentionWork* work = nullptr);

// The dequantisation step on its own, exposed for tests: `count` stored vectors (at src_stride
// bytes) become rows of dst (at dst_stride floats, zero from hd to dst_stride). Float formats are
// widened exactly and scales[j] = 1, and so are int4 rows (codes times their group's scale); int8
// rows hold their codes as floats and scales[j] their scale, so codes · scale is exactly
// kv_decode()'s value.
void kv_rows_to_float(DecodeIsa isa, float* dst, int64_t dst_stride, float* scales, const uint8_t* src,
                      int64_t src_stride, int count, int hd, KvDType t);

}  // namespace kvtie
