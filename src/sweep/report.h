#pragma once
// A sweep's results: one CSV row per finished cell, and the study-style table — the metric's mean
// per row label (e.g. variant) and column label (e.g. task) plus an overall column, each with the
// spread over seeds (the standard deviation of the per-seed means).
#include <string>
#include <vector>

#include "sweep/grid.h"
#include "sweep/runner.h"

namespace kvtie {

std::string results_csv(const Sweep& sweep, const std::vector<SweepCellResult>& results);

struct SweepSummary {
  std::vector<std::string> rows, columns;  // columns end with "overall"
  // mean[r][c], spread[r][c], seeds[r][c] (how many seeds had a finished cell); NaN where empty.
  std::vector<std::vector<double>> mean, spread;
  std::vector<std::vector<int>> seeds;
};
SweepSummary summarize(const Sweep& sweep, const std::vector<SweepCellResult>& results);

std::string markdown_table(const Sweep& sweep, const SweepSummary& summary);

}  // namespace kvtie
