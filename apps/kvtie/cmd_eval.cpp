// kvtie eval: mean next-token loss and perplexity of a checkpoint on a token file.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "commands.h"
#include "core/npy.h"
#include "kvtie/checkpoint.h"
#include "train/evaluate.h"

namespace kvtie::cli {

void add_eval(CLI::App& app) {
  struct Opts {
    std::string model, tokens;
    int threads = 0, batch = 8;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Mean next-token loss and perplexity on a 1-D token array, in non-overlapping max_seq_len windows");
  cmd->add_option("--model", o->model, "Checkpoint (.safetensors)")->required();
  cmd->add_option("--tokens", o->tokens, "Tokens: 1-D .npy of uint16 or int32")->required();
  cmd->add_option("--batch", o->batch, "Windows per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: OpenMP default)")->check(CLI::Range(0, 4096));
  cmd->add_flag("--json", o->json, "Print {\"loss\", \"ppl\", \"tokens\"} as JSON");
  cmd->callback([o] {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    const std::vector<int32_t> tokens = read_tokens_npy(o->tokens);
    const ModelConfig mc = read_checkpoint_config(o->model);
    const int64_t windows = (static_cast<int64_t>(tokens.size()) + mc.max_seq_len - 1) / mc.max_seq_len;
    auto model = load_checkpoint(o->model, static_cast<int>(std::clamp<int64_t>(windows, 1, o->batch)), mc.max_seq_len);
    const EvalResult r = evaluate_tokens(*model, tokens, o->tokens);
    if (o->json)
      fmt::print("{}\n", nlohmann::json{{"loss", r.loss}, {"ppl", r.ppl}, {"tokens", r.tokens}}.dump());
    else
      fmt::print("loss {:.6f}  ppl {:.4f}  tokens {}\n", r.loss, r.ppl, r.tokens);
  });
}

}  // namespace kvtie::cli
