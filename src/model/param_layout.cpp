#include "kvtie/param_layout.h"

#include <fmt/format.h>

#include "kernels/score_pos2d.h"

namespace kvtie {
namespace {

class LayoutBuilder {
 public:
  explicit LayoutBuilder(ParamLayout& layout) : layout_(layout) {}

  int64_t add(std::string name, std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (int64_t s : shape) numel *= s;
    const bool decay = shape.size() >= 2;
    layout_.tensors.push_back({std::move(name), std::move(shape), layout_.total, numel, decay});
    layout_.total += numel;
    return layout_.tensors.back().offset;
  }

 private:
  ParamLayout& layout_;
};

// The distinct projections of a share variant, in storage order, with their output widths.
std::vector<std::pair<std::string, int>> projections(const ModelConfig& c) {
  switch (c.share) {
    case Share::none: return {{"q", c.q_dim()}, {"k", c.kv_dim()}, {"v", c.kv_dim()}};
    case Share::kv: return {{"q", c.q_dim()}, {"k_v", c.kv_dim()}};
    case Share::qk: return {{"q_k", c.q_dim()}, {"v", c.q_dim()}};
    case Share::qkv: return {{"q_k_v", c.q_dim()}};
  }
  return {};
}

}  // namespace

const ParamTensor* ParamLayout::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

ParamLayout make_param_layout(const ModelConfig& c) {
  ParamLayout L;
  LayoutBuilder b(L);
  const int64_t d = c.d_model;
  if (c.is_image()) {
    L.tok_emb = -1;
    L.patch_w = b.add("patch_emb.weight", {d, c.image.patch_dim()});
    L.patch_b = b.add("patch_emb.bias", {d});
    if (c.pool == Pool::cls) L.cls_token = b.add("cls_token", {d});
  } else {
    L.tok_emb = b.add("tok_emb.weight", {c.vocab_size, d});
  }
  // One row per position; an image model's positions are the class token's, then the patches'.
  if (c.pos == PosEmb::learned) L.pos_emb = b.add("pos_emb.weight", {c.max_seq_len, d});
  for (int i = 0; i < c.n_layer; i++) {
    const std::string p = fmt::format("blocks.{}.", i);
    BlockOffsets o{};
    o.ln1_w = b.add(p + "ln1.weight", {d});
    o.ln1_b = b.add(p + "ln1.bias", {d});
    const auto projs = projections(c);
    o.attn_w = L.total;
    for (const auto& [name, rows] : projs) b.add(p + "attn." + name + ".weight", {rows, d});
    o.attn_b = L.total;
    for (const auto& [name, rows] : projs) b.add(p + "attn." + name + ".bias", {rows});
    o.out_w = b.add(p + "attn.out.weight", {d, c.q_dim()});
    o.out_b = b.add(p + "attn.out.bias", {d});
    if (c.score_pos2d) {
      o.pos2d_scale = b.add(p + "attn.pos2d.scale", {c.n_head});
      o.pos2d_weight = b.add(p + "attn.pos2d.weight", {c.n_head, kPos2dChannels});
      o.pos2d_bias = b.add(p + "attn.pos2d.bias", {c.n_head});
    }
    o.ln2_w = b.add(p + "ln2.weight", {d});
    o.ln2_b = b.add(p + "ln2.bias", {d});
    o.fc_w = b.add(p + "mlp.fc.weight", {c.d_ff, d});
    o.fc_b = b.add(p + "mlp.fc.bias", {c.d_ff});
    o.proj_w = b.add(p + "mlp.proj.weight", {d, c.d_ff});
    o.proj_b = b.add(p + "mlp.proj.bias", {d});
    L.blocks.push_back(o);
  }
  L.lnf_w = b.add("ln_f.weight", {d});
  L.lnf_b = b.add("ln_f.bias", {d});
  if (c.head != Head::lm) {
    L.head_w = b.add("head.weight", {c.n_classes, d});
    L.head_b = b.add("head.bias", {c.n_classes});
  }
  return L;
}

}  // namespace kvtie
