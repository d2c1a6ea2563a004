// kvtie: train, evaluate and inspect transformers whose attention shares projections.
#include <fmt/format.h>

#include <exception>
#include <new>

#include "commands.h"
#include "kvtie/error.h"

int main(int argc, char** argv) {
  CLI::App app{"kvtie — transformers with shared attention projections (QKV, Q-K=V, Q=K-V, Q=K=V)", "kvtie"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kvtie 0.1.0");
  kvtie::cli::add_init(app);
  kvtie::cli::add_train(app);
  kvtie::cli::add_eval(app);
  kvtie::cli::add_tokenizer(app);
  kvtie::cli::add_tokenize(app);
  kvtie::cli::add_profile(app);
  kvtie::cli::add_data(app);
  kvtie::cli::add_plot(app);
  kvtie::cli::add_generate(app);
  kvtie::cli::add_sweep(app);
  kvtie::cli::add_analyze(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const kvtie::Error& e) {
    fmt::print(stderr, "kvtie: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "kvtie: error: out of memory (the config or batch is too large for this machine)\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kvtie: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
