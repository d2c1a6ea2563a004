#include "infer/generate.h"

#include <chrono>

#include "core/units.h"
#include "infer/decoder.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One sequence's output: tokens decoded to text, released to the stream only when no stop string
// could still be starting at the end.
struct Stream {
  std::vector<int32_t> tokens;
  std::string text;
  size_t emitted = 0;
  bool done = false;
};

size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > 0; n--)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = std::max(hold, n);
        break;
      }
  return hold;
}

}  // namespace

std::vector<Generation> generate(Transformer<float>& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                 const GenerateOptions& o,
                                 const std::function<void(int, const std::string&)>& on_text, GenerateStats* stats) {
  const ModelConfig& c = model.config();
  if (prompts.empty()) fail("no prompt given");
  if (o.max_new < 1) fail("--max-new must be at least 1");
  if (o.kv_budget_bytes < 0) fail("--kv-budget must not be negative");
  for (const auto& s : o.stop) {
    if (s.empty()) fail("--stop: empty stop string");
    if (s.starts_with("<|") && s.ends_with("|>") && s != "<|endoftext|>")
      fail("--stop: unknown stop token '{}' (the tokenizer's only special token is <|endoftext|>)", s);
  }
  const int B = static_cast<int>(prompts.size());
  std::vector<Sampler> samplers;  // first: they check the sampling options
  for (int b = 0; b < B; b++) samplers.emplace_back(SamplerConfig{o.sampler.temperature, o.sampler.top_k, o.sampler.top_p,
                                                                 o.sampler.seed + static_cast<uint64_t>(b)});
  std::vector<std::vector<int32_t>> ids(B);
  int64_t longest = 0;
  for (int b = 0; b < B; b++) {
    ids[b] = tok.encode(prompts[b], /*allow_special=*/true);
    if (ids[b].empty()) fail("prompt {} is empty: give at least one token of text", b + 1);
    longest = std::max(longest, static_cast<int64_t>(ids[b].size()));
  }
  // Positions per sequence: what the longest request needs, at most the model's context, and with
  // a budget at most what fits it (with the cache off, the budget still bounds the window).
  int64_t capacity = std::min<int64_t>(c.max_seq_len, longest + o.max_new);
  std::string limit = fmt::format("the model's context is {}", c.max_seq_len);
  if (o.kv_budget_bytes > 0) {
    const int64_t per_position = kv_cache_bytes(c, 1, B, o.kv_dtype);
    const int64_t fit = o.kv_budget_bytes / per_position;
    if (fit < 2)
      fail("--kv-budget {}: room for {} position{} of {} sequence{} at {} ({} each); at least 2 are needed",
           format_bytes(static_cast<double>(o.kv_budget_bytes)), fit, fit == 1 ? "" : "s", B, B == 1 ? "" : "s",
           kv_dtype_name(o.kv_dtype), format_bytes(static_cast<double>(per_position)));
    if (fit < capacity) {
      capacity = fit;
      limit = fmt::format("--kv-budget {} holds {} positions per sequence",
                          format_bytes(static_cast<double>(o.kv_budget_bytes)), fit);
    }
  }
  for (int b = 0; b < B; b++) {
    const int64_t n = static_cast<int64_t>(ids[b].size());
    if (n >= capacity) fail("prompt {} has {} tokens; {} (room is needed for new tokens)", b + 1, n, limit);
    if (!o.sliding_window && n + o.max_new > capacity)
      fail("prompt {} has {} tokens and --max-new {} would take it to {} positions; {} (lower --max-new, or pass "
           "--sliding-window)",
           b + 1, n, o.max_new, n + o.max_new, limit);
  }
  if (o.sliding_window && (o.window_keep < 0 || o.window_keep >= capacity))
    fail("--window-keep {}: must be at least 1 and below the window of {} positions", o.window_keep, capacity);
  // Tokens kept when a window slides; 0 when no sequence can reach the end of its window.
  const int keep = o.sliding_window && capacity < longest + o.max_new
                       ? (o.window_keep > 0 ? o.window_keep : static_cast<int>(capacity / 2))
                       : 0;
  std::vector<Stream> out(B);
  std::vector<int32_t> next(B);
  GenerateStats local;
  GenerateStats& st = stats ? *stats : local;

  auto accept = [&](int b, int32_t t) {
    Stream& s = out[b];
    if (s.done) return;
    if (t == tok.eot_id()) {
      s.done = true;
    } else {
      s.tokens.push_back(t);
      s.text += tok.decode(std::span(&t, 1));  // byte-level BPE: a text is its tokens' bytes in order
    }
    for (const auto& stop : o.stop) {
      const size_t at = s.text.find(stop, s.emitted > stop.size() ? s.emitted - stop.size() : 0);
      if (at != std::string::npos) {
        s.text.resize(at);
        s.done = true;
      }
    }
    if (static_cast<int>(s.tokens.size()) >= o.max_new ||
        (keep == 0 && static_cast<int>(ids[b].size() + s.tokens.size()) >= capacity))
      s.done = true;
    // Release what is final: everything when done, else all but a possible stop-string prefix and
    // an incomplete UTF-8 character at the end.
    size_t upto = s.done ? s.text.size() : s.text.size() - held_back(s.text, o.stop);
    while (!s.done && upto > s.emitted && (static_cast<unsigned char>(s.text[upto - 1]) & 0x80)) upto--;
    if (upto > s.emitted && on_text) on_text(b, s.text.substr(s.emitted, upto - s.emitted));
    s.emitted = std::max(s.emitted, upto);
  };
  auto all_done = [&] {
    return std::all_of(out.begin(), out.end(), [](const Stream& s) { return s.done; });
  };

  if (o.use_cache) {
    Decoder dec(model, B, static_cast<int>(capacity), o.kv_dtype, keep);
    st.cache = dec.cache().figures(c);
    if (o.on_start) o.on_start(st.cache);
    auto t0 = Clock::now();
    for (int b = 0; b < B; b++) next[b] = samplers[b].sample(dec.prefill(b, ids[b]), c.vocab_size);
    st.prefill_seconds = since(t0);
    for (int b = 0; b < B; b++) accept(b, next[b]);
    t0 = Clock::now();
    while (!all_done()) {
      for (int b = 0; b < B; b++)
        if (out[b].done) next[b] = -1;  // finished: no longer stored
      const float* logits = dec.step(next);
      for (int b = 0; b < B; b++) st.decode_tokens += next[b] >= 0;
      for (int b = 0; b < B; b++) {
        if (out[b].done) continue;
        next[b] = samplers[b].sample(logits + static_cast<int64_t>(b) * c.vocab_size, c.vocab_size);
        accept(b, next[b]);
      }
    }
    st.decode_seconds = since(t0);
    st.window_slides = dec.slides();
  } else {
    if (o.on_start) o.on_start(std::nullopt);
    auto t0 = Clock::now();
    for (int b = 0; b < B; b++) {
      std::vector<int32_t> seq = ids[b];
      size_t start = 0;  // the window: seq[start, end), moved as the decoder moves it
      while (!out[b].done) {
        const int T = static_cast<int>(seq.size() - start);
        model.forward(seq.data() + start, nullptr, 1, T);
        const int32_t t = samplers[b].sample(model.logits() + static_cast<int64_t>(T - 1) * c.vocab_size, c.vocab_size);
        seq.push_back(t);
        st.decode_tokens++;
        accept(b, t);
        if (!out[b].done && keep > 0 && T >= capacity) {  // t would not fit: the window slides first
          start = seq.size() - 1 - keep;
          st.window_slides++;
        }
      }
    }
    st.decode_seconds = since(t0);
  }
  std::vector<Generation> result(B);
  for (int b = 0; b < B; b++)
    result[b] = {out[b].text, static_cast<int>(ids[b].size()), static_cast<int>(out[b].tokens.size())};
  return result;
}

}  // namespace kvtie
