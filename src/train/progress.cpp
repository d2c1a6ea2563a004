#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace kvtie {

Progress::Mode Progress::detect(bool quiet) {
  if (quiet) return Mode::quiet;
  return ::isatty(STDERR_FILENO) ? Mode::bar : Mode::lines;
}

Progress::Progress(std::string label, int64_t total, Mode mode, int64_t line_every)
    : label_(std::move(label)),
      total_(total),
      mode_(mode),
      line_every_(line_every < 1 ? 1 : line_every),
      start_(std::chrono::steady_clock::now()) {}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_rate(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  if (v >= 10 || v == 0) return fmt::format("{:.0f}", v);
  return fmt::format("{:.2g}", v);  // slow work, e.g. 0.13 cells/s
}

void Progress::update(int64_t done, double units_done, const char* rate_unit, const std::string& extra) {
  if (mode_ == Mode::quiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? units_done / elapsed : 0.0;
  const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : NAN;
  if (mode_ == Mode::lines) {
    if (done % line_every_ != 0 && done != total_) return;
    fmt::print(stderr, "{} {}/{} {} {} {}/s elapsed {} eta {}\n", label_, done, total_, extra, format_rate(rate),
               rate_unit, format_duration(elapsed), format_duration(eta));
    return;
  }
  if (drawn_ && done != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  fmt::print(stderr, "\r\033[K{} [{}{}] {}/{} {} {} {}/s eta {}", label_, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), done, total_, extra, format_rate(rate), rate_unit,
             format_duration(eta));
  std::fflush(stderr);
}

void Progress::finish() {
  if (mode_ == Mode::bar && drawn_) fmt::print(stderr, "\n");
}

}  // namespace kvtie
