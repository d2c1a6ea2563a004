// kvtie generate: text from a checkpoint, streamed, through the KV cache (or without, --no-cache).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <sys/resource.h>

#include <cstdio>
#include <sstream>

#include "commands.h"
#include "core/atomic_file.h"
#include "infer/generate.h"
#include "kvtie/checkpoint.h"
#include "tokenizer_beside.h"

namespace kvtie::cli {

void add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt, batch_file, kv_dtype = "fp32";
    GenerateOptions gen;
    bool no_cache = false, json = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->gen.sampler.temperature = 0.8;
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a checkpoint (tokenizer beside it), streamed");
  cmd->add_option("--model", o->model, "Checkpoint (.safetensors) with vocab.json + merges.txt beside it")->required();
  auto* prompt = cmd->add_option("--prompt", o->prompt, "Prompt text");
  auto* batch = cmd->add_option("--batch-file", o->batch_file, "One prompt per line, generated together as a batch");
  prompt->excludes(batch);
  cmd->add_option("--max-new", o->gen.max_new, "New tokens per prompt at most")->capture_default_str();
  cmd->add_option("--temperature", o->gen.sampler.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->gen.sampler.top_k, "Sample among the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o->gen.sampler.top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", o->gen.sampler.seed, "Sampling seed (prompt i uses seed + i)")->capture_default_str();
  cmd->add_option("--stop", o->gen.stop, "Stop when this text appears (repeatable); <|endoftext|> always stops");
  cmd->add_option("--kv-dtype", o->kv_dtype, "KV cache element format")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}))
      ->capture_default_str();
  cmd->add_option("--kv-budget", o->gen.kv_budget_bytes,
                  "Cap the KV cache at this many bytes (e.g. 64MiB, 1GiB): its capacity is the positions per "
                  "sequence that fit; a request past them is an error, or slides with --sliding-window")
      ->transform(CLI::AsSizeValue(true));
  cmd->add_flag("--no-cache", o->no_cache, "Recompute the whole prefix for every token (the study's way)");
  cmd->add_flag("--sliding-window", o->gen.sliding_window,
                "Go past the model's context: a sequence that fills it keeps its last --window-keep tokens, "
                "prefilled again at positions 0.. (without it, prompt + --max-new beyond the context is an error)");
  cmd->add_option("--window-keep", o->gen.window_keep, "Tokens kept when the window slides (0: half the context)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: OpenMP default)")->check(CLI::Range(0, 4096));
  cmd->add_flag("--json", o->json, "No streaming; print one JSON object");
  cmd->callback([o] {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    std::vector<std::string> prompts;
    if (!o->batch_file.empty()) {
      std::istringstream in(read_file(o->batch_file));
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) prompts.push_back(line);
      if (prompts.empty()) fail("{}: no prompts (one per line)", o->batch_file);
    } else {
      prompts.push_back(o->prompt);
    }
    const Tokenizer tok = tokenizer_beside(o->model);
    auto model = load_checkpoint(o->model, 1);
    GenerateOptions gen = o->gen;
    gen.use_cache = !o->no_cache;
    gen.kv_dtype = parse_kv_dtype(o->kv_dtype, "--kv-dtype");
    const bool stream = !o->json && prompts.size() == 1;
    // Once the request is checked: what the cache holds (stderr), then the prompt the stream continues.
    gen.on_start = [&](const std::optional<KvCacheFigures>& cache) {
      if (cache && !o->json) fmt::print(stderr, "{}\n", cache->line());
      if (stream) {
        fmt::print("{}", prompts[0]);
        std::fflush(stdout);
      }
    };
    GenerateStats stats;
    const auto out = generate(*model, tok, prompts, gen,
                              [&](int, const std::string& piece) {
                                if (!stream) return;
                                fmt::print("{}", piece);
                                std::fflush(stdout);
                              },
                              &stats);
    const double tps = stats.decode_seconds > 0 ? static_cast<double>(stats.decode_tokens) / stats.decode_seconds : 0;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const int64_t peak_rss = static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
    if (o->json) {
      nlohmann::json j{{"generations", nlohmann::json::array()}, {"kv_dtype", o->no_cache ? "none" : o->kv_dtype},
                       {"cache_bytes", stats.cache ? stats.cache->bytes : 0}, {"kv_cache", nullptr},
                       {"prefill_s", stats.prefill_seconds},
                       {"decode_s", stats.decode_seconds}, {"decode_tokens", stats.decode_tokens},
                       {"decode_tokens_per_s", tps}, {"window_slides", stats.window_slides},
                       {"peak_rss_bytes", peak_rss}};
      if (const auto& f = stats.cache)
        j["kv_cache"] = {{"line", f->line()},         {"layers", f->layers},       {"kv_heads", f->kv_heads},
                         {"positions", f->positions}, {"head_dim", f->head_dim},   {"dtype", kv_dtype_name(f->dtype)},
                         {"v_is_k", f->v_is_k},       {"sequences", f->sequences}, {"bytes", f->bytes},
                         {"qkv_bytes", f->qkv_bytes}};
      for (size_t i = 0; i < out.size(); i++)
        j["generations"].push_back({{"prompt", prompts[i]}, {"text", out[i].text},
                                    {"prompt_tokens", out[i].prompt_tokens}, {"new_tokens", out[i].new_tokens}});
      // Text cut at a token boundary may be invalid UTF-8 (a random model emits partial byte tokens).
      fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    if (stream) fmt::print("\n");
    else
      for (size_t i = 0; i < out.size(); i++) fmt::print("[{}] {}{}\n", i + 1, prompts[i], out[i].text);
    fmt::print(stderr, "{} tokens in {:.2f} s ({:.1f} tokens/s{}{})\n", stats.decode_tokens, stats.decode_seconds, tps,
               o->no_cache ? ", no cache" : "",
               stats.window_slides > 0 ? fmt::format(", window slid {} times", stats.window_slides) : "");
  });
}

}  // namespace kvtie::cli
