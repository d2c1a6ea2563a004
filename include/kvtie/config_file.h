#pragma once
// Run configs are JSON files (configs/*.json) with sections such as "model" and "train"; any field
// can be overridden from the command line with `--set section.key=value`.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kvtie {

// Reads `path` (or starts from `base` when path is empty) and applies the overrides in order. A
// value that parses as JSON is taken as such (numbers, true/false, objects), else as a string.
nlohmann::json load_config(const std::string& path, const std::vector<std::string>& overrides,
                           nlohmann::json base = nlohmann::json::object());

// The "model" section, or an Error naming the file.
const nlohmann::json& config_section(const nlohmann::json& config, const std::string& path, const char* name);

}  // namespace kvtie
