#pragma once
// PNG files through Debian's header-only stb_image_write, written atomically.
#include <cstdint>
#include <string>
#include <vector>

namespace kvtie {

// rgb: height × width × 3 bytes, row-major.
void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace kvtie
