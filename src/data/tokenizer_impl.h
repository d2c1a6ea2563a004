#pragma once
// The tables behind kvtie::Tokenizer, shared by loading (bpe_tokenizer.cpp) and training
// (bpe_train.cpp).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kvtie/tokenizer.h"

namespace kvtie {

namespace bpe {

// Lets the string-keyed maps be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// (left id, right id) -> (merge rank, merged id), open addressing: the encoder's innermost
// lookup, where std::unordered_map's node chasing would cost more than the merging itself.
class PairTable {
 public:
  struct Value {
    int32_t rank = -1;
    int32_t id = -1;
  };
  void reserve(size_t n);
  // Keeps the first (lowest-rank) entry when a pair is inserted twice.
  void insert(int32_t left, int32_t right, Value v);
  const Value* find(int32_t left, int32_t right) const {
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  // Key and value side by side: a lookup touches one cache line.
  struct Slot {
    uint64_t key = kEmpty;
    Value value;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
  }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<Slot> slots_ = std::vector<Slot>(2);
  size_t mask_ = 1;
  int shift_ = 63;  // 64 - log2(table size)
  size_t size_ = 0;
};

}  // namespace bpe

struct Tokenizer::Impl {
  std::vector<std::string> token_bytes;  // id -> the bytes it stands for
  struct Merge {
    int32_t left, right, id;  // id: the merged token
  };
  std::vector<Merge> merges;  // in rank order
  int32_t eot = -1;
  std::string eot_text = "<|endoftext|>";
  int32_t byte_id[256] = {};  // byte -> its single-byte token
  bpe::PairTable pairs;
  uint64_t instance = 0;  // tells per-thread caches apart

  // Fills byte_id, pairs and instance from token_bytes, merges and eot (all ids valid).
  void build();
  // BPE of one pre-token, appended to `out`.
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;
};

}  // namespace kvtie
