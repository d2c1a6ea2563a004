#pragma once
// A sweep: one base run config and a grid of axes; every combination of axis values is a cell,
// one training run. Config (JSON, key order kept):
//
//   {"base": {"model": {…}, "train": {…}}   (or a path to a run config),
//    "grid": [{"axis": "task", "set": "train.task", "values": ["reverse", "sort"]},
//             {"axis": "variant", "values": {"QKV": {"model.share": "none"},
//                                            "(Q=K-V)+": {"model.share": "qk", "model.score_pos2d": true}}},
//             {"axis": "seed", "set": "train.seed", "values": [1, 2, 3]}],
//    "table": {"rows": "variant", "columns": "task", "seeds": "seed", "metric": "val_acc",
//              "reference": {"name": "study", "values": {"QKV": 0.851}}}}
//
// An axis with "set" assigns each value to that key; an axis whose values are an object maps a
// label to several settings.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace kvtie {

struct SweepAxis {
  std::string name;
  std::vector<std::string> labels;
  std::vector<std::vector<std::string>> settings;  // per label: "key=json" overrides
};

struct SweepTable {
  std::string rows, columns, seeds, metric = "val_acc";
  std::string reference_name;
  std::map<std::string, double> reference;  // row label → the reference's value
};

struct SweepCell {
  std::vector<std::string> labels;  // one per axis
  nlohmann::json config;            // the full run config
  std::string id;                   // stable: a hash of the config
};

struct Sweep {
  nlohmann::json base;
  std::vector<SweepAxis> axes;
  SweepTable table;
  std::vector<SweepCell> cells() const;
  int axis_index(const std::string& name) const;  // -1 when absent
};

// Errors name `path` and the field.
Sweep parse_sweep(const std::string& path);

}  // namespace kvtie
