// Charts of the profile, drawn by gnuplot from data files and a script written beside the images,
// so that a chart can be restyled and redrawn without kvtie.
#include <fmt/format.h>

#include <cctype>
#include <filesystem>

#include "analysis/gnuplot.h"
#include "analysis/profile_report.h"
#include "core/atomic_file.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;

// A file-name stem from a preset name or a config path: "configs/tiny.json" → "tiny", while
// "paper-1.2b" keeps its dot.
std::string stem(const std::string& name) {
  fs::path path = fs::path(name).filename();
  if (path.extension() == ".json") path.replace_extension();
  std::string s = path.string(), out;
  for (char ch : s) out += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' ? ch : '_';
  return out.empty() ? "model" : out;
}

}  // namespace

std::vector<std::string> write_profile_plots(const std::vector<ModelProfile>& profiles, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("--plot {}: cannot create the directory: {}", dir, ec.message());

  std::vector<std::string> images;
  for (const ModelProfile& p : profiles) {
    if (p.variants.empty()) continue;
    const std::string name = stem(p.name);
    // KV memory against context: linear in context, so a handful of points draws each line; the
    // axis runs to 4 × the model's window to show where long contexts go.
    const int64_t x_max = 4 * std::max<int64_t>(p.context, p.base.max_seq_len);
    std::string kv = "# context";
    for (const auto& v : p.variants) kv += "\t" + v.label;
    kv += "\n";
    for (int i = 0; i <= 16; i++) {
      const int64_t ctx = x_max * i / 16;
      kv += std::to_string(ctx);
      for (const auto& v : p.variants)
        kv += fmt::format("\t{:.6f}", static_cast<double>(kv_cache_bytes(v.config, ctx, p.batch, p.dtype)) / (1 << 30));
      kv += "\n";
    }
    write_file_atomic(dir + "/" + name + "_kv.dat", kv);

    std::string params = "# variant\tembeddings\tattn_qkv\tattn_out\tmlp\tnorms_head\n";
    std::string flops = "# variant\tqkv\tout\tscores\tmlp\thead\tmisc\n";
    for (const auto& v : p.variants) {
      const ParamCounts& c = v.params;
      params += fmt::format("\"{}\"\t{}\t{}\t{}\t{}\t{}\n", v.label, c.embeddings / 1e6, c.attn_qkv / 1e6,
                            c.attn_out / 1e6, c.mlp / 1e6, (c.norms + c.head) / 1e6);
      const Cost& k = v.train;
      flops += fmt::format("\"{}\"\t{}\t{}\t{}\t{}\t{}\t{}\n", v.label, k.qkv.flops() / 1e12, k.out.flops() / 1e12,
                           k.scores.flops() / 1e12, k.mlp.flops() / 1e12, k.head.flops() / 1e12, k.misc.flops() / 1e12);
    }
    write_file_atomic(dir + "/" + name + "_params.dat", params);
    write_file_atomic(dir + "/" + name + "_flops.dat", flops);

    std::string kv_body = fmt::format(
        "set title {}\nset xlabel 'context length (tokens)'\nset ylabel 'KV cache (GiB)'\nset key top left\n"
        "set grid\nset xrange [0:{}]\nset yrange [0:*]\nplot ",
        gnuplot_quoted(fmt::format("{}: KV cache at {}, batch {}", p.name, kv_dtype_name(p.dtype), p.batch)), x_max);
    for (size_t i = 0; i < p.variants.size(); i++)
      kv_body += fmt::format("{}'{}_kv.dat' using 1:{} with linespoints lw 2 dt {} pt {} title {}", i ? ", \\\n  " : "",
                             name, i + 2, i % 4 + 1, i + 1, gnuplot_quoted(p.variants[i].label));
    kv_body += "\n";

    const std::string bars =
        "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n"
        "set boxwidth 0.7\nset key outside right top\nset grid ytics\nset yrange [0:*]\nset xtics rotate by -30\n";
    const std::string params_body = fmt::format(
        "set title {}\nset ylabel 'parameters (millions)'\n{}"
        "plot '{}_params.dat' using 2:xtic(1) title 'embeddings', '' using 3 title 'attention Q/K/V', "
        "'' using 4 title 'attention out', '' using 5 title 'MLP', '' using 6 title 'norms + head'\n",
        gnuplot_quoted(p.name + ": parameters"), bars, name);
    const std::string flops_body = fmt::format(
        "set title {}\nset ylabel 'TFLOP per training step'\n{}"
        "plot '{}_flops.dat' using 2:xtic(1) title 'Q/K/V projections', '' using 3 title 'out projection', "
        "'' using 4 title 'attention scores', '' using 5 title 'MLP', '' using 6 title 'head + loss', "
        "'' using 7 title 'norms, residuals'\n",
        gnuplot_quoted(fmt::format("{}: FLOPs of one training step, {} x {} tokens", p.name, p.batch, p.context)), bars,
        name);

    const auto written = render_gnuplot(
        dir, name, {{name + "_kv", kv_body}, {name + "_params", params_body}, {name + "_flops", flops_body}});
    images.insert(images.end(), written.begin(), written.end());
  }
  return images;
}

}  // namespace kvtie
