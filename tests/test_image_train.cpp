// Training a ViT with `train.task: "image"` (one trainer for every task): the image batch source's
// epochs, a short run on a tiny IDX data set written here that learns its classes, per-epoch
// validation records, a resumed run bit-identical to an uninterrupted one, and bad configs; then the
// set anomaly task on a trained ViT's frozen features (its sampler, its per-item model, training).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "data/images/image_batches.h"
#include "data/images/open_image_dataset.h"
#include "data/set_anomaly.h"
#include "kvtie/error.h"
#include "train/task.h"
#include "train/trainer.h"
#include "test_files.h"
#include "test_helpers.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A learnable IDX data set of 8x8 images in 4 classes: the pixels of a class-c image are
// 50·c + uniform 0..60, so the mean brightness tells the class. Written raw under the standard
// MNIST names, so `paths: [dir]` finds both splits.
constexpr int kSide = 8, kClasses = 4;

void write_idx_split(const std::string& dir, const std::string& prefix, int count, uint64_t seed) {
  Rng rng(seed);
  std::string images = test::be32(0x00000803) + test::be32(count) + test::be32(kSide) + test::be32(kSide), labels = test::be32(0x00000801) + test::be32(count);
  for (int n = 0; n < count; n++) {
    const int c = static_cast<int>(rng.below(kClasses));
    labels += static_cast<char>(c);
    for (int p = 0; p < kSide * kSide; p++) images += static_cast<char>(50 * c + rng.below(61));
  }
  write_file_atomic(dir + "/" + prefix + "-images-idx3-ubyte", images);
  write_file_atomic(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
}

std::string level_data(const std::string& name, int n_train = 200, int n_test = 64) {
  const std::string dir = test::temp_dir("image_train", name);
  write_idx_split(dir, "train", n_train, 1);
  write_idx_split(dir, "t10k", n_test, 2);
  return dir;
}

ModelConfig vit(Share share = Share::none) {
  ModelConfig c = parse_model_config(json{{"n_layer", 1}, {"n_head", 2}, {"d_model", 16}, {"d_ff", 32},
                                          {"image", {{"channels", 1}, {"height", kSide}, {"width", kSide}, {"patch", 4}}},
                                          {"pool", "mean"}, {"n_classes", kClasses}});
  c.share = share;
  return c;
}

// 200 training images in batches of 16: 12 batches an epoch (8 images left out of each).
TrainConfig recipe(const std::string& data, int64_t steps = 36) {
  TrainConfig t;
  t.task = "image";
  t.images.format = "idx";
  t.images.paths = {data};
  t.steps = steps;
  t.batch_size = 16;
  t.val_every = 12;
  t.lr = 1e-2;
  t.warmup_steps = 0;
  t.schedule = "step";
  t.lr_step_every = 24;
  t.lr_step_gamma = 0.5;
  t.weight_decay = 0;
  t.beta2 = 0.999;
  t.grad_clip = 0;
  t.log_every = 5;
  t.seed = 5;
  return t;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// ---- the batch source ---------------------------------------------------------------------

TEST(ImageBatchSource, EpochsArePermutationsCutIntoFullBatches) {
  const std::string dir = level_data("batches", 50, 8);
  std::shared_ptr<const ImageDataset> data = open_image_dataset({"idx", {dir}, "train"});
  const ImageTransform plain(data->shape(), compute_channel_stats(*data));
  ImageBatchSource source(data, plain, 16, 7);
  ASSERT_EQ(source.batches_per_epoch(), 3);  // 50 / 16: 2 images sit out each epoch
  std::vector<float> x(16 * 64), expected(64);
  std::vector<int32_t> y(16);
  for (int64_t epoch = 0; epoch < 2; epoch++) {
    const std::vector<int64_t> order = source.permutation(epoch);
    EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), 50u);
    for (int b = 0; b < 3; b++) {
      EXPECT_DOUBLE_EQ(source.epochs_done(), epoch + b / 3.0);
      source.next(x.data(), y.data());
      for (int k = 0; k < 16; k++) {
        const int64_t i = order[b * 16 + k];
        EXPECT_EQ(y[k], data->label(i));
        data->read(i, expected.data());
        plain.eval(expected.data(), expected.data());
        ASSERT_TRUE(std::equal(expected.begin(), expected.end(), x.begin() + k * 64)) << epoch << " " << b << " " << k;
      }
    }
    EXPECT_DOUBLE_EQ(source.epochs_done(), epoch + 1.0);
  }
  EXPECT_NE(source.permutation(0), source.permutation(1));
  EXPECT_EQ(source.permutation(1), ImageBatchSource(data, plain, 16, 7).permutation(1));
  EXPECT_NE(source.permutation(1), ImageBatchSource(data, plain, 16, 8).permutation(1));
}

TEST(ImageBatchSource, RestoredStateDrawsTheSameBatchesWhateverTheThreads) {
  const std::string dir = level_data("restore", 50, 8);
  std::shared_ptr<const ImageDataset> data = open_image_dataset({"idx", {dir}, "train"});
  const ImageTransform augment(data->shape(), compute_channel_stats(*data), {.crop_padding = 2, .horizontal_flip = true}, 3);
  ImageBatchSource a(data, augment, 16, 7), b(data, augment, 16, 7);
  std::vector<float> xa(16 * 64), xb(xa.size());
  std::vector<int32_t> ya(16), yb(16);
  for (int k = 0; k < 4; k++) a.next(xa.data(), ya.data());  // into the second epoch
  b.restore(json::parse(a.state().dump()));
  for (int k = 0; k < 5; k++) {
    omp_set_num_threads(1 + k % 2);
    a.next(xa.data(), ya.data());
    omp_set_num_threads(2 - k % 2);
    b.next(xb.data(), yb.data());
    EXPECT_EQ(xa, xb) << k;
    EXPECT_EQ(ya, yb) << k;
  }
  omp_set_num_threads(1);
  EXPECT_THROW(b.restore(json{{"epoch", 0}, {"batch", 4}}), Error);
  EXPECT_THROW(ImageBatchSource(data, augment, 51, 7), Error);
}

// ---- training -------------------------------------------------------------------------------

TEST(ImageTrain, LearnsTheClassesAndValidatesEveryEpoch) {
  const std::string data = level_data("learn");
  TrainConfig t = recipe(data);
  t.out_dir = test::temp_dir("image_train", "learn_run");
  const TrainResult r = train(vit(Share::kv), t, {.quiet = true});
  ASSERT_EQ(r.losses.size(), 36u);
  EXPECT_EQ(r.unit, "images");
  EXPECT_GT(r.losses.front(), 1.0);  // ln 4 = 1.39 at the start
  ASSERT_TRUE(r.val.contains("val_acc")) << r.val.dump();
  EXPECT_GT(r.val["val_acc"].get<double>(), 0.95) << r.val.dump();
  EXPECT_GT(r.val["train_acc"].get<double>(), 0.9) << r.val.dump();
  EXPECT_EQ(r.val["val_examples"].get<int64_t>(), 64);
  EXPECT_DOUBLE_EQ(r.val["epoch"].get<double>(), 3.0);

  // One validation record per epoch (steps 12, 24 and the final 36), with the epoch count and the
  // training accuracy of that epoch's batches; step records count images.
  std::vector<json> vals;
  for (const json& j : read_jsonl(t.out_dir + "/metrics.jsonl")) {
    if (j.contains("val_acc")) vals.push_back(j);
    else EXPECT_EQ(j["images"].get<double>(), j["step"].get<double>() * 16) << j.dump();
  }
  ASSERT_EQ(vals.size(), 3u);
  for (int e = 0; e < 3; e++) {
    EXPECT_EQ(vals[e]["step"], 12 * (e + 1));
    EXPECT_DOUBLE_EQ(vals[e]["epoch"].get<double>(), e + 1.0);
    for (const char* key : {"val_loss", "val_acc", "val_examples", "train_acc", "train_loss"})
      EXPECT_TRUE(vals[e].contains(key)) << key << " " << vals[e].dump();
  }
  EXPECT_GT(vals[2]["val_acc"].get<double>(), vals[0]["val_acc"].get<double>() - 1e-9);
  EXPECT_TRUE(fs::exists(t.out_dir + "/model.safetensors"));
}

// Bit-identical for the same seed and thread count; across thread counts (rows of the GEMMs split
// differently) equal to float rounding.
TEST(ImageTrain, SameSeedAndThreadsGiveBitIdenticalLosses) {
  const std::string data = level_data("threads");
  TrainConfig t = recipe(data, 8);
  t.images.crop_padding = 1;
  t.images.flip = true;
  std::vector<double> losses[2];
  for (int threads : {1, 2}) {
    t.threads = threads;
    losses[threads - 1] = train(vit(), t, {.quiet = true, .write_files = false}).losses;
    EXPECT_EQ(losses[threads - 1], train(vit(), t, {.quiet = true, .write_files = false}).losses) << threads;
  }
  omp_set_num_threads(1);
  ASSERT_EQ(losses[0].size(), losses[1].size());
  for (size_t i = 0; i < losses[0].size(); i++) EXPECT_NEAR(losses[0][i], losses[1][i], 1e-4) << "step " << i;
}

// Stopped after a checkpoint in the middle of epoch 2 (its state has the epoch-2 batches' training
// accuracy so far) and resumed: the same losses, weights, validation records and final metrics.
TEST(ImageTrain, ResumedRunIsBitIdentical) {
  const std::string data = level_data("resume");
  TrainConfig t = recipe(data);
  t.images.crop_padding = 1;
  t.images.flip = true;
  t.ckpt_every = 5;
  t.keep_last = 100;
  const std::string full_dir = test::temp_dir("image_train", "resume_full");
  t.out_dir = full_dir;
  const TrainResult full = train(vit(Share::kv), t, {.quiet = true});

  t.out_dir = test::temp_dir("image_train", "resume_cut");
  train(vit(Share::kv), t, {.quiet = true});
  // Roll the run back to its step-20 checkpoint, as if it had been killed at step 22.
  write_file_atomic(t.out_dir + "/latest.json",
                    json{{"step", 20}, {"model", "ckpt-00000020.safetensors"}, {"state", "ckpt-00000020.state.safetensors"}}
                            .dump() + "\n");
  fs::remove(t.out_dir + "/model.safetensors");
  const TrainResult resumed = train(vit(Share::kv), t, {.quiet = true, .resume = true});

  EXPECT_EQ(resumed.first_step, 20);
  ASSERT_EQ(resumed.losses.size(), 16u);
  EXPECT_EQ(resumed.losses, std::vector<double>(full.losses.begin() + 20, full.losses.end()));
  EXPECT_EQ(resumed.val, full.val);
  EXPECT_EQ(read_file(t.out_dir + "/model.safetensors"), read_file(full_dir + "/model.safetensors"));
  auto without_time = [](std::vector<json> records) {
    for (json& j : records) j.erase("elapsed_s"), j.erase("images_per_s");
    return records;
  };
  EXPECT_EQ(without_time(read_jsonl(t.out_dir + "/metrics.jsonl")),
            without_time(read_jsonl(full_dir + "/metrics.jsonl")));
}

// ---- bad configs ---------------------------------------------------------------------------

TrainConfig parse(const json& train) { return parse_train_config(train, "run.json: train"); }

TEST(ImageTrainConfig, KeysAreCheckedAndRoundTrip) {
  const json images = {{"format", "fashion-mnist"}, {"augment", {{"crop_padding", 2}, {"flip", true}}}};
  const TrainConfig t = parse({{"task", "image"}, {"images", images}, {"schedule", "step"}, {"lr_step_every", 100}});
  EXPECT_EQ(t.images.format, "fashion-mnist");
  EXPECT_TRUE(t.images.paths.empty());
  EXPECT_EQ(t.images.crop_padding, 2);
  EXPECT_TRUE(t.images.flip);
  EXPECT_EQ(to_json(parse(to_json(t))), to_json(t));
  EXPECT_FALSE(to_json(TrainConfig{}).contains("images"));

  auto error = [](const json& train) { return error_of([&] { parse(train); }); };
  EXPECT_CONTAINS(error({{"task", "image"}}), "run.json: train.images: task 'image' needs");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "svhn"}}}}),
                  "run.json: train.images.format: unknown image format 'svhn'");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"paths", {"x"}}}}}), "train.images.format: required");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "cifar10"}}}}), "train.images.paths");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "idx"}, {"paths", {1}}}}}), "train.images.paths");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "idx"}, {"path", "x"}}}}),
                  "train.images.path: unknown key");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "fashion-mnist"}, {"augment", {{"flip", 1}}}}}}),
                  "train.images.augment.flip");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "fashion-mnist"}, {"augment", {{"crop", 1}}}}}}),
                  "train.images.augment.crop: unknown key");
  EXPECT_CONTAINS(error({{"task", "image"}, {"images", {{"format", "fashion-mnist"}, {"augment", {{"crop_padding", -1}}}}}}),
                  "train.images.augment.crop_padding");
  EXPECT_CONTAINS(error({{"task", "lm"}, {"images", images}}), "train.images: only tasks 'image' and 'set-anomaly' read images");
  EXPECT_CONTAINS(error({{"schedule", "linear"}}), "train.schedule: unknown schedule 'linear'");
  EXPECT_CONTAINS(error({{"schedule", "step"}}), "train.lr_step_every");
  EXPECT_CONTAINS(error({{"lr_step_gamma", 1.5}}), "train.lr_step_gamma");
}

TEST(ImageTrainConfig, WrongDataOrModelIsAClearError) {
  const std::string data = level_data("errors");
  auto error = [](const TrainConfig& t, const ModelConfig& m) { return error_of([&] { make_train_task(t, m); }); };

  TrainConfig missing = recipe(data);
  missing.images.paths = {data + "/nowhere"};
  EXPECT_CONTAINS(error(missing, vit()), "train.images: ");
  EXPECT_CONTAINS(error(missing, vit()), "nowhere");

  ModelConfig token_model;
  token_model.n_layer = 1, token_model.d_model = 16, token_model.n_head = 2, token_model.n_kv_head = 2;
  token_model.head_dim = 8, token_model.d_ff = 32, token_model.vocab_size = 16, token_model.max_seq_len = 16;
  EXPECT_CONTAINS(error(recipe(data), token_model), "train.task: 'image' needs an image model");

  TrainConfig lm;
  lm.task = "induction";
  EXPECT_CONTAINS(error(lm, vit()), "train.task: 'induction' trains on tokens, but the model is an image model");

  ModelConfig narrow = vit();
  narrow.n_classes = 3;
  EXPECT_CONTAINS(error(recipe(data), narrow), "model.n_classes: 3, but image");
  EXPECT_CONTAINS(error(recipe(data), narrow), "has label 3");

  ModelConfig big = parse_model_config(json{{"n_layer", 1}, {"n_head", 2}, {"d_model", 16},
                                            {"image", {{"channels", 1}, {"height", 16}, {"width", 16}, {"patch", 4}}},
                                            {"n_classes", kClasses}});
  EXPECT_CONTAINS(error(recipe(data), big), "holds 1x8x8 images, but model.image is 1x16x16");

  TrainConfig files = recipe(data);
  files.images.paths = {data + "/train-images-idx3-ubyte", data + "/train-labels-idx1-ubyte"};
  EXPECT_CONTAINS(error(files, vit()), "train.images.test_paths");
  files.images.test_paths = {data + "/t10k-images-idx3-ubyte", data + "/t10k-labels-idx1-ubyte"};
  EXPECT_NO_THROW(make_train_task(files, vit()));

  TrainConfig huge_batch = recipe(data);
  huge_batch.batch_size = 201;
  EXPECT_CONTAINS(error(huge_batch, vit()), "train.batch_size: 201");
}

// ---- set anomaly --------------------------------------------------------------------------

// Example i has label i % classes and the feature vector (i, −i, 0.5).
std::shared_ptr<const FeatureTable> numbered_features(int n, int classes) {
  auto f = std::make_shared<FeatureTable>();
  f->dim = 3;
  for (int i = 0; i < n; i++) {
    f->labels.push_back(i % classes);
    f->values.insert(f->values.end(), {float(i), float(-i), 0.5f});
  }
  return f;
}

TEST(SetAnomalySampler, EachSetHasOneOddItemOfAnotherClass) {
  auto features = numbered_features(60, 3);
  SetAnomalySampler sampler(features, 6, 11);
  const int B = 50, n = 6, per_set = 3 * n;
  std::vector<float> sets(B * per_set);
  std::vector<int32_t> targets(B * n), odd(B);
  sampler.next(sets.data(), targets.data(), odd.data(), B);
  std::set<int32_t> positions;
  for (int b = 0; b < B; b++) {
    int32_t expected_odd = -1;
    const std::vector<int64_t> items = sampler.members(b, &expected_odd);
    ASSERT_EQ(odd[b], expected_odd);
    positions.insert(odd[b]);
    ASSERT_EQ(std::set<int64_t>(items.begin(), items.end()).size(), size_t(n)) << "items are distinct";
    const int common = items[odd[b] == 0 ? 1 : 0] % 3;
    for (int j = 0; j < n; j++) {
      EXPECT_EQ(targets[b * n + j], j == odd[b] ? 1 : 0);
      EXPECT_EQ(items[j] % 3 == common, j != odd[b]) << "set " << b << " item " << j;
      // Feature-major: feature f of item j at f·n + j.
      for (int f = 0; f < 3; f++) EXPECT_EQ(sets[b * per_set + f * n + j], features->values[items[j] * 3 + f]);
    }
  }
  EXPECT_EQ(positions.size(), size_t(n)) << "the odd item goes anywhere";
}

TEST(SetAnomalySampler, RestoredStateContinuesTheStream) {
  auto features = numbered_features(40, 4);
  SetAnomalySampler a(features, 5, 3), b(features, 5, 3);
  std::vector<float> x(8 * 15), y(8 * 15);
  std::vector<int32_t> t(8 * 5), u(8 * 5), o(8), p(8);
  a.next(x.data(), t.data(), o.data(), 8);
  b.restore(a.state());
  a.next(x.data(), t.data(), o.data(), 8);
  b.next(y.data(), u.data(), p.data(), 8);
  EXPECT_EQ(x, y);
  EXPECT_EQ(o, p);
  SetAnomalySampler other_seed(features, 5, 4);
  other_seed.restore(a.state());
  other_seed.next(y.data(), u.data(), p.data(), 8);
  EXPECT_NE(x, y);
}

TEST(SetAnomalySampler, ImpossibleSetsAreClearErrors) {
  EXPECT_CONTAINS(error_of([] { SetAnomalySampler(numbered_features(10, 1), 4, 1); }), "1 class(es); it takes 2");
  EXPECT_CONTAINS(error_of([] { SetAnomalySampler(numbered_features(10, 5), 4, 1); }),
                  "no class has the 3 examples a set of 4 needs");
  EXPECT_CONTAINS(error_of([] { SetAnomalySampler(numbered_features(10, 2), 1, 1); }), "at least 2 items");
}

TEST(SetAnomalySampler, PickOddTakesTheLargestMargin) {
  const float logits[] = {0, 1, 2, 0, 0, 3, -1, 1};  // margins 1, −2, 3, 2
  EXPECT_EQ(pick_odd(logits, 4), 2);
  EXPECT_EQ(pick_odd(logits, 2), 0);
}

ModelConfig set_model(int dim, int set_size) {
  return parse_model_config(json{{"n_layer", 1}, {"n_head", 2}, {"d_model", 16}, {"d_ff", 32}, {"share", "kv"},
                                 {"image", {{"channels", dim}, {"height", 1}, {"width", set_size}, {"patch", 1}}},
                                 {"pos", "none"}, {"head", "token"}, {"n_classes", 2}});
}

TEST(SetAnomaly, PerItemModelConfigRoundTrips) {
  const ModelConfig m = set_model(16, 5);
  EXPECT_EQ(m.max_seq_len, 5);
  EXPECT_EQ(m.n_cls_tokens(), 0);
  EXPECT_EQ(to_json(parse_model_config(to_json(m))), to_json(m));
  EXPECT_FALSE(to_json(m).contains("pool"));
  EXPECT_CONTAINS(error_of([] {
                    parse_model_config(json{{"n_layer", 1}, {"n_head", 2}, {"d_model", 16}, {"head", "lm"},
                                            {"image", {{"channels", 1}, {"height", 8}, {"width", 8}, {"patch", 4}}}});
                  }),
                  "model.head: an image model has no vocabulary");
}

// A ViT trained on the level data, then a set model on its frozen features: the classes are easy,
// so the odd one out is found far above chance (1/5).
TEST(SetAnomaly, FindsTheOddImageFromFrozenViTFeatures) {
  const std::string data = level_data("anomaly");
  TrainConfig vit_run = recipe(data);
  vit_run.out_dir = test::temp_dir("image_train", "anomaly_vit");
  train(vit(), vit_run, {.quiet = true});

  TrainConfig t = recipe(data, 60);
  t.task = "set-anomaly";
  t.anomaly.features = vit_run.out_dir + "/model.safetensors";
  t.anomaly.set_size = 5;
  t.test_examples = 100;
  t.val_every = 30;
  t.lr = 3e-3;
  t.out_dir = test::temp_dir("image_train", "anomaly_sets");
  const TrainResult r = train(set_model(16, 5), t, {.quiet = true});
  EXPECT_EQ(r.unit, "sets");
  ASSERT_TRUE(r.val.contains("val_acc")) << r.val.dump();
  EXPECT_EQ(r.val["val_sets"].get<int64_t>(), 100);
  EXPECT_GT(r.val["val_acc"].get<double>(), 0.8) << r.val.dump();
  EXPECT_GT(r.val["train_acc"].get<double>(), 0.5) << r.val.dump();
  EXPECT_LT(r.losses.back(), r.losses.front());

  // The task's config errors name the field.
  auto error = [&](const TrainConfig& c, const ModelConfig& m) { return error_of([&] { make_train_task(c, m); }); };
  EXPECT_CONTAINS(error(t, set_model(8, 5)), "model.image.channels: 8, but the features of");
  EXPECT_CONTAINS(error(t, set_model(16, 6)), "'set-anomaly' scores each item of a set");
  TrainConfig not_a_vit = t;
  not_a_vit.anomaly.features = data + "/nowhere.safetensors";
  EXPECT_CONTAINS(error(not_a_vit, set_model(16, 5)), "train.anomaly.features: ");
  EXPECT_CONTAINS(error(not_a_vit, set_model(16, 5)), "nowhere.safetensors");
  EXPECT_CONTAINS(error_of([] { parse_train_config(json{{"task", "set-anomaly"}, {"images", {{"format", "fashion-mnist"}}}}); }),
                  "train.anomaly: task 'set-anomaly' needs");
  EXPECT_CONTAINS(error_of([] { parse_train_config(json{{"task", "lm"}, {"anomaly", {{"features", "x"}}}}); }),
                  "train.anomaly: only task 'set-anomaly' takes it");
}

}  // namespace
}  // namespace kvtie
