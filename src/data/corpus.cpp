#include "data/corpus.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

// Tokens that attach to the previous word ("word ," → "word,") or to the next one.
bool attaches_left(std::string_view w) {
  static const char* kLeft[] = {",", ".", ";", ":", "!", "?", ")", "]", "}", "'", "n't", "'s", "--"};
  return std::find(std::begin(kLeft), std::end(kLeft), w) != std::end(kLeft);
}
bool attaches_right(std::string_view w) { return w == "(" || w == "[" || w == "{" || w == "$"; }

}  // namespace

std::string clean_brown(std::string_view tagged) {
  std::string out, line;
  std::istringstream in{std::string(tagged)};
  bool open_quote = false, glue_next = true, in_paragraph = false;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line[0] == '\t' && in_paragraph) {  // a tab starts a new paragraph
      out += '\n';
      glue_next = true;
    }
    in_paragraph = true;
    std::istringstream words(line);
    std::string token;
    while (words >> token) {
      const size_t slash = token.rfind('/');
      std::string w = slash == std::string::npos || slash == 0 ? token : token.substr(0, slash);
      // Brown writes quotes as `` and ''. (assign(1, c) sidesteps a GCC 12 -Wrestrict false alarm.)
      if (w == "``" || w == "''") {
        open_quote = w == "``";
        w.assign(1, '"');
      }
      const bool closing = w == "\"" && !open_quote;
      if (!glue_next && !attaches_left(w) && !closing) out += ' ';
      out += w;
      glue_next = attaches_right(w) || (w == "\"" && open_quote);
    }
  }
  if (!out.empty()) out += '\n';
  return out;
}

std::vector<Document> read_brown(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) fail("{}: Brown corpus directory not found (run scripts/setup)", dir);
  std::vector<std::string> names;
  const std::regex text_file("c[a-r][0-9][0-9]");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, text_file)) names.push_back(name);
  }
  if (names.empty()) fail("{}: no Brown corpus text files (c[a-r]NN)", dir);
  std::sort(names.begin(), names.end());
  std::vector<Document> docs;
  for (const auto& n : names) docs.push_back({"brown/" + n, clean_brown(read_file(dir + "/" + n))});
  return docs;
}

std::vector<Document> read_kjv(const std::string& path) {
  std::istringstream in(read_file(path));
  const std::regex chapter(R"(^(.+) ([0-9]+)$)");
  const std::regex verse(R"(^\s+[0-9]+ (.*)$)");  // book headings such as "1 Samuel 1" start unindented
  std::vector<Document> docs;
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, verse)) {
      if (docs.empty()) fail("{}: verse before any book heading", path);
      docs.back().text += m[1].str() + "\n";
    } else if (std::regex_match(line, m, chapter)) {
      const std::string book = m[1];
      if (docs.empty() || docs.back().name != "kjv/" + book) docs.push_back({"kjv/" + book, book + "\n"});
      docs.back().text += "\n";
    } else if (!line.empty() && !docs.empty()) {
      docs.back().text += line + "\n";  // a verse wrapped onto a second line
    }
  }
  if (docs.empty()) fail("{}: no books found (expected `bible` output with 'Book N' chapter headings)", path);
  return docs;
}

DocumentSplit split_documents(std::vector<Document> docs, double val_fraction, uint64_t seed) {
  // Group identical texts, shuffle the groups, and give validation the first groups.
  std::map<std::string, std::vector<Document>> groups;
  for (auto& d : docs) groups[d.text].push_back(std::move(d));
  std::vector<std::vector<Document>> ordered;
  for (auto& [text, g] : groups) ordered.push_back(std::move(g));
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a[0].name < b[0].name; });
  Rng rng(seed);
  for (int64_t i = static_cast<int64_t>(ordered.size()) - 1; i > 0; i--)
    std::swap(ordered[i], ordered[rng.below(static_cast<uint64_t>(i + 1))]);
  size_t n_val = static_cast<size_t>(std::llround(val_fraction * static_cast<double>(docs.size())));
  if (val_fraction > 0 && n_val == 0 && docs.size() >= 2) n_val = 1;
  DocumentSplit split;
  size_t taken = 0;
  for (auto& g : ordered) {
    auto& side = taken < n_val ? split.val : split.train;
    taken += taken < n_val ? g.size() : 0;
    for (auto& d : g) side.push_back(std::move(d));
  }
  auto by_name = [](const Document& a, const Document& b) { return a.name < b.name; };
  std::sort(split.train.begin(), split.train.end(), by_name);
  std::sort(split.val.begin(), split.val.end(), by_name);
  return split;
}

}  // namespace kvtie
