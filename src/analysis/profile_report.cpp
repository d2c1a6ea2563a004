// Tables of the profiler's figures and their four renderings. The numbers come from
// kvtie/profile.h; this file only chooses, orders and formats them.
#include "analysis/profile_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kvtie/error.h"

namespace kvtie {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Number formatting

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); i++) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

// Binary units with up to three decimals, so that 80 KiB, 42.5 KiB and 1.172 MiB read exactly
// enough to check a claim by eye.
std::string bytes_text(double b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (std::abs(b) >= 1024 && u < 5) b /= 1024, u++;
  return fmt::format("{} {}", trim_zeros(fmt::format("{:.3f}", b)), units[u]);
}

std::string percent_text(double p) { return trim_zeros(fmt::format("{:.4f}", p)) + "%"; }
std::string signed_percent_text(double p) {
  if (std::abs(p) < 5e-4) return "0%";
  return fmt::format("{:+.3f}%", p);
}

struct SiScale {
  double div;
  const char* prefix;
};
SiScale si_scale(double largest) {
  // No T: G keeps the 1.2B model's figures to the same precision as the 300M model's.
  if (largest >= 1e9) return {1e9, "G"};
  if (largest >= 1e6) return {1e6, "M"};
  if (largest >= 1e3) return {1e3, "K"};
  return {1, ""};
}

// ---------------------------------------------------------------------------------------------
// Tables

enum class Kind { text, si, integer, bytes, percent, signed_percent, seconds };

struct Column {
  Column(std::string n, Kind k = Kind::text, std::string u = "", int g = -1)
      : name(std::move(n)), kind(k), unit(std::move(u)), group(g) {}
  std::string name;
  Kind kind;
  std::string unit;  // of si columns: "MAC", "FLOP", "FLOP/s", "" (a plain count)
  int group;         // si columns of one group share a prefix, so their values add up by eye
};

struct Cell {
  std::optional<double> num;
  std::string text;  // Kind::text, or what to print when num is absent
};
Cell num(double v) { return {v, ""}; }
Cell txt(std::string s) { return {std::nullopt, std::move(s)}; }

struct Table {
  std::string id;  // the CSV's table column: short and stable
  std::string title;
  std::vector<Column> cols;
  std::vector<std::vector<Cell>> rows;
  std::vector<std::string> notes;
};

// The header and cell texts of a table, with si prefixes chosen per column or group.
struct Formatted {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> cells;
};

Formatted format_table(const Table& t) {
  std::map<int, double> largest;  // key: group, or -1 - column index for a lone column
  auto key = [&](size_t c) { return t.cols[c].group >= 0 ? t.cols[c].group : -1 - static_cast<int>(c); };
  for (const auto& row : t.rows)
    for (size_t c = 0; c < t.cols.size(); c++)
      if (t.cols[c].kind == Kind::si && row[c].num) largest[key(c)] = std::max(largest[key(c)], std::abs(*row[c].num));
  Formatted f;
  for (size_t c = 0; c < t.cols.size(); c++) {
    const Column& col = t.cols[c];
    if (col.kind == Kind::si) {
      const SiScale s = si_scale(largest[key(c)]);
      const std::string unit = std::string(s.prefix) + col.unit;
      f.header.push_back(unit.empty() ? col.name : fmt::format("{} ({})", col.name, unit));
    } else if (col.kind == Kind::seconds) {
      f.header.push_back(col.name + " (s)");
    } else {
      f.header.push_back(col.name);
    }
  }
  for (const auto& row : t.rows) {
    std::vector<std::string> out;
    for (size_t c = 0; c < t.cols.size(); c++) {
      const Cell& cell = row[c];
      if (!cell.num) {
        out.push_back(cell.text);
        continue;
      }
      const double v = *cell.num;
      switch (t.cols[c].kind) {
        case Kind::si:
          out.push_back(fmt::format("{:.2f}", v / si_scale(largest[key(c)]).div));
          break;
        case Kind::integer:
          out.push_back(with_commas(static_cast<int64_t>(std::llround(v))));
          break;
        case Kind::bytes:
          out.push_back(bytes_text(v));
          break;
        case Kind::percent:
          out.push_back(percent_text(v));
          break;
        case Kind::signed_percent:
          out.push_back(signed_percent_text(v));
          break;
        case Kind::seconds:
          out.push_back(fmt::format("{:.4g}", v));
          break;
        case Kind::text:
          out.push_back(cell.text);
          break;
      }
    }
    f.cells.push_back(std::move(out));
  }
  return f;
}

// Terminal columns a UTF-8 string takes: one per code point (no wide characters are printed).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, size_t width, bool right) {
  const std::string fill(width - std::min(width, display_width(s)), ' ');
  return right ? fill + s : s + fill;
}

std::string render_text_table(const Table& t) {
  const Formatted f = format_table(t);
  std::vector<size_t> w(f.header.size());
  for (size_t c = 0; c < w.size(); c++) {
    w[c] = display_width(f.header[c]);
    for (const auto& row : f.cells) w[c] = std::max(w[c], display_width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); c++) s += (c ? "  " : "") + pad(cells[c], w[c], c > 0);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = t.title + "\n" + line(f.header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < w.size(); c++) rule.push_back(std::string(w[c], '-'));
  out += line(rule);
  for (const auto& row : f.cells) out += line(row);
  for (const auto& n : t.notes) out += "  note: " + n + "\n";
  return out + "\n";
}

std::string render_markdown_table(const Table& t) {
  const Formatted f = format_table(t);
  std::string out = "### " + t.title + "\n\n|";
  for (const auto& h : f.header) out += " " + h + " |";
  out += "\n|";
  for (size_t c = 0; c < f.header.size(); c++) out += c ? "---:|" : "---|";
  out += "\n";
  for (const auto& row : f.cells) {
    out += "|";
    for (const auto& cell : row) out += " " + (cell.empty() ? std::string(" ") : cell) + " |";
    out += "\n";
  }
  if (!t.notes.empty()) out += "\n";
  for (const auto& n : t.notes) out += "- " + n + "\n";
  return out + "\n";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

// Long format, one value a line, in base units (bytes, MACs, FLOPs, percent): easy to filter and
// pivot, and no number is rounded.
std::string render_csv_rows(const std::string& model, const Table& t) {
  std::string out;
  for (const auto& row : t.rows) {
    for (size_t c = 1; c < t.cols.size(); c++) {
      const Column& col = t.cols[c];
      std::string name = col.name;
      if (col.kind == Kind::si && !col.unit.empty()) name += " (" + col.unit + ")";
      if (col.kind == Kind::bytes) name += " (B)";
      if (col.kind == Kind::percent || col.kind == Kind::signed_percent) name += " (%)";
      if (col.kind == Kind::seconds) name += " (s)";
      const Cell& cell = row[c];
      std::string value;
      if (cell.num)
        value = std::abs(*cell.num) < 9e15 && *cell.num == std::floor(*cell.num)
                    ? std::to_string(static_cast<int64_t>(*cell.num))
                    : fmt::format("{}", *cell.num);
      else
        value = cell.text;
      out += fmt::format("{},{},{},{},{}\n", csv_field(model), csv_field(t.id), csv_field(row[0].text), csv_field(name),
                         csv_field(value));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The profile's tables

template <typename V>
std::optional<V> study_value(const std::vector<std::pair<std::string, V>>& list, const std::string& label) {
  for (const auto& [l, v] : list)
    if (l == label) return v;
  return std::nullopt;
}

double pct_change(double v, double base) { return base != 0 ? (v / base - 1) * 100 : 0; }

std::string cached_text(const ModelConfig& c) { return c.v_is_k() ? "K (V=K)" : "K, V"; }

Table params_table(const ModelProfile& p) {
  const bool any_head =
      std::any_of(p.variants.begin(), p.variants.end(), [](const auto& v) { return v.params.head > 0; });
  const bool study = p.study && !p.study->params.empty();
  Table t{"params", "Parameters", {}, {}, {}};
  t.cols = {{"variant"},
            {"kv heads", Kind::integer},
            {"total", Kind::integer},
            {"embeddings", Kind::si, "", 0},
            {"attn Q/K/V", Kind::si, "", 0},
            {"attn out", Kind::si, "", 0},
            {"MLP", Kind::si, "", 0},
            {"norms", Kind::si, "", 0}};
  if (any_head) t.cols.push_back({"head", Kind::si, "", 0});
  t.cols.push_back({"vs QKV", Kind::signed_percent});
  if (study) {
    t.cols.push_back({"study", Kind::text});
    t.cols.push_back({"ours vs study", Kind::signed_percent});
  }
  const double base = static_cast<double>(count_params(p.baseline).total());
  for (const auto& v : p.variants) {
    const ParamCounts& c = v.params;
    std::vector<Cell> row = {txt(v.label),
                             num(v.config.n_kv_head),
                             num(static_cast<double>(c.total())),
                             num(static_cast<double>(c.embeddings)),
                             num(static_cast<double>(c.attn_qkv)),
                             num(static_cast<double>(c.attn_out)),
                             num(static_cast<double>(c.mlp)),
                             num(static_cast<double>(c.norms))};
    if (any_head) row.push_back(num(static_cast<double>(c.head)));
    row.push_back(num(pct_change(static_cast<double>(c.total()), base)));
    if (study) {
      const auto s = study_value(p.study->params, v.label);
      row.push_back(s ? txt(trim_zeros(fmt::format("{:.1f}", *s / 1e6)) + "M") : txt(""));
      row.push_back(s ? num(pct_change(static_cast<double>(c.total()), *s)) : txt(""));
    }
    t.rows.push_back(std::move(row));
  }
  t.notes.push_back(p.base.is_image()
                        ? "embeddings = patch_emb (weight and bias) + cls_token + pos_emb, where the config has them; "
                          "every linear has a bias and every LayerNorm a weight and a bias"
                        : "the LM head is tied to tok_emb and counted once, in embeddings (tok_emb + pos_emb); "
                          "every linear has a bias and every LayerNorm a weight and a bias");
  return t;
}

Table macs_table(const ModelProfile& p) {
  Table t{"forward_macs",
          fmt::format("Forward pass, multiply-accumulates: {} × {} tokens, logits for every token", p.batch, p.context),
          {},
          {},
          {}};
  const bool image = p.base.is_image();
  t.cols = {{"variant"}};
  if (image) t.cols.push_back({"patch emb", Kind::si, "MAC", 0});
  t.cols.insert(t.cols.end(), {{"Q/K/V proj", Kind::si, "MAC", 0},
                               {"out proj", Kind::si, "MAC", 0},
                               {p.base.causal ? "causal scores" : "scores", Kind::si, "MAC", 0},
                               {"MLP", Kind::si, "MAC", 0},
                               {"head", Kind::si, "MAC", 0},
                               {"total", Kind::si, "MAC", 0},
                               {"vs QKV", Kind::signed_percent}});
  const double base = pass_cost(p.baseline, {.tokens = p.context, .batch = p.batch}).macs();
  for (const auto& v : p.variants) {
    const Cost& k = v.forward;
    std::vector<Cell> row = {txt(v.label)};
    if (image) row.push_back(num(k.embed.macs));
    for (double m : {k.qkv.macs, k.out.macs, k.scores.macs, k.mlp.macs, k.head.macs, k.macs(),
                     pct_change(k.macs(), base)})
      row.push_back(num(m));
    t.rows.push_back(std::move(row));
  }
  t.notes.push_back("scores = Q·Kᵀ and P·V: 2 · n_head · head_dim MACs per attended (query, key) pair" +
                    std::string(p.base.causal ? ", T(T+1)/2 pairs per head under the causal mask" : ""));
  return t;
}

Table flops_table(const ModelProfile& p) {
  Table t{"flops",
          fmt::format("FLOPs (2 per MAC + elementwise): forward and training step of {} × {} tokens, prefill of {} "
                      "tokens, one decode step at context {}",
                      p.batch, p.context, p.context, p.context),
          {},
          {},
          {}};
  t.cols = {{"variant"},
            {"forward", Kind::si, "FLOP"},
            {"train step", Kind::si, "FLOP"},
            {"prefill", Kind::si, "FLOP"},
            {"prefill scores", Kind::si, "FLOP"},
            {"decode", Kind::si, "FLOP"},
            {"decode scores", Kind::si, "FLOP"},
            {"train vs QKV", Kind::signed_percent}};
  const double base = train_step_cost(p.baseline, p.context, p.batch).flops();
  for (const auto& v : p.variants)
    t.rows.push_back({txt(v.label), num(v.forward.flops()), num(v.train.flops()), num(v.prefill.flops()),
                      num(v.prefill.scores.flops()), num(v.decode.flops()), num(v.decode.scores.flops()),
                      num(pct_change(v.train.flops(), base))});
  t.notes.push_back(
      "train step = 3 × the forward with the loss (each matrix product's backward is two of its "
      "size); prefill and decode compute logits of the last token only");
  return t;
}

Table study_table(const ModelProfile& p) {
  const bool reported = p.study && !p.study->macs.empty() && p.study->macs_tokens == p.context && p.batch == 1;
  Table t{"study_formula",
          fmt::format("The study's MAC formula against ours: forward pass of {} × {} tokens", p.batch, p.context),
          {},
          {},
          {}};
  t.cols = {{"variant"}, {"study formula", Kind::si, "MAC", 0}, {"vs QKV", Kind::signed_percent}};
  if (reported) t.cols.push_back({"study reports", Kind::text});
  t.cols.push_back({"ours", Kind::si, "MAC", 0});
  t.cols.push_back({"vs QKV", Kind::signed_percent});
  t.cols.push_back({"ours, dense T×T", Kind::si, "MAC", 0});
  t.cols.push_back({"ours vs formula", Kind::signed_percent});
  const double base_study = study_macs(p.baseline, p.context) * static_cast<double>(p.batch);
  const double base_ours = pass_cost(p.baseline, {.tokens = p.context, .batch = p.batch}).macs();
  for (const auto& v : p.variants) {
    const double dense = pass_cost(v.config, {.tokens = p.context, .batch = p.batch, .dense_scores = true}).macs();
    std::vector<Cell> row = {txt(v.label), num(v.study_formula_macs),
                             num(pct_change(v.study_formula_macs, base_study))};
    if (reported) {
      const auto s = study_value(p.study->macs, v.label);
      row.push_back(s ? txt(fmt::format("{:.2f} G", *s / 1e9)) : txt(""));
    }
    row.push_back(num(v.forward.macs()));
    row.push_back(num(pct_change(v.forward.macs(), base_ours)));
    row.push_back(num(dense));
    row.push_back(num(pct_change(v.forward.macs(), v.study_formula_macs)));
    t.rows.push_back(std::move(row));
  }
  t.notes.push_back(
      "formula: n_layer·((projections+1)·T·d² + 2·T²·d + 2·T·d·d_ff) + T·d·V, projections = distinct "
      "Q/K/V matrices (3, 2, 2, 1)");
  t.notes.push_back(
      "ours counts the causal pairs only, GQA's narrower K/V projections, and n_head·head_dim "
      "where the formula has d; the dense column is what the attention kernel executes today");
  return t;
}

Table kv_table(const ModelProfile& p) {
  const bool study_bytes = p.study && !p.study->kv_bytes_per_token_fp16.empty();
  const bool study_cut = p.study && !p.study->kv_cut_percent.empty();
  Table t{"kv_cache",
          fmt::format("KV cache: bytes per token (all layers) and for {} × {} tokens at {}", p.batch, p.context,
                      kv_dtype_name(p.dtype)),
          {},
          {},
          {}};
  t.cols = {{"variant"}, {"kv heads", Kind::integer}, {"cached"}};
  for (KvDType d : kAllKvDTypes) t.cols.push_back({std::string(kv_dtype_name(d)) + "/token", Kind::bytes});
  t.cols.push_back({fmt::format("{} × {} × {}", kv_dtype_name(p.dtype), p.batch, p.context), Kind::bytes});
  t.cols.push_back({"cut vs QKV-MHA", Kind::percent});
  if (study_bytes) t.cols.push_back({"study fp16/token", Kind::bytes});
  if (study_cut) t.cols.push_back({"study cut", Kind::percent});
  const double base = static_cast<double>(kv_cache_bytes_per_token(p.baseline, p.dtype));
  for (const auto& v : p.variants) {
    std::vector<Cell> row = {txt(v.label), num(v.config.n_kv_head), txt(cached_text(v.config))};
    for (KvDType d : kAllKvDTypes) row.push_back(num(static_cast<double>(kv_cache_bytes_per_token(v.config, d))));
    row.push_back(num(static_cast<double>(kv_cache_bytes(v.config, p.context, p.batch, p.dtype))));
    row.push_back(num((1 - static_cast<double>(kv_cache_bytes_per_token(v.config, p.dtype)) / base) * 100));
    if (study_bytes) {
      const auto s = study_value(p.study->kv_bytes_per_token_fp16, v.label);
      row.push_back(s ? num(static_cast<double>(*s)) : txt(""));
    }
    if (study_cut) {
      const auto s = study_value(p.study->kv_cut_percent, v.label);
      row.push_back(s ? num(*s) : txt(""));
    }
    t.rows.push_back(std::move(row));
  }
  t.notes.push_back(
      "per token: n_layer · (1 if V=K else 2) · n_kv_head · head_dim values; int8 adds one fp32 scale "
      "per stored head vector, int4 one fp16 scale per 32 elements; the cut is the same at every dtype");
  // A study figure that is more than its own rounding away from ours gets the arithmetic beside it.
  for (const auto& v : p.variants) {
    const auto s = study_cut ? study_value(p.study->kv_cut_percent, v.label) : std::nullopt;
    const double ours = (1 - static_cast<double>(kv_cache_bytes_per_token(v.config, p.dtype)) / base) * 100;
    if (!s || std::abs(*s - ours) < 0.05) continue;
    const int stored = (v.config.v_is_k() ? 1 : 2) * v.config.n_kv_head;
    t.notes.push_back(
        fmt::format("{}: the study reports {}; with {} heads the cut is 1 − {}/{} = {} (docs/profile.md "
                    "explains the difference)",
                    v.label, percent_text(*s), v.config.n_head, stored, 2 * v.config.n_head, percent_text(ours)));
  }
  return t;
}

Table measured_table(const ModelProfile& p) {
  const Measurement& first = *p.variants.front().measured;
  Table t{
      "measured",
      fmt::format("Measured (random weights, {} threads): forward pass of {} × {} tokens, KV cache of {} × {} "
                  "tokens at {}, {} decode steps",
                  first.threads, p.batch, p.context, p.batch, p.context, kv_dtype_name(p.dtype), first.decode_steps),
      {},
      {},
      {}};
  t.cols = {{"variant"},
            {"layers"},
            {"arena theory", Kind::bytes},
            {"arena measured", Kind::bytes},
            {"KV theory", Kind::bytes},
            {"KV measured", Kind::bytes},
            {"equal"},
            {"peak RSS", Kind::bytes},
            {"forward", Kind::seconds},
            {"forward", Kind::si, "FLOP"},
            {"achieved", Kind::si, "FLOP/s", 0},
            {"dense", Kind::si, "FLOP/s", 0},
            {"decode", Kind::si, "tokens/s"},
            {"decode", Kind::si, "FLOP/s", 0}};
  std::string cut;  // the variants measured with fewer layers, and their whole sizes
  bool reset = true;
  for (const auto& v : p.variants) {
    const Measurement& m = *v.measured;
    reset = reset && m.peak_rss_reset;
    if (m.built.n_layer < v.config.n_layer)
      cut += fmt::format("{}{} {}", cut.empty() ? "" : ", ", v.label,
                         bytes_text(static_cast<double>(m.whole_model_bytes)));
    const bool cached = has_kv_cache(m.built);
    const int64_t kv_theory = cached ? kv_cache_bytes(m.built, p.context, p.batch, p.dtype) : 0;
    const bool equal = m.arena_bytes == m.arena_bytes_theory && (!cached || m.kv_cache_bytes == kv_theory);
    const std::string na = cached ? "n/a (T = 1)" : "n/a (not a causal LM)";
    t.rows.push_back({txt(v.label), txt(fmt::format("{}/{}", m.built.n_layer, v.config.n_layer)),
                      num(static_cast<double>(m.arena_bytes_theory)), num(static_cast<double>(m.arena_bytes)),
                      cached ? num(static_cast<double>(kv_theory)) : txt("n/a (not a causal LM)"),
                      m.kv_cache_bytes ? num(static_cast<double>(*m.kv_cache_bytes)) : txt("n/a (not a causal LM)"),
                      txt(equal ? "yes" : "NO"), num(static_cast<double>(m.peak_rss_bytes)), num(m.forward_seconds),
                      num(m.forward_flops), num(m.flops_per_second()), num(m.dense_flops_per_second()),
                      m.decode_tokens_per_second ? num(*m.decode_tokens_per_second) : txt(na),
                      m.decode_tokens_per_second ? num(m.decode_flops / m.decode_seconds) : txt(na)});
  }
  if (!cut.empty())
    t.notes.push_back(
        fmt::format("layers were cut until the largest variant's arena and KV cache fit the {} "
                    "--memory-budget, and every variant runs at that depth (whole models: {})",
                    bytes_text(static_cast<double>(first.memory_budget)), cut));
  t.notes.push_back(
      "theory columns describe the model that ran; equal: arena and KV cache allocated exactly the "
      "bytes the theory gives");
  t.notes.push_back(
      "forward = the fastest of the timed passes; achieved = causal-pair FLOPs / time, dense = the full "
      "T×T score tiles the kernel executes");
  t.notes.push_back(
      fmt::format("decode: the forward's K/V rows of the first T − {0} tokens fill the cache (the "
                  "prefill), then {0} timed steps fill its last positions; FLOP/s from the theory of "
                  "those steps",
                  first.decode_steps));
  t.notes.push_back(reset ? "peak RSS: the process's peak resident memory from building this model to the end of its "
                            "decode steps (VmHWM reset before each model)"
                          : "peak RSS: the process's peak since it started (VmHWM could not be reset)");
  return t;
}

std::vector<Table> model_tables(const ModelProfile& p) {
  std::vector<Table> t = {params_table(p), macs_table(p), flops_table(p), study_table(p), kv_table(p)};
  if (!p.variants.empty() && p.variants.front().measured) t.push_back(measured_table(p));
  return t;
}

std::string config_line(const ModelProfile& p) {
  const ModelConfig& c = p.base;
  const std::string input =
      c.is_image() ? fmt::format("images {}×{}×{} in {}×{} patches, {} pooling", c.image.channels, c.image.height,
                                 c.image.width, c.image.patch, c.image.patch, c.pool == Pool::cls ? "class-token" : "mean")
                   : fmt::format("vocab {}", c.vocab_size);
  const std::string pos = c.pos == PosEmb::learned    ? ", learned positions"
                          : c.pos == PosEmb::sincos2d ? ", 2D sin-cos positions"
                                                      : "";
  return fmt::format(
      "n_layer {}, d_model {}, n_head {} (head_dim {}), d_ff {}, {}, max_seq_len {}, {}{}; "
      "context T = {}, batch {}, KV dtype {}",
      c.n_layer, c.d_model, c.n_head, c.head_dim, c.d_ff, input, c.max_seq_len, c.causal ? "causal" : "bidirectional",
      pos, p.context, p.batch, kv_dtype_name(p.dtype));
}

json term_json(const Term& t) { return {{"macs", t.macs}, {"flops", t.flops()}}; }

json cost_json(const Cost& k) {
  return {{"embed", term_json(k.embed)},
          {"qkv", term_json(k.qkv)},
          {"out", term_json(k.out)},
          {"scores", term_json(k.scores)},
          {"mlp", term_json(k.mlp)},
          {"head", term_json(k.head)},
          {"misc", term_json(k.misc)},
          {"total", {{"macs", k.macs()}, {"flops", k.flops()}}}};
}

template <typename V>
json study_json(const std::vector<std::pair<std::string, V>>* list, const std::string& label) {
  if (!list) return nullptr;
  const auto v = study_value(*list, label);
  return v ? json(*v) : json(nullptr);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ModelProfile profile_model(const std::string& name, const std::string& description, const ModelConfig& base,
                           const StudyFigures* study, const ProfileOptions& o) {
  ModelProfile p;
  p.name = name;
  p.description = description;
  p.base = base;
  p.baseline = base;
  p.baseline.share = Share::none;
  p.baseline.n_kv_head = base.n_head;
  p.context = o.context > 0 ? o.context : base.max_seq_len;
  p.batch = o.batch;
  p.dtype = o.dtype;
  p.study = study;
  if (p.batch < 1) fail("--batch: must be at least 1, got {}", p.batch);
  if (p.context > base.max_seq_len)
    p.notes.push_back(
        fmt::format("context {} exceeds max_seq_len {}: the model cannot run it as configured; the "
                    "figures extrapolate the formulas",
                    p.context, base.max_seq_len));

  std::set<std::pair<Share, int>> seen;
  auto add = [&](const ModelConfig& c, const std::string& asked) {
    const std::string label = variant_label(c);
    if (!seen.insert({c.share, c.n_kv_head}).second) {
      if (asked != label)
        p.notes.push_back(fmt::format("{} is {} for this model (n_head {}): listed once", asked, label, c.n_head));
      return;
    }
    VariantProfile v;
    v.label = label;
    v.config = c;
    v.params = count_params(c);
    v.forward = pass_cost(c, {.kind = PassKind::forward, .tokens = p.context, .batch = p.batch});
    v.train = train_step_cost(c, p.context, p.batch);
    v.prefill = pass_cost(c, {.kind = PassKind::prefill, .tokens = p.context, .batch = p.batch});
    v.decode = pass_cost(c, {.kind = PassKind::decode, .tokens = p.context, .batch = p.batch});
    v.study_formula_macs = study_macs(c, p.context) * static_cast<double>(p.batch);
    p.variants.push_back(std::move(v));
  };
  auto add_study_set = [&] {
    for (const std::string& label : study_variant_labels()) {
      try {
        add(apply_variant(base, label), label);
      } catch (const Error& e) {
        p.notes.push_back(fmt::format("{} skipped: {}", label, e.what()));
      }
    }
  };

  if (o.variants.empty() && o.kv_heads.empty()) add_study_set();
  for (std::string label : o.variants) {
    label.erase(0, label.find_first_not_of(' '));  // "QKV, Q-K=V" splits into "QKV" and " Q-K=V"
    label.erase(label.find_last_not_of(' ') + 1);
    if (label == "study")
      add_study_set();
    else if (label == "config")
      add(base, label);
    else
      add(apply_variant(base, label), label);
  }
  for (int g : o.kv_heads) {
    for (Share s : {Share::none, Share::kv}) {
      ModelConfig c = base;
      c.share = s;
      c.n_kv_head = g;
      add(parse_model_config(to_json(c), fmt::format("--kv-heads {}: model", g)), variant_label(c));
    }
  }
  return p;
}

namespace {
MeasureOptions options_for(const ModelProfile& p, MeasureOptions o) {
  o.tokens = p.context;
  o.batch = static_cast<int>(p.batch);
  o.dtype = p.dtype;
  return o;
}
}  // namespace

int check_model_measurable(const ModelProfile& p, const MeasureOptions& o) {
  int layers = p.base.n_layer;
  for (const auto& v : p.variants) layers = std::min(layers, check_measurable(v.config, options_for(p, o)));
  return layers;
}

void measure_model(ModelProfile& p, const MeasureOptions& o, const std::function<void(const std::string&)>& progress) {
  MeasureOptions mo = options_for(p, o);
  // Fail before minutes of work, not after them; and run every variant at the depth the largest
  // one fits, so that the measured rows compare.
  mo.max_layers = check_model_measurable(p, o);
  for (auto& v : p.variants) {
    if (progress) progress(fmt::format("measuring {} {}", p.name, v.label));
    v.measured = measure(v.config, mo);
  }
}

ReportFormat parse_report_format(std::string_view name) {
  if (name == "table") return ReportFormat::table;
  if (name == "markdown") return ReportFormat::markdown;
  if (name == "csv") return ReportFormat::csv;
  if (name == "json") return ReportFormat::json;
  fail("--format: unknown format '{}' (known: table, markdown, csv, json)", name);
}

json report_json(const std::vector<ModelProfile>& profiles, const std::string& command) {
  json models = json::array();
  for (const ModelProfile& p : profiles) {
    json variants = json::array();
    const double kv_base = static_cast<double>(kv_cache_bytes_per_token(p.baseline, p.dtype));
    for (const VariantProfile& v : p.variants) {
      const ParamCounts& c = v.params;
      json per_token = json::object(), at_context = json::object();
      for (KvDType d : kAllKvDTypes) {
        per_token[std::string(kv_dtype_name(d))] = kv_cache_bytes_per_token(v.config, d);
        at_context[std::string(kv_dtype_name(d))] = kv_cache_bytes(v.config, p.context, p.batch, d);
      }
      json measured = nullptr;
      if (v.measured) {
        const Measurement& m = *v.measured;
        measured = {
            {"n_layer", m.built.n_layer},
            {"note", m.note},
            {"threads", m.threads},
            {"memory_budget", m.memory_budget},
            {"whole_model_bytes", m.whole_model_bytes},
            {"arena_bytes_theory", m.arena_bytes_theory},
            {"arena_bytes", m.arena_bytes},
            {"peak_rss_bytes", m.peak_rss_bytes},
            {"peak_rss_reset", m.peak_rss_reset},
            {"forward_seconds", m.forward_seconds},
            {"forward_flops", m.forward_flops},
            {"forward_flops_dense", m.forward_flops_dense},
            {"flops_per_second", m.flops_per_second()},
            {"dense_flops_per_second", m.dense_flops_per_second()},
            {"kv_cache_bytes_theory",
             has_kv_cache(m.built) ? json(kv_cache_bytes(m.built, p.context, p.batch, p.dtype)) : json(nullptr)},
            {"kv_cache_bytes", m.kv_cache_bytes ? json(*m.kv_cache_bytes) : json(nullptr)},
            {"decode_steps", m.decode_steps},
            {"decode_seconds", m.decode_seconds},
            {"decode_flops", m.decode_flops},
            {"decode_tokens_per_second",
             m.decode_tokens_per_second ? json(*m.decode_tokens_per_second) : json(nullptr)},
            {"decode_flops_per_second",
             m.decode_tokens_per_second ? json(m.decode_flops / m.decode_seconds) : json(nullptr)}};
      }
      const StudyFigures* s = p.study;
      variants.push_back(
          {{"variant", v.label},
           {"share", share_name(v.config.share)},
           {"n_kv_head", v.config.n_kv_head},
           {"params",
            {{"total", c.total()},
             {"embeddings", c.embeddings},
             {"attn_qkv", c.attn_qkv},
             {"attn_out", c.attn_out},
             {"mlp", c.mlp},
             {"norms", c.norms},
             {"head", c.head}}},
           {"forward", cost_json(v.forward)},
           {"train_step", cost_json(v.train)},
           {"prefill", cost_json(v.prefill)},
           {"decode", cost_json(v.decode)},
           {"study_formula_macs", v.study_formula_macs},
           {"kv_cache",
            {{"cached", v.config.v_is_k() ? "K" : "K,V"},
             {"bytes_per_token", per_token},
             {"bytes", at_context},
             {"cut_vs_qkv_mha_percent",
              (1 - static_cast<double>(kv_cache_bytes_per_token(v.config, p.dtype)) / kv_base) * 100}}},
           {"study",
            {{"params", study_json(s ? &s->params : nullptr, v.label)},
             {"macs", study_json(s && s->macs_tokens == p.context && p.batch == 1 ? &s->macs : nullptr, v.label)},
             {"kv_bytes_per_token_fp16", study_json(s ? &s->kv_bytes_per_token_fp16 : nullptr, v.label)},
             {"kv_cut_percent", study_json(s ? &s->kv_cut_percent : nullptr, v.label)}}},
           {"measured", measured}});
    }
    models.push_back({{"name", p.name},
                      {"description", p.description},
                      {"config", to_json(p.base)},
                      {"context", p.context},
                      {"batch", p.batch},
                      {"dtype", kv_dtype_name(p.dtype)},
                      {"notes", p.notes},
                      {"variants", variants}});
  }
  return {{"command", command}, {"models", models}};
}

std::string render_report(const std::vector<ModelProfile>& profiles, ReportFormat f, const std::string& command) {
  std::string out;
  switch (f) {
    case ReportFormat::json:
      return report_json(profiles, command).dump(2) + "\n";
    case ReportFormat::csv:
      out = "model,table,variant,column,value\n";
      for (const ModelProfile& p : profiles)
        for (const Table& t : model_tables(p)) out += render_csv_rows(p.name, t);
      return out;
    case ReportFormat::markdown:
      out = fmt::format(
          "# kvtie profile\n\nMade by `{}`. The formulas and their derivations are in docs/profile.md.\n\n", command);
      for (const ModelProfile& p : profiles) {
        out += fmt::format("## {}\n\n{}{}.\n\n", p.name, p.description.empty() ? "" : p.description + ". ",
                           config_line(p));
        for (const auto& n : p.notes) out += "- " + n + "\n";
        if (!p.notes.empty()) out += "\n";
        for (const Table& t : model_tables(p)) out += render_markdown_table(t);
      }
      return out;
    case ReportFormat::table:
      for (const ModelProfile& p : profiles) {
        out +=
            fmt::format("== {}{}\n   {}\n", p.name, p.description.empty() ? "" : ": " + p.description, config_line(p));
        for (const auto& n : p.notes) out += "   note: " + n + "\n";
        out += "\n";
        for (const Table& t : model_tables(p)) out += render_text_table(t);
      }
      return out;
  }
  return out;
}

}  // namespace kvtie
