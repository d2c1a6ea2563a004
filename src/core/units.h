#pragma once
// Human-readable byte counts: 512 B, 40.0 KiB, 1.5 MiB.
#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace kvtie {

inline std::string format_bytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
  if (bytes < 1024.0 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", bytes / (1024.0 * 1024 * 1024));
}

}  // namespace kvtie
