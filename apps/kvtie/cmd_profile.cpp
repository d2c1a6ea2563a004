// kvtie profile: parameters, FLOPs and KV-cache bytes of every attention variant of a model, in
// theory and (with --measure) measured.
#include <fmt/format.h>
#include <omp.h>

#include <nlohmann/json.hpp>

#include "analysis/profile_report.h"
#include "commands.h"
#include "kvtie/config_file.h"
#include "kvtie/error.h"
#include "kvtie/profile.h"

namespace kvtie::cli {

void add_profile(CLI::App& app) {
  struct Opts {
    std::vector<std::string> presets, configs, set, variants;
    std::vector<int> kv_heads;
    int64_t context = 0;
    int batch = 1, repeats = 2, threads = 0, decode_steps = 16;
    std::string dtype = "fp16", format = "table", plot;
    double memory_budget_gib = 8;
    uint64_t seed = 0;
    bool json = false, measure = false;
  };
  auto o = std::make_shared<Opts>();
  std::string preset_names;
  for (const Preset& p : presets()) preset_names += (preset_names.empty() ? "" : ", ") + p.name;
  CLI::App* cmd = app.add_subcommand(
      "profile", "Parameters, MACs/FLOPs and KV-cache bytes of each attention variant, in theory and measured");
  cmd->add_option("--preset", o->presets, "A built-in model (repeatable): " + preset_names);
  cmd->add_option("--config", o->configs, "Run config with a \"model\" section (repeatable)");
  cmd->add_option("--set", o->set, "Override a config field, e.g. --set model.n_layer=12 (applies to every model)");
  cmd->add_option("--variants", o->variants,
                  "Comma-separated rows: QKV, Q-K=V, Q=K-V, Q=K=V, GQA-g, MQA, Q-GQA-g, Q-MQA, 'study' (those "
                  "eight with g = 4; the default) or 'config' (the model as configured)")
      ->delimiter(',');
  cmd->add_option("--kv-heads", o->kv_heads, "Comma-separated kv-head counts: adds QKV-family and Q-K=V-family rows")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--context", o->context, "Context length T (default: the model's max_seq_len)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--batch", o->batch, "Sequences per batch")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "KV-cache dtype of the totals and the measured cache")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}))
      ->capture_default_str();
  cmd->add_option("--format", o->format, "Output: table, markdown, csv (long: model,table,variant,column,value), json")
      ->check(CLI::IsMember({"table", "markdown", "csv", "json"}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Same as --format json");
  cmd->add_option("--plot", o->plot, "Directory for gnuplot charts (PNG and SVG) and their data and script");
  cmd->add_flag("--measure", o->measure,
                "Build each variant with random weights: time a forward pass of T tokens, fill a KV cache, time "
                "decode steps");
  cmd->add_option("--memory-budget", o->memory_budget_gib,
                  "GiB a measured model and its KV cache may take; larger models are measured with fewer layers")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "Timed forward passes per variant; the fastest counts")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--decode-steps", o->decode_steps, "Decode steps timed per variant (the cache's last positions)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: OpenMP default)")->check(CLI::Range(0, 4096));
  cmd->add_option("--seed", o->seed, "Seed of the random weights and tokens of --measure")->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  kvtie profile --preset paper-300m\n"
      "  kvtie profile --config configs/tiny.json --variants QKV,Q-K=V,MQA --context 4096 --dtype int8\n"
      "  kvtie profile --preset paper-1.2b --measure --context 512 --plot plots\n"
      "Formulas and their derivations: docs/profile.md.");
  cmd->callback([o, cmd] {
    if (o->json) {
      if (cmd->count("--format") && o->format != "json") fail("--json: conflicts with --format {}", o->format);
      o->format = "json";
    }
    if (o->presets.empty() && o->configs.empty()) fail("--preset or --config: give at least one model");
    if (o->threads > 0) omp_set_num_threads(o->threads);

    // The invocation, without paths that differ between machines, recorded in Markdown and JSON.
    std::string command = "kvtie profile";
    for (const auto& p : o->presets) command += " --preset " + p;
    for (const auto& c : o->configs) command += " --config " + c;
    for (const auto& s : o->set) command += " --set " + s;
    if (!o->variants.empty()) command += " --variants " + fmt::format("{}", fmt::join(o->variants, ","));
    if (!o->kv_heads.empty()) command += " --kv-heads " + fmt::format("{}", fmt::join(o->kv_heads, ","));
    if (o->context) command += fmt::format(" --context {}", o->context);
    if (o->batch != 1) command += fmt::format(" --batch {}", o->batch);
    if (o->dtype != "fp16") command += " --dtype " + o->dtype;
    if (o->measure) command += " --measure";
    command += " --format " + o->format;

    ProfileOptions po;
    po.context = o->context;
    po.batch = o->batch;
    po.dtype = parse_kv_dtype(o->dtype);
    po.variants = o->variants;
    po.kv_heads = o->kv_heads;

    std::vector<ModelProfile> profiles;
    for (const auto& name : o->presets) {
      const Preset& preset = find_preset(name);
      const auto config = load_config("", o->set, nlohmann::json::parse(preset.config_json));
      const ModelConfig mc = parse_model_config(config_section(config, name, "model"), name + ": model");
      const ModelConfig as_published =
          parse_model_config(nlohmann::json::parse(preset.config_json).at("model"), name + ": model");
      // The study's figures describe the preset as published, not one changed by --set.
      const bool unchanged = to_json(mc) == to_json(as_published);
      profiles.push_back(profile_model(name, preset.description, mc, unchanged ? &preset.study : nullptr, po));
    }
    for (const auto& path : o->configs) {
      const auto config = load_config(path, o->set);
      const ModelConfig mc = parse_model_config(config_section(config, path, "model"), path + ": model");
      profiles.push_back(profile_model(path, "", mc, nullptr, po));
    }

    if (o->measure) {
      MeasureOptions mo;
      mo.repeats = o->repeats;
      mo.decode_steps = o->decode_steps;
      mo.memory_budget = static_cast<int64_t>(o->memory_budget_gib * double(int64_t{1} << 30));
      mo.seed = o->seed;
      const bool quiet = o->format == "json" || o->format == "csv";
      for (const auto& p : profiles) check_model_measurable(p, mo);
      for (auto& p : profiles)
        measure_model(p, mo, [quiet](const std::string& what) {
          if (!quiet) fmt::print(stderr, "kvtie: {}\n", what);
        });
    }

    fmt::print("{}", render_report(profiles, parse_report_format(o->format), command));
    if (!o->plot.empty()) {
      const auto images = write_profile_plots(profiles, o->plot);
      fmt::print(stderr, "kvtie: wrote {} charts: {}\n", images.size(), fmt::join(images, ", "));
    }
  });
}

}  // namespace kvtie::cli
