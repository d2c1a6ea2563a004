#pragma once
// What happens to an image between the reader and the model, in ImageDataset's CHW float layout
// (pixels in [0, 1]): the optional training augmentations (random crop from a zero-padded image,
// horizontal flip), then per-channel normalisation (x − mean) / std. Padding is black before
// normalisation, as torchvision's RandomCrop(padding) followed by Normalize does.
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "data/images/image_dataset.h"

namespace kvtie {

struct ChannelStats {
  std::vector<float> mean, std;  // one per channel, of pixels scaled to [0, 1]
};

// Mean and standard deviation of each channel over the first `max_images` images (all when < 0).
// Compute them on the training split and use them for every split. The sums are exact integers,
// so the result does not depend on the order of images. A channel that never varies gets std 1.
ChannelStats compute_channel_stats(const ImageDataset& data, int64_t max_images = -1);

struct AugmentOptions {
  int crop_padding = 0;          // crop the original size from the image padded by this much on each side
  bool horizontal_flip = false;  // mirror left-right with probability 1/2
};

// One draw of crop offset and flip from `rng` (always three numbers, whatever the options, so that
// the stream's position does not depend on them); `out` must not overlap `in`.
void random_crop_flip(const float* in, float* out, ImageShape shape, const AugmentOptions& options, Rng& rng);

class ImageTransform {
 public:
  ImageTransform(ImageShape shape, ChannelStats stats, AugmentOptions augment = {}, uint64_t seed = 0);

  // The training view of sample `index` in `epoch`. Its crop and flip come from an Rng seeded by
  // (seed, epoch, index) alone, so they do not depend on thread count or on the order samples are
  // processed in, and a resumed run sees the same crops. `out` must not overlap `in`.
  void train(const float* in, float* out, int64_t epoch, int64_t index) const;
  // The evaluation view: normalisation only. `in` may be `out`.
  void eval(const float* in, float* out) const;

  const ChannelStats& stats() const { return stats_; }
  const AugmentOptions& augment() const { return augment_; }

 private:
  void normalize(float* chw) const;

  ImageShape shape_;
  ChannelStats stats_;
  AugmentOptions augment_;
  uint64_t seed_;
};

}  // namespace kvtie
