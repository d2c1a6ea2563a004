#include "analysis/gnuplot.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "core/atomic_file.h"
#include "kvtie/error.h"

namespace kvtie {
namespace {

std::string shell_quoted(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

}  // namespace

std::string gnuplot_quoted(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("''") : std::string(1, ch);
  return q + "'";
}

std::vector<std::string> render_gnuplot(const std::string& dir, const std::string& script_name,
                                        const std::vector<GnuplotChart>& charts) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    fail("gnuplot is not installed (Debian package gnuplot-nox; scripts/setup installs it)");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the directory: {}", dir, ec.message());
  std::string script;
  std::vector<std::string> images;
  for (const auto& c : charts) {
    script += fmt::format(
        "reset\nset terminal pngcairo size 960,600 noenhanced font 'sans,11'\nset output {0}\n{1}\n"
        "set terminal svg size 960,600 noenhanced font 'sans,11' background rgb 'white'\nset output {2}\n"
        "replot\nunset output\n\n",
        gnuplot_quoted(c.name + ".png"), c.body, gnuplot_quoted(c.name + ".svg"));
    images.push_back(dir + "/" + c.name + ".png");
    images.push_back(dir + "/" + c.name + ".svg");
  }
  const std::string path = dir + "/" + script_name + ".gp";
  write_file_atomic(path, script);
  const std::string cmd = fmt::format("cd {} && gnuplot {} 2>{}", shell_quoted(dir), shell_quoted(script_name + ".gp"),
                                      shell_quoted(script_name + ".gnuplot.log"));
  if (std::system(cmd.c_str()) != 0)
    fail("{}: gnuplot failed (see {}/{}.gnuplot.log)", path, dir, script_name);
  std::filesystem::remove(dir + "/" + script_name + ".gnuplot.log");  // kept only when it explains a failure
  return images;
}

}  // namespace kvtie
