#include "data/images/idx_dataset.h"

#include <array>
#include <filesystem>

#include "kvtie/error.h"

namespace kvtie {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
// Far above any real IDX image; it keeps count × rows × cols well inside 64 bits.
constexpr uint32_t kMaxSide = 1 << 16;

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The magic and the dims that follow it; checks the magic against `expected`.
template <size_t Dims>
std::array<uint32_t, Dims> read_header(const ByteSource& file, uint32_t expected, const char* what) {
  constexpr size_t bytes = 4 * (Dims + 1);
  if (file.size() < bytes) fail("{}: truncated IDX header ({} bytes, need {})", file.path(), file.size(), bytes);
  unsigned char header[bytes];
  file.read(0, bytes, header);
  const uint32_t magic = big_endian_u32(header);
  if (magic != expected) {
    const char* hint = magic == kImagesMagic   ? " (this is an IDX images file)"
                       : magic == kLabelsMagic ? " (this is an IDX labels file)"
                                               : "";
    fail("{}: bad magic 0x{:08x}, expected 0x{:08x} for IDX {}{}", file.path(), magic, expected, what, hint);
  }
  std::array<uint32_t, Dims> dims{};
  for (size_t d = 0; d < Dims; d++) dims[d] = big_endian_u32(header + 4 * (d + 1));
  return dims;
}

void check_payload_size(const ByteSource& file, uint64_t header, uint64_t payload, const std::string& what) {
  const uint64_t expected = header + payload;
  if (file.size() < expected)
    fail("{}: truncated: header promises {} ({} bytes) but only {} bytes follow it", file.path(), what, expected,
         file.size() - header);
  if (file.size() > expected)
    fail("{}: {} bytes after the {} the header declares (not an IDX file, or a wrong header)", file.path(),
         file.size() - expected, what);
}

}  // namespace

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path, int n_classes)
    : images_(images_path), n_classes_(n_classes) {
  if (n_classes < 1 || n_classes > 256) fail("{}: n_classes {} must be in [1, 256] for byte labels", images_.path(), n_classes);
  const auto [count, rows, cols] = read_header<3>(images_, kImagesMagic, "images");
  if (count == 0) fail("{}: holds no images", images_.path());
  if (rows == 0 || cols == 0 || rows > kMaxSide || cols > kMaxSide)
    fail("{}: implausible image size {}x{}", images_.path(), rows, cols);
  check_payload_size(images_, 16, uint64_t{count} * rows * cols, fmt::format("{} images of {}x{}", count, rows, cols));
  count_ = count;
  shape_ = {1, static_cast<int>(rows), static_cast<int>(cols)};

  const ByteSource labels(labels_path);
  const auto [label_count] = read_header<1>(labels, kLabelsMagic, "labels");
  if (label_count != count)
    fail("{}: {} labels, but {} has {} images", labels.path(), label_count, images_.path(), count);
  check_payload_size(labels, 8, label_count, fmt::format("{} labels", label_count));
  labels_.resize(label_count);
  labels.read(8, labels_.size(), labels_.data());
  for (size_t i = 0; i < labels_.size(); i++)
    if (labels_[i] >= n_classes_)
      fail("{}: label {} at index {} is out of range [0, {})", labels.path(), labels_[i], i, n_classes_);
}

void IdxDataset::read_pixels(int64_t i, uint8_t* chw) const {
  const auto n = static_cast<uint64_t>(shape_.numel());
  images_.read(16 + static_cast<uint64_t>(i) * n, n, chw);
}

IdxFiles idx_files(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test") fail("{}: IDX split '{}' is not 'train' or 'test'", dir, split);
  const std::string prefix = split == "train" ? "train" : "t10k";
  const auto locate = [&](const std::string& name) {
    const std::filesystem::path plain = std::filesystem::path(dir) / name;
    const std::filesystem::path gz = plain.string() + ".gz";
    if (std::filesystem::exists(plain)) return plain.string();
    if (std::filesystem::exists(gz)) return gz.string();
    fail("{}: missing (nor {} found)", gz.string(), plain.filename().string());
  };
  return {locate(prefix + "-images-idx3-ubyte"), locate(prefix + "-labels-idx1-ubyte")};
}

}  // namespace kvtie
