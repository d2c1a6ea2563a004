#include "infer/cached_eval.h"

#include <algorithm>
#include <cmath>

#include "infer/decoder.h"
#include "kernels/softmax_xent.h"
#include "kvtie/error.h"

namespace kvtie {

EvalResult evaluate_tokens_cached(Transformer<float>& model, const std::vector<int32_t>& tokens, KvDType dtype,
                                  int batch, const std::string& source) {
  const ModelConfig& c = model.config();
  check_eval_tokens(c, tokens, source);
  const int S = c.max_seq_len, V = c.vocab_size;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t full = n / S;
  const int tail = static_cast<int>(n % S);
  double loss_sum = 0;
  int64_t predicted = 0;
  std::vector<float> losses(batch), lse(batch);
  std::vector<int32_t> step_tokens(batch), targets(batch);
  // Scores row b of logits against each window's next token.
  auto score = [&](const float* logits, int rows) {
    softmax_xent_forward(losses.data(), lse.data(), logits, targets.data(), rows, V);
    for (int b = 0; b < rows; b++) loss_sum += losses[b];
    predicted += rows;
  };
  auto run = [&](Decoder& dec, int64_t first_window, int rows, int len) {
    auto at = [&](int b, int t) { return tokens[(first_window + b) * S + t]; };
    std::vector<float> first_logits(static_cast<size_t>(rows) * V);
    for (int b = 0; b < rows; b++) {
      const float* l = dec.prefill(b, std::span(&tokens[(first_window + b) * S], 1));
      std::copy(l, l + V, first_logits.begin() + static_cast<int64_t>(b) * V);
      targets[b] = at(b, 1);
    }
    score(first_logits.data(), rows);
    for (int t = 1; t + 1 < len; t++) {
      for (int b = 0; b < rows; b++) step_tokens[b] = at(b, t), targets[b] = at(b, t + 1);
      score(dec.step(std::span(step_tokens).first(rows)), rows);
    }
  };
  if (full > 0) {
    Decoder dec(model, static_cast<int>(std::min<int64_t>(batch, full)), S, dtype);
    for (int64_t w = 0; w < full; w += dec.batch()) {
      const int rows = static_cast<int>(std::min<int64_t>(dec.batch(), full - w));
      if (rows < dec.batch()) {
        Decoder rest(model, rows, S, dtype);
        run(rest, w, rows, S);
      } else {
        run(dec, w, rows, S);
      }
    }
  }
  if (tail >= 2) {
    Decoder dec(model, 1, tail, dtype);
    run(dec, full, 1, tail);
  }
  EvalResult r;
  r.loss = loss_sum / static_cast<double>(predicted);
  r.ppl = std::exp(r.loss);
  r.tokens = predicted;
  return r;
}

}  // namespace kvtie
