#include "infer/decoder.h"

#include <omp.h>

#include <algorithm>

#include "kernels/decode_attention.h"
#include "kernels/decode_linear.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/parallel.h"
#include "kernels/residual.h"
#include "kvtie/error.h"

namespace kvtie {

Decoder::Decoder(Transformer<float>& model, int batch, int capacity, KvDType dtype, int window_keep)
    : model_(model), cache_(model.config(), batch, capacity, dtype), lengths_(batch, 0), window_keep_(window_keep) {
  const ModelConfig& c = model.config();
  if (c.head != Head::lm || !c.causal) fail("generation needs a causal LM (head lm, causal true)");
  if (window_keep < 0 || (window_keep > 0 && window_keep >= limit()))
    fail("sliding window: {} tokens to keep must be at least 1 and below the window of {} positions", window_keep,
         limit());
  if (window_keep > 0) windows_.resize(batch);
  const int64_t B = batch;
  arena_.plan(&x_, B * c.d_model);
  arena_.plan(&ln_, B * c.d_model);
  arena_.plan(&qkv_, B * c.attn_proj_dim());
  arena_.plan(&att_, B * c.q_dim());
  arena_.plan(&branch_, B * c.d_model);
  arena_.plan(&fc_, B * c.d_ff);
  arena_.plan(&logits_, B * c.vocab_size);
  arena_.plan(&mean_, B);
  arena_.plan(&rstd_, B);
  arena_.allocate();
}

const float* Decoder::prefill(int seq, std::span<const int32_t> tokens) {
  const ModelConfig& c = model_.config();
  const int T = static_cast<int>(tokens.size());
  if (seq < 0 || seq >= batch()) fail("sequence {} is outside the batch of {}", seq, batch());
  if (T == 0) fail("empty prompt: give at least one token");
  if (T > cache_.capacity())
    fail("prompt of {} tokens does not fit the KV cache capacity of {} tokens", T, cache_.capacity());
  if (T > model_.max_seq()) fail("prompt of {} tokens exceeds the model's context of {}", T, model_.max_seq());
  fill(seq, tokens);
  if (window_keep_ > 0) windows_[seq].assign(tokens.begin(), tokens.end());
  return model_.logits() + static_cast<int64_t>(T - 1) * c.vocab_size;
}

int Decoder::limit() const { return std::min(cache_.capacity(), model_.config().max_seq_len); }

void Decoder::fill(int seq, std::span<const int32_t> tokens) {
  const ModelConfig& c = model_.config();
  const int T = static_cast<int>(tokens.size());
  model_.forward(tokens.data(), nullptr, 1, T);
  const int P = c.attn_proj_dim();
  for (int l = 0; l < c.n_layer; l++) {
    const float* qkv = model_.layer_qkv(l);
    for (int t = 0; t < T; t++) {
      const float* row = qkv + static_cast<int64_t>(t) * P;
      cache_.write(l, seq, t, row + c.k_offset(), c.v_is_k() ? nullptr : row + c.v_offset());
    }
  }
  cache_.set_length(seq, T);
}

const float* Decoder::step(std::span<const int32_t> tokens) {
  const ModelConfig& c = model_.config();
  const int B = batch(), d = c.d_model, P = c.attn_proj_dim();
  if (static_cast<int>(tokens.size()) != B) fail("decode step: {} tokens for a batch of {}", tokens.size(), B);
  const float* w = model_.params();
  const ParamLayout& L = model_.layout();
  for (int b = 0; b < B; b++) {
    if (tokens[b] >= c.vocab_size) fail("token {} is outside the vocabulary", tokens[b]);
    if (tokens[b] >= 0 && window_keep_ > 0 && cache_.length(b) >= limit()) {
      // Slide: keep the last window_keep tokens, prefilled again from position 0.
      std::vector<int32_t>& win = windows_[b];
      win.erase(win.begin(), win.end() - window_keep_);
      fill(b, win);
      slides_++;
    }
    const int pos = cache_.length(b);
    if (tokens[b] < 0) {  // an inactive sequence: computed alongside (its rows are ignored) but not stored
      if (pos == 0) fail("decode step: sequence {} is inactive and empty", b);
      std::fill(x_ + static_cast<int64_t>(b) * d, x_ + static_cast<int64_t>(b + 1) * d, 0.0f);
      lengths_[b] = pos;
      continue;
    }
    if (pos >= cache_.capacity())
      fail("sequence {} is full: {} tokens fill the KV cache capacity", b, cache_.capacity());
    if (pos >= c.max_seq_len) fail("sequence {} reached the model's context of {} positions", b, c.max_seq_len);
    if (tokens[b] < 0 || tokens[b] >= c.vocab_size) fail("token {} is outside the vocabulary", tokens[b]);
    const float* te = w + L.tok_emb + static_cast<int64_t>(tokens[b]) * d;
    for (int i = 0; i < d; i++) x_[b * d + i] = te[i];
    if (L.pos_emb >= 0)
      for (int i = 0; i < d; i++) x_[b * d + i] += w[L.pos_emb + static_cast<int64_t>(pos) * d + i];
    lengths_[b] = pos + 1;
  }
  // One team for the whole step, its kernels separated by barriers: a parallel region per kernel
  // cost ~3 µs each on the 2-core VM (libgomp's futex calls), ~150 µs of a 1.9 ms step at batch 1.
  // The row kernels (LayerNorm, residual, GELU) split rows as the one before them did, so only
  // the linear layers and the attention, which read every row, wait for the whole team.
  // A model too small for threads (about one multiply-add per weight and sequence) stays on
  // this thread, as its kernels did when each decided for itself.
  const bool threads = worth_threads(static_cast<int64_t>(B) * model_.num_params());
  run_team(threads ? omp_get_max_threads() : 1, [&] {
    for (int l = 0; l < c.n_layer; l++) {
      const BlockOffsets& o = L.blocks[l];
      layernorm_forward(ln_, mean_, rstd_, x_, w + o.ln1_w, w + o.ln1_b, B, d);
      team_barrier();
      decode_linear(qkv_, ln_, w + o.attn_w, w + o.attn_b, B, d, P);
      team_barrier();
      team_for(B, B, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; b++) {
          if (tokens[b] < 0) continue;
          const float* row = qkv_ + b * P;
          cache_.write(l, static_cast<int>(b), lengths_[b] - 1, row + c.k_offset(),
                       c.v_is_k() ? nullptr : row + c.v_offset());
        }
      });
      team_barrier();
      decode_attention(att_, qkv_ + c.q_offset(), P, cache_, l, lengths_.data(), B,
                       {c.n_head, c.n_kv_head, c.head_dim}, DecodeIsa::best, &attention_work_);
      team_barrier();
      decode_linear(branch_, att_, w + o.out_w, w + o.out_b, B, c.q_dim(), d);
      team_barrier();
      residual_forward(x_, x_, branch_, B, d);
      layernorm_forward(ln_, mean_, rstd_, x_, w + o.ln2_w, w + o.ln2_b, B, d);
      team_barrier();
      decode_linear(fc_, ln_, w + o.fc_w, w + o.fc_b, B, d, c.d_ff);
      team_barrier();
      gelu_forward(fc_, fc_, B, c.d_ff);
      team_barrier();
      decode_linear(branch_, fc_, w + o.proj_w, w + o.proj_b, B, c.d_ff, d);
      team_barrier();
      residual_forward(x_, x_, branch_, B, d);
    }
    layernorm_forward(ln_, mean_, rstd_, x_, w + L.lnf_w, w + L.lnf_b, B, d);
    team_barrier();
    decode_linear(logits_, ln_, w + L.tok_emb, static_cast<const float*>(nullptr), B, d, c.vocab_size);
  });
  for (int b = 0; b < B; b++) cache_.set_length(b, lengths_[b]);
  if (window_keep_ > 0)
    for (int b = 0; b < B; b++)
      if (tokens[b] >= 0) windows_[b].push_back(tokens[b]);
  return logits_;
}

}  // namespace kvtie
