#pragma once
// CIFAR-10 and CIFAR-100 binary batches ("binary version" of the data sets), any number of batch
// files read as one data set in the order given. A CIFAR-10 record is 1 label byte + 3072 pixel
// bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major: already CHW); a CIFAR-100 record
// is 1 coarse label byte (20 superclasses) + 1 fine label byte (100 classes) + the same 3072.
// Images are read record by record; only the labels are loaded up front, to be range-checked.
#include <memory>
#include <string>
#include <vector>

#include "data/images/byte_source.h"
#include "data/images/image_dataset.h"

namespace kvtie {

enum class CifarVariant {
  cifar10,
  cifar100_fine,    // CIFAR-100's 100 classes
  cifar100_coarse,  // CIFAR-100's 20 superclasses
};

class CifarDataset : public ImageDataset {
 public:
  CifarDataset(CifarVariant variant, const std::vector<std::string>& batch_files);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  ImageShape shape() const override { return {3, 32, 32}; }
  int n_classes() const override { return n_classes_; }
  int label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  const std::string& source() const override { return source_; }

  // The record layout: label bytes before the pixels.
  int label_bytes() const { return label_bytes_; }
  int64_t record_bytes() const { return label_bytes_ + 3072; }

 protected:
  void read_pixels(int64_t i, uint8_t* chw) const override;

 private:
  int label_bytes_, label_offset_, n_classes_;
  std::vector<ByteSource> files_;
  std::vector<int64_t> first_record_;  // per file, the data set index of its first record
  std::vector<uint8_t> labels_;
  std::string source_;
};

// The standard batch file names under a CIFAR binary folder (cifar-10-batches-bin/ or
// cifar-100-binary/): split "train" or "test".
std::vector<std::string> cifar_batch_files(CifarVariant variant, const std::string& dir, const std::string& split);

}  // namespace kvtie
