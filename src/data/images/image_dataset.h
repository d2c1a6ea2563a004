#pragma once
// A labelled image collection read one image at a time. Readers keep only what indexing needs
// (file handles, offsets, labels) and fetch image i when asked, so a data set larger than memory
// trains as well as a small one. read() is const and safe to call from several threads at once,
// so a batch can be filled in parallel.
#include <cstdint>
#include <string>

namespace kvtie {

struct ImageShape {
  int channels = 0, height = 0, width = 0;
  int64_t numel() const { return static_cast<int64_t>(channels) * height * width; }
};

class ImageDataset {
 public:
  virtual ~ImageDataset() = default;

  virtual int64_t size() const = 0;
  virtual ImageShape shape() const = 0;
  virtual int n_classes() const = 0;
  // In [0, n_classes()); labels are checked when the data set is opened.
  virtual int label(int64_t i) const = 0;
  // What errors name: the file or folder the images come from.
  virtual const std::string& source() const = 0;

  int channels() const { return shape().channels; }
  int height() const { return shape().height; }
  int width() const { return shape().width; }

  // Image i as stored, channel-major (CHW), shape().numel() bytes.
  void read(int64_t i, uint8_t* chw) const;
  // Image i as the model takes it: CHW, scaled to [0, 1] (normalisation is image_transform.h's).
  void read(int64_t i, float* chw) const;

 protected:
  // i is already range-checked.
  virtual void read_pixels(int64_t i, uint8_t* chw) const = 0;
};

}  // namespace kvtie
