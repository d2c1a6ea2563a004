#pragma once
// What the decode benchmarks attend to: a cache whose every sequence holds `length` random rows in
// every layer, as after a long prefill.
#include <vector>

#include "core/rng.h"
#include "infer/kv_cache.h"
#include "kvtie/config.h"

namespace kvtie::bench {

inline void fill_cache(KvCache& cache, const ModelConfig& c, int length) {
  Rng rng(1);
  std::vector<float> row(static_cast<size_t>(c.n_kv_head) * c.head_dim);
  for (auto& x : row) x = static_cast<float>(rng.normal());
  for (int b = 0; b < cache.batch(); b++) {
    for (int l = 0; l < c.n_layer; l++)
      for (int t = 0; t < length; t++) {
        row[t % row.size()] = static_cast<float>(rng.normal());  // rows differ without a full redraw
        cache.write(l, b, t, row.data(), row.data());
      }
    cache.set_length(b, length);
  }
}

}  // namespace kvtie::bench
