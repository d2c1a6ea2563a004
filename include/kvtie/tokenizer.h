#pragma once
// GPT-2 byte-level BPE: the vocab.json + merges.txt pair that Hugging Face reads, GPT-2's
// pre-tokenisation pattern, and <|endoftext|>. decode(encode(s)) == s for every byte string,
// invalid UTF-8 included. See docs/tokenizer.md.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvtie {

struct BpeTrainOptions {
  // Called now and then while training (phase "count": bytes read of `total`; phase "merge":
  // merges done of `total`). The library prints nothing itself; the CLI draws a progress bar.
  std::function<void(std::string_view phase, int64_t done, int64_t total)> progress;
};

struct BpeTrainStats {
  int64_t bytes = 0;         // corpus bytes read
  int64_t pretokens = 0;     // pre-tokenisation chunks counted
  int64_t unique_words = 0;  // distinct chunks
  int32_t merges = 0;        // lines written to merges.txt
  double seconds = 0.0;
};

class Tokenizer {
 public:
  // Reads DIR/vocab.json and DIR/merges.txt; errors name the file and line.
  static Tokenizer load(const std::string& dir);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Special tokens written literally in the text (<|endoftext|>) become their ids when
  // allow_special is true; otherwise they are encoded as ordinary text.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const;
  // The same, appended to `out` (no copy of the result for large inputs).
  void encode_to(std::string_view text, std::vector<int32_t>& out, bool allow_special = false) const;
  std::string decode(std::span<const int32_t> ids) const;  // Error on an id outside the vocabulary

  int32_t vocab_size() const;
  int32_t eot_id() const;  // <|endoftext|>
  int32_t num_merges() const;
  void save(const std::string& dir) const;  // writes vocab.json and merges.txt atomically

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend Tokenizer train_bpe(const std::vector<std::string>&, int32_t, const BpeTrainOptions&, BpeTrainStats*);
};

// Trains a byte-level BPE of the same kind on the given files (any bytes; read as UTF-8 where
// valid) until the vocabulary holds vocab_size tokens: 256 byte tokens (GPT-2's ids 0–255),
// the merged tokens in merge order, and <|endoftext|> as the last id. Stops early when no pair
// is left to merge. Literal "<|endoftext|>" in the corpus separates documents and is not learned.
// Deterministic: ties between equally frequent pairs go to the smaller (left id, right id).
Tokenizer train_bpe(const std::vector<std::string>& corpus_files, int32_t vocab_size,
                    const BpeTrainOptions& options = {}, BpeTrainStats* stats = nullptr);

}  // namespace kvtie
