// The model config (parse_model_config): every invalid input is a kvtie::Error whose message names
// the key at fault; defaults, round trips, variant labels, offsets and KV-cache sizes. And the run
// config loader (load_config) with its --set overrides.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kvtie/config.h"
#include "kvtie/config_file.h"
#include "kvtie/error.h"
#include "test_files.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

json base() {
  return json{{"n_layer", 2}, {"n_head", 4}, {"d_model", 64}, {"vocab_size", 32}, {"max_seq_len", 16}};
}

json with(json j, const std::string& key, const json& value) {
  j[key] = value;
  return j;
}

json without(json j, const std::string& key) {
  j.erase(key);
  return j;
}

// The message of the kvtie::Error that parsing `j` throws ("" when it does not throw; any other
// exception type fails the test).
std::string parse_error(const json& j, std::string_view where = "model") {
  try {
    parse_model_config(j, where);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected kvtie::Error, got another exception: " << e.what();
    return e.what();
  }
  return "";
}

#define EXPECT_PARSE_ERROR(j, ...)                                                    \
  do {                                                                                \
    const std::string msg_ = parse_error(j);                                          \
    EXPECT_FALSE(msg_.empty()) << "no error for " << (j).dump();                      \
    for (const char* sub_ : {__VA_ARGS__})                                            \
      EXPECT_NE(msg_.find(sub_), std::string::npos) << "message \"" << msg_ << "\" lacks \"" << sub_ << "\""; \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << "message is not one line: " << msg_; \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Errors

TEST(ConfigErrors, UnknownKey) {
  EXPECT_PARSE_ERROR(with(base(), "n_heads", 4), "model.n_heads", "unknown key");
  EXPECT_PARSE_ERROR(with(base(), "dropout", 0.1), "dropout", "unknown");
}

TEST(ConfigErrors, WhereIsThePrefix) {
  const std::string msg = parse_error(with(base(), "bogus", 1), "configs/x.json: model");
  EXPECT_NE(msg.find("configs/x.json: model.bogus"), std::string::npos) << msg;
}

TEST(ConfigErrors, NotAnObject) {
  EXPECT_PARSE_ERROR(json::array({1, 2}), "model", "object");
  EXPECT_PARSE_ERROR(json(3), "model");
}

TEST(ConfigErrors, MissingRequiredKeys) {
  for (const char* key : {"n_layer", "n_head", "d_model", "vocab_size", "max_seq_len"}) {
    SCOPED_TRACE(key);
    EXPECT_PARSE_ERROR(without(base(), key), key, "missing");
  }
}

TEST(ConfigErrors, ZeroSizes) {
  for (const char* key : {"n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "vocab_size", "max_seq_len", "head_dim"}) {
    SCOPED_TRACE(key);
    EXPECT_PARSE_ERROR(with(base(), key, 0), key, "out of range");
  }
}

TEST(ConfigErrors, NegativeSizes) {
  for (const char* key : {"n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "vocab_size", "max_seq_len", "head_dim",
                          "n_classes"}) {
    SCOPED_TRACE(key);
    EXPECT_PARSE_ERROR(with(base(), key, -4), key, "-4");
  }
}

TEST(ConfigErrors, NonIntegerValues) {
  for (const char* key : {"n_layer", "n_head", "d_model", "vocab_size", "max_seq_len", "d_ff", "head_dim"}) {
    SCOPED_TRACE(key);
    EXPECT_PARSE_ERROR(with(base(), key, 2.5), key, "integer", "2.5");
    EXPECT_PARSE_ERROR(with(base(), key, "4"), key, "integer");
    EXPECT_PARSE_ERROR(with(base(), key, true), key, "integer");
    EXPECT_PARSE_ERROR(with(base(), key, nullptr), key);
    EXPECT_PARSE_ERROR(with(base(), key, json::array({4})), key);
  }
}

TEST(ConfigErrors, IntegralFloatIsAccepted) {
  // 64.0 is an integer value (JSON writers may produce it); it must parse as 64.
  const ModelConfig c = parse_model_config(with(base(), "d_model", 64.0));
  EXPECT_EQ(c.d_model, 64);
}

TEST(ConfigErrors, TooLarge) {
  EXPECT_PARSE_ERROR(with(base(), "d_model", 1 << 21), "d_model", "out of range");
  EXPECT_PARSE_ERROR(with(base(), "n_layer", 1 << 30), "n_layer", "out of range");
  EXPECT_PARSE_ERROR(with(base(), "d_model", 1e300), "d_model");
  EXPECT_PARSE_ERROR(with(base(), "d_model", 18446744073709551615ull), "d_model", "out of range");
}

TEST(ConfigErrors, VocabTooLargeForInt32) {
  EXPECT_PARSE_ERROR(with(base(), "vocab_size", 3000000000ll), "vocab_size", "out of range");
  EXPECT_PARSE_ERROR(with(base(), "vocab_size", 3000000000ull), "vocab_size", "out of range");
  EXPECT_PARSE_ERROR(with(base(), "vocab_size", 2147483648ll), "vocab_size");
  EXPECT_PARSE_ERROR(with(base(), "vocab_size", 3e9), "vocab_size");
  // int32 max itself is allowed.
  EXPECT_EQ(parse_model_config(with(base(), "vocab_size", 2147483647ll)).vocab_size, 2147483647);
}

TEST(ConfigErrors, HeadsNotAMultipleOfKvHeads) {
  EXPECT_PARSE_ERROR(with(base(), "n_kv_head", 3), "n_kv_head", "3");
  EXPECT_PARSE_ERROR(with(with(base(), "n_head", 8), "n_kv_head", 3), "n_kv_head");
}

TEST(ConfigErrors, KvHeadsExceedHeads) {
  EXPECT_PARSE_ERROR(with(base(), "n_kv_head", 8), "n_kv_head", "8");
}

TEST(ConfigErrors, QSharedWithKNeedsAllHeads) {
  for (const char* share : {"qk", "qkv"})
    for (int kv : {1, 2}) {
      SCOPED_TRACE(std::string(share) + " kv " + std::to_string(kv));
      EXPECT_PARSE_ERROR(with(with(base(), "share", share), "n_kv_head", kv), "share", share);
    }
  // share kv with grouped heads is fine (Q-GQA, Q-MQA).
  EXPECT_NO_THROW(parse_model_config(with(with(base(), "share", "kv"), "n_kv_head", 1)));
}

TEST(ConfigErrors, DModelNotDivisibleWithoutHeadDim) {
  const json j = with(base(), "d_model", 66);
  EXPECT_PARSE_ERROR(j, "d_model", "66", "n_head", "head_dim");
  // head_dim makes any width valid.
  const ModelConfig c = parse_model_config(with(j, "head_dim", 16));
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.d_model, 66);
  EXPECT_EQ(c.q_dim(), 64);
}

TEST(ConfigErrors, BadEnumStrings) {
  EXPECT_PARSE_ERROR(with(base(), "share", "k_v"), "share", "k_v", "none, kv, qk, qkv");
  EXPECT_PARSE_ERROR(with(base(), "share", "KV"), "share");
  EXPECT_PARSE_ERROR(with(base(), "share", 1), "share");
  EXPECT_PARSE_ERROR(with(base(), "pos", "rope"), "pos", "rope");
  EXPECT_PARSE_ERROR(with(base(), "head", "mlm"), "head", "mlm");
  EXPECT_PARSE_ERROR(with(base(), "causal", "yes"), "causal");
  EXPECT_PARSE_ERROR(with(base(), "causal", 1), "causal");
  EXPECT_PARSE_ERROR(with(base(), "score_pos2d", "false"), "score_pos2d");
}

TEST(ConfigErrors, ClassificationHeadNeedsClasses) {
  for (const char* head : {"token", "pooled"}) {
    SCOPED_TRACE(head);
    EXPECT_PARSE_ERROR(with(base(), "head", head), "n_classes", head);
    EXPECT_PARSE_ERROR(with(with(base(), "head", head), "n_classes", 0), "n_classes");
    const ModelConfig c = parse_model_config(with(with(base(), "head", head), "n_classes", 3));
    EXPECT_EQ(c.n_classes, 3);
    EXPECT_EQ(c.n_outputs(), 3);
  }
}

TEST(ConfigErrors, LmHeadTakesNoClasses) {
  EXPECT_PARSE_ERROR(with(base(), "n_classes", 5), "n_classes");
  EXPECT_PARSE_ERROR(with(with(base(), "head", "lm"), "n_classes", 5), "n_classes");
}

TEST(ConfigErrors, ScorePos2dWithCausal) {
  EXPECT_PARSE_ERROR(with(base(), "score_pos2d", true), "score_pos2d", "causal");
  EXPECT_PARSE_ERROR(with(with(base(), "score_pos2d", true), "causal", true), "score_pos2d", "causal");
}

// An image model (docs/vision.md): 1×28×28 in 7×7 patches, 16 patches.
json vit() {
  return json{{"n_layer", 2},
              {"n_head", 4},
              {"d_model", 64},
              {"n_classes", 10},
              {"image", {{"channels", 1}, {"height", 28}, {"width", 28}, {"patch", 7}}}};
}

json with_image(json j, const std::string& key, const json& value) {
  j["image"][key] = value;
  return j;
}

TEST(ConfigErrors, ImageShape) {
  EXPECT_PARSE_ERROR(with_image(vit(), "patch", 8), "model.image.patch", "does not divide", "28×28");
  EXPECT_PARSE_ERROR(with_image(with_image(vit(), "width", 30), "patch", 14), "model.image.patch", "28×30");
  EXPECT_PARSE_ERROR(with_image(vit(), "patch", 0), "model.image.patch");
  EXPECT_PARSE_ERROR(with_image(vit(), "channels", -1), "model.image.channels");
  EXPECT_PARSE_ERROR(with_image(vit(), "depth", 3), "model.image.depth", "unknown key");
  json missing = vit();
  missing["image"].erase("height");
  EXPECT_PARSE_ERROR(missing, "model.image.height", "missing");
  EXPECT_PARSE_ERROR(with(vit(), "image", 28), "model.image", "object");
}

TEST(ConfigErrors, ImageModelsAreBidirectionalClassifiers) {
  EXPECT_PARSE_ERROR(with(vit(), "causal", true), "model.causal", "false");
  EXPECT_PARSE_ERROR(with(vit(), "head", "lm"), "model.head", "'pooled' or 'token'");
  // A per-patch head (the set anomaly task's per-item scores) is an image model too.
  EXPECT_EQ(parse_model_config(with(vit(), "head", "token")).head, Head::token);
  EXPECT_PARSE_ERROR(without(vit(), "n_classes"), "model.n_classes");
  EXPECT_PARSE_ERROR(with(vit(), "vocab_size", 32), "model.vocab_size", "pixels");
}

TEST(ConfigErrors, ImageMaxSeqLenIsDerived) {
  EXPECT_PARSE_ERROR(with(vit(), "max_seq_len", 17), "model.max_seq_len", "16 patches", "16 positions", "derived");
  EXPECT_PARSE_ERROR(with(with(vit(), "pool", "cls"), "max_seq_len", 16), "model.max_seq_len", "class token",
                     "17 positions");
  EXPECT_EQ(parse_model_config(with(vit(), "max_seq_len", 16)).max_seq_len, 16);
}

TEST(ConfigErrors, PoolAndPositions) {
  EXPECT_PARSE_ERROR(with(vit(), "pool", "max"), "model.pool", "cls");
  const json pooled = with(with(with(base(), "head", "pooled"), "n_classes", 3), "causal", false);
  EXPECT_EQ(parse_model_config(with(pooled, "pool", "mean")).pool, Pool::mean);
  EXPECT_PARSE_ERROR(with(pooled, "pool", "cls"), "model.pool", "image models only");
  EXPECT_PARSE_ERROR(with(base(), "pool", "mean"), "model.pool", "pooled");
  EXPECT_PARSE_ERROR(with(base(), "pos", "sincos2d"), "model.pos", "image models only");
  EXPECT_PARSE_ERROR(with(with(with(vit(), "pos", "sincos2d"), "d_model", 66), "head_dim", 11), "model.pos",
                     "multiple of 4");
  EXPECT_PARSE_ERROR(with(vit(), "pos", "rope"), "model.pos", "sincos2d");
}

// ---------------------------------------------------------------------------------------------
// Valid configs

TEST(Config, Defaults) {
  const ModelConfig c = parse_model_config(base());
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_kv_head, 4);  // defaults to n_head
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.d_ff, 256);     // 4 · d_model
  EXPECT_EQ(c.head_dim, 16);  // d_model / n_head
  EXPECT_EQ(c.vocab_size, 32);
  EXPECT_EQ(c.max_seq_len, 16);
  EXPECT_EQ(c.share, Share::none);
  EXPECT_TRUE(c.causal);
  EXPECT_EQ(c.pos, PosEmb::learned);
  EXPECT_FALSE(c.score_pos2d);
  EXPECT_EQ(c.head, Head::lm);
  EXPECT_EQ(c.n_classes, 0);
  EXPECT_EQ(c.n_outputs(), 32);

  // The defaults follow the given values, not the struct's.
  const ModelConfig d = parse_model_config(with(with(base(), "n_head", 8), "d_model", 96));
  EXPECT_EQ(d.n_kv_head, 8);
  EXPECT_EQ(d.d_ff, 384);
  EXPECT_EQ(d.head_dim, 12);
}

TEST(Config, AllFieldsParsed) {
  const json j = {{"n_layer", 3},       {"n_head", 6},        {"n_kv_head", 2},        {"d_model", 60},
                  {"d_ff", 100},        {"vocab_size", 1000}, {"max_seq_len", 128},    {"head_dim", 8},
                  {"share", "kv"},      {"causal", false},    {"pos", "none"},         {"score_pos2d", false},
                  {"head", "pooled"},   {"n_classes", 7}};
  const ModelConfig c = parse_model_config(j);
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.n_head, 6);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.d_model, 60);
  EXPECT_EQ(c.d_ff, 100);
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.max_seq_len, 128);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.share, Share::kv);
  EXPECT_FALSE(c.causal);
  EXPECT_EQ(c.pos, PosEmb::none);
  EXPECT_EQ(c.head, Head::pooled);
  EXPECT_EQ(c.n_classes, 7);
  EXPECT_EQ(to_json(c), j);
}

TEST(Config, JsonRoundTrip) {
  std::vector<json> cases = {
      base(),
      with(with(base(), "share", "kv"), "n_kv_head", 2),
      with(base(), "share", "qk"),
      with(with(with(base(), "share", "qkv"), "causal", false), "pos", "none"),
      with(with(with(base(), "head", "token"), "n_classes", 9), "causal", false),
      with(with(base(), "d_model", 66), "head_dim", 10),
  };
  for (const json& j : cases) {
    SCOPED_TRACE(j.dump());
    const ModelConfig c = parse_model_config(j);
    const json out = to_json(c);
    const ModelConfig back = parse_model_config(out);
    EXPECT_EQ(to_json(back), out);
    // Through text, as in a checkpoint header.
    EXPECT_EQ(to_json(parse_model_config(json::parse(out.dump()))), out);
    EXPECT_EQ(back.share, c.share);
    EXPECT_EQ(back.head_dim, c.head_dim);
    EXPECT_EQ(back.n_kv_head, c.n_kv_head);
    EXPECT_EQ(back.d_ff, c.d_ff);
  }
}

TEST(Config, ImageModel) {
  const ModelConfig c = parse_model_config(vit());
  EXPECT_TRUE(c.is_image());
  EXPECT_EQ(c.input, Input::image);
  EXPECT_EQ(c.image.n_patches(), 16);
  EXPECT_EQ(c.image.patch_dim(), 49);
  EXPECT_EQ(c.max_seq_len, 16);  // derived
  EXPECT_EQ(c.vocab_size, 0);
  EXPECT_FALSE(c.causal);        // the default for images
  EXPECT_EQ(c.head, Head::pooled);  // likewise
  EXPECT_EQ(c.pool, Pool::mean);
  EXPECT_EQ(c.pos, PosEmb::learned);
  EXPECT_EQ(c.n_outputs(), 10);

  const ModelConfig cls = parse_model_config(
      with(with(with_image(with_image(vit(), "channels", 3), "width", 21), "pool", "cls"), "pos", "sincos2d"));
  EXPECT_EQ(cls.image.grid_h(), 4);
  EXPECT_EQ(cls.image.grid_w(), 3);
  EXPECT_EQ(cls.max_seq_len, 13);  // 12 patches + the class token
  EXPECT_EQ(cls.pool, Pool::cls);
  EXPECT_EQ(cls.pos, PosEmb::sincos2d);

  // Round trip: no vocab_size, the image object and the pooling written out.
  for (const ModelConfig& m : {c, cls}) {
    const json out = to_json(m);
    EXPECT_FALSE(out.contains("vocab_size"));
    EXPECT_EQ(out.at("image").at("patch"), 7);
    EXPECT_EQ(to_json(parse_model_config(json::parse(out.dump()))), out);
  }
  // A token model's JSON is unchanged: no image or pool keys.
  EXPECT_FALSE(to_json(parse_model_config(base())).contains("pool"));
  EXPECT_FALSE(to_json(parse_model_config(base())).contains("image"));
}

TEST(Config, ShareNames) {
  EXPECT_EQ(share_name(Share::none), "none");
  EXPECT_EQ(share_name(Share::kv), "kv");
  EXPECT_EQ(share_name(Share::qk), "qk");
  EXPECT_EQ(share_name(Share::qkv), "qkv");
}

ModelConfig variant(const char* share, int n_kv_head, int n_head = 4) {
  return parse_model_config(with(with(with(base(), "share", share), "n_kv_head", n_kv_head), "n_head", n_head));
}

TEST(Config, VariantLabels) {
  EXPECT_EQ(variant_label(variant("none", 4)), "QKV");
  EXPECT_EQ(variant_label(variant("kv", 4)), "Q-K=V");
  EXPECT_EQ(variant_label(variant("qk", 4)), "Q=K-V");
  EXPECT_EQ(variant_label(variant("qkv", 4)), "Q=K=V");
  EXPECT_EQ(variant_label(variant("none", 2)), "GQA-2");
  EXPECT_EQ(variant_label(variant("none", 1)), "MQA");
  EXPECT_EQ(variant_label(variant("kv", 2)), "Q-GQA-2");
  EXPECT_EQ(variant_label(variant("kv", 1)), "Q-MQA");
  EXPECT_EQ(variant_label(variant("none", 4, 8)), "GQA-4");
  EXPECT_EQ(variant_label(variant("none", 8, 8)), "QKV");
}

TEST(Config, ProjectionLayoutPerShare) {
  // n_head 4, head_dim 16: q_dim 64; with n_kv_head 2: kv_dim 32.
  struct Case {
    const char* share;
    int kv;
    int P, q_off, k_off, v_off;
    bool v_is_k, q_is_k;
  };
  const Case cases[] = {
      {"none", 4, 64 + 2 * 64, 0, 64, 128, false, false},
      {"none", 2, 64 + 2 * 32, 0, 64, 96, false, false},
      {"kv", 4, 64 + 64, 0, 64, 64, true, false},
      {"kv", 1, 64 + 16, 0, 64, 64, true, false},
      {"qk", 4, 128, 0, 0, 64, false, true},
      {"qkv", 4, 64, 0, 0, 0, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.share) + " kv " + std::to_string(c.kv));
    const ModelConfig m = variant(c.share, c.kv);
    EXPECT_EQ(m.attn_proj_dim(), c.P);
    EXPECT_EQ(m.q_offset(), c.q_off);
    EXPECT_EQ(m.k_offset(), c.k_off);
    EXPECT_EQ(m.v_offset(), c.v_off);
    EXPECT_EQ(m.v_is_k(), c.v_is_k);
    EXPECT_EQ(m.q_is_k(), c.q_is_k);
    EXPECT_EQ(m.q_dim(), 64);
    EXPECT_EQ(m.kv_dim(), c.kv * 16);
  }
}

TEST(Config, KvBytesPerToken) {
  // paper-300m: 20 layers, d 1024, 16 heads of 64.
  json j = {{"n_layer", 20}, {"n_head", 16}, {"d_model", 1024}, {"vocab_size", 50304}, {"max_seq_len", 1024}};
  const ModelConfig qkv = parse_model_config(j);
  EXPECT_EQ(qkv.head_dim, 64);
  EXPECT_EQ(kv_bytes_per_token(qkv, 2.0), 81920);  // 80 KiB: K and V, 20 × 1024 × 2 bytes each
  EXPECT_EQ(kv_bytes_per_token(qkv, 4.0), 163840);
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(j, "share", "kv")), 2.0), 40960);   // 40 KiB
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(j, "share", "qk")), 2.0), 81920);   // K and V distinct
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(j, "share", "qkv")), 2.0), 40960);  // one tensor
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(j, "n_kv_head", 4)), 2.0), 20480);  // GQA-4
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(j, "n_kv_head", 1)), 2.0), 5120);   // MQA
  EXPECT_EQ(kv_bytes_per_token(parse_model_config(with(with(j, "n_kv_head", 1), "share", "kv")), 2.0), 2560);  // Q-MQA
}

// ---------------------------------------------------------------------------------------------
// Run config files and --set overrides

class TempDir {
 public:
  TempDir() {
    path_ = test::process_temp_root() / ("config_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string load_error(const std::string& path, const std::vector<std::string>& overrides) {
  try {
    load_config(path, overrides);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected kvtie::Error, got: " << e.what();
    return e.what();
  }
  return "";
}

TEST(ConfigFile, LoadsTinyConfig) {
  const std::string path = std::string(KVTIE_TEST_DATA) + "/../configs/tiny.json";
  const json cfg = load_config(path, {});
  const ModelConfig c = parse_model_config(config_section(cfg, path, "model"), path + ": model");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.vocab_size, 32);
  EXPECT_EQ(c.max_seq_len, 32);
  EXPECT_EQ(c.share, Share::none);
}

TEST(ConfigFile, SetOverrides) {
  TempDir dir;
  const std::string path = dir.write("c.json", base().dump().insert(0, "{\"model\": ") + ", \"train\": {\"lr\": 0.1}}");
  const json cfg = load_config(path, {"model.share=kv", "model.n_kv_head=2", "train.lr=3e-3", "train.out_dir=runs/x",
                                      "model.causal=false"});
  EXPECT_EQ(cfg["model"]["share"], json("kv"));
  EXPECT_TRUE(cfg["model"]["share"].is_string());
  EXPECT_TRUE(cfg["model"]["n_kv_head"].is_number_integer());
  EXPECT_EQ(cfg["model"]["n_kv_head"], json(2));
  EXPECT_TRUE(cfg["train"]["lr"].is_number_float());
  EXPECT_DOUBLE_EQ(cfg["train"]["lr"].get<double>(), 3e-3);
  EXPECT_EQ(cfg["train"]["out_dir"], json("runs/x"));
  EXPECT_EQ(cfg["model"]["causal"], json(false));
  EXPECT_EQ(cfg["model"]["d_model"], json(64));  // untouched
  const ModelConfig c = parse_model_config(cfg["model"]);
  EXPECT_EQ(variant_label(c), "Q-GQA-2");
  // Later overrides win.
  EXPECT_EQ(load_config(path, {"model.n_layer=3", "model.n_layer=5"})["model"]["n_layer"], json(5));
  // A value that is not JSON is a string, even when it looks a bit like a number.
  EXPECT_EQ(load_config(path, {"model.share=4x"})["model"]["share"], json("4x"));
  EXPECT_EQ(load_config(path, {"model.share="})["model"]["share"], json(""));
  // ...and the string then fails the model parse, naming the key.
  const json bad = load_config(path, {"model.n_head=four"});
  EXPECT_EQ(bad["model"]["n_head"], json("four"));
  EXPECT_NE(parse_error(bad["model"]).find("n_head"), std::string::npos);
}

TEST(ConfigFile, SetCreatesMissingSections) {
  TempDir dir;
  const std::string path = dir.write("model_only.json", "{\"model\": " + base().dump() + "}");
  try {
    const json cfg = load_config(path, {"train.steps=5", "train.new.deep=1"});
    EXPECT_EQ(cfg["train"]["steps"], json(5));
    EXPECT_EQ(cfg["train"]["new"]["deep"], json(1));
  } catch (const Error& e) {
    ADD_FAILURE() << "--set into a missing section failed: " << e.what();
  }
  try {
    const json cfg = load_config("", {"model.n_layer=2", "model.n_head=2", "model.d_model=8", "model.vocab_size=5",
                                      "model.max_seq_len=4"});
    EXPECT_EQ(parse_model_config(cfg.at("model")).head_dim, 4);
  } catch (const Error& e) {
    ADD_FAILURE() << "--set without a config file failed: " << e.what();
  }
}

TEST(ConfigFile, BadOverrides) {
  TempDir dir;
  const std::string path = dir.write("c.json", "{\"model\": {\"n_layer\": 2}}");
  for (const char* o : {"model.share", "=kv", "", "model..share=kv", ".share=kv", "model.=kv"}) {
    SCOPED_TRACE(o);
    const std::string msg = load_error(path, {o});
    EXPECT_FALSE(msg.empty());
    EXPECT_NE(msg.find("--set"), std::string::npos) << msg;
  }
  // Descending into a non-object.
  const std::string msg = load_error(path, {"model.n_layer.x=1"});
  EXPECT_NE(msg.find("model.n_layer"), std::string::npos) << msg;
}

TEST(ConfigFile, FileErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = dir.path("does_not_exist.json");
  std::string msg = load_error(missing, {});
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;

  const std::string invalid = dir.write("invalid.json", "{\"model\": {\"n_layer\": 2,}");
  msg = load_error(invalid, {});
  EXPECT_NE(msg.find(invalid), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;

  const std::string array = dir.write("array.json", "[1, 2]");
  msg = load_error(array, {});
  EXPECT_NE(msg.find(array), std::string::npos) << msg;

  const std::string empty = dir.write("empty.json", "");
  msg = load_error(empty, {});
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;

  // A config without a model section.
  const std::string no_model = dir.write("no_model.json", "{\"train\": {}}");
  const json cfg = load_config(no_model, {});
  try {
    config_section(cfg, no_model, "model");
    ADD_FAILURE() << "no error for a config without a model section";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(no_model), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvtie
