// kvtie train: train a model from a run config, or continue an interrupted run.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "commands.h"
#include "core/units.h"
#include "kvtie/config_file.h"
#include "kvtie/model.h"
#include "train/trainer.h"

namespace kvtie::cli {
namespace {

std::string describe_validation(const nlohmann::json& v) {
  if (v.contains("val_examples"))  // task image
    return fmt::format(", test accuracy {:.4f} (loss {:.4f}, {} images) after {:.2f} epochs{}",
                       v["val_acc"].get<double>(), v["val_loss"].get<double>(), v["val_examples"].get<int64_t>(),
                       v["epoch"].get<double>(),
                       v.contains("train_acc")
                           ? fmt::format(", train accuracy {:.4f} since the previous test", v["train_acc"].get<double>())
                           : "");
  if (v.contains("val_sets"))  // task set-anomaly
    return fmt::format(", odd item found in {:.4f} of {} test sets (loss {:.4f} per item){}", v["val_acc"].get<double>(),
                       v["val_sets"].get<int64_t>(), v["val_loss"].get<double>(),
                       v.contains("train_acc")
                           ? fmt::format(", train {:.4f} since the previous test", v["train_acc"].get<double>())
                           : "");
  if (v.contains("val_ppl"))
    return fmt::format(", validation loss {:.4f} ppl {:.3f}", v["val_loss"].get<double>(), v["val_ppl"].get<double>());
  if (v.contains("val_acc"))
    return fmt::format(", test accuracy {:.4f}, exact match {:.4f} ({} sequences)", v["val_acc"].get<double>(),
                       v["val_exact"].get<double>(), v["val_sequences"].get<int64_t>());
  return "";
}

}  // namespace


void add_train(CLI::App& app) {
  struct Opts {
    std::string config, resume;
    std::vector<std::string> set;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a run config (\"model\" and \"train\" sections)");
  auto* config_opt = cmd->add_option("--config", o->config, "Run config (configs/*.json)");
  auto* resume_opt = cmd->add_option("--resume", o->resume,
                                 "Continue the run in this out_dir from its newest checkpoint (bit-identical to an "
                                 "uninterrupted run)");
  config_opt->excludes(resume_opt);
  cmd->add_option("--set", o->set, "Override a config field, e.g. --set model.share=kv --set train.steps=50");
  cmd->add_flag("--json", o->json, "No progress; print one JSON summary");
  cmd->footer(
      "Writes to train.out_dir: config.json (the full run config), metrics.jsonl (one JSON object per\n"
      "logged step and per validation), ckpt-*.safetensors + ckpt-*.state.safetensors every\n"
      "train.ckpt_every steps (the last train.keep_last kept, latest.json names the newest), and the\n"
      "final model.safetensors. Tasks: lm (train.data or train.train_tokens), induction (built-in causal\n"
      "copy LM), reverse | sort | sub | swap | copy (the study's synthetic digit tasks; docs/synthetic.md),\n"
      "image (a ViT on train.images, e.g. Fashion-MNIST; docs/vision.md), set-anomaly (the odd item of\n"
      "a set of a frozen ViT's image features, train.anomaly; docs/vision.md#set-anomaly-detection).");
  cmd->callback([o] {
    if (o->config.empty() && o->resume.empty()) throw CLI::RequiredError("--config or --resume");
    const std::string path = o->resume.empty() ? o->config : run_config_path(o->resume);
    auto config = load_config(path, o->set);
    if (!o->resume.empty()) config["train"]["out_dir"] = o->resume;
    const ModelConfig mc = parse_model_config(config_section(config, path, "model"), path + ": model");
    const TrainConfig tc =
        parse_train_config(config.contains("train") ? config.at("train") : nlohmann::json::object(), path + ": train");
    const int64_t params = make_param_layout(mc).total;
    const int64_t kv = kv_bytes_per_token(mc, 2.0);
    if (!o->json) {
      // Image and set models decode nothing, so a KV cache figure would mean nothing for them.
      fmt::print("model {}: {} layers, d_model {}, {} heads / {} kv heads, {} parameters{}\n", variant_label(mc),
                 mc.n_layer, mc.d_model, mc.n_head, mc.n_kv_head, params,
                 mc.is_image() ? "" : fmt::format(", KV cache {}/token at fp16", format_bytes(kv)));
      std::fflush(stdout);  // before the progress lines on stderr
    }
    const TrainResult r = train(mc, tc, {.quiet = o->json, .write_files = true, .resume = !o->resume.empty()});
    const double first = r.losses.empty() ? NAN : r.losses.front(), last = r.losses.empty() ? NAN : r.losses.back();
    if (o->json) {
      nlohmann::json j{{"variant", variant_label(mc)}, {"params", params}, {"kv_bytes_per_token_fp16", kv},
                       {"first_step", r.first_step}, {"steps", r.first_step + static_cast<int64_t>(r.losses.size())},
                       {"first_loss", first}, {"final_loss", last}, {"skipped_steps", r.skipped_steps},
                       {"seconds", r.seconds}, {r.unit + "_per_s", r.per_second}, {"checkpoint", r.checkpoint}};
      if (!r.val.is_null()) j.update(r.val);
      fmt::print("{}\n", j.dump());
      return;
    }
    if (r.losses.empty()) {
      fmt::print("nothing to do: the run is already at step {}; wrote {}\n", r.first_step, r.checkpoint);
      return;
    }
    fmt::print("{} steps {}-{} in {:.1f} s ({:.0f} {}/s): loss {:.4f} -> {:.4f}{}{}; wrote {}\n",
               r.first_step ? "resumed," : "trained", r.first_step + 1, r.first_step + r.losses.size(), r.seconds,
               r.per_second, r.unit, first, last,
               r.skipped_steps ? fmt::format(" ({} steps skipped)", r.skipped_steps) : "",
               describe_validation(r.val),
               r.checkpoint);
  });
}

}  // namespace kvtie::cli
