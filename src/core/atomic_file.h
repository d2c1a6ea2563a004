#pragma once
// Files we write are written to a temporary beside the target, fsynced, then renamed over it: a
// run killed mid-write leaves the previous file intact.
#include <string>
#include <string_view>

namespace kvtie {

void write_file_atomic(const std::string& path, std::string_view bytes);
std::string read_file(const std::string& path);

}  // namespace kvtie
