#include "analysis/png.h"

#include "core/atomic_file.h"
#include "kvtie/error.h"

// stb_image_write's implementation is compiled here (a system include: its warnings are not ours).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

namespace kvtie {

void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height) {
  if (static_cast<int64_t>(rgb.size()) != static_cast<int64_t>(width) * height * 3)
    fail("{}: {} bytes for a {}×{} RGB image", path, rgb.size(), width, height);
  std::string bytes;
  auto sink = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(sink, &bytes, width, height, 3, rgb.data(), width * 3))
    fail("{}: PNG encoding failed", path);
  write_file_atomic(path, bytes);
}

}  // namespace kvtie
