#include "sweep/runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "core/atomic_file.h"
#include "kvtie/error.h"

extern char** environ;

namespace kvtie {
namespace {

namespace fs = std::filesystem;

// Starts `kvtie train --config DIR/config.json --json` with stdout to result.json.tmp and stderr
// to train.log.
pid_t spawn_cell(const std::string& binary, const std::string& dir) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string out = dir + "/result.json.tmp", log = dir + "/train.log";
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::string config = dir + "/config.json";
  std::vector<std::string> args = {binary, "train", "--config", config, "--json"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("sweep: cannot start {}: {}", binary, std::strerror(rc));
  return pid;
}

std::string last_line(const std::string& path) {
  if (!fs::exists(path)) return "";
  std::string text = read_file(path);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

std::string cell_dir(const std::string& out_dir, const SweepCell& cell) { return out_dir + "/cells/" + cell.id; }

int run_sweep(const std::vector<SweepCell>& cells, const SweepRunOptions& o,
              const std::function<void(int, int, const SweepCellResult&, bool)>& on_done) {
  std::vector<const SweepCell*> pending;
  for (const auto& c : cells)
    if (!fs::exists(cell_dir(o.out_dir, c) + "/result.json")) pending.push_back(&c);
  const int total = static_cast<int>(pending.size());
  std::map<pid_t, const SweepCell*> running;
  size_t next = 0;
  int finished = 0, failures = 0;
  while (next < pending.size() || !running.empty()) {
    while (next < pending.size() && static_cast<int>(running.size()) < o.jobs) {
      const SweepCell& cell = *pending[next++];
      const std::string dir = cell_dir(o.out_dir, cell);
      fs::create_directories(dir);
      // A cell killed mid-run starts over: its checkpoints are from an unfinished run.
      for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().filename() != "cell.json") fs::remove_all(entry.path());
      nlohmann::json config = cell.config;
      config["train"]["out_dir"] = dir;
      config["train"]["threads"] = o.threads_per_job;
      write_file_atomic(dir + "/cell.json", nlohmann::json{{"labels", cell.labels}, {"id", cell.id}}.dump(2) + "\n");
      write_file_atomic(dir + "/config.json", config.dump(2) + "\n");
      running[spawn_cell(o.kvtie_binary, dir)] = &cell;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) fail("sweep: waiting for a cell failed: {}", std::strerror(errno));
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const SweepCell& cell = *it->second;
    running.erase(it);
    const std::string dir = cell_dir(o.out_dir, cell);
    SweepCellResult r{&cell, dir, nullptr};
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
      r.result = nlohmann::json::parse(read_file(dir + "/result.json.tmp"), nullptr, false);
      ok = !r.result.is_discarded() && r.result.is_object();
    }
    if (ok) {
      fs::rename(dir + "/result.json.tmp", dir + "/result.json");
    } else {
      failures++;
      r.result = nlohmann::json{{"error", last_line(dir + "/train.log")}};
    }
    on_done(++finished, total, r, ok);
  }
  return failures;
}

std::vector<SweepCellResult> collect_results(const std::vector<SweepCell>& cells, const std::string& out_dir) {
  std::vector<SweepCellResult> out;
  for (const auto& c : cells) {
    const std::string dir = cell_dir(out_dir, c), path = dir + "/result.json";
    nlohmann::json result;
    if (fs::exists(path)) {
      result = nlohmann::json::parse(read_file(path), nullptr, false);
      if (result.is_discarded()) fail("{}: not JSON", path);
    }
    out.push_back({&c, dir, result});
  }
  return out;
}

}  // namespace kvtie
