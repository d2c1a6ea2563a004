#pragma once
// The linear layers of a decode step: out[N, OC] = inp[N, C] · wᵀ + b for a handful of rows (one
// per sequence). The weights are what a decode step reads, so each weight row is streamed once
// and multiplied with all N inputs while it is in registers; threads split the output columns
// (team_for: inside a team, every thread of it must call this). BLAS at N = 2 … 8 copies (packs)
// the whole weight matrix first, which costs about as much again.
//
// Vectorised like decode_attention (AVX-512, AVX2, plain C++); each output is summed in an order
// that depends on neither the thread count nor the schedule. More than kDecodeLinearMaxRows rows
// go to the BLAS GEMM (linear_forward).
#include <cstdint>

#include "kernels/decode_attention.h"

namespace kvtie {

inline constexpr int kDecodeLinearMaxRows = 8;

// w [OC, C], b [OC] or null.
void decode_linear(float* out, const float* inp, const float* w, const float* b, int N, int C, int OC,
                   DecodeIsa isa = DecodeIsa::best);

}  // namespace kvtie
