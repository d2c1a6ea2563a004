// Checkpoints: names and shapes of DESIGN.md §5, round trips (fp32 exact, bf16 rounded), and clear
// errors for truncated, corrupt and mismatched files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "test_helpers.h"
#include "test_files.h"

namespace kvtie {
namespace {

ModelConfig small(Share share, int n_kv_head = 2) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 16, c.n_head = 4, c.n_kv_head = n_kv_head, c.head_dim = 4, c.d_ff = 24;
  c.vocab_size = 50, c.max_seq_len = 12, c.share = share;
  return c;
}

TEST(Checkpoint, StoresOnlyDistinctProjections) {
  const std::string path = test::temp_path("checkpoint", "kv.safetensors");
  Transformer<float> model(small(Share::kv), 1, 4);
  model.init_weights(1);
  save_checkpoint(path, model.config(), model.params());
  const SafetensorsFile f = SafetensorsFile::load(path);
  EXPECT_NE(f.find("blocks.0.attn.q.weight"), nullptr);
  EXPECT_NE(f.find("blocks.1.attn.k_v.bias"), nullptr);
  EXPECT_EQ(f.find("blocks.0.attn.k.weight"), nullptr);
  EXPECT_EQ(f.find("blocks.0.attn.v.weight"), nullptr);
  EXPECT_EQ(f.get("blocks.0.attn.k_v.weight").shape, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(f.get("blocks.0.attn.out.weight").shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(f.get("pos_emb.weight").shape, (std::vector<int64_t>{12, 16}));
  EXPECT_EQ(f.get("tok_emb.weight").dtype, "F32");
  EXPECT_EQ(f.tensors().size(), 2u + 2 * 14 + 2);
  EXPECT_TRUE(f.metadata().count("kvtie.config"));
  EXPECT_EQ(read_checkpoint_config(path).share, Share::kv);

  for (auto [share, names] : std::vector<std::pair<Share, std::vector<std::string>>>{
           {Share::none, {"q", "k", "v"}}, {Share::qk, {"q_k", "v"}}, {Share::qkv, {"q_k_v"}}}) {
    const ParamLayout L = make_param_layout(small(share, 4));
    for (const auto& n : names) EXPECT_NE(L.find("blocks.1.attn." + n + ".weight"), nullptr) << n;
  }
}

TEST(Checkpoint, RoundTripIsExactInF32AndRoundedInBf16) {
  const std::string path = test::temp_path("checkpoint", "rt.safetensors");
  Transformer<float> a(small(Share::qk, 4), 1, 4);
  test::randomize_params(a, 3);
  save_checkpoint(path, a.config(), a.params());
  auto b = load_checkpoint(path, 1, 12);
  EXPECT_EQ(0, std::memcmp(a.params(), b->params(), sizeof(float) * a.num_params()));

  save_checkpoint(path, a.config(), a.params(), WeightDType::bf16);
  EXPECT_EQ(SafetensorsFile::load(path).get("ln_f.weight").dtype, "BF16");
  auto c = load_checkpoint(path, 1, 12);
  for (int64_t i = 0; i < a.num_params(); i++)
    ASSERT_NEAR(c->params()[i], a.params()[i], std::abs(a.params()[i]) * (1.0 / 256) + 1e-30) << i;
}

// A loaded checkpoint is an inference model: the same forward as the trained one, no gradient or
// backward buffers (so it is smaller by at least the parameters), and backward is a clear error.
TEST(Checkpoint, LoadedModelIsForInference) {
  const std::string path = test::temp_path("checkpoint", "infer.safetensors");
  Transformer<float> a(small(Share::kv, 2), 2, 12);
  test::randomize_params(a, 5);
  save_checkpoint(path, a.config(), a.params());
  auto b = load_checkpoint(path, 2, 12);
  EXPECT_TRUE(a.trainable());
  EXPECT_FALSE(b->trainable());
  EXPECT_EQ(b->grads(), nullptr);
  EXPECT_LE(b->arena_bytes() + sizeof(float) * a.num_params(), a.arena_bytes());
  std::vector<int32_t> tokens(24), targets(24);
  for (int i = 0; i < 24; i++) tokens[i] = (7 * i) % a.config().vocab_size, targets[i] = (3 * i + 1) % a.config().vocab_size;
  const float la = a.forward(tokens.data(), targets.data(), 2, 12), lb = b->forward(tokens.data(), targets.data(), 2, 12);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(0, std::memcmp(a.logits(), b->logits(), sizeof(float) * a.logits_rows() * a.config().n_outputs()));
  EXPECT_NE(error_of([&] { b->backward(); }).find("built for inference"), std::string::npos);
  EXPECT_NE(error_of([&] { b->zero_grad(); }).find("no gradients"), std::string::npos);
}

TEST(Checkpoint, TruncatedFileIsAClearError) {
  const std::string path = test::temp_path("checkpoint", "trunc.safetensors");
  Transformer<float> model(small(Share::none), 1, 4);
  save_checkpoint(path, model.config(), model.params());
  std::string bytes = read_file(path);
  for (size_t keep : {size_t{3}, size_t{12}, bytes.size() / 2, bytes.size() - 1}) {
    write_file_atomic(path, bytes.substr(0, keep));
    const std::string msg = error_of([&] { load_checkpoint(path, 1, 4); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("not a safetensors") != std::string::npos ||
                msg.find("corrupt") != std::string::npos)
        << msg;
  }
}

TEST(Checkpoint, CorruptHeaderIsAClearError) {
  const std::string path = test::temp_path("checkpoint", "corrupt.safetensors");
  Transformer<float> model(small(Share::none), 1, 4);
  save_checkpoint(path, model.config(), model.params());
  std::string bytes = read_file(path);
  bytes[8] = '#';  // the JSON header's opening brace
  write_file_atomic(path, bytes);
  EXPECT_NE(error_of([&] { load_checkpoint(path, 1, 4); }).find("corrupt header"), std::string::npos);
  write_file_atomic(path, std::string(64, '\xff'));
  EXPECT_NE(error_of([&] { load_checkpoint(path, 1, 4); }).find(path), std::string::npos);
}

TEST(Checkpoint, OtherShapeOrVariantIsRejectedNamingTheTensor) {
  const std::string path = test::temp_path("checkpoint", "shape.safetensors");
  Transformer<float> wide(small(Share::none), 1, 4);
  save_checkpoint(path, wide.config(), wide.params());

  ModelConfig other = small(Share::none);
  other.d_ff = 32;
  Transformer<float> m(other, 1, 4);
  const std::string msg = error_of([&] { load_checkpoint_into(path, m); });
  EXPECT_NE(msg.find("blocks.0.mlp.fc.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[24, 16]"), std::string::npos) << msg;

  Transformer<float> kv(small(Share::kv), 1, 4);
  EXPECT_NE(error_of([&] { load_checkpoint_into(path, kv); }).find("attn.k_v.weight"), std::string::npos);
}

TEST(Checkpoint, FileWithoutConfigIsNotACheckpoint) {
  const std::string path = test::temp_path("checkpoint", "noconfig.safetensors");
  SafetensorsWriter w;
  const float x[2] = {1, 2};
  w.add_f32("tok_emb.weight", {1, 2}, x);
  write_file_atomic(path, w.serialize());
  EXPECT_NE(error_of([&] { read_checkpoint_config(path); }).find("not a kvtie checkpoint"), std::string::npos);
}

TEST(Checkpoint, WriteLeavesNoTemporaryFiles) {
  const std::string path = test::temp_path("checkpoint", "atomic.safetensors");
  Transformer<float> model(small(Share::qkv, 4), 1, 4);
  save_checkpoint(path, model.config(), model.params());
  save_checkpoint(path, model.config(), model.params());
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

}  // namespace
}  // namespace kvtie
