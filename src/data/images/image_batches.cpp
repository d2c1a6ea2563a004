#include "data/images/image_batches.h"

#include <exception>
#include <numeric>
#include <utility>

#include "core/rng.h"
#include "kvtie/error.h"

namespace kvtie {

void read_eval_batch(const ImageDataset& data, const ImageTransform& transform, int64_t start, int count,
                     float* images, int32_t* labels) {
  const int64_t pixels = data.shape().numel();
  std::exception_ptr error;  // an exception must not leave an OpenMP region
#pragma omp parallel for schedule(static)
  for (int b = 0; b < count; b++) {
    try {
      float* x = images + b * pixels;
      data.read(start + b, x);
      transform.eval(x, x);
      labels[b] = data.label(start + b);
    } catch (...) {
#pragma omp critical(kvtie_eval_batch_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

ImageBatchSource::ImageBatchSource(std::shared_ptr<const ImageDataset> data, ImageTransform transform,
                                   int batch_size, uint64_t seed)
    : data_(std::move(data)), transform_(std::move(transform)), batch_size_(batch_size), seed_(seed) {
  if (batch_size_ < 1) fail("image batches: batch size {} is below 1", batch_size_);
  if (data_->size() < batch_size_)
    fail("{}: {} images, fewer than one batch of {}", data_->source(), data_->size(), batch_size_);
  batches_per_epoch_ = data_->size() / batch_size_;
  pixels_.resize(static_cast<size_t>(batch_size_ * data_->shape().numel()));
}

std::vector<int64_t> ImageBatchSource::permutation(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(data_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Fisher–Yates from an Rng of (seed, epoch) alone.
  Rng rng(seed_ ^ (0x5eed0fe90c4ULL * static_cast<uint64_t>(epoch + 1)));
  for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

double ImageBatchSource::epochs_done() const {
  return static_cast<double>(epoch_) + static_cast<double>(batch_) / static_cast<double>(batches_per_epoch_);
}

void ImageBatchSource::restore(const nlohmann::json& state) {
  const int64_t epoch = state.at("epoch").get<int64_t>(), batch = state.at("batch").get<int64_t>();
  if (epoch < 0 || batch < 0 || batch > batches_per_epoch_)
    fail("image batches: checkpointed position epoch {} batch {} does not fit {} batches per epoch", epoch, batch,
         batches_per_epoch_);
  epoch_ = epoch;
  batch_ = batch;
}

void ImageBatchSource::next(float* images, int32_t* labels) {
  if (batch_ == batches_per_epoch_) {  // the epoch ends lazily, so that epochs_done() reaches a whole number
    epoch_++;
    batch_ = 0;
  }
  if (order_epoch_ != epoch_) {
    order_ = permutation(epoch_);
    order_epoch_ = epoch_;
  }
  const int64_t n = data_->shape().numel();
  const int64_t first = batch_ * batch_size_;
  const int64_t epoch = epoch_;
  std::exception_ptr error;  // a read that fails (an undecodable file) is rethrown outside the parallel loop
#pragma omp parallel for schedule(static)
  for (int b = 0; b < batch_size_; b++) {
    const int64_t index = order_[static_cast<size_t>(first + b)];
    float* raw = pixels_.data() + b * n;
    try {
      data_->read(index, raw);
      transform_.train(raw, images + b * n, epoch, index);
      labels[b] = data_->label(index);
    } catch (...) {
#pragma omp critical(kvtie_image_batch_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  batch_++;
}

}  // namespace kvtie
