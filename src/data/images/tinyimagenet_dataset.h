#pragma once
// TinyImageNet (tiny-imagenet-200) in its distributed folder layout:
//   root/wnids.txt                       one WordNet id per line; its line order is the class index
//   root/train/<wnid>/images/*.JPEG      training images of that class
//   root/val/images/*.JPEG               validation images, labelled by
//   root/val/val_annotations.txt         "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1" per line
// Opening lists the files and checks the labels and that every image is there; each image is read
// and decoded (stb_image) only when read(i) asks for it. Images must be 64x64; grayscale ones are
// converted to RGB.
#include <string>
#include <vector>

#include "data/images/image_dataset.h"

namespace kvtie {

class TinyImageNetDataset : public ImageDataset {
 public:
  // split: "train" or "val" (the test split has no labels).
  TinyImageNetDataset(const std::string& root, const std::string& split);

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  ImageShape shape() const override { return {3, 64, 64}; }
  int n_classes() const override { return static_cast<int>(wnids_.size()); }
  int label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  const std::string& source() const override { return source_; }

  const std::vector<std::string>& wnids() const { return wnids_; }
  const std::string& file(int64_t i) const { return files_[static_cast<size_t>(i)]; }

 protected:
  void read_pixels(int64_t i, uint8_t* chw) const override;

 private:
  void list_train(const std::string& root);
  void list_val(const std::string& root);

  std::vector<std::string> wnids_;
  std::vector<std::string> files_;
  std::vector<int> labels_;
  std::string source_;
};

}  // namespace kvtie
