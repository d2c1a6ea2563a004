// Loading, saving, encoding and decoding of GPT-2 byte-level BPE (kvtie::Tokenizer).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/atomic_file.h"
#include "data/byte_unicode.h"
#include "data/pretokenize.h"
#include "data/tokenizer_impl.h"
#include "kvtie/error.h"

namespace kvtie {

namespace bpe {

void PairTable::reserve(size_t n) {
  size_t cap = 2;
  int bits = 1;
  while (cap < 2 * n + 2) cap *= 2, bits++;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old(cap);
  old.swap(slots_);
  mask_ = cap - 1;
  shift_ = 64 - bits;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t j = slot(s.key);
    while (slots_[j].key != kEmpty) j = (j + 1) & mask_;
    slots_[j] = s;
  }
}

void PairTable::insert(int32_t left, int32_t right, Value v) {
  if (2 * (size_ + 1) > slots_.size()) reserve(size_ + 1);
  const uint64_t key = pack(left, right);
  size_t i = slot(key);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return;
    i = (i + 1) & mask_;
  }
  slots_[i] = {key, v};
  size_++;
}

}  // namespace bpe

namespace {

std::atomic<uint64_t> next_instance{1};

// A string for an error message: quoted, escaped, invalid UTF-8 replaced, so it stays one line.
std::string printable(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Natural text repeats its words: remembering each chunk's ids makes BPE a lookup for most of
// them. Per thread, so encode() stays const and lock-free; bounded, so memory stays small. When
// full it keeps what it has (as Hugging Face's cache does): the frequent words come early, and
// clearing would make text with many rare words pay for refilling it again and again.
struct ChunkCache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr size_t kMaxChunk = 64;  // longer chunks rarely repeat
  uint64_t owner = 0;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, bpe::StringHash, std::equal_to<>> where;
  std::vector<int32_t> ids;
};

}  // namespace

void Tokenizer::Impl::build() {
  std::fill(std::begin(byte_id), std::end(byte_id), -1);
  for (int32_t id = static_cast<int32_t>(token_bytes.size()) - 1; id >= 0; id--)
    if (id != eot && token_bytes[id].size() == 1) byte_id[static_cast<uint8_t>(token_bytes[id][0])] = id;
  pairs = bpe::PairTable();
  pairs.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); r++)
    pairs.insert(merges[r].left, merges[r].right, {static_cast<int32_t>(r), merges[r].id});
  instance = next_instance.fetch_add(1);
}

void Tokenizer::Impl::encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const {
  const int n = static_cast<int>(chunk.size());
  if (n == 1) {
    out.push_back(byte_id[static_cast<uint8_t>(chunk[0])]);
    return;
  }
  // Hugging Face's order: repeatedly merge the adjacent pair of lowest merge rank, leftmost
  // first, over a linked list with a heap of candidate pairs (n log n, for long chunks too).
  // Entries go stale when a neighbour merges; they are checked against the ids when popped.
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<int32_t> ids, prev, next;
  thread_local std::vector<Cand> heap;
  ids.resize(n);
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (int i = 0; i < n; i++) {
    ids[i] = byte_id[static_cast<uint8_t>(chunk[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const auto* v = pairs.find(ids[pos], ids[next[pos]])) {
      heap.push_back({v->rank, pos, ids[pos], ids[next[pos]]});
      std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    }
  };
  for (int i = 0; i + 1 < n; i++) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const Cand c = heap.back();
    heap.pop_back();
    const int r = next[c.pos];
    if (ids[c.pos] != c.left || r < 0 || ids[r] != c.right) continue;
    ids[c.pos] = merges[c.rank].id;
    ids[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_bytes.size()); }
int32_t Tokenizer::eot_id() const { return impl_->eot; }
int32_t Tokenizer::num_merges() const { return static_cast<int32_t>(impl_->merges.size()); }

void Tokenizer::encode_to(std::string_view text, std::vector<int32_t>& out, bool allow_special) const {
  const Impl& im = *impl_;
  thread_local ChunkCache cache;
  if (cache.owner != im.instance) {
    cache.where.clear();
    cache.ids.clear();
    cache.owner = im.instance;
  }
  auto encode_text = [&](std::string_view part) {
    bpe::pretokenize(part, [&](std::string_view chunk) {
      if (chunk.size() == 1 || chunk.size() > ChunkCache::kMaxChunk) return im.encode_chunk(chunk, out);
      if (const auto it = cache.where.find(chunk); it != cache.where.end()) {
        out.insert(out.end(), cache.ids.begin() + it->second.first,
                   cache.ids.begin() + it->second.first + it->second.second);
        return;
      }
      const size_t start = out.size();
      im.encode_chunk(chunk, out);
      if (cache.where.size() >= ChunkCache::kMaxEntries) return;
      cache.where.emplace(std::string(chunk), std::pair{static_cast<uint32_t>(cache.ids.size()),
                                                        static_cast<uint32_t>(out.size() - start)});
      cache.ids.insert(cache.ids.end(), out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
    });
  };
  if (!allow_special) return encode_text(text);
  for (size_t pos = 0;;) {
    const size_t at = text.find(im.eot_text, pos);
    encode_text(text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) return;
    out.push_back(im.eot);
    pos = at + im.eot_text.size();
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);
  encode_to(text, out, allow_special);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  const auto& tb = impl_->token_bytes;
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(tb.size()))
      fail("decode: token id {} is outside the vocabulary [0, {})", id, tb.size());
    out += tb[id];
  }
  return out;
}

Tokenizer Tokenizer::load(const std::string& dir) {
  const std::string vocab_path = (std::filesystem::path(dir) / "vocab.json").string();
  const std::string merges_path = (std::filesystem::path(dir) / "merges.txt").string();
  auto im = std::make_unique<Impl>();

  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_path));
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    if (const size_t p = what.find("] "); what.starts_with("[json.exception") && p != std::string::npos)
      what.erase(0, p + 2);
    fail("{}: invalid JSON: {}", vocab_path, what);
  }
  if (!vocab.is_object() || vocab.empty()) fail("{}: expected a JSON object mapping token strings to ids", vocab_path);
  const auto n = static_cast<int64_t>(vocab.size());
  std::unordered_map<std::string, int32_t> id_of;
  id_of.reserve(vocab.size());
  std::vector<const std::string*> key_of(vocab.size(), nullptr);
  im->token_bytes.resize(vocab.size());
  for (const auto& [key, value] : vocab.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() >= n)
      fail("{}: token {}: id must be an integer in [0, {}), got {}", vocab_path, printable(key), n, value.dump());
    const auto id = static_cast<int32_t>(value.get<int64_t>());
    if (key_of[id])
      fail("{}: id {} is given to both {} and {}", vocab_path, id, printable(*key_of[id]), printable(key));
    key_of[id] = &id_of.emplace(key, id).first->first;
    if (key == im->eot_text) {
      im->eot = id;
      im->token_bytes[id] = key;
    } else if (!bpe::unicode_to_bytes(key, im->token_bytes[id])) {
      fail("{}: token {} (id {}) has characters outside GPT-2's byte-level alphabet", vocab_path, printable(key), id);
    }
  }
  if (im->eot < 0) fail("{}: no \"{}\" token", vocab_path, im->eot_text);
  for (int b = 0; b < 256; b++)
    if (!id_of.contains(bpe::bytes_to_unicode(std::string(1, static_cast<char>(b)))))
      fail("{}: no token for byte 0x{:02X} ({})", vocab_path, b,
           printable(bpe::bytes_to_unicode(std::string(1, static_cast<char>(b)))));

  const std::string text = read_file(merges_path);
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    line_no++;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos)
      fail("{}:{}: expected two tokens separated by one space, got {}", merges_path, line_no, printable(line));
    const std::string left(line.substr(0, sp)), right(line.substr(sp + 1));
    const auto l = id_of.find(left), r = id_of.find(right), m = id_of.find(left + right);
    if (l == id_of.end()) fail("{}:{}: token {} is not in vocab.json", merges_path, line_no, printable(left));
    if (r == id_of.end()) fail("{}:{}: token {} is not in vocab.json", merges_path, line_no, printable(right));
    if (m == id_of.end())
      fail("{}:{}: merged token {} is not in vocab.json", merges_path, line_no, printable(left + right));
    im->merges.push_back({l->second, r->second, m->second});
  }
  im->build();
  return Tokenizer(std::move(im));
}

void Tokenizer::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory: {}", dir, ec.message());
  const Impl& im = *impl_;
  auto unicode = [&](int32_t id) { return id == im.eot ? im.eot_text : bpe::bytes_to_unicode(im.token_bytes[id]); };
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int32_t id = 0; id < vocab_size(); id++) vocab[unicode(id)] = id;
  std::string merges = "#version: 0.2\n";
  for (const auto& m : im.merges) merges += unicode(m.left) + ' ' + unicode(m.right) + '\n';
  write_file_atomic((std::filesystem::path(dir) / "vocab.json").string(), vocab.dump() + '\n');
  write_file_atomic((std::filesystem::path(dir) / "merges.txt").string(), merges);
}

}  // namespace kvtie
