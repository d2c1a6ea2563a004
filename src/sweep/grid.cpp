#include "sweep/grid.h"

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "kvtie/config_file.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

using ordered = nlohmann::ordered_json;

std::string label_of(const ordered& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

SweepAxis parse_axis(const ordered& a, const std::string& where) {
  if (!a.is_object() || !a.contains("axis") || !a["axis"].is_string())
    fail("{}: each grid entry needs an \"axis\" name", where);
  SweepAxis axis;
  axis.name = a["axis"].get<std::string>();
  const std::string at = fmt::format("{} axis '{}'", where, axis.name);
  for (const auto& item : a.items())
    if (item.key() != "axis" && item.key() != "set" && item.key() != "values") fail("{}: unknown key '{}'", at, item.key());
  if (!a.contains("values")) fail("{}: no \"values\"", at);
  const ordered& values = a["values"];
  if (a.contains("set")) {
    if (!a["set"].is_string()) fail("{}.set: must be a key such as \"train.seed\"", at);
    if (!values.is_array() || values.empty()) fail("{}.values: must be a non-empty array", at);
    for (const auto& v : values) {
      axis.labels.push_back(label_of(v));
      axis.settings.push_back({a["set"].get<std::string>() + "=" + v.dump()});
    }
  } else {
    if (!values.is_object() || values.empty())
      fail("{}.values: without \"set\", must be an object of label → {{\"key\": value}}", at);
    for (const auto& item : values.items()) {
      if (!item.value().is_object()) fail("{}.values.{}: must be an object of settings", at, item.key());
      axis.labels.push_back(item.key());
      std::vector<std::string> sets;
      for (const auto& s : item.value().items()) sets.push_back(s.key() + "=" + s.value().dump());
      axis.settings.push_back(std::move(sets));
    }
  }
  return axis;
}

// 64-bit FNV-1a, printed as 16 hex digits: a stable name for a cell's config.
std::string config_hash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("{:016x}", h);
}

}  // namespace

int Sweep::axis_index(const std::string& name) const {
  for (size_t i = 0; i < axes.size(); i++)
    if (axes[i].name == name) return static_cast<int>(i);
  return -1;
}

Sweep parse_sweep(const std::string& path) {
  ordered j;
  try {
    j = ordered::parse(read_file(path));
  } catch (const ordered::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: a sweep config must be a JSON object", path);
  for (const auto& item : j.items())
    if (item.key() != "base" && item.key() != "grid" && item.key() != "table")
      fail("{}: unknown key '{}' (base, grid, table)", path, item.key());
  Sweep s;
  if (!j.contains("base")) fail("{}: no \"base\" run config", path);
  if (j["base"].is_string()) s.base = load_config(j["base"].get<std::string>(), {});
  else if (j["base"].is_object()) s.base = nlohmann::json::parse(j["base"].dump());
  else fail("{}.base: must be a run config object or a path to one", path);
  if (!j.contains("grid") || !j["grid"].is_array() || j["grid"].empty()) fail("{}.grid: must be a non-empty array", path);
  for (const auto& a : j["grid"]) s.axes.push_back(parse_axis(a, path + ".grid"));
  for (size_t i = 0; i < s.axes.size(); i++)
    for (size_t k = 0; k < i; k++)
      if (s.axes[i].name == s.axes[k].name) fail("{}.grid: axis '{}' appears twice", path, s.axes[i].name);
  if (j.contains("table")) {
    const ordered& t = j["table"];
    auto axis_key = [&](const char* key, std::string& out) {
      if (!t.contains(key)) return;
      out = t[key].get<std::string>();
      if (s.axis_index(out) < 0) fail("{}.table.{}: '{}' is not an axis of the grid", path, key, out);
    };
    axis_key("rows", s.table.rows);
    axis_key("columns", s.table.columns);
    axis_key("seeds", s.table.seeds);
    if (t.contains("metric")) s.table.metric = t["metric"].get<std::string>();
    if (t.contains("reference")) {
      s.table.reference_name = t["reference"].value("name", "reference");
      for (const auto& item : t["reference"].at("values").items()) s.table.reference[item.key()] = item.value().get<double>();
    }
  }
  return s;
}

std::vector<SweepCell> Sweep::cells() const {
  std::vector<SweepCell> out;
  std::vector<size_t> index(axes.size(), 0);
  while (true) {
    SweepCell cell;
    std::vector<std::string> sets;
    for (size_t a = 0; a < axes.size(); a++) {
      cell.labels.push_back(axes[a].labels[index[a]]);
      for (const auto& s : axes[a].settings[index[a]]) sets.push_back(s);
    }
    cell.config = load_config("", sets, base);
    cell.id = config_hash(cell.config.dump());
    out.push_back(std::move(cell));
    // The last axis varies fastest.
    size_t a = axes.size();
    while (a > 0 && ++index[a - 1] == axes[a - 1].labels.size()) index[--a] = 0;
    if (a == 0) break;
  }
  return out;
}

}  // namespace kvtie
