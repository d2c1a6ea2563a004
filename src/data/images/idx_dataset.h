#pragma once
// MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST): an images file (magic 0x00000803, then
// big-endian count, rows, cols, then one byte per pixel) and a labels file (magic 0x00000801, then
// count, then one byte per label), each raw or gzipped. Raw image files are read image by image;
// gzipped ones are decompressed into memory once (see byte_source.h). Labels are always loaded
// (one byte per image) so that they can be range-checked up front.
#include <string>
#include <vector>

#include "data/images/byte_source.h"
#include "data/images/image_dataset.h"

namespace kvtie {

class IdxDataset : public ImageDataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, int n_classes = 10);

  int64_t size() const override { return count_; }
  ImageShape shape() const override { return shape_; }
  int n_classes() const override { return n_classes_; }
  int label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  const std::string& source() const override { return images_.path(); }

 protected:
  void read_pixels(int64_t i, uint8_t* chw) const override;

 private:
  ByteSource images_;
  std::vector<uint8_t> labels_;
  int64_t count_ = 0;
  ImageShape shape_;
  int n_classes_;
};

struct IdxFiles {
  std::string images, labels;
};

// The standard MNIST file names in `dir` for split "train" (train-images-idx3-ubyte,
// train-labels-idx1-ubyte) or "test" (t10k-…), each gzipped (.gz) or not, whichever is there.
IdxFiles idx_files(const std::string& dir, const std::string& split);

}  // namespace kvtie
