// Byte-level BPE training (kvtie::train_bpe): count pre-tokenised words once, then merge the most
// frequent adjacent pair over and over, updating only the counts of words that hold it.
#include <chrono>
#include <filesystem>
#include <queue>
#include <unordered_map>

#include "core/atomic_file.h"
#include "data/byte_unicode.h"
#include "data/pretokenize.h"
#include "data/tokenizer_impl.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

uint64_t pack(int32_t a, int32_t b) { return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b); }
int32_t left_of(uint64_t p) { return static_cast<int32_t>(p >> 32); }
int32_t right_of(uint64_t p) { return static_cast<int32_t>(p & 0xFFFFFFFFu); }

// Where text may be cut into blocks without changing the chunks: after an ASCII non-space byte
// and before an ASCII space or newline. No chunk spans such a point (a chunk takes at most one
// leading space and whitespace runs hold only whitespace), and the whitespace rules look ahead
// only within whitespace.
size_t find_cut(std::string_view text, size_t from) {
  for (size_t p = std::max<size_t>(from, 1); p < text.size(); p++) {
    const auto before = static_cast<unsigned char>(text[p - 1]);
    if ((text[p] == ' ' || text[p] == '\n') && before > ' ' && before < 0x7F) return p;
  }
  return text.size();
}

}  // namespace

Tokenizer train_bpe(const std::vector<std::string>& corpus_files, int32_t vocab_size, const BpeTrainOptions& options,
                    BpeTrainStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  if (corpus_files.empty()) fail("train_bpe: no corpus files");
  if (vocab_size < 257) fail("vocab_size: must be at least 257 (256 byte tokens + <|endoftext|>), got {}", vocab_size);
  auto report = [&](std::string_view phase, int64_t done, int64_t total) {
    if (options.progress) options.progress(phase, done, total);
  };
  auto im = std::make_unique<Tokenizer::Impl>();
  BpeTrainStats st;

  // 1. Word counts. Literal <|endoftext|> separates documents; it is added as a token at the end.
  std::unordered_map<std::string, int64_t, bpe::StringHash, std::equal_to<>> word_count;
  int64_t total_bytes = 0;
  for (const auto& f : corpus_files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f, ec);
    if (ec) fail("{}: cannot open: {}", f, ec.message());
    total_bytes += static_cast<int64_t>(size);
  }
  report("count", 0, total_bytes);
  constexpr size_t kBlock = 1 << 20;
  auto count_words = [&](std::string_view part) {
    bpe::pretokenize(part, [&](std::string_view w) {
      st.pretokens++;
      if (auto it = word_count.find(w); it != word_count.end())
        it->second++;
      else
        word_count.emplace(std::string(w), 1);
    });
  };
  for (const auto& f : corpus_files) {
    const std::string text = read_file(f);  // one file at a time: only the counts are kept
    const std::string_view all(text);
    for (size_t pos = 0; pos < all.size();) {
      const size_t end = find_cut(all, std::min(all.size(), pos + kBlock));
      const std::string_view block = all.substr(pos, end - pos);
      for (size_t p = 0;;) {
        const size_t at = block.find(im->eot_text, p);
        count_words(block.substr(p, at == std::string_view::npos ? std::string_view::npos : at - p));
        if (at == std::string_view::npos) break;
        p = at + im->eot_text.size();
      }
      st.bytes += static_cast<int64_t>(end - pos);
      report("count", st.bytes, total_bytes);
      pos = end;
    }
  }
  st.unique_words = static_cast<int64_t>(word_count.size());

  // 2. Byte tokens in GPT-2's order, so that ids 0-255 mean the same bytes as in GPT-2.
  std::unordered_map<std::string, int32_t, bpe::StringHash, std::equal_to<>> id_of;
  int32_t byte_token[256];
  for (int i = 0; i < 256; i++) {
    const uint8_t b = bpe::byte_order()[i];
    im->token_bytes.emplace_back(1, static_cast<char>(b));
    id_of.emplace(im->token_bytes.back(), i);
    byte_token[b] = i;
  }

  struct Word {
    std::vector<int32_t> syms;
    int64_t count;
  };
  std::vector<Word> words;
  words.reserve(word_count.size());
  for (const auto& [w, c] : word_count) {
    Word word{{}, c};
    for (const char ch : w) word.syms.push_back(byte_token[static_cast<uint8_t>(ch)]);
    if (word.syms.size() > 1) words.push_back(std::move(word));
  }
  decltype(word_count)().swap(word_count);

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // may list a word twice or stale
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); wi++) {
    const auto& s = words[wi].syms;
    for (size_t i = 0; i + 1 < s.size(); i++) {
      const uint64_t p = pack(s[i], s[i + 1]);
      pair_count[p] += words[wi].count;
      where[p].push_back(wi);
    }
  }
  // Most frequent first; ties to the smaller (left, right) so the result never depends on hash
  // order. Entries go stale as counts change and are checked against pair_count when popped.
  struct Entry {
    int64_t count;
    uint64_t pair;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  // 3. Merges.
  const int32_t target = vocab_size - 1;  // the last id is <|endoftext|>
  const int64_t merges_wanted = target - 256;
  std::vector<int32_t> stamp(words.size(), -1);
  std::vector<uint64_t> changed;
  std::vector<int32_t> merged_syms;
  report("merge", 0, merges_wanted);
  while (static_cast<int32_t>(im->token_bytes.size()) < target && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const auto pc = pair_count.find(top.pair);
    if (pc == pair_count.end() || pc->second != top.count || top.count <= 0) continue;
    const int32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string bytes = im->token_bytes[a] + im->token_bytes[b];
    // Two merge paths can spell the same bytes ("ab"+"c", "a"+"bc"); like Hugging Face's
    // trainer, the second reuses the first's id, so vocab.json keys stay unique.
    int32_t id;
    if (const auto it = id_of.find(bytes); it != id_of.end()) {
      id = it->second;
    } else {
      id = static_cast<int32_t>(im->token_bytes.size());
      id_of.emplace(bytes, id);
      im->token_bytes.push_back(std::move(bytes));
    }
    const int32_t rank = static_cast<int32_t>(im->merges.size());
    im->merges.push_back({a, b, id});

    changed.clear();
    std::vector<int32_t> holders;
    holders.swap(where[top.pair]);
    for (const int32_t wi : holders) {
      if (stamp[wi] == rank) continue;
      stamp[wi] = rank;
      Word& w = words[wi];
      auto& s = w.syms;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; i++) has = s[i] == a && s[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); i++) {
        const uint64_t p = pack(s[i], s[i + 1]);
        pair_count[p] -= w.count;
        changed.push_back(p);
      }
      merged_syms.clear();
      for (size_t i = 0; i < s.size(); i++) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged_syms.push_back(id);
          i++;
        } else {
          merged_syms.push_back(s[i]);
        }
      }
      s.assign(merged_syms.begin(), merged_syms.end());
      for (size_t i = 0; i + 1 < s.size(); i++) {
        const uint64_t p = pack(s[i], s[i + 1]);
        pair_count[p] += w.count;
        changed.push_back(p);
        if (s[i] == id || s[i + 1] == id) where[p].push_back(wi);
      }
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (const uint64_t p : changed) {
      const auto it = pair_count.find(p);
      if (it->second > 0)
        heap.push({it->second, p});
      else
        pair_count.erase(it);
    }
    if (const int64_t done = static_cast<int64_t>(im->token_bytes.size()) - 256; done % 64 == 0)
      report("merge", done, merges_wanted);
  }
  report("merge", static_cast<int64_t>(im->token_bytes.size()) - 256, merges_wanted);

  im->eot = static_cast<int32_t>(im->token_bytes.size());
  im->token_bytes.push_back(im->eot_text);
  im->build();
  st.merges = static_cast<int32_t>(im->merges.size());
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats) *stats = st;
  return Tokenizer(std::move(im));
}

}  // namespace kvtie
