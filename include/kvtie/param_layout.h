#pragma once
// Where every parameter lives in the flat parameter buffer (and, identically, in the gradient and
// optimizer-moment buffers), under the tensor names of DESIGN.md §5.
//
// The distinct attention projections of a block are stored back to back — weights, then biases —
// so that one GEMM against [P, d] computes all of them. Only distinct projections exist: with
// share=kv the block has `attn.q` and `attn.k_v`, nothing for V.
#include <cstdint>
#include <string>
#include <vector>

#include "kvtie/config.h"

namespace kvtie {

struct ParamTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // in elements
  int64_t numel = 0;
  bool decay = false;  // AdamW weight decay applies to matrices and embeddings, not to vectors
};

struct BlockOffsets {
  int64_t ln1_w, ln1_b;
  int64_t attn_w, attn_b;  // fused [P, d] weight and [P] bias of the distinct projections
  int64_t out_w, out_b;    // [d, n_head*hd], [d]
  // The (X)+ score term (score_pos2d): a [n_head], w [n_head, m], b [n_head]; -1 when off.
  int64_t pos2d_scale = -1, pos2d_weight = -1, pos2d_bias = -1;
  int64_t ln2_w, ln2_b;
  int64_t fc_w, fc_b;      // [d_ff, d], [d_ff]
  int64_t proj_w, proj_b;  // [d, d_ff], [d]
};

struct ParamLayout {
  std::vector<ParamTensor> tensors;
  int64_t total = 0;
  int64_t tok_emb = 0, pos_emb = -1;  // pos_emb is -1 when the config has no learned positions;
                                      // tok_emb is -1 for an image model
  // Image models: patch_emb.weight [d, C·p·p] (a Conv2d weight [d, C, p, p] flattened),
  // patch_emb.bias [d], and cls_token [d] with pool = cls; -1 otherwise.
  int64_t patch_w = -1, patch_b = -1, cls_token = -1;
  std::vector<BlockOffsets> blocks;
  int64_t lnf_w = 0, lnf_b = 0;
  int64_t head_w = -1, head_b = -1;  // -1 for the tied LM head

  const ParamTensor* find(const std::string& name) const;
};

ParamLayout make_param_layout(const ModelConfig& c);

}  // namespace kvtie
