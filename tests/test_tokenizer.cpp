// The GPT-2 byte-level BPE: alphabet, pre-tokenisation, known ids, byte-exact round trips, an
// independent cross-check against tiktoken's r50k ranks and gpt-tokenizer's output, training,
// and load errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/atomic_file.h"
#include "data/byte_unicode.h"
#include "data/pretokenize.h"
#include "kvtie/error.h"
#include "kvtie/tokenizer.h"
#include "test_files.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using Pieces = std::vector<std::string_view>;

std::string asset(const std::string& rel) { return std::string(KVTIE_ASSETS) + "/" + rel; }

std::string utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Byte <-> unicode alphabet

TEST(ByteUnicode, IsGpt2sBijection) {
  const auto& cp = bpe::byte_to_codepoint();
  std::set<uint32_t> seen(cp.begin(), cp.end());
  EXPECT_EQ(seen.size(), 256u);
  // Printable Latin-1 keeps its code point; the rest follow from U+0100 in byte order.
  EXPECT_EQ(cp['!'], 0x21u);
  EXPECT_EQ(cp['~'], 0x7Eu);
  EXPECT_EQ(cp[0xA1], 0xA1u);
  EXPECT_EQ(cp[0xFF], 0xFFu);
  EXPECT_EQ(cp[0x00], 0x100u);  // Ā
  EXPECT_EQ(cp['\n'], 0x10Au);  // Ċ
  EXPECT_EQ(cp[' '], 0x120u);   // Ġ
  EXPECT_EQ(cp[0x7F], 0x121u);
  EXPECT_EQ(cp[0xA0], 0x142u);
  EXPECT_EQ(cp[0xAD], 0x143u);
  EXPECT_EQ(bpe::bytes_to_unicode(" the\n"), "\xC4\xA0the\xC4\x8A");  // "Ġthe" + "Ċ"

  std::string all;
  for (int b = 0; b < 256; b++) all += static_cast<char>(b);
  std::string back;
  ASSERT_TRUE(bpe::unicode_to_bytes(bpe::bytes_to_unicode(all), back));
  EXPECT_EQ(back, all);
  back.clear();
  EXPECT_FALSE(bpe::unicode_to_bytes("\xE4\xB8\xAD", back));  // 中 is not in the alphabet
  EXPECT_FALSE(bpe::unicode_to_bytes("\xC4", back));          // truncated
  back.clear();
  EXPECT_FALSE(bpe::unicode_to_bytes(" ", back));  // a raw space is not: it is spelled Ġ

  // Ids 0-255 in GPT-2's vocab.json: printable bytes first, then the others.
  const auto& order = bpe::byte_order();
  EXPECT_EQ(order[0], '!');
  EXPECT_EQ(order[93], '~');
  EXPECT_EQ(order[188], 0);
  EXPECT_EQ(order[188 + 32], ' ');  // id 220 is " " in GPT-2
  EXPECT_EQ(std::set<uint8_t>(order.begin(), order.end()).size(), 256u);
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenisation

Pieces split(std::string_view s) { return bpe::pretokenize(s); }

TEST(Pretokenize, SplitsLikeGpt2) {
  EXPECT_EQ(split("I'm here"), (Pieces{"I", "'m", " here"}));
  EXPECT_EQ(split("you're we've they'll she'd it's don't"),
            (Pieces{"you", "'re", " we", "'ve", " they", "'ll", " she", "'d", " it", "'s", " don", "'t"}));
  EXPECT_EQ(split("DON'T"), (Pieces{"DON", "'", "T"}));  // GPT-2's contractions are lower case only
  // A whitespace run gives its last space to the next word.
  EXPECT_EQ(split("  multiple   spaces"), (Pieces{" ", " multiple", "  ", " spaces"}));
  EXPECT_EQ(split("hello123world"), (Pieces{"hello", "123", "world"}));
  EXPECT_EQ(split("pi 3.14"), (Pieces{"pi", " 3", ".", "14"}));
  EXPECT_EQ(split("emoji 😀!"), (Pieces{"emoji", " 😀!"}));
  EXPECT_EQ(split("naïve café"), (Pieces{"naïve", " café"}));
  EXPECT_EQ(split("你好，世界"), (Pieces{"你好", "，", "世界"}));
  EXPECT_EQ(split("a\n\nb\tc  \n"), (Pieces{"a", "\n", "\n", "b", "\t", "c", "  \n"}));
  EXPECT_EQ(split("x\r\n  y"), (Pieces{"x", "\r\n ", " y"}));
  EXPECT_EQ(split("end   "), (Pieces{"end", "   "}));
  EXPECT_EQ(split("Ⅻ ²"), (Pieces{"Ⅻ", " ²"}));  // \p{N} takes letter and superscript numbers
  // Unicode White_Space, as Python's regex module and tiktoken: U+0085 and U+3000 are spaces.
  EXPECT_EQ(split("!\xC2\x85"), (Pieces{"!", "\xC2\x85"}));
  EXPECT_EQ(split("a\xE3\x80\x80\xE3\x80\x80" "b"), (Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(split("a\xC2\xA0" "b"), (Pieces{"a", "\xC2\xA0", "b"}));  // only U+0020 joins the next word
  EXPECT_TRUE(split("").empty());
}

TEST(Pretokenize, InvalidUtf8BecomesChunksOfItsOwn) {
  EXPECT_EQ(split("ab\xFF" "cd"), (Pieces{"ab", "\xFF", "cd"}));
  EXPECT_EQ(split("a\xFF\xFE b"), (Pieces{"a", "\xFF\xFE", " b"}));
  EXPECT_EQ(split("\xE2\x82"), (Pieces{"\xE2\x82"}));               // truncated €
  EXPECT_EQ(split("x\xC0\xAF"), (Pieces{"x", "\xC0\xAF"}));         // overlong '/'
  EXPECT_EQ(split("\xED\xA0\x80z"), (Pieces{"\xED\xA0\x80", "z"}));  // a surrogate
  EXPECT_EQ(split("€\x80€"), (Pieces{"€", "\x80", "€"}));
}

TEST(Pretokenize, HugeRunsDoNotOverflow) {
  const std::string spaces = std::string(1 << 20, ' ') + "x";
  const Pieces p = split(spaces);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].size(), (1u << 20) - 1);
  EXPECT_EQ(p[1], " x");
  const std::string letters(1 << 20, 'a');
  EXPECT_EQ(split(letters).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// GPT-2's own files (assets/, fetched by scripts/setup)

class Gpt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(asset("gpt2/vocab.json")) && fs::exists(asset("gpt2/merges.txt")))
      tok_ = new Tokenizer(Tokenizer::load(asset("gpt2")));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    if (!tok_) FAIL() << "missing " << asset("gpt2/vocab.json") << ": run scripts/setup (it runs scripts/fetch-assets)";
  }
  static const Tokenizer& tok() { return *tok_; }
  static Tokenizer* tok_;
};
Tokenizer* Gpt2::tok_ = nullptr;

TEST_F(Gpt2, KnownIds) {
  EXPECT_EQ(tok().vocab_size(), 50257);
  EXPECT_EQ(tok().eot_id(), 50256);
  EXPECT_EQ(tok().num_merges(), 50000);
  EXPECT_EQ(tok().encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(tok().encode(" the"), (Ids{262}));
  EXPECT_EQ(tok().encode(" "), (Ids{220}));
  EXPECT_EQ(tok().encode("\n"), (Ids{198}));
  EXPECT_EQ(tok().encode("<|endoftext|>", true), (Ids{50256}));
  EXPECT_EQ(tok().encode("<|endoftext|>"), (Ids{27, 91, 437, 1659, 5239, 91, 29}));  // as plain text
  EXPECT_EQ(tok().encode("a<|endoftext|>b", true), (Ids{64, 50256, 65}));
  EXPECT_EQ(tok().encode("I'm"), (Ids{40, 1101}));
  EXPECT_TRUE(tok().encode("").empty());
  EXPECT_EQ(tok().decode(Ids{15496, 995}), "Hello world");
  EXPECT_EQ(tok().decode(Ids{50256}), "<|endoftext|>");
  EXPECT_THROW(tok().decode(Ids{50257}), Error);
  EXPECT_THROW(tok().decode(Ids{-1}), Error);
}

// Random strings from pieces that stress every rule: ASCII, multi-byte UTF-8, every kind of
// invalid sequence, whitespace of several kinds, digits and contractions.
std::string random_text(std::mt19937_64& rng, size_t pieces, bool valid_utf8) {
  static const std::vector<std::string> atoms = {
      "a", "Z", "the", " the", " ", "  ", "\t", "\n", "\r\n", "'s", "'ll", "'", "0", "123", ".", "!!", "é", "ß",
      "Ж", "中", "😀", "👍🏽", "\xE2\x80\x94", "\xC2\xA0", "\xE3\x80\x80", "\xC2\x85", "<|endoftext|>", "<|", "ⅫⅫ"};
  static const std::vector<std::string> invalid = {"\xFF", "\xFE", "\x80", "\xC3", "\xE2\x82", "\xF0\x9F\x98",
                                                   "\xC0\xAF", "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xBF\xBF"};
  std::string s;
  for (size_t i = 0; i < pieces; i++) {
    const uint64_t kind = rng() % 10;
    if (kind < 5) {
      s += atoms[rng() % atoms.size()];
    } else if (kind < 7) {
      s += static_cast<char>(' ' + rng() % 95);
    } else if (kind < 8) {
      // Any scalar value outside the surrogates.
      uint32_t c = static_cast<uint32_t>(rng() % 0x10FFFF) + 1;
      if (c >= 0xD800 && c < 0xE000) c = 0x4E00;
      s += utf8(c);
    } else if (valid_utf8) {
      s += atoms[rng() % atoms.size()];
    } else if (kind < 9) {
      s += invalid[rng() % invalid.size()];
    } else {
      s += static_cast<char>(rng() % 256);
    }
  }
  return s;
}

TEST_F(Gpt2, RoundTripsAnyBytes) {
  std::mt19937_64 rng(20260125);
  for (int i = 0; i < 3000; i++) {
    const std::string s = random_text(rng, rng() % 60, false);
    const Ids ids = tok().encode(s);
    ASSERT_EQ(tok().decode(ids), s) << "case " << i;
    const Ids special = tok().encode(s, true);
    ASSERT_EQ(tok().decode(special), s) << "case " << i << " with specials";
    for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 50256) << "case " << i;
  }
  std::string bytes(4096, '\0');
  for (int i = 0; i < 50; i++) {
    for (char& c : bytes) c = static_cast<char>(rng());
    ASSERT_EQ(tok().decode(tok().encode(bytes)), bytes) << "uniform random bytes, case " << i;
  }
  for (int b = 0; b < 256; b++) {
    const std::string one(1, static_cast<char>(b));
    ASSERT_EQ(tok().encode(one).size(), 1u);
    ASSERT_EQ(tok().decode(tok().encode(one)), one);
  }
  const std::string long_run = std::string(100000, 'a') + std::string(100000, ' ') + std::string(50000, '7');
  EXPECT_EQ(tok().decode(tok().encode(long_run)), long_run);
}

TEST_F(Gpt2, EncodesTheSameFromSeveralThreads) {
  std::mt19937_64 rng(7);
  const std::string text = random_text(rng, 20000, false);
  const Ids expect = tok().encode(text);
  std::vector<Ids> got(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) threads.emplace_back([&, t] { got[t] = tok().encode(text); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(got[0], expect);
  EXPECT_EQ(got[1], expect);
}

// tiktoken's r50k_base ranks: one "base64(bytes) rank" per line; a token's rank is its id.
std::unordered_map<std::string, int32_t> read_tiktoken(const std::string& path) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::unordered_map<std::string, int32_t> ranks;
  const std::string text = read_file(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string bytes;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sp && line[i] != '='; i++) {
      acc = (acc << 6) | static_cast<uint32_t>(value(line[i]));
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    ranks.emplace(bytes, std::stoi(line.substr(sp + 1)));
  }
  return ranks;
}

// tiktoken's byte_pair_merge, written independently of our encoder: within one pre-token,
// repeatedly join the adjacent pair whose joined bytes have the lowest rank (leftmost on ties).
// Only the ranks are used, never vocab.json or merges.txt.
Ids reference_encode(std::string_view text, const std::unordered_map<std::string, int32_t>& ranks) {
  Ids out;
  for (const std::string_view piece : bpe::pretokenize(text)) {
    std::vector<std::string> parts;
    for (const char c : piece) parts.emplace_back(1, c);
    while (parts.size() > 1) {
      int32_t best_rank = INT32_MAX;
      size_t best = 0;
      for (size_t i = 0; i + 1 < parts.size(); i++) {
        const auto it = ranks.find(parts[i] + parts[i + 1]);
        if (it != ranks.end() && it->second < best_rank) best_rank = it->second, best = i;
      }
      if (best_rank == INT32_MAX) break;
      parts[best] += parts[best + 1];
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    for (const auto& p : parts) out.push_back(ranks.at(p));
  }
  return out;
}

TEST_F(Gpt2, MatchesTiktokenR50kRanks) {
  if (!fs::exists(asset("r50k_base.tiktoken")))
    FAIL() << "missing " << asset("r50k_base.tiktoken") << ": run scripts/setup (it runs scripts/fetch-assets)";
  const auto ranks = read_tiktoken(asset("r50k_base.tiktoken"));
  ASSERT_EQ(ranks.size(), 50256u);
  // Every token's bytes have its id as their rank.
  for (int32_t id = 0; id < 50256; id++) {
    const std::string bytes = tok().decode(Ids{id});
    const auto it = ranks.find(bytes);
    ASSERT_TRUE(it != ranks.end()) << "id " << id;
    ASSERT_EQ(it->second, id);
  }
  // A long varied text: the committed sample, then random mixes of its lines and of Unicode.
  std::string text = read_file(std::string(KVTIE_TEST_DATA) + "/data/tokenizer_sample.txt");
  std::vector<std::string> lines;
  for (size_t p = 0, e; p < text.size(); p = e + 1) {
    e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    lines.push_back(text.substr(p, e - p + 1));
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 400; i++) text += lines[rng() % lines.size()];
  for (int i = 0; i < 400; i++) text += random_text(rng, 40, /*valid_utf8=*/true) + "\n";
  for (int i = 0; i < 100; i++)
    text += std::string(rng() % 40, ' ') + std::to_string(rng()) + std::string(rng() % 5, '\n');
  ASSERT_GT(text.size(), 60000u);
  const Ids ours = tok().encode(text);
  const Ids ref = reference_encode(text, ranks);
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ours.size(); i++) ASSERT_EQ(ours[i], ref[i]) << "token " << i;
  // Invalid UTF-8 too (tiktoken itself takes only str, but its merge rule is defined on bytes).
  const std::string bytes = random_text(rng, 20000, false);
  EXPECT_EQ(tok().encode(bytes), reference_encode(bytes, ranks));
}

TEST_F(Gpt2, MatchesGptTokenizerOnTheSample) {
  const std::string path = asset("r50k_sample.json");
  if (!fs::exists(path)) FAIL() << "missing " << path << ": run scripts/setup (it runs scripts/fetch-assets)";
  const auto expected = nlohmann::json::parse(read_file(path));
  const std::string text = read_file(std::string(KVTIE_TEST_DATA) + "/data/tokenizer_sample.txt");
  ASSERT_EQ(expected.at("text").get<std::string>(), text)
      << path << " was made from another tests/data/tokenizer_sample.txt: run scripts/fetch-assets";
  const Ids ids = expected.at("ids").get<Ids>();
  ASSERT_GT(ids.size(), 500u);
  EXPECT_EQ(tok().encode(text, /*allow_special=*/true), ids);
  EXPECT_EQ(tok().decode(ids), text);
}

// ---------------------------------------------------------------------------------------------
// Training

std::string write_corpus(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  write_file_atomic(path, text);
  return path;
}

std::vector<std::string> merge_lines(const std::string& dir) {
  std::vector<std::string> lines;
  const std::string text = read_file(dir + "/merges.txt");
  for (size_t p = 0, e; p < text.size(); p = e + 1) {
    e = text.find('\n', p);
    lines.push_back(text.substr(p, e - p));
  }
  return lines;
}

TEST(TrainBpe, LearnsTheMostFrequentPairsWithFixedTieBreaks) {
  const std::string dir = test::temp_dir("tokenizer", "small");
  const std::string corpus = write_corpus(dir, "c.txt", "ab ab ab ab cd");
  BpeTrainStats st;
  const Tokenizer tok = train_bpe({corpus}, 300, {}, &st);
  // "ab" (4), " ab" (3); then " c" and "cd" tie at 1 and "cd" has the smaller ids ('c'=66 < ' '=220).
  tok.save(dir + "/out");
  EXPECT_EQ(merge_lines(dir + "/out"), (std::vector<std::string>{"#version: 0.2", "a b", "Ġ ab", "c d", "Ġ cd"}));
  EXPECT_EQ(tok.vocab_size(), 261);  // ran out of pairs: 256 + 4 + <|endoftext|>
  EXPECT_EQ(tok.eot_id(), 260);
  EXPECT_EQ(st.merges, 4);
  EXPECT_EQ(st.pretokens, 5);
  EXPECT_EQ(st.unique_words, 3);
  EXPECT_EQ(st.bytes, 14);
  EXPECT_EQ(tok.encode("ab ab cd"), (Ids{256, 257, 259}));
  EXPECT_EQ(tok.encode("!"), (Ids{0}));  // byte ids are GPT-2's
  const auto vocab = nlohmann::json::parse(read_file(dir + "/out/vocab.json"));
  EXPECT_EQ(vocab.at("ab"), 256);
  EXPECT_EQ(vocab.at("Ġab"), 257);
  EXPECT_EQ(vocab.at("<|endoftext|>"), 260);
  EXPECT_EQ(vocab.at("Ġ"), 220);
}

// The textbook trainer: recount every pair before each merge. Slow and plainly right; train_bpe
// updates counts incrementally and must choose the same merges in the same order.
std::vector<std::string> naive_merges(const std::string& text, int32_t vocab_size) {
  std::map<std::string, int64_t> word_count;
  for (size_t p = 0;;) {
    const size_t at = text.find("<|endoftext|>", p);
    const std::string part = text.substr(p, at == std::string::npos ? std::string::npos : at - p);
    for (const auto w : bpe::pretokenize(part)) word_count[std::string(w)]++;
    if (at == std::string::npos) break;
    p = at + 13;
  }
  std::vector<std::string> token;
  std::map<std::string, int32_t> id_of;
  int32_t byte_id[256];
  for (int i = 0; i < 256; i++) {
    token.emplace_back(1, static_cast<char>(bpe::byte_order()[i]));
    id_of[token.back()] = i;
    byte_id[bpe::byte_order()[i]] = i;
  }
  std::vector<std::pair<Ids, int64_t>> words;
  for (const auto& [w, c] : word_count) {
    Ids s;
    for (const char ch : w) s.push_back(byte_id[static_cast<uint8_t>(ch)]);
    words.emplace_back(s, c);
  }
  std::vector<std::string> lines{"#version: 0.2"};
  while (static_cast<int32_t>(token.size()) < vocab_size - 1) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const auto& [s, c] : words)
      for (size_t i = 0; i + 1 < s.size(); i++) pairs[{s[i], s[i + 1]}] += c;
    if (pairs.empty()) break;
    auto best = pairs.begin();  // ascending pairs: the first of the most frequent wins ties
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [a, b] = best->first;
    const std::string bytes = token[a] + token[b];
    if (!id_of.contains(bytes)) {
      id_of[bytes] = static_cast<int32_t>(token.size());
      token.push_back(bytes);
    }
    const int32_t id = id_of[bytes];
    lines.push_back(bpe::bytes_to_unicode(token[a]) + " " + bpe::bytes_to_unicode(token[b]));
    for (auto& [s, c] : words) {
      Ids merged;
      for (size_t i = 0; i < s.size(); i++) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) merged.push_back(id), i++;
        else merged.push_back(s[i]);
      }
      s = merged;
    }
  }
  return lines;
}

TEST(TrainBpe, ChoosesTheSameMergesAsRecountingEveryTime) {
  const std::string dir = test::temp_dir("tokenizer", "naive");
  std::mt19937_64 rng(11);
  std::string text = read_file(std::string(KVTIE_TEST_DATA) + "/data/tokenizer_sample.txt");
  for (int i = 0; i < 60; i++) text += random_text(rng, 200, false) + " the then they there\n";
  const Tokenizer tok = train_bpe({write_corpus(dir, "c.txt", text)}, 700);
  tok.save(dir + "/out");
  const auto expected = naive_merges(text, 700);
  EXPECT_EQ(tok.vocab_size(), 700);
  EXPECT_GT(expected.size(), 400u);
  EXPECT_EQ(merge_lines(dir + "/out"), expected);
}

// Training reads a file in ~1 MiB blocks cut where no chunk can span; the chunks it counts must be
// those of the whole text.
TEST(TrainBpe, CountsTheSameChunksAsTheWholeText) {
  const std::string dir = test::temp_dir("tokenizer", "blocks");
  std::mt19937_64 rng(5);
  const std::string sample = read_file(std::string(KVTIE_TEST_DATA) + "/data/tokenizer_sample.txt");
  std::string text;
  while (text.size() < 3'000'000) text += random_text(rng, 400, false) + (rng() % 2 ? sample : "  \n\n x y ");
  BpeTrainStats st;
  train_bpe({write_corpus(dir, "c.txt", text)}, 300, {}, &st);
  int64_t chunks = 0;
  std::set<std::string_view> distinct;
  for (size_t p = 0;;) {
    const size_t at = text.find("<|endoftext|>", p);
    const std::string_view part = std::string_view(text).substr(p, at == std::string::npos ? std::string::npos : at - p);
    for (const auto w : bpe::pretokenize(part)) chunks++, distinct.insert(w);
    if (at == std::string::npos) break;
    p = at + 13;
  }
  EXPECT_EQ(st.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(st.pretokens, chunks);
  EXPECT_EQ(st.unique_words, static_cast<int64_t>(distinct.size()));
}

TEST(TrainBpe, EndOfTextInTheCorpusOnlySeparates) {
  const std::string dir = test::temp_dir("tokenizer", "eot");
  std::string text;
  for (int i = 0; i < 50; i++) text += "<|endoftext|>hi";
  const Tokenizer tok = train_bpe({write_corpus(dir, "c.txt", text)}, 1000);
  EXPECT_EQ(tok.num_merges(), 1);  // only "h i"
  EXPECT_EQ(tok.encode("hi<|endoftext|>", true), (Ids{256, 257}));
}

TEST(TrainBpe, IsDeterministicAndRoundTrips) {
  const std::string dir = test::temp_dir("tokenizer", "det");
  std::mt19937_64 rng(3);
  const std::string sample = read_file(std::string(KVTIE_TEST_DATA) + "/data/tokenizer_sample.txt");
  std::string text;
  for (int i = 0; i < 40; i++) text += sample + random_text(rng, 300, false);
  const std::string a = write_corpus(dir, "a.txt", text.substr(0, text.size() / 2));
  const std::string b = write_corpus(dir, "b.txt", text.substr(text.size() / 2));
  const Tokenizer t1 = train_bpe({a, b}, 1000);
  const Tokenizer t2 = train_bpe({a, b}, 1000);
  EXPECT_EQ(t1.vocab_size(), 1000);
  EXPECT_EQ(t1.eot_id(), 999);
  t1.save(dir + "/t1");
  t2.save(dir + "/t2");
  EXPECT_EQ(read_file(dir + "/t1/vocab.json"), read_file(dir + "/t2/vocab.json"));
  EXPECT_EQ(read_file(dir + "/t1/merges.txt"), read_file(dir + "/t2/merges.txt"));
  EXPECT_EQ(merge_lines(dir + "/t1")[0], "#version: 0.2");

  // What was saved loads back to the same encoder, and both round-trip any bytes.
  const Tokenizer loaded = Tokenizer::load(dir + "/t1");
  EXPECT_EQ(loaded.vocab_size(), 1000);
  EXPECT_EQ(loaded.num_merges(), t1.num_merges());
  EXPECT_EQ(loaded.encode(sample, true), t1.encode(sample, true));
  EXPECT_LT(t1.encode(sample).size(), sample.size() / 2);  // it did learn something
  for (int i = 0; i < 500; i++) {
    const std::string s = random_text(rng, rng() % 50, false);
    ASSERT_EQ(loaded.decode(loaded.encode(s)), s) << "case " << i;
    ASSERT_EQ(loaded.encode(s), t1.encode(s)) << "case " << i;
  }
}

TEST(TrainBpe, RejectsBadArguments) {
  EXPECT_THROW(train_bpe({}, 1000), Error);
  const std::string dir = test::temp_dir("tokenizer", "bad");
  const std::string c = write_corpus(dir, "c.txt", "x");
  try {
    train_bpe({c}, 256);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
  }
  try {
    train_bpe({dir + "/missing.txt"}, 1000);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Load errors: one line naming the file (and line)

// A valid tiny tokenizer: the 256 byte tokens, "ab", <|endoftext|>, merges "a b".
std::string tiny_vocab_json(const std::string& extra = "") {
  nlohmann::ordered_json v;
  for (int i = 0; i < 256; i++) v[bpe::bytes_to_unicode(std::string(1, static_cast<char>(bpe::byte_order()[i])))] = i;
  v["ab"] = 256;
  v["<|endoftext|>"] = 257;
  std::string s = v.dump();
  if (!extra.empty()) s.insert(s.size() - 1, "," + extra);
  return s;
}

std::string load_error(const std::string& name, const std::string& vocab, const std::string& merges) {
  const std::string dir = test::temp_dir("tokenizer", name);
  write_file_atomic(dir + "/vocab.json", vocab);
  write_file_atomic(dir + "/merges.txt", merges);
  try {
    Tokenizer::load(dir);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  return "(no error)";
}

TEST(TokenizerLoad, AcceptsTheTinyTokenizer) {
  EXPECT_EQ(load_error("ok", tiny_vocab_json(), "#version: 0.2\na b\n"), "(no error)");
  const Tokenizer t = Tokenizer::load(test::temp_dir("tokenizer", "ok"));
  EXPECT_EQ(t.encode("abab"), (Ids{256, 256}));
  EXPECT_EQ(t.vocab_size(), 258);
  // No header, CRLF line ends and a blank last line are fine too.
  EXPECT_EQ(load_error("crlf", tiny_vocab_json(), "a b\r\n\r\n"), "(no error)");
}

TEST(TokenizerLoad, ErrorsNameTheFileAndLine) {
  const std::string missing = test::temp_dir("tokenizer", "missing") + "/nowhere";
  try {
    Tokenizer::load(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing + "/vocab.json"), std::string::npos) << e.what();
  }
  std::string e = load_error("badjson", "{\"a\": 0,\n,}", "");
  EXPECT_NE(e.find("badjson/vocab.json: invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;

  e = load_error("unknown", tiny_vocab_json(), "#version: 0.2\na b\nx yz\n");
  EXPECT_NE(e.find("unknown/merges.txt:3: token \"yz\" is not in vocab.json"), std::string::npos) << e;
  e = load_error("unmerged", tiny_vocab_json(), "#version: 0.2\na c\n");
  EXPECT_NE(e.find("unmerged/merges.txt:2: merged token \"ac\" is not in vocab.json"), std::string::npos) << e;
  e = load_error("threeparts", tiny_vocab_json(), "#version: 0.2\na b c\n");
  EXPECT_NE(e.find("threeparts/merges.txt:2: expected two tokens separated by one space"), std::string::npos) << e;
  e = load_error("missingmerges", tiny_vocab_json(), "");
  fs::remove(test::temp_dir("tokenizer", "missingmerges") + "/merges.txt");
  try {
    Tokenizer::load(test::temp_dir("tokenizer", "missingmerges"));
    FAIL() << "no error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("missingmerges/merges.txt"), std::string::npos) << err.what();
  }

  e = load_error("range", tiny_vocab_json("\"zz\": 900"), "");
  EXPECT_NE(e.find("range/vocab.json: token \"zz\": id must be an integer in [0, 259), got 900"), std::string::npos)
      << e;
  e = load_error("dup", tiny_vocab_json("\"zz\": 3"), "");
  EXPECT_NE(e.find("dup/vocab.json: id 3 is given to both"), std::string::npos) << e;
  e = load_error("alphabet", tiny_vocab_json("\"中\": 258"), "");
  EXPECT_NE(e.find("alphabet/vocab.json: token \"中\" (id 258) has characters outside"), std::string::npos) << e;
  e = load_error("noeot", "{\"a\": 0}", "");
  EXPECT_NE(e.find("noeot/vocab.json: no \"<|endoftext|>\" token"), std::string::npos) << e;
  e = load_error("nobyte", "{\"a\": 0, \"<|endoftext|>\": 1}", "");
  EXPECT_NE(e.find("nobyte/vocab.json: no token for byte 0x00"), std::string::npos) << e;
  e = load_error("array", "[1, 2]", "");
  EXPECT_NE(e.find("array/vocab.json: expected a JSON object"), std::string::npos) << e;
}

}  // namespace
}  // namespace kvtie
