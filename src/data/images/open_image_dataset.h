#pragma once
// From a description of where images are (as a config gives it) to the reader for their format.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/images/idx_dataset.h"
#include "data/images/image_dataset.h"

namespace kvtie {

struct ImageDataSpec {
  // "mnist", "fashion-mnist" or "idx" (the same reader), "cifar10", "cifar100" (fine labels),
  // "cifar100-coarse", "tinyimagenet".
  std::string format;
  // idx formats: {folder with the standard MNIST names} or {images file, labels file};
  //   fashion-mnist may leave it empty for Debian's dataset-fashion-mnist.
  // cifar formats: {folder with the standard batch names} or the batch files themselves.
  // tinyimagenet: {the tiny-imagenet-200 folder}.
  std::vector<std::string> paths;
  // "train" or "test" ("test" is TinyImageNet's labelled "val"); unused when files are named.
  std::string split = "train";
};

std::unique_ptr<ImageDataset> open_image_dataset(const ImageDataSpec& spec);

// Where Debian's dataset-fashion-mnist puts the IDX files (gzipped).
inline constexpr const char* kDebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST's files for split "train" or "test" in `dir`, or nullopt when they are not there
// (the package is not installed).
std::optional<IdxFiles> find_fashion_mnist(const std::string& split, const std::string& dir = kDebianFashionMnistDir);

}  // namespace kvtie
