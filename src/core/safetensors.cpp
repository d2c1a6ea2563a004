#include "core/safetensors.h"

#include <nlohmann/json.hpp>

#include <bit>
#include <cstring>

#include "core/atomic_file.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxHeader = 100ull << 20;

float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

}  // namespace

int dtype_size(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "BF16" || dtype == "F16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

int64_t SafeTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

SafetensorsFile SafetensorsFile::load(const std::string& path) { return parse(read_file(path), path); }

SafetensorsFile SafetensorsFile::parse(std::string bytes, const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.bytes_ = std::move(bytes);
  const std::string& b = f.bytes_;
  if (b.size() < 8) fail("{}: not a safetensors file (only {} bytes)", path, b.size());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | static_cast<unsigned char>(b[i]);
  if (header_len > kMaxHeader || header_len > b.size() - 8)
    fail("{}: truncated or corrupt (header length {} but file has {} bytes)", path, header_len, b.size());
  json header;
  try {
    header = json::parse(std::string_view(b).substr(8, header_len));
  } catch (const json::exception& e) {
    fail("{}: corrupt header: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: corrupt header: not a JSON object", path);
  const size_t data_start = 8 + header_len;
  const uint64_t data_size = b.size() - data_start;
  uint64_t data_end = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ must be an object", path);
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("{}: __metadata__.{} must be a string", path, k);
        f.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets") || !entry["dtype"].is_string() || !entry["shape"].is_array() ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      fail("{}: tensor '{}': malformed header entry", path, name);
    SafeTensor t;
    t.name = name;
    t.dtype = entry["dtype"].get<std::string>();
    const int esize = dtype_size(t.dtype);
    if (esize == 0) fail("{}: tensor '{}': unknown dtype '{}'", path, name, t.dtype);
    for (const auto& s : entry["shape"]) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > (int64_t{1} << 40))
        fail("{}: tensor '{}': bad shape {}", path, name, entry["shape"].dump());
      t.shape.push_back(s.get<int64_t>());
    }
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("{}: tensor '{}': bad data_offsets", path, name);
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size)
      fail("{}: tensor '{}': data [{}, {}) lies outside the {} data bytes (truncated file?)", path, name, begin, end,
           data_size);
    if (end - begin != static_cast<uint64_t>(t.numel()) * esize)
      fail("{}: tensor '{}': {} data bytes do not match shape and dtype", path, name, end - begin);
    t.data = std::string_view(b).substr(data_start + begin, end - begin);
    data_end = std::max(data_end, end);
    f.tensors_.push_back(std::move(t));
  }
  if (data_end != data_size)
    fail("{}: {} bytes of data but the header describes {} (corrupt or truncated file)", path, data_size, data_end);
  return f;
}

const SafeTensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const SafeTensor& SafetensorsFile::get(std::string_view name) const {
  const SafeTensor* t = find(name);
  if (!t) fail("{}: missing tensor '{}'", path_, name);
  return *t;
}

template <typename T>
void read_floats(const SafeTensor& t, T* dst, int64_t count, const std::string& where) {
  if (t.numel() != count) fail("{}: tensor '{}' has {} elements, expected {}", where, t.name, t.numel(), count);
  const char* p = t.data.data();
  if (t.dtype == "F32") {
    for (int64_t i = 0; i < count; i++) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      dst[i] = static_cast<T>(v);
    }
  } else if (t.dtype == "F64") {
    for (int64_t i = 0; i < count; i++) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      dst[i] = static_cast<T>(v);
    }
  } else if (t.dtype == "BF16") {
    for (int64_t i = 0; i < count; i++) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      dst[i] = static_cast<T>(bf16_to_float(v));
    }
  } else {
    fail("{}: tensor '{}' has dtype {}, expected F32, BF16 or F64", where, t.name, t.dtype);
  }
}
template void read_floats<float>(const SafeTensor&, float*, int64_t, const std::string&);
template void read_floats<double>(const SafeTensor&, double*, int64_t, const std::string&);

std::vector<int32_t> read_i32(const SafeTensor& t, const std::string& where) {
  if (t.dtype != "I32") fail("{}: tensor '{}' has dtype {}, expected I32", where, t.name, t.dtype);
  std::vector<int32_t> v(t.numel());
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

void SafetensorsWriter::add(std::string name, std::string dtype, std::vector<int64_t> shape, std::string bytes) {
  entries_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::add_f32(std::string name, std::vector<int64_t> shape, const float* data) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  add(std::move(name), "F32", std::move(shape), std::string(reinterpret_cast<const char*>(data), n * sizeof(float)));
}

std::string SafetensorsWriter::serialize() const {
  // ordered_json keeps tensors in the order they were added, which keeps files diffable.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>((static_cast<uint64_t>(h.size()) >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& e : entries_) out += e.bytes;
  return out;
}

}  // namespace kvtie
