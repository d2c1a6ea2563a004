// kvtie plot: training curves of runs side by side (train loss and validation loss per step).
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

}  // namespace

void add_plot(CLI::App& app) {
  struct Opts {
    std::vector<std::string> runs;
    std::string out = "plots";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("plot", "Training curves of runs side by side (PNG and SVG, via gnuplot)");
  cmd->add_option("--run", o->runs, "A run directory with metrics.jsonl (repeatable)")->required();
  cmd->add_option("--out", o->out, "Directory for curves.gp, its data and the images")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the written files as JSON");
  cmd->callback([o] {
    std::filesystem::create_directories(o->out);
    std::string train_plot, val_plot;
    for (size_t i = 0; i < o->runs.size(); i++) {
      const std::string& dir = o->runs[i];
      std::istringstream in(read_file(dir + "/metrics.jsonl"));
      std::string line, train, val;
      while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) fail("{}/metrics.jsonl: a line is not JSON", dir);
        if (j.contains("loss")) train += fmt::format("{} {}\n", j["step"].get<int64_t>(), j["loss"].get<double>());
        if (j.contains("val_loss")) val += fmt::format("{} {}\n", j["step"].get<int64_t>(), j["val_loss"].get<double>());
      }
      const std::string label = gnuplot_quoted(run_label(dir));
      write_file_atomic(fmt::format("{}/run{}.train.dat", o->out, i), train);
      write_file_atomic(fmt::format("{}/run{}.val.dat", o->out, i), val);
      train_plot += fmt::format("{}'run{}.train.dat' using 1:2 with lines lw 2 title {}", i ? ", " : "plot ", i, label);
      if (!val.empty())
        val_plot += fmt::format("{}'run{}.val.dat' using 1:2 with linespoints lw 2 title {}", val_plot.empty() ? "plot " : ", ",
                                i, label);
    }
    std::vector<GnuplotChart> charts = {
        {"train_loss", "set title 'training loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\nset key top right\n" +
                           train_plot}};
    if (!val_plot.empty())
      charts.push_back({"val_loss", "set title 'validation loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\n"
                                    "set key top right\n" + val_plot});
    const auto images = render_gnuplot(o->out, "curves", charts);
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"images", images}}.dump());
    } else {
      for (const auto& img : images) fmt::print("wrote {}\n", img);
    }
  });
}

}  // namespace kvtie::cli
