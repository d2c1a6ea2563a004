// kvtie tokenize: encode a text file into a 1-D token array (.npy) with a BPE tokenizer.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/npy.h"
#include "kvtie/tokenizer.h"

namespace kvtie::cli {

void add_tokenize(CLI::App& app) {
  struct Opts {
    std::string tokenizer, in, out;
    bool special = false, append_eot = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode a text file into a 1-D token array (.npy, uint16 or int32)");
  cmd->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt (e.g. assets/gpt2)")->required();
  cmd->add_option("--in", o->in, "Text file (any bytes; invalid UTF-8 is kept as byte tokens)")->required();
  cmd->add_option("--out", o->out, "Output .npy")->required();
  cmd->add_flag("--special", o->special, "Read literal <|endoftext|> in the text as the end-of-text token");
  cmd->add_flag("--append-eot", o->append_eot, "End the array with <|endoftext|>");
  cmd->add_flag("--json", o->json, "Print {\"tokens\", \"bytes\", \"seconds\", ...} as JSON");
  cmd->footer(
      "uint16 when every id fits in 16 bits (GPT-2's 50257 do), else int32. decode(encode(text)) == text, byte for "
      "byte.");
  cmd->callback([o] {
    const Tokenizer tok = Tokenizer::load(o->tokenizer);
    const std::string text = read_file(o->in);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 16);
    tok.encode_to(text, ids, o->special);
    if (o->append_eot) ids.push_back(tok.eot_id());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_tokens_npy(o->out, ids);
    // write_tokens_npy's rule: uint16 when every id written fits.
    const char* dtype = std::all_of(ids.begin(), ids.end(), [](int32_t t) { return t <= 0xFFFF; }) ? "uint16" : "int32";
    const double mb_per_s = seconds > 0 ? static_cast<double>(text.size()) / 1e6 / seconds : 0.0;
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"tokens", ids.size()},
                                        {"bytes", text.size()},
                                        {"seconds", seconds},
                                        {"mb_per_s", mb_per_s},
                                        {"vocab_size", tok.vocab_size()},
                                        {"dtype", dtype},
                                        {"out", o->out}}
                             .dump());
    } else {
      fmt::print("{} bytes -> {} tokens ({:.2f} bytes/token) in {:.3f} s ({:.1f} MB/s); wrote {} ({})\n", text.size(),
                 ids.size(), ids.empty() ? 0.0 : static_cast<double>(text.size()) / static_cast<double>(ids.size()),
                 seconds, mb_per_s, o->out, dtype);
    }
  });
}

}  // namespace kvtie::cli
