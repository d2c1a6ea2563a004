#pragma once
// Append-only JSONL metrics: one object per logged step, each line written whole and flushed so a
// killed run loses at most the line in flight.
#include <nlohmann/json_fwd.hpp>

#include <cstdio>
#include <string>

namespace kvtie {

class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool append);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::FILE* file_;
};

}  // namespace kvtie
