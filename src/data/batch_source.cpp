#include "data/batch_source.h"

#include "core/npy.h"
#include "data/copy_task.h"
#include "data/prepare.h"
#include "data/token_dataset.h"
#include "kvtie/error.h"

namespace kvtie {

std::unique_ptr<BatchSource> make_batch_source(const TrainConfig& t, const ModelConfig& m) {
  // Data streams get their own seed so that changing the init seed does not change the data.
  const uint64_t data_seed = t.seed ^ 0xda7a5eedULL;
  if (t.task == "induction") {
    if (m.head != Head::lm || !m.causal) fail("train.task: 'induction' needs a causal LM (model.causal true, head lm)");
    if (m.vocab_size < 3) fail("train.task: 'induction' needs model.vocab_size >= 3");
    if (t.seq_len < 3) fail("train.seq_len: 'induction' needs at least 3 positions");
    return std::make_unique<CopyTask>(m.vocab_size, data_seed);
  }
  if (t.task == "lm") {
    if (m.head != Head::lm || !m.causal) fail("train.task: 'lm' needs a causal LM (model.causal true, head lm)");
    if (t.data.empty() == t.train_tokens.empty())
      fail("train.data: task 'lm' needs exactly one of train.data (a manifest) and train.train_tokens (.npy)");
    const std::string source = t.data.empty() ? t.train_tokens : t.data + " (train split)";
    std::vector<int32_t> tokens = t.data.empty() ? read_tokens_npy(t.train_tokens) : read_split(t.data, "train");
    for (size_t i = 0; i < tokens.size(); i++)
      if (tokens[i] < 0 || tokens[i] >= m.vocab_size)
        fail("{}: token {} at index {} is outside model.vocab_size {}", source, tokens[i], i, m.vocab_size);
    return std::make_unique<PackedLoader>(std::move(tokens), t.seq_len, data_seed, source);
  }
  fail("train.task: '{}' has no batch source here (induction, lm)", t.task);
}

}  // namespace kvtie
