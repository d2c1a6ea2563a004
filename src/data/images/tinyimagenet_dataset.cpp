#include "data/images/tinyimagenet_dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <sstream>
#include <unordered_map>

#include "core/atomic_file.h"
#include "data/images/image_decode.h"
#include "kvtie/error.h"

namespace kvtie {
namespace fs = std::filesystem;
namespace {

// Lines without their line ending (the files may have been through Windows).
std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

// A folder's entries, with a kvtie::Error naming it when it cannot be listed.
std::vector<fs::directory_entry> list_folder(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  if (ec) fail("{}: cannot list: {}", dir.string(), ec.message());
  return entries;
}

bool is_int(const std::string& s) {
  int value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

TinyImageNetDataset::TinyImageNetDataset(const std::string& root, const std::string& split) {
  if (split != "train" && split != "val")
    fail("{}: TinyImageNet split '{}' is not 'train' or 'val' (the test split has no labels)", root, split);
  if (!fs::is_directory(root)) fail("{}: TinyImageNet root is not a folder", root);
  const std::string wnids_path = (fs::path(root) / "wnids.txt").string();
  if (!fs::exists(wnids_path)) fail("{}: missing (every TinyImageNet root has one)", wnids_path);
  const auto lines = read_lines(wnids_path);
  for (size_t n = 0; n < lines.size(); n++) {
    if (lines[n].empty()) continue;
    if (std::find(wnids_.begin(), wnids_.end(), lines[n]) != wnids_.end())
      fail("{}:{}: wnid '{}' is listed twice", wnids_path, n + 1, lines[n]);
    wnids_.push_back(lines[n]);
  }
  if (wnids_.empty()) fail("{}: lists no wnids", wnids_path);
  if (split == "train") list_train(root);
  else list_val(root);
  if (files_.empty()) fail("{}: no images", source_);
}

void TinyImageNetDataset::list_train(const std::string& root) {
  const fs::path train = fs::path(root) / "train";
  source_ = train.string();
  if (!fs::is_directory(train)) fail("{}: missing folder", source_);
  for (const auto& entry : list_folder(train)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && std::find(wnids_.begin(), wnids_.end(), name) == wnids_.end())
      fail("{}: unknown wnid '{}' (not in {}/wnids.txt)", entry.path().string(), name, root);
  }
  for (size_t c = 0; c < wnids_.size(); c++) {
    const fs::path images = train / wnids_[c] / "images";
    if (!fs::is_directory(images)) fail("{}: missing folder (wnids.txt lists {})", images.string(), wnids_[c]);
    std::vector<std::string> found;
    for (const auto& entry : list_folder(images))
      if (entry.is_regular_file() && is_image_file(entry.path())) found.push_back(entry.path().string());
    if (found.empty()) fail("{}: no .JPEG/.PNG images", images.string());
    // Directory order is whatever the file system gives; sorted, the index of an image is stable.
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int>(c));
    }
  }
}

void TinyImageNetDataset::list_val(const std::string& root) {
  const fs::path val = fs::path(root) / "val";
  const std::string annotations = (val / "val_annotations.txt").string();
  source_ = annotations;
  if (!fs::exists(annotations)) fail("{}: missing", annotations);
  std::unordered_map<std::string, int> class_of;
  for (size_t c = 0; c < wnids_.size(); c++) class_of[wnids_[c]] = static_cast<int>(c);
  const auto lines = read_lines(annotations);
  for (size_t n = 0; n < lines.size(); n++) {
    if (lines[n].empty()) continue;
    const auto fields = split_tabs(lines[n]);
    if (fields.size() != 6)
      fail("{}:{}: expected 6 tab-separated fields (file, wnid, x0, y0, x1, y1), got {}", annotations, n + 1,
           fields.size());
    const auto wnid = class_of.find(fields[1]);
    if (wnid == class_of.end())
      fail("{}:{}: unknown wnid '{}' (not in {}/wnids.txt)", annotations, n + 1, fields[1], root);
    for (int k = 2; k < 6; k++)
      if (!is_int(fields[k])) fail("{}:{}: box coordinate '{}' is not an integer", annotations, n + 1, fields[k]);
    if (fields[0].empty() || fields[0].find('/') != std::string::npos)
      fail("{}:{}: '{}' is not a file name", annotations, n + 1, fields[0]);
    const std::string image = (val / "images" / fields[0]).string();
    if (!fs::is_regular_file(image)) fail("{}: missing image (listed in {}:{})", image, annotations, n + 1);
    files_.push_back(image);
    labels_.push_back(wnid->second);
  }
}

void TinyImageNetDataset::read_pixels(int64_t i, uint8_t* chw) const {
  const std::string& path = files_[static_cast<size_t>(i)];
  decode_image(read_file(path), path, shape(), chw);
}

}  // namespace kvtie
