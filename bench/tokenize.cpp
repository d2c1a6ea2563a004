// Encoding throughput of the GPT-2 BPE (one thread): MB of text per second for pre-tokenisation
// alone, for a first encode (the per-thread chunk cache starts empty) and for repeated encodes
// (cache warm), and decode. Text: a FILE, or a generated mix (see make_text).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <random>

#include "core/atomic_file.h"
#include "data/pretokenize.h"
#include "kvtie/tokenizer.h"

namespace {

using namespace kvtie;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// About `bytes` of text shaped like prose: Zipf-distributed words (GPT-2's own whole-word tokens,
// sometimes glued in pairs so that unseen words occur), punctuation, numbers, line breaks, and one
// line in 20 from the multilingual test sample (emoji, CJK, whitespace runs, invalid-free UTF-8).
std::string make_text(const Tokenizer& tok, const std::string& sample, size_t bytes, uint64_t seed) {
  std::vector<std::string> words;
  for (int32_t id = 0; id < tok.eot_id(); id++) {
    const std::string s = tok.decode(std::span<const int32_t>(&id, 1));
    if (s.size() >= 3 && s[0] == ' ' &&
        std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      words.push_back(s.substr(1));
  }
  std::vector<std::string> lines;
  for (size_t p = 0, e; p < sample.size(); p = e + 1) {
    e = sample.find('\n', p);
    if (e == std::string::npos) e = sample.size();
    lines.push_back(sample.substr(p, e - p) + "\n");
  }
  std::mt19937_64 rng(seed);
  std::vector<double> weights(words.size());
  for (size_t i = 0; i < weights.size(); i++) weights[i] = 1.0 / static_cast<double>(i + 1);
  std::discrete_distribution<size_t> zipf(weights.begin(), weights.end());
  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    if (rng() % 20 == 0) {
      text += lines[rng() % lines.size()];
      continue;
    }
    const int n = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; i++) {
      std::string w = words[zipf(rng)];
      if (rng() % 10 == 0) w += words[zipf(rng)];
      if (i == 0 || rng() % 15 == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      text += (i ? " " : "") + w;
      const uint64_t r = rng() % 40;
      if (r == 0)
        text += " " + std::to_string(rng() % 100000);
      else if (r < 4)
        text += ",";
      else if (r == 4)
        text += "'s";
    }
    text += rng() % 3 ? ". " : ".\n";
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Byte-level BPE encode/decode throughput on one thread"};
  std::string tokenizer_dir = std::string(KVTIE_SOURCE_DIR) + "/assets/gpt2", text_file;
  double megabytes = 8;
  int repeat = 3;
  bool json = false;
  app.add_option("--tokenizer", tokenizer_dir, "vocab.json + merges.txt directory")->capture_default_str();
  app.add_option("--text", text_file, "Text to encode (default: a generated mix, see --mb)");
  app.add_option("--mb", megabytes, "Size of the generated text in MB")
      ->check(CLI::Range(0.01, 1000.0))
      ->capture_default_str();
  app.add_option("--repeat", repeat, "Warm encodes to time (the best is reported)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_flag("--json", json, "Print the numbers as JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    auto t = Clock::now();
    const Tokenizer tok = Tokenizer::load(tokenizer_dir);
    const double load_s = seconds_since(t);
    const std::string text =
        text_file.empty()
            ? make_text(tok, read_file(std::string(KVTIE_SOURCE_DIR) + "/tests/data/tokenizer_sample.txt"),
                        static_cast<size_t>(megabytes * 1e6), 1)
            : read_file(text_file);
    const double mb = static_cast<double>(text.size()) / 1e6;

    t = Clock::now();
    size_t chunks = 0;
    bpe::pretokenize(text, [&](std::string_view) { chunks++; });
    const double pretok_s = seconds_since(t);

    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3);
    t = Clock::now();
    tok.encode_to(text, ids);
    const double first_s = seconds_since(t);
    double warm_s = 1e30;
    for (int r = 0; r < repeat; r++) {
      ids.clear();
      t = Clock::now();
      tok.encode_to(text, ids);
      warm_s = std::min(warm_s, seconds_since(t));
    }
    t = Clock::now();
    const std::string back = tok.decode(ids);
    const double decode_s = seconds_since(t);
    if (back != text) {
      fmt::print(stderr, "tokenize bench: decode(encode(text)) != text\n");
      return 1;
    }
    const std::string source = text_file.empty() ? fmt::format("generated mix, {:.1f} MB", mb) : text_file;
    if (json) {
      fmt::print("{}\n", nlohmann::json{{"text", source},
                                        {"bytes", text.size()},
                                        {"tokens", ids.size()},
                                        {"chunks", chunks},
                                        {"load_s", load_s},
                                        {"pretokenize_mb_per_s", mb / pretok_s},
                                        {"encode_first_mb_per_s", mb / first_s},
                                        {"encode_warm_mb_per_s", mb / warm_s},
                                        {"decode_mb_per_s", mb / decode_s}}
                             .dump());
    } else {
      fmt::print("text: {} ({} bytes, {} chunks, {} tokens, {:.2f} bytes/token); tokenizer {} loaded in {:.2f} s\n",
                 source, text.size(), chunks, ids.size(),
                 static_cast<double>(text.size()) / static_cast<double>(ids.size()), tokenizer_dir, load_s);
      fmt::print("pre-tokenise only       {:8.1f} MB/s\n", mb / pretok_s);
      fmt::print("encode, first pass      {:8.1f} MB/s   (chunk cache empty at the start)\n", mb / first_s);
      fmt::print("encode, best of {:<2}      {:8.1f} MB/s   (cache warm)\n", repeat, mb / warm_s);
      fmt::print("decode                  {:8.1f} MB/s\n", mb / decode_s);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "tokenize bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
