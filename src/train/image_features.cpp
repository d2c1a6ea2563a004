#include "train/image_features.h"

#include <algorithm>
#include <vector>

#include "data/images/image_batches.h"
#include "kvtie/error.h"

namespace kvtie {

FeatureTable image_features(Transformer<float>& model, const ImageDataset& data, const ImageTransform& transform) {
  const ModelConfig& c = model.config();
  if (!c.is_image() || c.head != Head::pooled)
    fail("{}: features come from an image model with a pooled head", data.source());
  const ImageShape shape = data.shape();
  if (shape.channels != c.image.channels || shape.height != c.image.height || shape.width != c.image.width)
    fail("{}: images are {}x{}x{}, the feature model takes {}x{}x{}", data.source(), shape.channels, shape.height,
         shape.width, c.image.channels, c.image.height, c.image.width);
  const int64_t n = data.size();
  const int max_batch = model.max_batch(), d = c.d_model;
  FeatureTable f;
  f.dim = d;
  f.values.resize(static_cast<size_t>(n * d));
  f.labels.resize(static_cast<size_t>(n));
  std::vector<float> images(static_cast<size_t>(max_batch * shape.numel()));
  for (int64_t start = 0; start < n; start += max_batch) {
    const int batch = static_cast<int>(std::min<int64_t>(max_batch, n - start));
    read_eval_batch(data, transform, start, batch, images.data(), f.labels.data() + start);
    model.forward_images(images.data(), nullptr, batch);
    std::copy(model.pooled(), model.pooled() + static_cast<int64_t>(batch) * d, f.values.data() + start * d);
  }
  return f;
}

}  // namespace kvtie
