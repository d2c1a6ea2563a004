#include "kvtie/checkpoint.h"

#include <nlohmann/json.hpp>

#include <bit>
#include <cstring>
#include <set>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

constexpr const char* kConfigKey = "kvtie.config";

uint16_t float_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);                // round to nearest even
}

ModelConfig config_of(const SafetensorsFile& f) {
  const auto it = f.metadata().find(kConfigKey);
  if (it == f.metadata().end()) fail("{}: no __metadata__[\"{}\"]: not a kvtie checkpoint", f.path(), kConfigKey);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: __metadata__[\"{}\"] is not valid JSON: {}", f.path(), kConfigKey, e.what());
  }
  return parse_model_config(j, f.path() + ": " + kConfigKey);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Checks names, shapes and dtypes before anything is allocated for the model, so that a header
// that claims a huge config fails here, naming the file, rather than in the allocator.
void check_tensors(const SafetensorsFile& f, const ParamLayout& layout) {
  std::set<std::string> expected;
  for (const auto& t : layout.tensors) {
    expected.insert(t.name);
    const SafeTensor* st = f.find(t.name);
    if (!st) fail("{}: missing tensor '{}' (checkpoint of another variant?)", f.path(), t.name);
    if (st->shape != t.shape)
      fail("{}: tensor '{}' has shape {}, the config needs {}", f.path(), t.name, shape_str(st->shape),
           shape_str(t.shape));
    if (st->dtype != "F32" && st->dtype != "BF16")
      fail("{}: tensor '{}' has dtype {}, expected F32 or BF16", f.path(), t.name, st->dtype);
  }
  for (const auto& st : f.tensors())
    if (!expected.count(st.name)) fail("{}: unexpected tensor '{}' for this config", f.path(), st.name);
}

template <typename T>
void load_params(const SafetensorsFile& f, const ParamLayout& layout, T* params) {
  check_tensors(f, layout);
  for (const auto& t : layout.tensors) read_floats(f.get(t.name), params + t.offset, t.numel, f.path());
}

}  // namespace

void save_checkpoint(const std::string& path, const ModelConfig& config, const float* params, WeightDType dtype) {
  const ParamLayout layout = make_param_layout(config);
  SafetensorsWriter w;
  w.set_metadata(kConfigKey, to_json(config).dump());
  w.set_metadata("format", "pt");
  for (const auto& t : layout.tensors) {
    if (dtype == WeightDType::f32) {
      w.add_f32(t.name, t.shape, params + t.offset);
    } else {
      std::string bytes(t.numel * 2, '\0');
      for (int64_t i = 0; i < t.numel; i++) {
        const uint16_t h = float_to_bf16(params[t.offset + i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
      w.add(t.name, "BF16", t.shape, std::move(bytes));
    }
  }
  write_file_atomic(path, w.serialize());
}

ModelConfig read_checkpoint_config(const std::string& path) { return config_of(SafetensorsFile::load(path)); }

std::unique_ptr<Transformer<float>> load_checkpoint(const std::string& path, int max_batch, int max_seq) {
  const SafetensorsFile f = SafetensorsFile::load(path);
  const ModelConfig config = config_of(f);
  check_tensors(f, make_param_layout(config));
  const int seq = max_seq > 0 ? std::min(max_seq, config.max_seq_len) : config.max_seq_len;
  auto model = std::make_unique<Transformer<float>>(config, max_batch, seq, /*trainable=*/false);
  load_params(f, model->layout(), model->params());
  return model;
}

template <typename T>
void load_checkpoint_into(const std::string& path, Transformer<T>& model) {
  const SafetensorsFile f = SafetensorsFile::load(path);
  load_params(f, model.layout(), model.params());
}
template void load_checkpoint_into<float>(const std::string&, Transformer<float>&);
template void load_checkpoint_into<double>(const std::string&, Transformer<double>&);

}  // namespace kvtie
