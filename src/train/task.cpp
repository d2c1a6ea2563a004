#include "train/task.h"

#include <cmath>
#include <filesystem>

#include "core/npy.h"
#include "data/images/image_batches.h"
#include "data/images/open_image_dataset.h"
#include "data/prepare.h"
#include "data/set_anomaly.h"
#include "data/synthetic_tasks.h"
#include "kvtie/checkpoint.h"
#include "kvtie/error.h"
#include "train/evaluate.h"
#include "train/image_features.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

std::function<json(Transformer<float>&)> lm_validation(const TrainConfig& tc) {
  if (tc.val_tokens.empty() && tc.data.empty()) return {};
  std::vector<int32_t> tokens = tc.val_tokens.empty() ? read_split(tc.data, "val") : read_tokens_npy(tc.val_tokens);
  if (tc.val_max_tokens > 0 && static_cast<int64_t>(tokens.size()) > tc.val_max_tokens) tokens.resize(tc.val_max_tokens);
  const std::string source = tc.val_tokens.empty() ? tc.data : tc.val_tokens;
  return [tokens = std::move(tokens), source](Transformer<float>& model) {
    const EvalResult r = evaluate_tokens(model, tokens, source);
    return json{{"val_loss", r.loss}, {"val_ppl", r.ppl}, {"val_tokens", r.tokens}};
  };
}

// The token path: the source's next batch of [B, T] tokens and targets through model.forward. The
// buffers live in the closure, as forward's targets must until backward.
void set_token_forward(TrainTask& t, const TrainConfig& tc) {
  const int B = tc.batch_size, T = tc.seq_len;
  auto buffers = std::make_shared<std::pair<std::vector<int32_t>, std::vector<int32_t>>>(
      std::vector<int32_t>(static_cast<size_t>(B) * T), std::vector<int32_t>(static_cast<size_t>(B) * T));
  BatchSource* source = t.source.get();
  t.forward = [source, buffers, B, T](Transformer<float>& model) {
    auto& [tokens, targets] = *buffers;
    source->next(tokens.data(), targets.data(), B, T);
    return model.forward(tokens.data(), targets.data(), B, T);
  };
  t.state = [source] { return source->state(); };
  t.restore = [source](const json& s) { source->restore(s); };
  t.seq_len = T;
  t.unit = "tokens";
  t.units_per_batch = static_cast<int64_t>(B) * T;
}

std::unique_ptr<ImageDataset> open_images(const ImageDataSpec& spec, const std::string& where) {
  try {
    return open_image_dataset(spec);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
}

// train.images' training and test splits, checked against the image shape and classes the model
// (named by `model_where` in errors) takes.
std::pair<std::shared_ptr<const ImageDataset>, std::shared_ptr<const ImageDataset>> open_image_splits(
    const ImageDataConfig& ic, const ImageInput& shape, int n_classes, const std::string& model_where) {
  std::shared_ptr<const ImageDataset> train_data = open_images({ic.format, ic.paths, "train"}, "train.images");
  const bool folder = ic.paths.empty() || (ic.paths.size() == 1 && std::filesystem::is_directory(ic.paths[0]));
  if (ic.test_paths.empty() && !folder)
    fail("train.images.test_paths: train.images.paths names files, not a folder: name the test split's files in "
         "test_paths");
  std::shared_ptr<const ImageDataset> test_data =
      ic.test_paths.empty() ? open_images({ic.format, ic.paths, "test"}, "train.images")
                            : open_images({ic.format, ic.test_paths, "test"}, "train.images.test_paths");
  for (const ImageDataset* d : {train_data.get(), test_data.get()}) {
    const ImageShape s = d->shape();
    if (s.channels != shape.channels || s.height != shape.height || s.width != shape.width)
      fail("train.images: {} holds {}x{}x{} images, but {}.image is {}x{}x{} (channels x height x width)",
           d->source(), s.channels, s.height, s.width, model_where, shape.channels, shape.height, shape.width);
    // Labels, not the format's class count: an IDX file may use fewer than its 10 classes.
    for (int64_t i = 0; i < d->size(); i++)
      if (d->label(i) >= n_classes)
        fail("{}.n_classes: {}, but image {} of {} has label {}", model_where, n_classes, i, d->source(),
             d->label(i));
  }
  return {std::move(train_data), std::move(test_data)};
}

// What the training batches since the last validation scored (examples: images or sets), kept in
// the checkpointed data state so that a resumed run reports the same numbers.
struct RunningScore {
  int64_t seen = 0, correct = 0, scored = 0;
  double loss_sum = 0.0;

  void add(const Transformer<float>& model, int examples, int64_t right) {
    seen += examples;
    correct += right;
    scored += model.scored();
    loss_sum += model.loss_sum();
  }
  json save(json s) const {
    s["train_seen"] = seen;
    s["train_correct"] = correct;
    s["train_scored"] = scored;
    s["train_loss_sum"] = loss_sum;
    return s;
  }
  void restore(const json& s) {
    seen = s.at("train_seen").get<int64_t>();
    correct = s.at("train_correct").get<int64_t>();
    scored = s.value("train_scored", seen);  // checkpoints before set tasks: one target per example
    loss_sum = s.at("train_loss_sum").get<double>();
  }
  // Adds train_acc and train_loss to a validation record, then starts over.
  void report(json& j) {
    if (seen > 0) j["train_acc"] = static_cast<double>(correct) / static_cast<double>(seen);
    if (scored > 0) j["train_loss"] = loss_sum / static_cast<double>(scored);
    *this = {};
  }
};

// The checkpointed data state of a task with a running score: the source's position and the score.
template <typename Source>
void keep_running_score(TrainTask& t, std::shared_ptr<Source> source, std::shared_ptr<RunningScore> running) {
  t.state = [source, running] { return running->save(source->state()); };
  t.restore = [source, running](const json& s) {
    source->restore(s);
    running->restore(s);
  };
}

// Task "image": train.images' training split in shuffled epochs (image_batches.h) with the
// configured augmentation, normalised by the training split's channel statistics; validation on
// the whole test split, plus the training accuracy and loss of the batches since the previous
// validation (kept in the checkpointed state, so a resumed run reports the same numbers).
TrainTask image_task(const TrainConfig& tc, const ModelConfig& m, uint64_t data_seed) {
  if (!m.is_image())
    fail("train.task: 'image' needs an image model: add a model.image object (docs/vision.md)");
  if (m.head != Head::pooled) fail("train.task: 'image' classifies whole images: model.head must be 'pooled'");
  const ImageDataConfig& ic = tc.images;
  const auto [train_data, test_data] = open_image_splits(ic, m.image, m.n_classes, "model");
  const ImageTransform augment(train_data->shape(), compute_channel_stats(*train_data),
                               {.crop_padding = ic.crop_padding, .horizontal_flip = ic.flip}, data_seed);
  const ImageTransform plain(train_data->shape(), augment.stats());
  if (train_data->size() < tc.batch_size)
    fail("train.batch_size: {} is more than the {} training images of {}", tc.batch_size, train_data->size(),
         train_data->source());
  auto source = std::make_shared<ImageBatchSource>(train_data, augment, tc.batch_size, data_seed);

  auto running = std::make_shared<RunningScore>();
  const int B = tc.batch_size;
  const int64_t pixels = train_data->shape().numel();
  auto images = std::make_shared<std::vector<float>>(static_cast<size_t>(B * pixels));
  auto labels = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(B));

  TrainTask t;
  t.forward = [source, running, images, labels, B](Transformer<float>& model) {
    source->next(images->data(), labels->data());
    const float loss = model.forward_images(images->data(), labels->data(), B);
    running->add(model, B, count_correct(model.logits(), labels->data(), B, model.config().n_classes));
    return loss;
  };
  keep_running_score(t, source, running);
  t.validate = [test_data, plain, source, running](Transformer<float>& model) {
    const ImageEvalResult r = evaluate_images(model, *test_data, plain);
    json j{{"val_loss", r.loss}, {"val_acc", r.accuracy}, {"val_examples", r.images}, {"epoch", source->epochs_done()}};
    running->report(j);
    return j;
  };
  t.seq_len = m.max_seq_len;
  t.unit = "images";
  t.units_per_batch = B;
  return t;
}

// Task "set-anomaly": sets of train.anomaly.set_size items drawn from the pooled features of the
// frozen image model train.anomaly.features on train.images (training sets from the training split,
// a fixed set of train.test_examples test sets from the test split); the set model (an image model
// over a 1 × set_size "image" of features, patch 1, per-item head of 2 classes) scores each item.
TrainTask set_anomaly_task(const TrainConfig& tc, const ModelConfig& m, uint64_t data_seed) {
  const int n = tc.anomaly.set_size;
  if (!m.is_image() || m.head != Head::token || m.n_classes != 2 || m.image.height != 1 || m.image.width != n ||
      m.image.patch != 1)
    fail("train.task: 'set-anomaly' scores each item of a set: model.image must be {{\"channels\": <feature dim>, "
         "\"height\": 1, \"width\": {} (train.anomaly.set_size), \"patch\": 1}}, head 'token', n_classes 2",
         n);
  if (m.pos != PosEmb::none) fail("model.pos: a set has no order: set-anomaly needs pos 'none'");
  const std::string& path = tc.anomaly.features;
  std::unique_ptr<Transformer<float>> frozen;
  try {
    frozen = load_checkpoint(path, 256);
  } catch (const Error& e) {
    fail("train.anomaly.features: {}", e.what());
  }
  const ModelConfig& fc = frozen->config();
  if (!fc.is_image() || fc.head != Head::pooled)
    fail("train.anomaly.features: {} is not an image model with a pooled head", path);
  if (m.image.channels != fc.d_model)
    fail("model.image.channels: {}, but the features of {} have d_model {} values", m.image.channels, path,
         fc.d_model);
  const auto [train_data, test_data] = open_image_splits(tc.images, fc.image, fc.n_classes, path);
  // The frozen model's own view of the images: its training normalisation, no augmentation.
  const ImageTransform plain(train_data->shape(), compute_channel_stats(*train_data));
  auto train_features = std::make_shared<const FeatureTable>(image_features(*frozen, *train_data, plain));
  auto test_features = std::make_shared<const FeatureTable>(image_features(*frozen, *test_data, plain));
  frozen.reset();

  auto sampler = std::make_shared<SetAnomalySampler>(train_features, n, data_seed);
  // The test sets are drawn once, from their own stream.
  SetAnomalySampler test_sampler(test_features, n, data_seed ^ 0x7e57'5e75ULL);
  const int64_t per_set = static_cast<int64_t>(m.image.channels) * n;
  const int T = tc.test_examples;
  auto test_sets = std::make_shared<std::vector<float>>(static_cast<size_t>(T * per_set));
  auto test_targets = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(T) * n);
  auto test_odd = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(T));
  test_sampler.next(test_sets->data(), test_targets->data(), test_odd->data(), T);

  const int B = tc.batch_size;
  auto sets = std::make_shared<std::vector<float>>(static_cast<size_t>(B * per_set));
  auto targets = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(B) * n);
  auto odd = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(B));
  auto running = std::make_shared<RunningScore>();
  TrainTask t;
  t.forward = [sampler, sets, targets, odd, running, B, n](Transformer<float>& model) {
    sampler->next(sets->data(), targets->data(), odd->data(), B);
    const float loss = model.forward_images(sets->data(), targets->data(), B);
    running->add(model, B, count_odd_found(model.logits(), odd->data(), B, n));
    return loss;
  };
  keep_running_score(t, sampler, running);
  t.validate = [test_sets, test_targets, test_odd, running](Transformer<float>& model) {
    const SetEvalResult r = evaluate_sets(model, *test_sets, *test_targets, *test_odd);
    json j{{"val_loss", r.loss}, {"val_acc", r.accuracy}, {"val_sets", r.sets}};
    running->report(j);
    return j;
  };
  t.seq_len = n;
  t.unit = "sets";
  t.units_per_batch = B;
  return t;
}

TrainTask synthetic_task(SyntheticTask task, const TrainConfig& tc, const ModelConfig& m, uint64_t data_seed) {
  const std::string name(synthetic_task_name(task));
  if (m.causal || m.head != Head::token)
    fail("train.task: '{}' needs a bidirectional encoder with a per-token head (model.causal false, head token)", name);
  if (m.vocab_size != kDigits || m.n_classes != kDigits)
    fail("train.task: '{}' reads and predicts digits: model.vocab_size and model.n_classes must be {}", name, kDigits);
  auto source = std::make_unique<SyntheticTaskSource>(task, tc.seq_len, tc.test_examples, data_seed);
  const SyntheticTestSet test = source->test_set();
  TrainTask t;
  t.source = std::move(source);
  set_token_forward(t, tc);
  t.validate = [test](Transformer<float>& model) {
    const SequenceEvalResult r = evaluate_sequences(model, test.inputs, test.targets, test.length);
    return json{{"val_loss", r.loss}, {"val_acc", r.accuracy}, {"val_exact", r.exact_match},
                {"val_sequences", r.sequences}};
  };
  return t;
}

}  // namespace

TrainTask make_train_task(const TrainConfig& tc, const ModelConfig& m) {
  // Data streams get their own seed so that changing the init seed does not change the data.
  const uint64_t data_seed = tc.seed ^ 0xda7a5eedULL;
  if (tc.task == "image") return image_task(tc, m, data_seed);
  if (tc.task == "set-anomaly") return set_anomaly_task(tc, m, data_seed);
  if (m.is_image())
    fail("train.task: '{}' trains on tokens, but the model is an image model (model.image): use task 'image'",
         tc.task);
  if (tc.seq_len > m.max_seq_len) fail("train.seq_len: {} exceeds model.max_seq_len {}", tc.seq_len, m.max_seq_len);
  if (const auto synthetic = parse_synthetic_task(tc.task)) return synthetic_task(*synthetic, tc, m, data_seed);
  TrainTask t;
  t.source = make_batch_source(tc, m);
  set_token_forward(t, tc);
  if (tc.task == "lm") t.validate = lm_validation(tc);
  return t;
}

}  // namespace kvtie
