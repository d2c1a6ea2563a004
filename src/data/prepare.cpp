#include "data/prepare.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/npy.h"
#include "data/corpus.h"
#include "kvtie/error.h"
#include "kvtie/tokenizer.h"
#include "train/progress.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;
constexpr const char* kEot = "<|endoftext|>";

std::string joined_text(const std::vector<Document>& docs) {
  std::string out;
  for (const auto& d : docs) out += d.text + kEot;
  return out;
}

// Tokenises each document, appends <|endoftext|>, writes shards; returns the split's manifest entry.
nlohmann::json write_split(const std::string& out_dir, const std::string& split, const std::vector<Document>& docs,
                           const Tokenizer& tok, int64_t shard_tokens) {
  nlohmann::json entry{{"documents", docs.size()}, {"shards", nlohmann::json::array()}, {"docs", nlohmann::json::array()}};
  std::vector<int32_t> shard;
  int64_t total = 0;
  auto flush = [&] {
    const std::string name = fmt::format("{}-{:05}.npy", split, entry["shards"].size());
    write_tokens_npy(out_dir + "/" + name, shard);
    entry["shards"].push_back(name);
    shard.clear();
  };
  for (const auto& d : docs) {
    std::vector<int32_t> ids = tok.encode(d.text);
    ids.push_back(tok.eot_id());
    entry["docs"].push_back({{"name", d.name}, {"tokens", ids.size()}});
    total += static_cast<int64_t>(ids.size());
    shard.insert(shard.end(), ids.begin(), ids.end());
    if (static_cast<int64_t>(shard.size()) >= shard_tokens) flush();
  }
  if (!shard.empty() || entry["shards"].empty()) flush();
  entry["tokens"] = total;
  write_file_atomic(out_dir + "/" + split + ".txt", joined_text(docs));
  return entry;
}

}  // namespace

nlohmann::json prepare_corpus(const PrepareOptions& o) {
  if (o.out_dir.empty()) fail("data prepare: --out is required");
  if (o.brown_dir.empty() && o.kjv_path.empty()) fail("data prepare: no corpus given (--brown and/or --kjv)");
  if (!(o.val_fraction > 0 && o.val_fraction < 1)) fail("data prepare: --val-fraction must be in (0, 1)");
  fs::create_directories(o.out_dir);
  // Split each corpus on its own so that validation holds some of both.
  DocumentSplit all;
  nlohmann::json sources = nlohmann::json::object();
  auto add = [&](std::vector<Document> docs, const std::string& name, const std::string& from) {
    sources[name] = {{"path", from}, {"documents", docs.size()}};
    DocumentSplit s = split_documents(std::move(docs), o.val_fraction, o.seed);
    for (auto& d : s.train) all.train.push_back(std::move(d));
    for (auto& d : s.val) all.val.push_back(std::move(d));
  };
  if (!o.brown_dir.empty()) add(read_brown(o.brown_dir), "brown", o.brown_dir);
  if (!o.kjv_path.empty()) add(read_kjv(o.kjv_path), "kjv", o.kjv_path);

  const std::string tok_dir = o.out_dir + "/tokenizer";
  if (o.tokenizer_dir.empty()) {
    // The tokenizer sees the training documents only, so validation text stays unseen.
    const std::string corpus = o.out_dir + "/train.txt";
    write_file_atomic(corpus, joined_text(all.train));
    if (o.verbose) fmt::print(stderr, "training a {}-token BPE on {} training documents\n", o.vocab_size, all.train.size());
    Progress bar("bpe merges", o.vocab_size - 257, Progress::detect(!o.verbose), 500);
    BpeTrainOptions options;
    options.progress = [&](std::string_view phase, int64_t done, int64_t) {
      if (phase == "merge") bar.update(done, static_cast<double>(done), "merges", "");
    };
    train_bpe({corpus}, o.vocab_size, options).save(tok_dir);
    bar.finish();
  } else {
    Tokenizer::load(o.tokenizer_dir).save(tok_dir);
  }
  const Tokenizer tok = Tokenizer::load(tok_dir);
  nlohmann::json manifest{{"tokenizer", "tokenizer"},
                          {"vocab_size", tok.vocab_size()},
                          {"eot_id", tok.eot_id()},
                          {"seed", o.seed},
                          {"val_fraction", o.val_fraction},
                          {"sources", sources},
                          {"splits",
                           {{"train", write_split(o.out_dir, "train", all.train, tok, o.shard_tokens)},
                            {"val", write_split(o.out_dir, "val", all.val, tok, o.shard_tokens)}}}};
  write_file_atomic(o.out_dir + "/manifest.json", manifest.dump(1) + "\n");
  return manifest;
}

namespace {
nlohmann::json read_manifest(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not a valid manifest: {}", path, e.what());
  }
}
}  // namespace

std::vector<int32_t> read_split(const std::string& manifest_path, const std::string& split) {
  const nlohmann::json m = read_manifest(manifest_path);
  if (!m.contains("splits") || !m["splits"].contains(split)) fail("{}: no split '{}'", manifest_path, split);
  const std::string dir = fs::path(manifest_path).parent_path().string();
  std::vector<int32_t> tokens;
  for (const auto& shard : m["splits"][split].at("shards")) {
    const std::vector<int32_t> part = read_tokens_npy((dir.empty() ? "." : dir) + "/" + shard.get<std::string>());
    tokens.insert(tokens.end(), part.begin(), part.end());
  }
  return tokens;
}

std::string manifest_tokenizer(const std::string& manifest_path) {
  const std::string dir = fs::path(manifest_path).parent_path().string();
  return (dir.empty() ? "." : dir) + "/" + read_manifest(manifest_path).at("tokenizer").get<std::string>();
}

}  // namespace kvtie
