#pragma once
// JPEG/PNG bytes to the CHW uint8 layout of ImageDataset, through stb_image.
#include <cstdint>
#include <string>
#include <string_view>

#include "data/images/image_dataset.h"

namespace kvtie {

// Decodes `bytes` (the contents of `path`, which errors name) into `chw`, which holds
// expected.numel() bytes. Grayscale and alpha images are converted to `expected.channels`
// (TinyImageNet has some grayscale JPEGs among its colour ones); an image of another width or
// height is an error, never silently resized.
void decode_image(std::string_view bytes, const std::string& path, ImageShape expected, uint8_t* chw);

}  // namespace kvtie
