#pragma once
// The profiler's report: the theory (and, with --measure, the measured figures) of each variant of
// one or more models, rendered as aligned text, Markdown, CSV or JSON, and charted with gnuplot.
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kvtie/profile.h"

namespace kvtie {

struct VariantProfile {
  std::string label;
  ModelConfig config;
  ParamCounts params;
  Cost forward;                   // batch × T tokens, logits for every row, no loss: the study's scope
  Cost train;                     // forward with the loss + backward
  Cost prefill;                   // T prompt tokens, logits of the last one
  Cost decode;                    // one token at context T
  double study_formula_macs = 0;  // the study's formula, × batch
  std::optional<Measurement> measured;
};

struct ModelProfile {
  std::string name;  // preset name or config file
  std::string description;
  ModelConfig base;
  ModelConfig baseline;  // QKV-MHA of `base`: what the cuts and "vs QKV" columns compare with
  int64_t context = 0, batch = 1;
  KvDType dtype = KvDType::fp16;
  const StudyFigures* study = nullptr;
  std::vector<VariantProfile> variants;
  std::vector<std::string> notes;
};

struct ProfileOptions {
  int64_t context = 0;  // 0: the model's max_seq_len
  int64_t batch = 1;
  KvDType dtype = KvDType::fp16;
  // Labels (apply_variant), "study" for the study's eight, "config" for the model as given. With
  // kv_heads, QKV-family and Q-K=V-family rows for each count are added. Both empty: the eight.
  std::vector<std::string> variants = {};
  std::vector<int> kv_heads = {};
};

ModelProfile profile_model(const std::string& name, const std::string& description, const ModelConfig& base,
                           const StudyFigures* study, const ProfileOptions& o);
// An Error unless every variant of `p` can be measured (check_measurable); returns the layers the
// largest variant fits.
int check_model_measurable(const ModelProfile& p, const MeasureOptions& o);
// Measures every variant in turn, all at one depth; `progress` hears "measuring <model> <variant>".
void measure_model(ModelProfile& p, const MeasureOptions& o,
                   const std::function<void(const std::string&)>& progress = {});

enum class ReportFormat { table, markdown, csv, json };
ReportFormat parse_report_format(std::string_view name);

// `command` is the invocation that made the report; Markdown and JSON record it.
std::string render_report(const std::vector<ModelProfile>& profiles, ReportFormat f, const std::string& command);
nlohmann::json report_json(const std::vector<ModelProfile>& profiles, const std::string& command);

// Writes, per model, KV memory against context (one line per variant) and stacked bars of the
// parameter and training-FLOP breakdowns as PNG and SVG into `dir`, via a gnuplot script left
// beside them. Returns the image paths.
std::vector<std::string> write_profile_plots(const std::vector<ModelProfile>& profiles, const std::string& dir);

}  // namespace kvtie
