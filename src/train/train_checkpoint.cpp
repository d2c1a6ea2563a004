#include "train/train_checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <regex>
#include <set>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;
constexpr const char* kStateKey = "kvtie.train_state";

std::string model_name(int64_t step) { return fmt::format("ckpt-{:08}.safetensors", step); }
std::string state_name(int64_t step) { return fmt::format("ckpt-{:08}.state.safetensors", step); }

nlohmann::json read_latest(const std::string& dir) {
  const std::string path = dir + "/latest.json";
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: corrupt: {}", path, e.what());
  }
}

// Removes checkpoints older than the newest keep_last, and temporaries of killed writes.
void prune(const std::string& dir, int keep_last) {
  std::set<int64_t> steps;
  const std::regex pattern(R"(ckpt-(\d{8})\.safetensors)");
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    std::smatch m;
    if (std::regex_match(name, m, pattern)) steps.insert(std::stoll(m[1]));
    if (name.find(".tmp.") != std::string::npos) fs::remove(e.path());
  }
  while (static_cast<int>(steps.size()) > keep_last) {
    fs::remove(dir + "/" + model_name(*steps.begin()));
    fs::remove(dir + "/" + state_name(*steps.begin()));
    steps.erase(steps.begin());
  }
}

}  // namespace

void save_train_checkpoint(const std::string& dir, const Transformer<float>& model, AdamW<float>& optimizer,
                           const TrainProgress& progress, int keep_last) {
  save_checkpoint(dir + "/" + model_name(progress.step), model.config(), model.params());
  SafetensorsWriter w;
  const int64_t n = model.num_params();
  w.add_f32("adamw.m", {n}, optimizer.first_moment().data());
  w.add_f32("adamw.v", {n}, optimizer.second_moment().data());
  w.set_metadata(kStateKey, nlohmann::json{{"step", progress.step},
                                           {"skipped_steps", progress.skipped_steps},
                                           {"optimizer_step", optimizer.steps_taken()},
                                           {"data", progress.data}}
                                .dump());
  write_file_atomic(dir + "/" + state_name(progress.step), w.serialize());
  write_file_atomic(dir + "/latest.json", nlohmann::json{{"step", progress.step},
                                                         {"model", model_name(progress.step)},
                                                         {"state", state_name(progress.step)}}
                                              .dump() +
                                              "\n");
  prune(dir, keep_last);
}

std::optional<int64_t> latest_checkpoint_step(const std::string& dir) {
  if (!fs::exists(dir + "/latest.json")) return std::nullopt;
  return read_latest(dir).at("step").get<int64_t>();
}

TrainProgress load_train_checkpoint(const std::string& dir, Transformer<float>& model, AdamW<float>& optimizer) {
  if (!fs::exists(dir + "/latest.json")) fail("{}: no checkpoint to resume from (no latest.json)", dir);
  const nlohmann::json latest = read_latest(dir);
  load_checkpoint_into(dir + "/" + latest.at("model").get<std::string>(), model);
  const std::string state_path = dir + "/" + latest.at("state").get<std::string>();
  const SafetensorsFile f = SafetensorsFile::load(state_path);
  const int64_t n = model.num_params();
  read_floats(f.get("adamw.m"), optimizer.first_moment().data(), n, state_path);
  read_floats(f.get("adamw.v"), optimizer.second_moment().data(), n, state_path);
  const auto it = f.metadata().find(kStateKey);
  if (it == f.metadata().end()) fail("{}: no {} metadata", state_path, kStateKey);
  const nlohmann::json s = nlohmann::json::parse(it->second);
  optimizer.set_steps_taken(s.at("optimizer_step").get<int64_t>());
  return {s.at("step").get<int64_t>(), s.at("skipped_steps").get<int64_t>(), s.at("data")};
}

}  // namespace kvtie
