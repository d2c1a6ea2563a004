#include "core/npy.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <regex>

#include "core/atomic_file.h"
#include "kvtie/error.h"

namespace kvtie {

std::vector<int32_t> read_tokens_npy(const std::string& path) {
  const std::string b = read_file(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) fail("{}: not a .npy file (bad magic)", path);
  const int major = static_cast<unsigned char>(b[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) fail("{}: truncated .npy header", path);
    for (int i = 11; i >= 8; i--) header_len = (header_len << 8) | static_cast<unsigned char>(b[i]);
    header_start = 12;
  } else {
    fail("{}: unsupported .npy version {}", path, major);
  }
  if (header_start + header_len > b.size()) fail("{}: truncated .npy header", path);
  const std::string header = b.substr(header_start, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
    fail("{}: .npy header has no descr", path);
  const std::string descr = m[1];
  if (std::regex_search(header, std::regex(R"('fortran_order'\s*:\s*True)")) )
    fail("{}: fortran_order arrays are not supported", path);
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(\s*(\d+)\s*,?\s*\))"))) {
    std::smatch shape;
    std::regex_search(header, shape, std::regex(R"('shape'\s*:\s*(\([^)]*\)))"));
    fail("{}: expected a 1-D array, got shape {}", path, shape.empty() ? "?" : shape[1].str());
  }
  int64_t n = 0;
  const std::string digits = m[1];
  if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc())
    fail("{}: array length {} is too large", path, digits);
  int esize = 0;
  if (descr == "<u2") esize = 2;
  else if (descr == "<i4") esize = 4;
  else fail("{}: token dtype '{}' is not supported (use uint16 '<u2' or int32 '<i4')", path, descr);
  const size_t data_start = header_start + header_len;
  const size_t data_bytes = b.size() - data_start;
  if (static_cast<uint64_t>(n) > data_bytes / esize || data_bytes != static_cast<size_t>(n) * esize)
    fail("{}: {} data bytes for {} tokens of {} bytes (truncated?)", path, data_bytes, n, esize);
  std::vector<int32_t> tokens(n);
  const char* p = b.data() + data_start;
  for (int64_t i = 0; i < n; i++) {
    if (esize == 2) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      tokens[i] = v;
    } else {
      std::memcpy(&tokens[i], p + 4 * i, 4);
    }
  }
  return tokens;
}

void write_tokens_npy(const std::string& path, const std::vector<int32_t>& tokens) {
  const bool small = std::all_of(tokens.begin(), tokens.end(), [](int32_t t) { return t >= 0 && t < 65536; });
  std::string header = "{'descr': '" + std::string(small ? "<u2" : "<i4") +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(tokens.size()) + ",), }";
  // Pad so that magic + version + length + header + newline is a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  for (int32_t t : tokens) {
    if (small) {
      const auto v = static_cast<uint16_t>(t);
      out.append(reinterpret_cast<const char*>(&v), 2);
    } else {
      out.append(reinterpret_cast<const char*>(&t), 4);
    }
  }
  write_file_atomic(path, out);
}

}  // namespace kvtie
