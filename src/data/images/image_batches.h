#pragma once
// Training batches from a labelled image data set, epoch by epoch: each epoch is a permutation of
// the images drawn from (seed, epoch) alone, cut into batches of `batch_size` in that order; the
// images left over at the end of an epoch (size % batch_size) are not used in it (PyTorch's
// drop_last), so every epoch has the same number of full batches. Each image goes through
// ImageTransform::train with its (epoch, index): its crop and flip depend only on those.
//
// The state, {epoch, batch}, is all a resumed run needs to draw the same batches as an
// uninterrupted one: the permutation is recomputed from the seed.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "data/images/image_dataset.h"
#include "data/images/image_transform.h"

namespace kvtie {

// Images [start, start + count) of `data` in order, through the evaluation view of `transform`
// (normalisation only), read in parallel: images [count, C, H, W], labels [count].
void read_eval_batch(const ImageDataset& data, const ImageTransform& transform, int64_t start, int count,
                     float* images, int32_t* labels);

class ImageBatchSource {
 public:
  // Errors (naming the data set) when it holds fewer than batch_size images.
  ImageBatchSource(std::shared_ptr<const ImageDataset> data, ImageTransform transform, int batch_size, uint64_t seed);

  // images [batch_size, C, H, W] (normalised training views), labels [batch_size]. The batch's
  // images are read and transformed in parallel (OpenMP); the result does not depend on the
  // thread count.
  void next(float* images, int32_t* labels);

  int batch_size() const { return batch_size_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Epochs completed, with the current one's fraction: epoch + batch / batches_per_epoch.
  double epochs_done() const;

  nlohmann::json state() const { return {{"epoch", epoch_}, {"batch", batch_}}; }
  void restore(const nlohmann::json& state);

  // The image order of an epoch (for tests).
  std::vector<int64_t> permutation(int64_t epoch) const;

 private:
  std::shared_ptr<const ImageDataset> data_;
  ImageTransform transform_;
  int batch_size_;
  uint64_t seed_;
  int64_t batches_per_epoch_;
  int64_t epoch_ = 0, batch_ = 0;    // the next batch to draw
  int64_t order_epoch_ = -1;         // the epoch `order_` is the permutation of
  std::vector<int64_t> order_;
  std::vector<float> pixels_;        // [batch_size, C, H, W] as read, before the transform
};

}  // namespace kvtie
