#pragma once
// Each subcommand registers its options and its action on the top-level app.
#include <CLI/CLI.hpp>

namespace kvtie::cli {

void add_init(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_tokenizer(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_profile(CLI::App& app);
void add_data(CLI::App& app);
void add_plot(CLI::App& app);
void add_generate(CLI::App& app);
void add_sweep(CLI::App& app);
void add_analyze(CLI::App& app);

}  // namespace kvtie::cli
