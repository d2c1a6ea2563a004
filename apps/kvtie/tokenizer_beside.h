#pragma once
// A checkpoint's tokenizer lives beside it: vocab.json + merges.txt in the same directory.
#include <filesystem>
#include <string>

#include "kvtie/error.h"
#include "kvtie/tokenizer.h"

namespace kvtie::cli {

inline std::string tokenizer_dir_of(const std::string& model_path) {
  const std::string dir = std::filesystem::path(model_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

inline Tokenizer tokenizer_beside(const std::string& model_path) {
  const std::string dir = tokenizer_dir_of(model_path);
  if (!std::filesystem::exists(dir + "/vocab.json") || !std::filesystem::exists(dir + "/merges.txt"))
    fail("{}: no tokenizer beside the checkpoint (expected {}/vocab.json and {}/merges.txt)", model_path, dir, dir);
  return Tokenizer::load(dir);
}

}  // namespace kvtie::cli
