#pragma once
// Shared by the tests that write files: where they go, and the big-endian words of the IDX format.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace kvtie::test {

// <tmp>/kvtie_test_<pid>, emptied when the process first asks for it: an earlier process with the
// same pid (an earlier test run on this machine) may have left it, and a test that trains into
// it would find that run's checkpoints.
inline const std::filesystem::path& process_temp_root() {
  static const std::filesystem::path root = [] {
    auto dir = std::filesystem::temp_directory_path() / ("kvtie_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    return dir;
  }();
  return root;
}

// <process root>/<area>/<name>, created if missing. Per process, because ctest runs tests in
// parallel, each in its own process; per area, because one process may also run all of them.
inline std::string temp_dir(const std::string& area, const std::string& name) {
  const auto dir = process_temp_root() / area / name;
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A file in the area's directory.
inline std::string temp_path(const std::string& area, const std::string& file) {
  return (std::filesystem::path(temp_dir(area, "")) / file).string();
}

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace kvtie::test
