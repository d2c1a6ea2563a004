#pragma once
// Where a ViT looks: per layer and head, the attention of the class token (or, with mean pooling,
// the mean over all queries) on each patch, as a map over the patch grid. With Q = K the scores
// are symmetric; these maps show what that does to the heads.
#include <cstdint>
#include <string>
#include <vector>

#include "kvtie/model.h"

namespace kvtie {

struct AttentionMaps {
  int layers = 0, heads = 0, grid_h = 0, grid_w = 0;
  std::vector<float> maps;  // [layers, heads, grid_h, grid_w]; each map sums to ≤ 1
  const float* map(int layer, int head) const {
    return maps.data() + (static_cast<int64_t>(layer) * heads + head) * grid_h * grid_w;
  }
};

// image: [C, H, W] as the model takes it (normalised). Runs one forward.
AttentionMaps class_attention_maps(Transformer<float>& model, const float* image);

// One row per layer: the image itself, then each head's map over it (patches shaded by weight,
// each map scaled to its own maximum), every cell `scale`× the image size. pixels: [C, H, W] in
// [0, 1], C = 1 or 3.
void write_attention_grid(const std::string& path, const AttentionMaps& maps, const float* pixels, int C, int H,
                          int W, int scale);

}  // namespace kvtie
