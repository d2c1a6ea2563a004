// LM data: corpus cleaning, the document split, data prepare end to end, and the packed loader.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/npy.h"
#include "data/corpus.h"
#include "data/prepare.h"
#include "data/token_dataset.h"
#include "kvtie/error.h"
#include "kvtie/tokenizer.h"
#include "test_files.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;

const char* kBrown =
    "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ,/, and/cc "
    "Atlanta's/np$ mayor/nn agreed/vbd ./.\nIt/pps ended/vbd (/( finally/rb )/) ./.\n\n\n"
    "\tA/at new/jj paragraph/nn didn't/dod* wait/vb ;/. really/rb !/.\n";

const char* kKjv =
    "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n  2 And the earth was "
    "without form.\n\nGenesis 2\n\n  1 Thus the heavens were finished.\n\n1 Samuel 1\n\n  1 Now there was "
    "a certain man of Ramathaimzophim 12\n";

TEST(Corpus, BrownTagsAreStrippedAndPunctuationAttached) {
  EXPECT_EQ(clean_brown(kBrown),
            "The jury said \"no evidence\" was found, and Atlanta's mayor agreed. It ended (finally).\n"
            "A new paragraph didn't wait; really!\n");
}

TEST(Corpus, KjvIsOneDocumentPerBookWithoutVerseNumbers) {
  const std::string path = test::temp_dir("data", "kjv") + "/kjv.txt";
  write_file_atomic(path, kKjv);
  const auto docs = read_kjv(path);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].name, "kjv/Genesis");
  EXPECT_EQ(docs[0].text,
            "Genesis\n\nIn the beginning God created the heaven and the earth.\nAnd the earth was without form.\n\n"
            "Thus the heavens were finished.\n");
  EXPECT_EQ(docs[1].name, "kjv/1 Samuel");
  EXPECT_NE(docs[1].text.find("Ramathaimzophim 12"), std::string::npos);  // a verse ending in digits
}

TEST(Corpus, SplitIsSeededDisjointAndKeepsDuplicatesTogether) {
  std::vector<Document> docs;
  for (int i = 0; i < 40; i++) docs.push_back({fmt::format("d{}", i), fmt::format("text {}", i)});
  docs.push_back({"copy-of-d3", "text 3"});
  const DocumentSplit a = split_documents(docs, 0.1, 7), b = split_documents(docs, 0.1, 7);
  ASSERT_EQ(a.train.size() + a.val.size(), docs.size());
  EXPECT_GE(a.val.size(), 4u);
  std::set<std::string> train_texts, val_names, b_val_names;
  for (const auto& d : a.train) train_texts.insert(d.text);
  for (const auto& d : a.val) {
    EXPECT_EQ(train_texts.count(d.text), 0u) << d.name;  // never the same text in both
    val_names.insert(d.name);
  }
  for (const auto& d : b.val) b_val_names.insert(d.name);
  EXPECT_EQ(val_names, b_val_names);
  std::set<std::string> other;
  for (const auto& d : split_documents(docs, 0.1, 8).val) other.insert(d.name);
  EXPECT_NE(other, val_names);
}

TEST(PackedLoader, WindowsAreShuffledNextTokenPairsAndResumeExactly) {
  std::vector<int32_t> stream(101);
  for (int i = 0; i <= 100; i++) stream[i] = i;
  PackedLoader a(stream, 10, 3, "s"), b(stream, 10, 3, "s");
  EXPECT_EQ(a.windows(), 10);
  std::vector<int32_t> x(30), y(30), x2(30), y2(30);
  std::set<int32_t> starts;
  for (int round = 0; round < 3; round++) {  // 3 batches of 3 + one more: crosses into epoch 1
    a.next(x.data(), y.data(), 3, 10);
    for (int w = 0; w < 3; w++) {
      EXPECT_EQ(x[w * 10] % 10, 0);
      starts.insert(x[w * 10]);
      for (int t = 0; t < 10; t++) {
        EXPECT_EQ(x[w * 10 + t], x[w * 10] + t);
        EXPECT_EQ(y[w * 10 + t], x[w * 10 + t] + 1);  // every position is scored
      }
    }
  }
  EXPECT_EQ(starts.size(), 9u);  // no window twice within an epoch
  const auto saved = a.state();
  a.next(x.data(), y.data(), 3, 10);
  b.restore(saved);
  b.next(x2.data(), y2.data(), 3, 10);
  EXPECT_EQ(x, x2);
  EXPECT_EQ(a.epoch(), 1);
  EXPECT_THROW(PackedLoader(std::vector<int32_t>(5), 10, 1, "short"), Error);
}

TEST(Prepare, CorporaBecomeShardsWithAManifest) {
  const std::string root = test::temp_dir("data", "prepare");
  const std::string brown = root + "/brown";
  fs::create_directories(brown);
  for (int i = 0; i < 12; i++)
    write_file_atomic(fmt::format("{}/ca{:02}", brown, i), fmt::format("{}\tText/nn number/nn {}/cd ./.\n", kBrown, i));
  write_file_atomic(brown + "/README", "not a text");
  write_file_atomic(root + "/kjv.txt", kKjv);
  PrepareOptions o;
  o.brown_dir = brown;
  o.kjv_path = root + "/kjv.txt";
  o.vocab_size = 300;
  o.val_fraction = 0.2;
  o.out_dir = root + "/out";
  o.verbose = false;
  const auto m = prepare_corpus(o);
  EXPECT_EQ(m["splits"]["train"]["documents"].get<int>() + m["splits"]["val"]["documents"].get<int>(), 14);
  EXPECT_EQ(m["splits"]["val"]["documents"].get<int>(), 3);  // round(0.2·12) + round(0.2·2)
  const Tokenizer tok = Tokenizer::load(manifest_tokenizer(o.out_dir + "/manifest.json"));
  EXPECT_EQ(tok.vocab_size(), 300);
  for (const char* split : {"train", "val"}) {
    const auto tokens = read_split(o.out_dir + "/manifest.json", split);
    EXPECT_EQ(static_cast<int64_t>(tokens.size()), m["splits"][split]["tokens"].get<int64_t>());
    EXPECT_EQ(tokens.back(), tok.eot_id());
    // The shards decode to the cleaned documents, each followed by <|endoftext|>.
    EXPECT_EQ(tok.decode(tokens), read_file(o.out_dir + "/" + split + ".txt")) << split;
  }
}

TEST(Prepare, MissingCorpusIsAClearError) {
  PrepareOptions o;
  o.brown_dir = "/nonexistent/brown";
  o.out_dir = test::temp_dir("data", "missing");
  o.verbose = false;
  try {
    prepare_corpus(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/brown"), std::string::npos);
  }
}

}  // namespace
}  // namespace kvtie
