// kvtie train: train a model from a run config.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/units.h"
#include "kvtie/config_file.h"
#include "kvtie/model.h"
#include "train/trainer.h"

namespace kvtie::cli {

void add_train(CLI::App& app) {
  struct Opts {
    std::string config;
    std::vector<std::string> set;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a run config (\"model\" and \"train\" sections)");
  cmd->add_option("--config", o->config, "Run config (configs/*.json)")->required();
  cmd->add_option("--set", o->set, "Override a config field, e.g. --set model.share=kv --set train.steps=50");
  cmd->add_flag("--json", o->json, "No progress; print one JSON summary");
  cmd->footer(
      "Writes OUT_DIR/metrics.jsonl (one JSON object per logged step) and OUT_DIR/model.safetensors,\n"
      "where OUT_DIR is train.out_dir. Built-in task: copy (a causal LM learns to repeat a random sequence).");
  cmd->callback([o] {
    const auto config = load_config(o->config, o->set);
    const ModelConfig mc = parse_model_config(config_section(config, o->config, "model"), o->config + ": model");
    const TrainConfig tc = parse_train_config(
        config.contains("train") ? config.at("train") : nlohmann::json::object(), o->config + ": train");
    const int64_t params = make_param_layout(mc).total;
    const int64_t kv = kv_bytes_per_token(mc, 2.0);
    if (!o->json)
      fmt::print("model {}: {} layers, d_model {}, {} heads / {} kv heads, {} parameters, KV cache {}/token at fp16\n",
                 variant_label(mc), mc.n_layer, mc.d_model, mc.n_head, mc.n_kv_head, params, format_bytes(kv));
    std::fflush(stdout);  // before the progress lines on stderr
    const TrainResult r = train(mc, tc, {.quiet = o->json, .write_files = true});
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"variant", variant_label(mc)}, {"params", params},
                                        {"kv_bytes_per_token_fp16", kv}, {"steps", r.losses.size()},
                                        {"first_loss", r.losses.front()}, {"final_loss", r.losses.back()},
                                        {"skipped_steps", r.skipped_steps}, {"seconds", r.seconds},
                                        {"tokens_per_s", r.tokens_per_second}, {"checkpoint", r.checkpoint}}
                             .dump());
    } else {
      fmt::print("trained {} steps in {:.1f} s ({:.0f} tokens/s): loss {:.4f} -> {:.4f}{}; wrote {}\n", r.losses.size(),
                 r.seconds, r.tokens_per_second, r.losses.front(), r.losses.back(),
                 r.skipped_steps ? fmt::format(" ({} steps skipped)", r.skipped_steps) : "", r.checkpoint);
    }
  });
}

}  // namespace kvtie::cli
