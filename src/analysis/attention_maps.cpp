#include "analysis/attention_maps.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "analysis/png.h"
#include "kvtie/error.h"

namespace kvtie {

AttentionMaps class_attention_maps(Transformer<float>& model, const float* image) {
  const ModelConfig& c = model.config();
  if (!c.is_image()) fail("attention maps need an image model (a ViT checkpoint)");
  model.forward_images(image, nullptr, 1);
  AttentionMaps m;
  m.layers = c.n_layer;
  m.heads = c.n_head;
  m.grid_h = c.image.height / c.image.patch;
  m.grid_w = c.image.width / c.image.patch;
  const int patches = m.grid_h * m.grid_w, first = c.n_cls_tokens(), Tn = first + patches;
  m.maps.assign(static_cast<size_t>(m.layers) * m.heads * patches, 0.0f);
  std::vector<float> probs(static_cast<size_t>(m.heads) * Tn * Tn);  // [1, H, Tn, Tn]
  for (int l = 0; l < m.layers; l++) {
    model.layer_attention(l, probs.data());
    for (int h = 0; h < m.heads; h++) {
      const float* p = probs.data() + static_cast<int64_t>(h) * Tn * Tn;
      float* out = m.maps.data() + (static_cast<int64_t>(l) * m.heads + h) * patches;
      if (first) {  // the class token's row
        for (int j = 0; j < patches; j++) out[j] = p[first + j];
      } else {      // mean pooling reads every position: average the rows
        for (int i = 0; i < Tn; i++)
          for (int j = 0; j < patches; j++) out[j] += p[static_cast<int64_t>(i) * Tn + j] / static_cast<float>(Tn);
      }
    }
  }
  return m;
}

namespace {

// A perceptual ramp from dark blue through red to yellow for t in [0, 1].
void heat(float t, uint8_t* rgb) {
  t = std::clamp(t, 0.0f, 1.0f);
  const float r = std::clamp(1.8f * t, 0.0f, 1.0f), g = std::clamp(2.0f * t - 0.8f, 0.0f, 1.0f),
              b = std::clamp(0.5f - 1.5f * std::abs(t - 0.25f), 0.0f, 1.0f) + std::clamp(1.0f - 3.0f * t, 0.0f, 0.3f);
  rgb[0] = static_cast<uint8_t>(255 * r), rgb[1] = static_cast<uint8_t>(255 * g), rgb[2] = static_cast<uint8_t>(255 * std::min(b, 1.0f));
}

}  // namespace

void write_attention_grid(const std::string& path, const AttentionMaps& m, const float* pixels, int C, int H, int W,
                          int scale) {
  if (C != 1 && C != 3) fail("{}: can draw images with 1 or 3 channels, not {}", path, C);
  constexpr int kGap = 2;
  const int cell_w = W * scale, cell_h = H * scale;
  const int width = (m.heads + 1) * cell_w + m.heads * kGap, height = m.layers * cell_h + (m.layers - 1) * kGap;
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3, 255);
  auto pixel = [&](int x, int y) { return rgb.data() + (static_cast<int64_t>(y) * width + x) * 3; };
  const int patch_h = H / m.grid_h, patch_w = W / m.grid_w;
  for (int l = 0; l < m.layers; l++) {
    const int y0 = l * (cell_h + kGap);
    for (int y = 0; y < cell_h; y++)
      for (int x = 0; x < cell_w; x++) {
        const int iy = y / scale, ix = x / scale;
        uint8_t* px = pixel(x, y0 + y);
        for (int k = 0; k < 3; k++)
          px[k] = static_cast<uint8_t>(255 * std::clamp(pixels[(C == 3 ? k : 0) * H * W + iy * W + ix], 0.0f, 1.0f));
      }
    for (int h = 0; h < m.heads; h++) {
      const float* map = m.map(l, h);
      const float top = std::max(*std::max_element(map, map + m.grid_h * m.grid_w), 1e-12f);
      const int x0 = (h + 1) * (cell_w + kGap);
      for (int y = 0; y < cell_h; y++)
        for (int x = 0; x < cell_w; x++) {
          const int iy = y / scale, ix = x / scale;
          const float weight = map[(iy / patch_h) * m.grid_w + ix / patch_w] / top;
          // The map over a faint copy of the image, so shapes stay visible under the colour.
          float grey = 0;
          for (int k = 0; k < C; k++) grey += pixels[k * H * W + iy * W + ix] / static_cast<float>(C);
          uint8_t colour[3];
          heat(weight, colour);
          uint8_t* px = pixel(x0 + x, y0 + y);
          for (int k = 0; k < 3; k++) px[k] = static_cast<uint8_t>(std::min(255.0f, 0.75f * colour[k] + 64.0f * grey));
        }
    }
  }
  write_png(path, rgb, width, height);
}

}  // namespace kvtie
