#pragma once
// The study's set anomaly task: a set of n items, n − 1 drawn from one class and one from another;
// the model must point at the odd one. Items are feature vectors (here: a frozen Fashion-MNIST
// ViT's pooled features, src/train/vit_features.h).
//
// A set enters the model as a 1 × n "image" with one channel per feature and patch 1, so that the
// patch embedding is a linear layer applied to each item, and a per-patch head (model.head token,
// 2 classes: usual, odd) scores each item. No position embedding: the model cannot tell the items'
// order, as a set model should not.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace kvtie {

// One feature vector per labelled example.
struct FeatureTable {
  int dim = 0;
  std::vector<float> values;    // [size, dim]
  std::vector<int32_t> labels;  // [size]
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Set i of a sampler depends only on (seed, i): a resumed run continues the same stream, and the
// test sets are the first `count` sets of a sampler over the test features.
class SetAnomalySampler {
 public:
  // Errors unless at least two classes exist and one of them has set_size − 1 examples.
  SetAnomalySampler(std::shared_ptr<const FeatureTable> features, int set_size, uint64_t seed);

  // sets [B, dim, 1, set_size] (the model's input layout: feature-major), targets [B, set_size]
  // (1 at the odd item, else 0), odd [B] (its position; may be null).
  void next(float* sets, int32_t* targets, int32_t* odd, int B);
  // Set number `index` of this stream, into one [dim, 1, set_size] input, targets and odd position.
  void draw(int64_t index, float* set, int32_t* targets, int32_t* odd) const;
  // The examples of set `index`, in position order (for tests).
  std::vector<int64_t> members(int64_t index, int32_t* odd) const;

  int set_size() const { return set_size_; }
  int dim() const { return features_->dim; }
  nlohmann::json state() const { return {{"sets_drawn", drawn_}}; }
  void restore(const nlohmann::json& state);

 private:
  std::shared_ptr<const FeatureTable> features_;
  int set_size_;
  uint64_t seed_;
  int64_t drawn_ = 0;
  std::vector<std::vector<int64_t>> by_class_;  // example indices of each label
  std::vector<int> common_classes_;             // labels with at least set_size − 1 examples
  std::vector<int> present_classes_;            // labels with at least one example
};

// The position whose "odd" logit most exceeds its "usual" logit, per set: logits [B, n, 2].
int32_t pick_odd(const float* set_logits, int set_size);

}  // namespace kvtie
