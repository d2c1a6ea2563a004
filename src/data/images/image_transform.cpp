#include "data/images/image_transform.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "kvtie/error.h"

namespace kvtie {
ChannelStats compute_channel_stats(const ImageDataset& data, int64_t max_images) {
  const ImageShape shape = data.shape();
  const int64_t n = max_images < 0 ? data.size() : std::min(max_images, data.size());
  if (n <= 0) fail("{}: no images to compute channel statistics from", data.source());
  const int64_t plane = static_cast<int64_t>(shape.height) * shape.width;
  std::vector<uint64_t> sum(shape.channels, 0), sum_sq(shape.channels, 0);
  std::vector<uint8_t> image(static_cast<size_t>(shape.numel()));
  for (int64_t i = 0; i < n; i++) {
    data.read(i, image.data());
    for (int c = 0; c < shape.channels; c++)
      for (int64_t p = 0; p < plane; p++) {
        const uint64_t v = image[c * plane + p];
        sum[c] += v;
        sum_sq[c] += v * v;
      }
  }
  ChannelStats stats;
  const double count = static_cast<double>(n) * static_cast<double>(plane);
  for (int c = 0; c < shape.channels; c++) {
    const double mean = static_cast<double>(sum[c]) / count / 255.0;
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / count / (255.0 * 255.0) - mean * mean);
    const double sd = std::sqrt(var);
    stats.mean.push_back(static_cast<float>(mean));
    stats.std.push_back(sd > 1e-12 ? static_cast<float>(sd) : 1.0f);
  }
  return stats;
}

void random_crop_flip(const float* in, float* out, ImageShape shape, const AugmentOptions& options, Rng& rng) {
  const int pad = options.crop_padding;
  const int dy = static_cast<int>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad;
  const int dx = static_cast<int>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad;
  const bool flip = rng.below(2) == 1 && options.horizontal_flip;
  const int H = shape.height, W = shape.width;
  for (int c = 0; c < shape.channels; c++) {
    const float* src = in + static_cast<int64_t>(c) * H * W;
    float* dst = out + static_cast<int64_t>(c) * H * W;
    for (int y = 0; y < H; y++) {
      const int sy = y + dy;
      for (int x = 0; x < W; x++) {
        // Output pixel x shows the crop's column x, or its mirror image when flipped.
        const int sx = (flip ? W - 1 - x : x) + dx;
        dst[y * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[sy * W + sx] : 0.0f;
      }
    }
  }
}

ImageTransform::ImageTransform(ImageShape shape, ChannelStats stats, AugmentOptions augment, uint64_t seed)
    : shape_(shape), stats_(std::move(stats)), augment_(augment), seed_(seed) {
  const auto channels = static_cast<size_t>(shape.channels);
  if (stats_.mean.size() != channels || stats_.std.size() != channels)
    fail("image normalisation: {} means and {} stds for {} channels", stats_.mean.size(), stats_.std.size(), channels);
  for (float s : stats_.std)
    if (!(s > 0.0f) || !std::isfinite(s)) fail("image normalisation: std {} is not a positive number", s);
  if (augment_.crop_padding < 0 || augment_.crop_padding > std::min(shape.height, shape.width))
    fail("image augmentation: crop_padding {} is not in [0, {}]", augment_.crop_padding,
         std::min(shape.height, shape.width));
}

void ImageTransform::train(const float* in, float* out, int64_t epoch, int64_t index) const {
  Rng rng(mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch) ^ mix64(static_cast<uint64_t>(index)))));
  random_crop_flip(in, out, shape_, augment_, rng);
  normalize(out);
}

void ImageTransform::eval(const float* in, float* out) const {
  if (in != out) std::copy(in, in + shape_.numel(), out);
  normalize(out);
}

void ImageTransform::normalize(float* chw) const {
  const int64_t plane = static_cast<int64_t>(shape_.height) * shape_.width;
  for (int c = 0; c < shape_.channels; c++) {
    const float mean = stats_.mean[c], inv_std = 1.0f / stats_.std[c];
    float* p = chw + c * plane;
    for (int64_t k = 0; k < plane; k++) p[k] = (p[k] - mean) * inv_std;
  }
}

}  // namespace kvtie
