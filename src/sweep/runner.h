#pragma once
// Runs a sweep's cells as child `kvtie train` processes, `jobs` at a time. Each cell lives in
// out_dir/cells/<id>/ (cell.json: its labels; config.json; train.log; result.json once it
// finished). A cell with result.json is never run again, so an interrupted sweep resumes.
#include <functional>
#include <string>
#include <vector>

#include "sweep/grid.h"

namespace kvtie {

struct SweepRunOptions {
  std::string out_dir;
  std::string kvtie_binary;  // the executable run for each cell
  int jobs = 1;
  int threads_per_job = 1;
};

struct SweepCellResult {
  const SweepCell* cell;
  std::string dir;
  nlohmann::json result;  // `kvtie train --json`'s output; null when the cell has not finished
};

std::string cell_dir(const std::string& out_dir, const SweepCell& cell);

// Runs the unfinished cells; `on_done(finished, total, result)` after each. Returns the number of
// cells that failed (their train.log says why).
int run_sweep(const std::vector<SweepCell>& cells, const SweepRunOptions& options,
              const std::function<void(int, int, const SweepCellResult&, bool ok)>& on_done);

// Every cell with its result (if any), in grid order.
std::vector<SweepCellResult> collect_results(const std::vector<SweepCell>& cells, const std::string& out_dir);

}  // namespace kvtie
