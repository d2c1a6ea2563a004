#pragma once
// Mean next-token loss of a causal LM over a 1-D token array, cut into consecutive
// non-overlapping windows of max_seq_len tokens (the last window may be shorter). In each window
// every token but the first is predicted from the ones before it.
#include <cstdint>
#include <string>
#include <vector>

#include "data/images/image_dataset.h"
#include "data/images/image_transform.h"
#include "kvtie/model.h"

namespace kvtie {

struct EvalResult {
  double loss = 0.0;  // mean over predicted tokens
  double ppl = 0.0;
  int64_t tokens = 0;  // predicted tokens
};

// Errors (naming `source`) unless the model has an LM head and the tokens are in its vocabulary
// and can predict at least one token.
void check_eval_tokens(const ModelConfig& config, const std::vector<int32_t>& tokens, const std::string& source);

// `source` names the token file in error messages. The model must have an LM head.
EvalResult evaluate_tokens(Transformer<float>& model, const std::vector<int32_t>& tokens, const std::string& source);

// Splits the stream at separator tokens (<|endoftext|>, dropped) and evaluates each document on
// its own windows. Documents of fewer than 2 tokens predict nothing and get tokens = 0.
std::vector<EvalResult> evaluate_documents(Transformer<float>& model, const std::vector<int32_t>& tokens,
                                           int32_t separator, const std::string& source);

// Per-position classification of whole sequences (the synthetic tasks): inputs and targets
// [n, length]. accuracy: correct positions / positions; exact_match: sequences all correct / n.
struct SequenceEvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  double exact_match = 0.0;
  int64_t sequences = 0;
};
SequenceEvalResult evaluate_sequences(Transformer<float>& model, const std::vector<int32_t>& inputs,
                                      const std::vector<int32_t>& targets, int length);

// Classification of labelled images (task "image"): every image of `data`, in order, through the
// evaluation view of `transform` (normalisation only), in batches of model.max_batch(). The model
// must be an image model whose image shape and classes match the data's.
struct ImageEvalResult {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction whose highest logit is the label
  int64_t images = 0;
};
ImageEvalResult evaluate_images(Transformer<float>& model, const ImageDataset& data, const ImageTransform& transform);

// The set anomaly task: sets [n, dim, 1, set_size] (the set model's input layout), targets
// [n, set_size] (1 at the odd item), odd [n]. loss: mean per-item cross-entropy; accuracy: sets whose
// odd item scores highest (pick_odd) / n.
struct SetEvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t sets = 0;
};
SetEvalResult evaluate_sets(Transformer<float>& model, const std::vector<float>& sets,
                            const std::vector<int32_t>& targets, const std::vector<int32_t>& odd);
// Sets among the first B whose odd item the logits [B, set_size, 2] pick.
int64_t count_odd_found(const float* logits, const int32_t* odd, int B, int set_size);

// Correct top-1 predictions among the first B rows of logits [B, C] for labels [B] (-1 never counts).
int64_t count_correct(const float* logits, const int32_t* labels, int B, int C);

}  // namespace kvtie
