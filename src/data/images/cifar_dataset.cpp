#include "data/images/cifar_dataset.h"

#include <algorithm>
#include <filesystem>

#include "kvtie/error.h"

namespace kvtie {
namespace {

constexpr int64_t kPixelBytes = 3 * 32 * 32;
// Labels are gathered a block of records at a time rather than one pread per record.
constexpr int64_t kRecordsPerScan = 256;

}  // namespace

CifarDataset::CifarDataset(CifarVariant variant, const std::vector<std::string>& batch_files)
    : label_bytes_(variant == CifarVariant::cifar10 ? 1 : 2),
      label_offset_(variant == CifarVariant::cifar100_fine ? 1 : 0),
      n_classes_(variant == CifarVariant::cifar10 ? 10 : variant == CifarVariant::cifar100_fine ? 100 : 20) {
  if (batch_files.empty()) fail("CIFAR data set: no batch files given");
  source_ = batch_files.size() == 1 ? batch_files[0]
                                    : fmt::format("{} (+{} more batch files)", batch_files[0], batch_files.size() - 1);
  const int64_t record = record_bytes();
  std::vector<uint8_t> block;
  for (const auto& path : batch_files) {
    ByteSource file(path);
    if (file.size() == 0) fail("{}: empty CIFAR batch file", path);
    if (file.size() % static_cast<uint64_t>(record) != 0)
      fail("{}: size {} is not a multiple of the {}-byte {} record (truncated, or the other CIFAR variant?)", path,
           file.size(), record, label_bytes_ == 1 ? "CIFAR-10" : "CIFAR-100");
    const auto records = static_cast<int64_t>(file.size() / static_cast<uint64_t>(record));
    first_record_.push_back(size());
    for (int64_t start = 0; start < records; start += kRecordsPerScan) {
      const int64_t n = std::min(kRecordsPerScan, records - start);
      block.resize(static_cast<size_t>(n * record));
      file.read(static_cast<uint64_t>(start * record), block.size(), block.data());
      for (int64_t r = 0; r < n; r++) {
        const uint8_t* labels = block.data() + r * record;
        for (int b = 0; b < label_bytes_; b++) {
          // Both CIFAR-100 labels are checked, whichever one is used.
          const int limit = label_bytes_ == 1 ? 10 : b == 0 ? 20 : 100;
          if (labels[b] >= limit)
            fail("{}: record {}: {}label {} is out of range [0, {})", path, start + r,
                 label_bytes_ == 1 ? "" : b == 0 ? "coarse " : "fine ", labels[b], limit);
        }
        labels_.push_back(labels[label_offset_]);
      }
    }
    files_.push_back(std::move(file));
  }
}

void CifarDataset::read_pixels(int64_t i, uint8_t* chw) const {
  const auto it = std::upper_bound(first_record_.begin(), first_record_.end(), i) - 1;
  const auto f = static_cast<size_t>(it - first_record_.begin());
  const int64_t r = i - *it;
  files_[f].read(static_cast<uint64_t>(r * record_bytes() + label_bytes_), kPixelBytes, chw);
}

std::vector<std::string> cifar_batch_files(CifarVariant variant, const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test") fail("{}: CIFAR split '{}' is not 'train' or 'test'", dir, split);
  const std::filesystem::path root(dir);
  std::vector<std::string> files;
  if (variant == CifarVariant::cifar10) {
    if (split == "train")
      for (int b = 1; b <= 5; b++) files.push_back((root / fmt::format("data_batch_{}.bin", b)).string());
    else
      files.push_back((root / "test_batch.bin").string());
  } else {
    files.push_back((root / (split + ".bin")).string());
  }
  return files;
}

}  // namespace kvtie
