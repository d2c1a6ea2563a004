#pragma once
// 1-D token arrays in NumPy's .npy format (uint16 or int32, little-endian), the pre-tokenized data
// format of DESIGN.md §5.
#include <cstdint>
#include <string>
#include <vector>

namespace kvtie {

std::vector<int32_t> read_tokens_npy(const std::string& path);
// Writes uint16 when every token fits, else int32; atomically.
void write_tokens_npy(const std::string& path, const std::vector<int32_t>& tokens);

}  // namespace kvtie
