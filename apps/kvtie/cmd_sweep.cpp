// kvtie sweep: a grid of training runs (task × variant × sizes × seeds …), in parallel processes,
// resumable, summarised as results.csv and a markdown table in the study's form.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include "commands.h"
#include "core/atomic_file.h"
#include "kvtie/error.h"
#include "sweep/grid.h"
#include "sweep/report.h"
#include "sweep/runner.h"
#include "train/progress.h"

namespace kvtie::cli {
namespace {

std::string self_executable() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) fail("sweep: cannot find the kvtie executable (/proc/self/exe): {}", ec.message());
  return p.string();
}

std::string describe_cell(const Sweep& sweep, const SweepCell& cell) {
  std::string s;
  for (size_t a = 0; a < sweep.axes.size(); a++) s += fmt::format("{}{}={}", a ? " " : "", sweep.axes[a].name, cell.labels[a]);
  return s;
}

// What `kvtie plot --sweep` draws: the table's means and spreads, rows × columns.
nlohmann::json summary_to_json(const Sweep& sweep, const SweepSummary& s) {
  auto finite = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
    return a;
  };
  nlohmann::json mean = nlohmann::json::array(), spread = nlohmann::json::array();
  for (size_t r = 0; r < s.rows.size(); r++) mean.push_back(finite(s.mean[r])), spread.push_back(finite(s.spread[r]));
  return {{"metric", sweep.table.metric}, {"rows_axis", sweep.table.rows}, {"columns_axis", sweep.table.columns},
          {"rows", s.rows}, {"columns", s.columns}, {"mean", mean}, {"spread", spread}};
}

}  // namespace

void add_sweep(CLI::App& app) {
  struct Opts {
    std::string config, out, table;
    int jobs = 1, threads = 0;
    bool report_only = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sweep", "Run a grid of training runs and tabulate them (resumable)");
  cmd->add_option("--config", o->config, "Sweep config (configs/synthetic/*.json)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Output directory (default runs/sweep/<config name>)");
  cmd->add_option("--jobs,-j", o->jobs, "Cells trained at once, each in its own process")->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--threads", o->threads, "Threads per cell (default: cores / jobs)")->check(CLI::Range(0, 4096));
  cmd->add_option("--table", o->table, "Also write the markdown table (with its command) to this file");
  cmd->add_flag("--report-only", o->report_only, "Only tabulate the cells that have finished");
  cmd->add_flag("--json", o->json, "Machine-readable summary on stdout, no progress");
  cmd->footer(
      "The config holds a base run config and a grid of axes; every combination is a cell, trained as its own\n"
      "`kvtie train` process in OUT/cells/<hash>/. A cell with result.json is never re-run, so re-running resumes.\n"
      "Writes OUT/results.csv, and with a \"table\" section OUT/table.md and OUT/table.json (for `kvtie plot\n"
      "--sweep OUT`). Format and examples: docs/synthetic.md; grids: configs/synthetic/quick.json, study.json.");
  cmd->callback([o] {
    const Sweep sweep = parse_sweep(o->config);
    const std::vector<SweepCell> cells = sweep.cells();
    const std::string out = o->out.empty() ? "runs/sweep/" + std::filesystem::path(o->config).stem().string() : o->out;
    std::filesystem::create_directories(out);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = o->threads > 0 ? o->threads : std::max(1, cores / o->jobs);
    int failures = 0;
    if (!o->report_only) {
      int64_t pending = 0;
      for (const auto& r : collect_results(cells, out)) pending += r.result.is_null();
      Progress bar("sweep", pending, Progress::detect(o->json), 1);
      failures = run_sweep(cells, {out, self_executable(), o->jobs, threads},
                           [&](int done, int, const SweepCellResult& r, bool ok) {
                             const std::string what = describe_cell(sweep, *r.cell);
                             std::string metric = ok && r.result.contains(sweep.table.metric)
                                                      ? fmt::format("{} {:.4f}", sweep.table.metric,
                                                                    r.result[sweep.table.metric].get<double>())
                                                      : "FAILED: " + r.result.value("error", std::string());
                             bar.update(done, done, "cell", what + ": " + metric);
                           });
      bar.finish();
    }
    const auto results = collect_results(cells, out);
    write_file_atomic(out + "/results.csv", results_csv(sweep, results));
    int finished = 0;
    for (const auto& r : results) finished += !r.result.is_null();
    nlohmann::json summary_json = {{"cells", cells.size()}, {"finished", finished}, {"failed", failures},
                                   {"results_csv", out + "/results.csv"}};
    if (!sweep.table.rows.empty()) {
      const SweepSummary s = summarize(sweep, results);
      const std::string table = markdown_table(sweep, s);
      write_file_atomic(out + "/table.md", table);
      if (!o->table.empty()) {
        const std::string header = fmt::format(
            "Made by `kvtie sweep --config {}{}` ({} of {} cells; metric {}: mean over the cells of each entry, ± the "
            "standard deviation over seeds).\n\n",
            o->config, o->jobs > 1 ? fmt::format(" --jobs {}", o->jobs) : "", finished, cells.size(),
            sweep.table.metric);
        write_file_atomic(o->table, header + table);
      }
      summary_json["table_md"] = out + "/table.md";
      summary_json["table"] = summary_to_json(sweep, s);
      write_file_atomic(out + "/table.json", summary_json["table"].dump(1) + "\n");
      if (!o->json) fmt::print("{}", table);
    }
    if (o->json) fmt::print("{}\n", summary_json.dump());
    else fmt::print("{} of {} cells finished; wrote {}/results.csv{}\n", finished, cells.size(), out,
                    sweep.table.rows.empty() ? "" : " and table.md");
    if (failures) fail("sweep: {} cell(s) failed; their train.log says why (re-run to retry them)", failures);
  });
}

}  // namespace kvtie::cli
