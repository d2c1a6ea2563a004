// kvtie init: a freshly initialised model written as a checkpoint.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/units.h"
#include "kvtie/checkpoint.h"
#include "kvtie/config_file.h"
#include "kvtie/error.h"
#include "kvtie/model.h"

namespace kvtie::cli {

void add_init(CLI::App& app) {
  struct Opts {
    std::string config, out, dtype = "f32";
    std::vector<std::string> set;
    uint64_t seed = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("init", "Write a freshly initialised model (Normal(0, 0.02) weights, zero biases)");
  cmd->add_option("--config", o->config, "Run config with a \"model\" section (configs/*.json)")->required();
  cmd->add_option("--set", o->set, "Override a config field, e.g. --set model.share=kv (repeatable)");
  cmd->add_option("--seed", o->seed, "Initialisation seed")->capture_default_str();
  cmd->add_option("--out", o->out, "Checkpoint to write (.safetensors)")->required();
  cmd->add_option("--dtype", o->dtype, "Weight dtype in the file")->check(CLI::IsMember({"f32", "bf16"}))->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object instead of text");
  cmd->callback([o] {
    const auto config = load_config(o->config, o->set);
    const ModelConfig mc = parse_model_config(config_section(config, o->config, "model"), o->config + ": model");
    Transformer<float> model(mc, 1, 1);
    model.init_weights(o->seed);
    save_checkpoint(o->out, mc, model.params(), o->dtype == "bf16" ? WeightDType::bf16 : WeightDType::f32);
    const int64_t kv = kv_bytes_per_token(mc, 2.0);
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"path", o->out}, {"variant", variant_label(mc)}, {"params", model.num_params()},
                                        {"kv_bytes_per_token_fp16", kv}, {"config", to_json(mc)}}
                             .dump());
    } else if (mc.is_image()) {  // a bidirectional classifier: no KV cache to speak of
      fmt::print("wrote {}: {} ViT ({} layers, d_model {}, {} heads / {} kv heads; {}×{}×{} images in {}×{} patches, {} "
                 "positions), {} parameters\n",
                 o->out, variant_label(mc), mc.n_layer, mc.d_model, mc.n_head, mc.n_kv_head, mc.image.channels,
                 mc.image.height, mc.image.width, mc.image.patch, mc.image.patch, mc.max_seq_len, model.num_params());
    } else {
      fmt::print("wrote {}: {} ({} layers, d_model {}, {} heads / {} kv heads), {} parameters, KV cache {}/token at fp16\n",
                 o->out, variant_label(mc), mc.n_layer, mc.d_model, mc.n_head, mc.n_kv_head, model.num_params(),
                 format_bytes(kv));
    }
  });
}

}  // namespace kvtie::cli
