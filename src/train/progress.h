#pragma once
// Progress of long work: a redrawn bar with rate and ETA on a terminal, plain lines elsewhere
// (CI logs), nothing in --json mode.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace kvtie {

class Progress {
 public:
  enum class Mode { bar, lines, quiet };
  // bar when stderr is a terminal, else plain lines every `line_every` updates.
  static Mode detect(bool quiet);

  Progress(std::string label, int64_t total, Mode mode, int64_t line_every);
  // done: units finished so far; rate_unit: what the rate counts (e.g. "tok"); extra: appended text.
  void update(int64_t done, double units_done, const char* rate_unit, const std::string& extra);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  Mode mode_;
  int64_t line_every_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;
};

std::string format_duration(double seconds);
std::string format_rate(double per_second);  // 1.2k, 3.4M

}  // namespace kvtie
