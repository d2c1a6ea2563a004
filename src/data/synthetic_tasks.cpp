#include "data/synthetic_tasks.h"

#include <algorithm>
#include <cmath>

#include "kvtie/error.h"

namespace kvtie {
namespace {

constexpr std::array<std::pair<std::string_view, SyntheticTask>, 5> kTaskNames = {{
    {"reverse", SyntheticTask::reverse},
    {"sort", SyntheticTask::sort},
    {"sub", SyntheticTask::sub},
    {"swap", SyntheticTask::swap},
    {"copy", SyntheticTask::copy},
}};

}  // namespace

std::optional<SyntheticTask> parse_synthetic_task(std::string_view name) {
  for (const auto& [n, t] : kTaskNames)
    if (n == name) return t;
  return std::nullopt;
}

std::string_view synthetic_task_name(SyntheticTask task) {
  for (const auto& [n, t] : kTaskNames)
    if (t == task) return n;
  return "?";
}

void synthetic_target(SyntheticTask task, const int32_t* x, int32_t* y, int L) {
  switch (task) {
    case SyntheticTask::reverse:
      for (int i = 0; i < L; i++) y[i] = x[L - 1 - i];
      break;
    case SyntheticTask::sort:
      std::copy(x, x + L, y);
      std::sort(y, y + L);
      break;
    case SyntheticTask::sub:
      for (int i = 0; i < L; i++) y[i] = kDigits - 1 - x[i];
      break;
    case SyntheticTask::swap: {
      const int h = L / 2, rest = L - h;  // [first h | middle? | last h] → [last h | middle? | first h]
      for (int i = 0; i < h; i++) y[i] = x[rest + i];
      if (L % 2) y[h] = x[h];
      for (int i = 0; i < h; i++) y[rest + i] = x[i];
      break;
    }
    case SyntheticTask::copy: std::copy(x, x + L, y); break;
  }
}

uint64_t SyntheticTaskSource::fingerprint(const int32_t* x, int L) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the digits
  for (int i = 0; i < L; i++) h = (h ^ static_cast<uint64_t>(x[i])) * 0x100000001b3ULL;
  return h;
}

void SyntheticTaskSource::draw(int32_t* x, Rng& rng) const {
  for (int i = 0; i < length_; i++) x[i] = static_cast<int32_t>(rng.below(kDigits));
}

SyntheticTaskSource::SyntheticTaskSource(SyntheticTask task, int length, int n_test, uint64_t seed)
    : task_(task), length_(length), rng_(seed) {
  if (length < 1) fail("train.seq_len: a synthetic task needs at least 1 position, got {}", length);
  if (n_test < 1) fail("train.test_examples: must be at least 1, got {}", n_test);
  // Keep at least 4× as many sequences for training as the test set takes.
  if (length < 12 && std::pow(10.0, length) < 5.0 * n_test)
    fail("train.test_examples: {} distinct test sequences of length {} leave too few for training (10^{} in all)",
         n_test, length, length);
  test_.length = length;
  test_.inputs.resize(static_cast<size_t>(n_test) * length);
  test_.targets.resize(test_.inputs.size());
  Rng test_rng(seed ^ 0x7e57'5e7ULL);  // the test set does not move when the training stream does
  for (int n = 0; n < n_test;) {
    int32_t* x = test_.inputs.data() + static_cast<size_t>(n) * length;
    draw(x, test_rng);
    if (!test_prints_.insert(fingerprint(x, length)).second) continue;  // a duplicate: draw again
    synthetic_target(task, x, test_.targets.data() + static_cast<size_t>(n) * length, length);
    n++;
  }
}

void SyntheticTaskSource::next(int32_t* tokens, int32_t* targets, int B, int T) {
  if (T != length_) fail("train.seq_len: the task's sequences have {} positions, the batch {}", length_, T);
  for (int b = 0; b < B; b++) {
    int32_t* x = tokens + static_cast<int64_t>(b) * T;
    do draw(x, rng_);
    while (test_prints_.count(fingerprint(x, T)));
    synthetic_target(task_, x, targets + static_cast<int64_t>(b) * T, T);
  }
}

}  // namespace kvtie
