#include "data/images/image_dataset.h"

#include <vector>

#include "kvtie/error.h"

namespace kvtie {

void ImageDataset::read(int64_t i, uint8_t* chw) const {
  if (i < 0 || i >= size()) fail("{}: image index {} out of range [0, {})", source(), i, size());
  read_pixels(i, chw);
}

void ImageDataset::read(int64_t i, float* chw) const {
  const int64_t n = shape().numel();
  // Decoded into the tail of the output buffer: a float is 4 bytes, so the bytes never overtake
  // the floats written from the front, and no scratch allocation is needed per image.
  auto* bytes = reinterpret_cast<uint8_t*>(chw + n) - n;
  read(i, bytes);
  for (int64_t k = 0; k < n; k++) chw[k] = static_cast<float>(bytes[k]) * (1.0f / 255.0f);
}

}  // namespace kvtie
