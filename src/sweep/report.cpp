#include "sweep/report.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>

#include "kvtie/error.h"

namespace kvtie {
namespace {

constexpr const char* kResultColumns[] = {"val_acc", "val_exact", "val_loss", "val_ppl", "final_loss", "params",
                                          "seconds", "tokens_per_s"};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string results_csv(const Sweep& sweep, const std::vector<SweepCellResult>& results) {
  std::string out = "cell";
  // Appended piecewise: GCC 12's -Wrestrict misfires on `"," + std::string` here.
  for (const auto& a : sweep.axes) out.append(",").append(csv_field(a.name));
  for (const char* c : kResultColumns) out.append(",").append(c);
  out += "\n";
  for (const auto& r : results) {
    if (r.result.is_null()) continue;
    out += r.cell->id;
    for (const auto& l : r.cell->labels) out.append(",").append(csv_field(l));
    for (const char* c : kResultColumns)
      out.append(",").append(r.result.contains(c) && r.result[c].is_number() ? fmt::format("{}", r.result[c].get<double>())
                                                                            : std::string());
    out += "\n";
  }
  return out;
}

SweepSummary summarize(const Sweep& sweep, const std::vector<SweepCellResult>& results) {
  const SweepTable& t = sweep.table;
  if (t.rows.empty() || t.columns.empty()) fail("sweep: the config's \"table\" needs \"rows\" and \"columns\" axes");
  const int ri = sweep.axis_index(t.rows), ci = sweep.axis_index(t.columns);
  const int si = t.seeds.empty() ? -1 : sweep.axis_index(t.seeds);
  SweepSummary s;
  s.rows = sweep.axes[ri].labels;
  s.columns = sweep.axes[ci].labels;
  s.columns.push_back("overall");
  // values[row][column][seed] → the metric of every finished cell there
  std::vector<std::vector<std::map<std::string, std::vector<double>>>> values(
      s.rows.size(), std::vector<std::map<std::string, std::vector<double>>>(s.columns.size()));
  for (const auto& r : results) {
    if (r.result.is_null() || !r.result.contains(t.metric)) continue;
    const double v = r.result[t.metric].get<double>();
    const auto& labels = r.cell->labels;
    const size_t row = std::find(s.rows.begin(), s.rows.end(), labels[ri]) - s.rows.begin();
    const size_t col = std::find(s.columns.begin(), s.columns.end(), labels[ci]) - s.columns.begin();
    const std::string seed = si >= 0 ? labels[si] : "";
    values[row][col][seed].push_back(v);
    values[row][s.columns.size() - 1][seed].push_back(v);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (size_t row = 0; row < s.rows.size(); row++) {
    s.mean.emplace_back(s.columns.size(), nan);
    s.spread.emplace_back(s.columns.size(), nan);
    s.seeds.emplace_back(s.columns.size(), 0);
    for (size_t col = 0; col < s.columns.size(); col++) {
      std::vector<double> per_seed;
      for (const auto& [seed, vs] : values[row][col]) {
        double sum = 0;
        for (double v : vs) sum += v;
        per_seed.push_back(sum / static_cast<double>(vs.size()));
      }
      if (per_seed.empty()) continue;
      double mean = 0;
      for (double v : per_seed) mean += v;
      mean /= static_cast<double>(per_seed.size());
      double var = 0;
      for (double v : per_seed) var += (v - mean) * (v - mean);
      s.mean[row][col] = mean;
      s.spread[row][col] = per_seed.size() > 1 ? std::sqrt(var / static_cast<double>(per_seed.size() - 1)) : 0.0;
      s.seeds[row][col] = static_cast<int>(per_seed.size());
    }
  }
  return s;
}

std::string markdown_table(const Sweep& sweep, const SweepSummary& s) {
  const SweepTable& t = sweep.table;
  const bool reference = !t.reference.empty();
  std::string out = "| " + t.rows;
  for (const auto& c : s.columns) out += " | " + c;
  if (reference) out += " | " + t.reference_name;
  out += " |\n|---";
  for (size_t c = 0; c < s.columns.size() + reference; c++) out += "|---";
  out += "|\n";
  for (size_t r = 0; r < s.rows.size(); r++) {
    out += "| " + s.rows[r];
    for (size_t c = 0; c < s.columns.size(); c++) {
      if (std::isnan(s.mean[r][c])) out += " | –";
      else if (s.seeds[r][c] > 1) out += fmt::format(" | {:.3f} ± {:.3f}", s.mean[r][c], s.spread[r][c]);
      else out += fmt::format(" | {:.3f}", s.mean[r][c]);
    }
    if (reference) {
      const auto it = t.reference.find(s.rows[r]);
      out += it == t.reference.end() ? " | –" : fmt::format(" | {:.3f}", it->second);
    }
    out += " |\n";
  }
  return out;
}

}  // namespace kvtie
