#include "data/set_anomaly.h"

#include <algorithm>

#include "core/rng.h"
#include "kvtie/error.h"

namespace kvtie {

SetAnomalySampler::SetAnomalySampler(std::shared_ptr<const FeatureTable> features, int set_size, uint64_t seed)
    : features_(std::move(features)), set_size_(set_size), seed_(seed) {
  if (set_size < 2) fail("set anomaly: a set needs at least 2 items, got {}", set_size);
  const FeatureTable& f = *features_;
  if (f.dim < 1 || static_cast<int64_t>(f.values.size()) != f.size() * f.dim)
    fail("set anomaly: the feature table holds {} values, not {} examples × {}", f.values.size(), f.size(), f.dim);
  for (int64_t i = 0; i < f.size(); i++) {
    const int32_t label = f.labels[static_cast<size_t>(i)];
    if (label < 0) fail("set anomaly: example {} has label {}", i, label);
    if (static_cast<size_t>(label) >= by_class_.size()) by_class_.resize(static_cast<size_t>(label) + 1);
    by_class_[static_cast<size_t>(label)].push_back(i);
  }
  for (size_t c = 0; c < by_class_.size(); c++) {
    const int64_t n = static_cast<int64_t>(by_class_[c].size());
    if (n >= 1) present_classes_.push_back(static_cast<int>(c));
    if (n >= set_size - 1) common_classes_.push_back(static_cast<int>(c));
  }
  if (present_classes_.size() < 2) fail("set anomaly: the features hold {} class(es); it takes 2", present_classes_.size());
  if (common_classes_.empty())
    fail("set anomaly: no class has the {} examples a set of {} needs", set_size - 1, set_size);
}

std::vector<int64_t> SetAnomalySampler::members(int64_t index, int32_t* odd) const {
  Rng rng(mix64(seed_ ^ mix64(static_cast<uint64_t>(index))));
  const int common = common_classes_[rng.below(common_classes_.size())];
  int other = common;
  while (other == common) other = present_classes_[rng.below(present_classes_.size())];
  const auto& pool = by_class_[static_cast<size_t>(common)];
  const auto& odd_pool = by_class_[static_cast<size_t>(other)];
  // n − 1 distinct examples of the common class (rejection: the pools are far larger than a set).
  std::vector<int64_t> items;
  while (static_cast<int>(items.size()) < set_size_ - 1) {
    const int64_t pick = pool[rng.below(pool.size())];
    if (std::find(items.begin(), items.end(), pick) == items.end()) items.push_back(pick);
  }
  const int position = static_cast<int>(rng.below(static_cast<uint64_t>(set_size_)));
  items.insert(items.begin() + position, odd_pool[rng.below(odd_pool.size())]);
  *odd = position;
  return items;
}

void SetAnomalySampler::draw(int64_t index, float* set, int32_t* targets, int32_t* odd) const {
  const std::vector<int64_t> items = members(index, odd);
  const int dim = features_->dim, n = set_size_;
  for (int j = 0; j < n; j++) {
    const float* v = features_->values.data() + items[static_cast<size_t>(j)] * dim;
    for (int f = 0; f < dim; f++) set[static_cast<int64_t>(f) * n + j] = v[f];
    targets[j] = j == *odd ? 1 : 0;
  }
}

void SetAnomalySampler::next(float* sets, int32_t* targets, int32_t* odd, int B) {
  const int64_t per_set = static_cast<int64_t>(features_->dim) * set_size_;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    int32_t position = 0;
    draw(drawn_ + b, sets + b * per_set, targets + static_cast<int64_t>(b) * set_size_, &position);
    if (odd) odd[b] = position;
  }
  drawn_ += B;
}

void SetAnomalySampler::restore(const nlohmann::json& state) {
  if (!state.contains("sets_drawn") || !state["sets_drawn"].is_number_integer() || state["sets_drawn"].get<int64_t>() < 0)
    fail("set anomaly: checkpoint data state {} has no valid sets_drawn", state.dump());
  drawn_ = state["sets_drawn"].get<int64_t>();
}

int32_t pick_odd(const float* set_logits, int set_size) {
  int32_t best = 0;
  for (int j = 1; j < set_size; j++)
    if (set_logits[2 * j + 1] - set_logits[2 * j] > set_logits[2 * best + 1] - set_logits[2 * best]) best = j;
  return best;
}

}  // namespace kvtie
