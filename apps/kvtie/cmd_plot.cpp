// kvtie plot: training curves of runs side by side (train loss and validation loss per step), and
// a sweep's table as bars per variant.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

#include "analysis/gnuplot.h"
#include "commands.h"
#include "core/atomic_file.h"
#include "kvtie/config.h"
#include "kvtie/error.h"

namespace kvtie::cli {
namespace {

// The run's label: its variant when its config says so, else its directory name.
std::string run_label(const std::string& dir) {
  const std::string config = dir + "/config.json";
  if (std::filesystem::exists(config)) {
    const auto j = nlohmann::json::parse(read_file(config), nullptr, false);
    if (!j.is_discarded() && j.contains("model"))
      return variant_label(parse_model_config(j["model"], config));
  }
  return std::filesystem::path(dir).filename().string();
}

// The runs' curves: training loss, and validation loss where logged.
std::vector<GnuplotChart> curve_charts(const std::vector<std::string>& runs, const std::string& out) {
  std::string train_plot, val_plot;
  for (size_t i = 0; i < runs.size(); i++) {
    const std::string& dir = runs[i];
    std::istringstream in(read_file(dir + "/metrics.jsonl"));
    std::string line, train, val;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) fail("{}/metrics.jsonl: a line is not JSON", dir);
      if (j.contains("loss")) train += fmt::format("{} {}\n", j["step"].get<int64_t>(), j["loss"].get<double>());
      if (j.contains("val_loss")) val += fmt::format("{} {}\n", j["step"].get<int64_t>(), j["val_loss"].get<double>());
    }
    const std::string label = gnuplot_quoted(run_label(dir));
    write_file_atomic(fmt::format("{}/run{}.train.dat", out, i), train);
    write_file_atomic(fmt::format("{}/run{}.val.dat", out, i), val);
    train_plot += fmt::format("{}'run{}.train.dat' using 1:2 with lines lw 2 title {}", i ? ", " : "plot ", i, label);
    if (!val.empty())
      val_plot += fmt::format("{}'run{}.val.dat' using 1:2 with linespoints lw 2 title {}", val_plot.empty() ? "plot " : ", ",
                              i, label);
  }
  std::vector<GnuplotChart> charts = {
      {"train_loss",
       "set title 'training loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\nset key top right\n" + train_plot}};
  if (!val_plot.empty())
    charts.push_back({"val_loss", "set title 'validation loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\n"
                                  "set key top right\n" + val_plot});
  return charts;
}

// A sweep's table (DIR/table.json from `kvtie sweep`): one group of bars per column (task, and
// overall), one bar per row (variant), error bars = the spread over seeds.
GnuplotChart sweep_chart(const std::string& dir, const std::string& out) {
  const std::string path = dir + "/table.json";
  const auto t = nlohmann::json::parse(read_file(path), nullptr, false);
  if (t.is_discarded() || !t.contains("rows") || !t.contains("mean"))
    fail("{}: not a sweep table (run `kvtie sweep` with a \"table\" section first)", path);
  const auto rows = t["rows"].get<std::vector<std::string>>();
  const auto columns = t["columns"].get<std::vector<std::string>>();
  // Data files take double-quoted strings (the quotes are not shown); labels never hold quotes.
  auto data_string = [](const std::string& x) { return "\"" + x + "\""; };
  std::string data = "# column";
  for (const auto& r : rows) data += " " + data_string(r) + " spread";
  data += "\n";
  for (size_t c = 0; c < columns.size(); c++) {
    data += data_string(columns[c]);
    for (size_t r = 0; r < rows.size(); r++) {
      const auto& m = t["mean"][r][c];
      const auto& sp = t["spread"][r][c];
      data += m.is_null() ? " NaN NaN" : fmt::format(" {} {}", m.get<double>(), sp.is_null() ? 0.0 : sp.get<double>());
    }
    data += "\n";
  }
  write_file_atomic(out + "/sweep_bars.dat", data);
  std::string plot = "plot ";
  for (size_t r = 0; r < rows.size(); r++)
    plot += fmt::format("{}'sweep_bars.dat' using {}:{}{} title {}", r ? ", " : "", 2 + 2 * r, 3 + 2 * r,
                        r ? "" : ":xtic(1)", gnuplot_quoted(rows[r]));
  const std::string metric = t.value("metric", std::string("metric"));
  return {"sweep_bars", fmt::format("set title {}\nset ylabel {}\nset style data histogram\n"
                                    "set style histogram errorbars gap 2 lw 1\nset style fill solid 0.85 border -1\n"
                                    "set yrange [0:*]\nset grid ytics\nset key outside right top\n"
                                    "set xtics nomirror\n{}",
                                    gnuplot_quoted(fmt::format("{} per {} ({})", metric, t.value("rows_axis", "row"),
                                                               dir)),
                                    gnuplot_quoted(metric), plot)};
}

}  // namespace

void add_plot(CLI::App& app) {
  struct Opts {
    std::vector<std::string> runs, sweeps;
    std::string out = "plots";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("plot", "Training curves of runs side by side, or a sweep's table as bars (PNG and SVG, via gnuplot)");
  cmd->add_option("--run", o->runs, "A run directory with metrics.jsonl (repeatable)");
  cmd->add_option("--sweep", o->sweeps, "A sweep output directory with table.json (repeatable): bars per variant");
  cmd->add_option("--out", o->out, "Directory for the gnuplot script, its data and the images")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the written files as JSON");
  cmd->callback([o] {
    if (o->runs.empty() && o->sweeps.empty()) fail("plot: give --run DIR (training curves) or --sweep DIR (bars)");
    std::filesystem::create_directories(o->out);
    std::vector<GnuplotChart> charts;
    if (!o->runs.empty()) charts = curve_charts(o->runs, o->out);
    for (size_t i = 0; i < o->sweeps.size(); i++) {
      GnuplotChart c = sweep_chart(o->sweeps[i], o->out);
      if (o->sweeps.size() > 1) c.name += std::to_string(i);
      charts.push_back(c);
    }
    const auto images = render_gnuplot(o->out, o->runs.empty() ? "sweep" : "curves", charts);
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"images", images}}.dump());
    } else {
      for (const auto& img : images) fmt::print("wrote {}\n", img);
    }
  });
}

}  // namespace kvtie::cli
