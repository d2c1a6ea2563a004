#include "train/task.h"

#include <cmath>

#include "core/npy.h"
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
  if (const auto synthetic = parse_synthetic_task(tc.task)) return synthetic_task(*synthetic, tc, m, data_seed);
  TrainTask t;
  t.source = make_batch_source(tc, m);
  if (tc.task == "lm") t.validate = lm_validation(tc);
  return t;
}

}  // namespace kvtie
