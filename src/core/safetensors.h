#pragma once
// Reader and writer for the .safetensors format: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw data.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kvtie {

struct SafeTensor {
  std::string name;
  std::string dtype;  // "F32", "F64", "BF16", "I32", ...
  std::vector<int64_t> shape;
  std::string_view data;  // into the owning SafetensorsFile
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Reads and validates the whole file; every structural problem is an Error naming the path.
  static SafetensorsFile load(const std::string& path);
  static SafetensorsFile parse(std::string bytes, const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafeTensor* find(std::string_view name) const;
  const SafeTensor& get(std::string_view name) const;  // Error when absent

 private:
  std::string path_;
  std::string bytes_;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Converts a float tensor (F32, F64 or BF16) to T, checking the element count.
template <typename T>
void read_floats(const SafeTensor& t, T* dst, int64_t count, const std::string& where);
std::vector<int32_t> read_i32(const SafeTensor& t, const std::string& where);

class SafetensorsWriter {
 public:
  void add(std::string name, std::string dtype, std::vector<int64_t> shape, std::string bytes);
  void add_f32(std::string name, std::vector<int64_t> shape, const float* data);
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }
  std::string serialize() const;

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

int dtype_size(std::string_view dtype);  // 0 when unknown

}  // namespace kvtie
