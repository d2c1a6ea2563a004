#include "data/images/image_decode.h"

#include <climits>
#include <memory>

#include "data/images/stb_config.h"
#include "kvtie/error.h"

#include <stb_image.h>

namespace kvtie {

void decode_image(std::string_view bytes, const std::string& path, ImageShape expected, uint8_t* chw) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) fail("{}: image file too large to decode ({} bytes)", path, bytes.size());
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> hwc(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &width,
                            &height, &channels_in_file, expected.channels),
      &stbi_image_free);
  if (!hwc) fail("{}: cannot decode image ({}; JPEG and PNG are supported)", path, stbi_failure_reason());
  if (width != expected.width || height != expected.height)
    fail("{}: image is {}x{}, expected {}x{}", path, width, height, expected.width, expected.height);
  const int64_t plane = static_cast<int64_t>(width) * height;
  for (int64_t p = 0; p < plane; p++)
    for (int c = 0; c < expected.channels; c++) chw[c * plane + p] = hwc.get()[p * expected.channels + c];
}

}  // namespace kvtie
