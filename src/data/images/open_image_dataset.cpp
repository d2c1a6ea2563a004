#include "data/images/open_image_dataset.h"

#include <filesystem>

#include "data/images/cifar_dataset.h"
#include "data/images/tinyimagenet_dataset.h"
#include "kvtie/error.h"

namespace kvtie {
namespace fs = std::filesystem;
namespace {

std::unique_ptr<ImageDataset> open_idx(const ImageDataSpec& spec) {
  if (spec.paths.empty() && spec.format == "fashion-mnist") {
    const auto files = find_fashion_mnist(spec.split);
    if (!files)
      fail("{}: Fashion-MNIST is not there (install Debian's dataset-fashion-mnist: scripts/setup)",
           kDebianFashionMnistDir);
    return std::make_unique<IdxDataset>(files->images, files->labels);
  }
  if (spec.paths.size() == 1) {
    const IdxFiles files = idx_files(spec.paths[0], spec.split);
    return std::make_unique<IdxDataset>(files.images, files.labels);
  }
  if (spec.paths.size() == 2) return std::make_unique<IdxDataset>(spec.paths[0], spec.paths[1]);
  fail("image data '{}': give a folder, or an images file and a labels file ({} paths given)", spec.format,
       spec.paths.size());
}

std::unique_ptr<ImageDataset> open_cifar(const ImageDataSpec& spec, CifarVariant variant) {
  if (spec.paths.empty()) fail("image data '{}': give a folder or batch files", spec.format);
  if (spec.paths.size() == 1 && fs::is_directory(spec.paths[0]))
    return std::make_unique<CifarDataset>(variant, cifar_batch_files(variant, spec.paths[0], spec.split));
  return std::make_unique<CifarDataset>(variant, spec.paths);
}

std::unique_ptr<ImageDataset> open_tinyimagenet(const ImageDataSpec& spec) {
  if (spec.paths.size() != 1)
    fail("image data 'tinyimagenet': give the tiny-imagenet-200 folder ({} paths given)", spec.paths.size());
  return std::make_unique<TinyImageNetDataset>(spec.paths[0], spec.split == "test" ? "val" : spec.split);
}

}  // namespace

std::unique_ptr<ImageDataset> open_image_dataset(const ImageDataSpec& spec) {
  if (spec.format == "mnist" || spec.format == "fashion-mnist" || spec.format == "idx") return open_idx(spec);
  if (spec.format == "cifar10") return open_cifar(spec, CifarVariant::cifar10);
  if (spec.format == "cifar100") return open_cifar(spec, CifarVariant::cifar100_fine);
  if (spec.format == "cifar100-coarse") return open_cifar(spec, CifarVariant::cifar100_coarse);
  if (spec.format == "tinyimagenet") return open_tinyimagenet(spec);
  fail("image data format '{}' is not one of mnist, fashion-mnist, idx, cifar10, cifar100, cifar100-coarse, "
       "tinyimagenet",
       spec.format);
}

std::optional<IdxFiles> find_fashion_mnist(const std::string& split, const std::string& dir) {
  if (split != "train" && split != "test") fail("Fashion-MNIST split '{}' is not 'train' or 'test'", split);
  if (!fs::is_directory(dir)) return std::nullopt;
  try {
    return idx_files(dir, split);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace kvtie
