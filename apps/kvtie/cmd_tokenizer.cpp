// kvtie tokenizer train: learn a GPT-2-style byte-level BPE (vocab.json + merges.txt) from text.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>

#include "commands.h"
#include "kvtie/error.h"
#include "kvtie/tokenizer.h"
#include "train/progress.h"

namespace kvtie::cli {

void add_tokenizer(CLI::App& app) {
  CLI::App* group = app.add_subcommand("tokenizer", "Byte-level BPE tokenizers (GPT-2 format)");
  group->require_subcommand(1);

  struct Opts {
    std::vector<std::string> corpus;
    int32_t vocab_size = 8192;
    std::string out;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = group->add_subcommand("train", "Train a byte-level BPE on text files; write vocab.json + merges.txt");
  // No CLI11 checks on values: bad values fail in the callback with kvtie's one-line error, exit 1.
  cmd->add_option("--corpus", o->corpus, "Text files (UTF-8; other bytes are kept as bytes)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--vocab-size", o->vocab_size, "Tokens in all: 256 bytes + merges + <|endoftext|> (at least 257)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Directory for vocab.json and merges.txt (created if missing)")->required();
  cmd->add_flag("--json", o->json, "No progress; print one JSON summary");
  cmd->footer(
      "Same pre-tokenisation, byte alphabet and file format as GPT-2: Hugging Face's GPT2Tokenizer and\n"
      "`kvtie tokenize` read the result. <|endoftext|> is the last id. Ties between equally frequent\n"
      "pairs go to the smaller ids, so the same corpus always gives the same files.");
  cmd->callback([o] {
    if (o->vocab_size < 257)
      fail("--vocab-size: must be at least 257 (256 byte tokens + <|endoftext|>), got {}", o->vocab_size);
    const auto mode = Progress::detect(o->json);
    std::optional<Progress> bar;
    std::string phase;
    int64_t shown = -1;
    BpeTrainOptions options;
    options.progress = [&](std::string_view p, int64_t done, int64_t total) {
      if (p != phase) {
        if (bar) bar->finish();
        phase = p;
        shown = -1;
        // Counting reports bytes (shown in MiB, a line per 4 MiB); merging reports new tokens.
        bar.emplace(p == "count" ? "count words" : "merge", p == "count" ? (total + (1 << 20) - 1) >> 20 : total, mode,
                    p == "count" ? 4 : 1024);
      }
      const int64_t step = p != "count" ? done : done == total ? (total + (1 << 20) - 1) >> 20 : done >> 20;
      if (step == shown) return;  // a file boundary repeats a MiB, an id reused repeats a count
      shown = step;
      bar->update(step, p == "count" ? static_cast<double>(done) / 1e6 : static_cast<double>(done),
                  p == "count" ? "MB" : "tok", "");
    };
    BpeTrainStats st;
    const Tokenizer tok = train_bpe(o->corpus, o->vocab_size, options, &st);
    if (bar) bar->finish();
    tok.save(o->out);
    const std::string vocab = (std::filesystem::path(o->out) / "vocab.json").string();
    const std::string merges = (std::filesystem::path(o->out) / "merges.txt").string();
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"vocab_size", tok.vocab_size()},
                                        {"merges", st.merges},
                                        {"eot_id", tok.eot_id()},
                                        {"bytes", st.bytes},
                                        {"pretokens", st.pretokens},
                                        {"unique_words", st.unique_words},
                                        {"seconds", st.seconds},
                                        {"vocab", vocab},
                                        {"merges_file", merges}}
                             .dump());
    } else {
      if (tok.vocab_size() < o->vocab_size)
        fmt::print("note: the corpus ran out of pairs to merge at {} tokens (asked for {})\n", tok.vocab_size(),
                   o->vocab_size);
      fmt::print(
          "trained {} merges on {:.2f} MB ({} words, {} distinct) in {:.2f} s: vocab {} tokens, "
          "<|endoftext|> = {}; wrote {} and {}\n",
          st.merges, static_cast<double>(st.bytes) / 1e6, st.pretokens, st.unique_words, st.seconds, tok.vocab_size(),
          tok.eot_id(), vocab, merges);
    }
  });
}

}  // namespace kvtie::cli
