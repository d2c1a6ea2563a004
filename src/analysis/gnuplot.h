#pragma once
// Charts are drawn by gnuplot from a script and data files left beside the images, so that a
// chart can be restyled and redrawn without kvtie.
#include <string>
#include <vector>

namespace kvtie {

std::string gnuplot_quoted(const std::string& s);  // a gnuplot string literal

struct GnuplotChart {
  std::string name;  // image stem: NAME.png and NAME.svg
  std::string body;  // gnuplot commands ending in a plot command
};

// Writes dir/script_name.gp rendering every chart to PNG and SVG, runs gnuplot on it, and returns
// the image paths. Errors name the script when gnuplot is missing or fails.
std::vector<std::string> render_gnuplot(const std::string& dir, const std::string& script_name,
                                        const std::vector<GnuplotChart>& charts);

}  // namespace kvtie
