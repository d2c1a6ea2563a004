#include "kvtie/config_file.h"

#include "core/atomic_file.h"
#include "kvtie/error.h"

namespace kvtie {

nlohmann::json load_config(const std::string& path, const std::vector<std::string>& overrides, nlohmann::json base) {
  nlohmann::json config = std::move(base);
  if (!path.empty()) {
    try {
      config = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}: invalid JSON: {}", path, e.what());
    }
    if (!config.is_object()) fail("{}: the config must be a JSON object", path);
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set {}: expected key=value (e.g. model.share=kv)", o);
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;
    nlohmann::json* node = &config;
    size_t start = 0;
    while (true) {
      const size_t dot = key.find('.', start);
      const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (part.empty()) fail("--set {}: empty key component", o);
      if (node->is_null()) *node = nlohmann::json::object();  // --set may create a section
      if (!node->is_object()) fail("--set {}: '{}' is not an object", o, key.substr(0, start - 1));
      node = &(*node)[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    *node = value;
  }
  return config;
}

const nlohmann::json& config_section(const nlohmann::json& config, const std::string& path, const char* name) {
  if (!config.contains(name)) fail("{}: no \"{}\" section", path.empty() ? "config" : path, name);
  return config.at(name);
}

}  // namespace kvtie
