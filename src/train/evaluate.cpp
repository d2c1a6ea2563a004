#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "data/images/image_batches.h"
#include "data/set_anomaly.h"
#include "kernels/softmax_xent.h"
#include "kvtie/error.h"

namespace kvtie {

void check_eval_tokens(const ModelConfig& c, const std::vector<int32_t>& tokens, const std::string& source) {
  if (c.head != Head::lm) fail("{}: eval needs a model with an LM head", source);
  if (tokens.size() < 2) fail("{}: {} tokens; need at least 2 to predict one", source, tokens.size());
  for (size_t i = 0; i < tokens.size(); i++)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      fail("{}: token {} at index {} is outside the model's vocabulary [0, {})", source, tokens[i], i, c.vocab_size);
}

EvalResult evaluate_tokens(Transformer<float>& model, const std::vector<int32_t>& tokens, const std::string& source) {
  check_eval_tokens(model.config(), tokens, source);

  const int S = model.max_seq();
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<int32_t> x(static_cast<size_t>(model.max_batch()) * S), y(x.size());
  double loss_sum = 0.0;
  int64_t predicted = 0;
  // Full windows go through in batches; the final short window alone.
  for (int64_t start = 0; start < n;) {
    const int64_t remaining = n - start;
    const int len = static_cast<int>(std::min<int64_t>(S, remaining));
    const int batch = len == S ? static_cast<int>(std::min<int64_t>(model.max_batch(), remaining / S)) : 1;
    for (int b = 0; b < batch; b++) {
      const int32_t* w = tokens.data() + start + static_cast<int64_t>(b) * len;
      for (int t = 0; t < len; t++) {
        x[static_cast<size_t>(b) * len + t] = w[t];
        y[static_cast<size_t>(b) * len + t] = t + 1 < len ? w[t + 1] : kIgnoreIndex;
      }
    }
    model.forward(x.data(), y.data(), batch, len);
    loss_sum += model.loss_sum();
    predicted += model.scored();
    start += static_cast<int64_t>(batch) * len;
  }
  if (predicted == 0) fail("{}: no token could be predicted", source);
  EvalResult r;
  r.loss = loss_sum / static_cast<double>(predicted);
  r.ppl = std::exp(r.loss);
  r.tokens = predicted;
  return r;
}

std::vector<EvalResult> evaluate_documents(Transformer<float>& model, const std::vector<int32_t>& tokens,
                                           int32_t separator, const std::string& source) {
  std::vector<EvalResult> docs;
  std::vector<int32_t> doc;
  auto flush = [&] {
    docs.push_back(doc.size() >= 2 ? evaluate_tokens(model, doc, source) : EvalResult{});
    doc.clear();
  };
  for (int32_t t : tokens) {
    if (t == separator) {
      if (!doc.empty()) flush();
    } else {
      doc.push_back(t);
    }
  }
  if (!doc.empty()) flush();
  return docs;
}

SequenceEvalResult evaluate_sequences(Transformer<float>& model, const std::vector<int32_t>& inputs,
                                      const std::vector<int32_t>& targets, int length) {
  const ModelConfig& c = model.config();
  if (c.head != Head::token) fail("evaluating sequences needs a per-token head (model.head token)");
  const int64_t n = static_cast<int64_t>(inputs.size()) / length;
  const int C = c.n_outputs();
  SequenceEvalResult r;
  double loss_sum = 0.0;
  int64_t scored = 0, correct = 0, exact = 0;
  for (int64_t start = 0; start < n; start += model.max_batch()) {
    const int batch = static_cast<int>(std::min<int64_t>(model.max_batch(), n - start));
    const int32_t* x = inputs.data() + start * length;
    const int32_t* y = targets.data() + start * length;
    model.forward(x, y, batch, length);
    loss_sum += model.loss_sum();
    scored += model.scored();
    const float* logits = model.logits();
    for (int b = 0; b < batch; b++) {
      bool all = true;
      for (int t = 0; t < length; t++) {
        const int64_t row = static_cast<int64_t>(b) * length + t;
        const float* l = logits + row * C;
        const int predicted = static_cast<int>(std::max_element(l, l + C) - l);
        const bool ok = predicted == y[row];
        correct += ok;
        all = all && ok;
      }
      exact += all;
    }
  }
  r.sequences = n;
  r.loss = scored ? loss_sum / static_cast<double>(scored) : 0.0;
  r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n * length) : 0.0;
  r.exact_match = n ? static_cast<double>(exact) / static_cast<double>(n) : 0.0;
  return r;
}

int64_t count_correct(const float* logits, const int32_t* labels, int B, int C) {
  int64_t correct = 0;
  for (int b = 0; b < B; b++) {
    const float* l = logits + static_cast<int64_t>(b) * C;
    correct += static_cast<int32_t>(std::max_element(l, l + C) - l) == labels[b];
  }
  return correct;
}

ImageEvalResult evaluate_images(Transformer<float>& model, const ImageDataset& data, const ImageTransform& transform) {
  const ModelConfig& c = model.config();
  if (!c.is_image()) fail("{}: evaluating images needs an image model (model.image)", data.source());
  const ImageShape shape = data.shape();
  if (shape.channels != c.image.channels || shape.height != c.image.height || shape.width != c.image.width)
    fail("{}: images are {}x{}x{}, the model takes {}x{}x{}", data.source(), shape.channels, shape.height,
         shape.width, c.image.channels, c.image.height, c.image.width);
  const int64_t n = data.size(), pixels = shape.numel();
  const int max_batch = model.max_batch();
  std::vector<float> images(static_cast<size_t>(max_batch * pixels));
  std::vector<int32_t> labels(static_cast<size_t>(max_batch));
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += max_batch) {
    const int batch = static_cast<int>(std::min<int64_t>(max_batch, n - start));
    read_eval_batch(data, transform, start, batch, images.data(), labels.data());
    model.forward_images(images.data(), labels.data(), batch);
    loss_sum += model.loss_sum();
    correct += count_correct(model.logits(), labels.data(), batch, c.n_classes);
  }
  ImageEvalResult r;
  r.images = n;
  r.loss = n ? loss_sum / static_cast<double>(n) : 0.0;
  r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
  return r;
}

int64_t count_odd_found(const float* logits, const int32_t* odd, int B, int set_size) {
  int64_t found = 0;
  for (int b = 0; b < B; b++) found += pick_odd(logits + static_cast<int64_t>(b) * set_size * 2, set_size) == odd[b];
  return found;
}

SetEvalResult evaluate_sets(Transformer<float>& model, const std::vector<float>& sets,
                            const std::vector<int32_t>& targets, const std::vector<int32_t>& odd) {
  const ModelConfig& c = model.config();
  const int set_size = c.image.width;
  const int64_t n = static_cast<int64_t>(odd.size()), per_set = static_cast<int64_t>(c.image.channels) * set_size;
  if (static_cast<int64_t>(sets.size()) != n * per_set || static_cast<int64_t>(targets.size()) != n * set_size)
    fail("set evaluation: {} sets do not match {} values and {} targets", n, sets.size(), targets.size());
  double loss_sum = 0.0;
  int64_t scored = 0, found = 0;
  for (int64_t start = 0; start < n; start += model.max_batch()) {
    const int batch = static_cast<int>(std::min<int64_t>(model.max_batch(), n - start));
    model.forward_images(sets.data() + start * per_set, targets.data() + start * set_size, batch);
    loss_sum += model.loss_sum();
    scored += model.scored();
    found += count_odd_found(model.logits(), odd.data() + start, batch, set_size);
  }
  SetEvalResult r;
  r.sets = n;
  r.loss = scored ? loss_sum / static_cast<double>(scored) : 0.0;
  r.accuracy = n ? static_cast<double>(found) / static_cast<double>(n) : 0.0;
  return r;
}

}  // namespace kvtie
