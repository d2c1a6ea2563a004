#include "train/task.h"

#include <cmath>
#include <filesystem>

#include "core/npy.h"
#include "data/images/image_batches.h"
#include "data/images/open_image_dataset.h"
#include "data/prepare.h"
#include "data/synthetic_tasks.h"
#include "kvtie/error.h"
#include "train/evaluate.h"

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

// Task "image": train.images' training split in shuffled epochs (image_batches.h) with the
// configured augmentation, normalised by the training split's channel statistics; validation on
// the whole test split, plus the training accuracy and loss of the batches since the previous
// validation (kept in the checkpointed state, so a resumed run reports the same numbers).
TrainTask image_task(const TrainConfig& tc, const ModelConfig& m, uint64_t data_seed) {
  if (!m.is_image())
    fail("train.task: 'image' needs an image model: add a model.image object (docs/vision.md)");
  const ImageDataConfig& ic = tc.images;
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
    if (s.channels != m.image.channels || s.height != m.image.height || s.width != m.image.width)
      fail("train.images: {} holds {}x{}x{} images, but model.image is {}x{}x{} (channels x height x width)",
           d->source(), s.channels, s.height, s.width, m.image.channels, m.image.height, m.image.width);
    // Labels, not the format's class count: an IDX file may use fewer than its 10 classes.
    for (int64_t i = 0; i < d->size(); i++)
      if (d->label(i) >= m.n_classes)
        fail("model.n_classes: {}, but image {} of {} has label {}", m.n_classes, i, d->source(), d->label(i));
  }
  const ImageTransform augment(train_data->shape(), compute_channel_stats(*train_data),
                               {.crop_padding = ic.crop_padding, .horizontal_flip = ic.flip}, data_seed);
  const ImageTransform plain(train_data->shape(), augment.stats());
  if (train_data->size() < tc.batch_size)
    fail("train.batch_size: {} is more than the {} training images of {}", tc.batch_size, train_data->size(),
         train_data->source());
  auto source = std::make_shared<ImageBatchSource>(train_data, augment, tc.batch_size, data_seed);

  // What the batches since the last validation scored.
  struct Running {
    int64_t seen = 0, correct = 0;
    double loss_sum = 0.0;
  };
  auto running = std::make_shared<Running>();
  const int B = tc.batch_size;
  const int64_t pixels = train_data->shape().numel();
  auto images = std::make_shared<std::vector<float>>(static_cast<size_t>(B * pixels));
  auto labels = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(B));

  TrainTask t;
  t.forward = [source, running, images, labels, B](Transformer<float>& model) {
    source->next(images->data(), labels->data());
    const float loss = model.forward_images(images->data(), labels->data(), B);
    running->seen += B;
    running->correct += count_correct(model.logits(), labels->data(), B, model.config().n_classes);
    running->loss_sum += model.loss_sum();
    return loss;
  };
  t.state = [source, running] {
    json s = source->state();
    s["train_seen"] = running->seen;
    s["train_correct"] = running->correct;
    s["train_loss_sum"] = running->loss_sum;
    return s;
  };
  t.restore = [source, running](const json& s) {
    source->restore(s);
    running->seen = s.at("train_seen").get<int64_t>();
    running->correct = s.at("train_correct").get<int64_t>();
    running->loss_sum = s.at("train_loss_sum").get<double>();
  };
  t.validate = [test_data, plain, source, running](Transformer<float>& model) {
    const ImageEvalResult r = evaluate_images(model, *test_data, plain);
    json j{{"val_loss", r.loss}, {"val_acc", r.accuracy}, {"val_examples", r.images}, {"epoch", source->epochs_done()}};
    if (running->seen > 0) {
      j["train_acc"] = static_cast<double>(running->correct) / static_cast<double>(running->seen);
      j["train_loss"] = running->loss_sum / static_cast<double>(running->seen);
    }
    *running = {};
    return j;
  };
  t.seq_len = m.max_seq_len;
  t.unit = "images";
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
