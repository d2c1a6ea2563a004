// kvtie analyze attention: where a ViT's class token looks, per layer and head, as a PNG grid.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "analysis/attention_maps.h"
#include "commands.h"
#include "data/images/image_transform.h"
#include "data/images/open_image_dataset.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"

namespace kvtie::cli {

void add_analyze(CLI::App& app) {
  struct Opts {
    std::string model, format = "fashion-mnist", split = "test", out;
    std::vector<std::string> paths;
    int64_t image = 0;
    int scale = 4;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* analyze = app.add_subcommand("analyze", "Look inside a trained model");
  analyze->require_subcommand(1);
  CLI::App* cmd = analyze->add_subcommand(
      "attention", "Per-head attention of a ViT's class token (mean over queries with mean pooling) as a PNG grid");
  cmd->add_option("--model", o->model, "A ViT checkpoint (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--image", o->image, "Index of the image in the data set")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--data", o->format, "Data set format (fashion-mnist, mnist, idx, cifar10, cifar100, tinyimagenet)")
      ->capture_default_str();
  cmd->add_option("--data-path", o->paths, "Data files or folder (fashion-mnist: Debian's package by default)");
  cmd->add_option("--split", o->split, "train or test")->capture_default_str();
  cmd->add_option("--out", o->out, "PNG to write (default attention-<image>.png)");
  cmd->add_option("--scale", o->scale, "Pixels per image pixel")->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_flag("--json", o->json, "Print the maps as JSON");
  cmd->footer(
      "Rows are layers: the input image, then one map per head (each scaled to its own maximum).\n"
      "The image is normalised with the train split's channel statistics, as in training.");
  cmd->callback([o] {
    auto model = load_checkpoint(o->model, 1);
    const ModelConfig& c = model->config();
    if (!c.is_image()) fail("{}: not a ViT checkpoint (it has no \"image\" input)", o->model);
    auto data = open_image_dataset({o->format, o->paths, o->split});
    const ImageShape shape = data->shape();
    if (shape.channels != c.image.channels || shape.height != c.image.height || shape.width != c.image.width)
      fail("{}: images are {}×{}×{}, the model takes {}×{}×{}", data->source(), shape.channels, shape.height,
           shape.width, c.image.channels, c.image.height, c.image.width);
    if (o->image >= data->size()) fail("--image: {} is past the last image ({})", o->image, data->size() - 1);
    auto train = open_image_dataset({o->format, o->paths, "train"});
    const ImageTransform transform(shape, compute_channel_stats(*train));
    std::vector<float> pixels(shape.numel()), input(shape.numel());
    data->read(o->image, pixels.data());
    transform.eval(pixels.data(), input.data());
    const AttentionMaps maps = class_attention_maps(*model, input.data());
    const float* logits = model->logits();
    const int predicted = static_cast<int>(std::max_element(logits, logits + c.n_classes) - logits);
    const std::string out = o->out.empty() ? fmt::format("attention-{}.png", o->image) : o->out;
    if (auto dir = std::filesystem::path(out).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
    write_attention_grid(out, maps, pixels.data(), shape.channels, shape.height, shape.width, o->scale);
    if (o->json) {
      nlohmann::json layers = nlohmann::json::array();
      const int cells = maps.grid_h * maps.grid_w;
      for (int l = 0; l < maps.layers; l++) {
        nlohmann::json heads = nlohmann::json::array();
        for (int h = 0; h < maps.heads; h++) heads.push_back(std::vector<float>(maps.map(l, h), maps.map(l, h) + cells));
        layers.push_back(heads);
      }
      fmt::print("{}\n", nlohmann::json{{"png", out}, {"label", data->label(o->image)}, {"predicted", predicted},
                                        {"grid", {maps.grid_h, maps.grid_w}}, {"maps", layers}}
                             .dump());
    } else {
      fmt::print("image {} (label {}, predicted {}): {} layers × {} heads over a {}×{} patch grid; wrote {}\n", o->image,
                 data->label(o->image), predicted, maps.layers, maps.heads, maps.grid_h, maps.grid_w, out);
    }
  });
}

}  // namespace kvtie::cli
