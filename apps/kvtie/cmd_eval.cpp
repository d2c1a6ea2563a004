// kvtie eval: mean next-token loss and perplexity of a checkpoint on tokens or text.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <filesystem>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/npy.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "kvtie/tokenizer.h"
#include "tokenizer_beside.h"
#include "infer/cached_eval.h"
#include "train/evaluate.h"

namespace kvtie::cli {
namespace {

nlohmann::json to_json(const EvalResult& r) { return {{"loss", r.loss}, {"ppl", r.ppl}, {"tokens", r.tokens}}; }

}  // namespace

void add_eval(CLI::App& app) {
  struct Opts {
    std::string model, tokens, text, kv_dtype;
    int threads = 0, batch = 8;
    int32_t eot = -1;
    bool per_doc = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Mean next-token loss and perplexity, in non-overlapping max_seq_len windows");
  cmd->add_option("--model", o->model, "Checkpoint (.safetensors)")->required();
  auto* tokens = cmd->add_option("--tokens", o->tokens, "Tokens: 1-D .npy of uint16 or int32");
  auto* text = cmd->add_option("--text", o->text, "UTF-8 text, encoded with the tokenizer beside the checkpoint");
  tokens->excludes(text);
  auto* kv_dtype = cmd->add_option("--kv-dtype", o->kv_dtype,
                  "Score every token through the KV-cache decode path with this cache format (fp32, bf16, fp16, "
                  "int8, int4)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}));
  cmd->add_flag("--per-doc", o->per_doc, "Also report each document (split at <|endoftext|>)")->excludes(kv_dtype);
  cmd->add_option("--eot", o->eot, "Document separator id for --per-doc (default: the tokenizer's <|endoftext|>)");
  cmd->add_option("--batch", o->batch, "Windows per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: OpenMP default)")->check(CLI::Range(0, 4096));
  cmd->add_flag("--json", o->json, "Print {\"loss\", \"ppl\", \"tokens\"} (and \"documents\") as JSON");
  cmd->footer("In each window every token but the first is predicted from the ones before it; nothing is padded.");
  cmd->callback([o] {
    if (o->tokens.empty() && o->text.empty()) throw CLI::RequiredError("--tokens or --text");
    if (o->threads > 0) omp_set_num_threads(o->threads);
    auto model = load_checkpoint(o->model, o->batch);
    std::vector<int32_t> ids;
    std::string source = o->tokens;
    int32_t eot = o->eot;
    const bool need_tokenizer = !o->text.empty() || (o->per_doc && eot < 0);
    if (need_tokenizer) {
      if (o->text.empty() && !std::filesystem::exists(tokenizer_dir_of(o->model) + "/vocab.json"))
        fail("{}: --per-doc needs --eot ID or a tokenizer beside the checkpoint", o->model);
      const Tokenizer tok = tokenizer_beside(o->model);
      if (eot < 0) eot = tok.eot_id();
      if (!o->text.empty()) {
        ids = tok.encode(read_file(o->text), /*allow_special=*/true);
        source = o->text;
      }
    }
    if (o->text.empty()) ids = read_tokens_npy(o->tokens);
    const EvalResult r = o->kv_dtype.empty()
                             ? evaluate_tokens(*model, ids, source)
                             : evaluate_tokens_cached(*model, ids, parse_kv_dtype(o->kv_dtype, "--kv-dtype"), o->batch, source);
    const std::vector<EvalResult> docs = o->per_doc ? evaluate_documents(*model, ids, eot, source) : std::vector<EvalResult>{};
    if (o->json) {
      nlohmann::json j = to_json(r);
      if (!o->kv_dtype.empty()) j["kv_dtype"] = o->kv_dtype;
      if (o->per_doc) {
        j["documents"] = nlohmann::json::array();
        for (const auto& d : docs) j["documents"].push_back(to_json(d));
      }
      fmt::print("{}\n", j.dump());
      return;
    }
    for (size_t i = 0; i < docs.size(); i++)
      fmt::print("document {:>4}  loss {:.6f}  ppl {:>10.4f}  tokens {}\n", i, docs[i].loss, docs[i].ppl, docs[i].tokens);
    fmt::print("loss {:.6f}  ppl {:.4f}  tokens {}\n", r.loss, r.ppl, r.tokens);
  });
}

}  // namespace kvtie::cli
