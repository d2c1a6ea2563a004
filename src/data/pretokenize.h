#pragma once
// GPT-2's pre-tokenisation: text is cut into chunks (contractions, letter runs, digit runs, runs
// of other symbols, each with at most one leading space, and whitespace runs) before BPE, and no
// merge crosses a chunk boundary. The chunks cover every byte in order; a run of bytes that is
// not valid UTF-8 becomes a chunk of its own.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kvtie::bpe {

// The pattern, in PCRE2 syntax (GPT-2's with \s spelled as Unicode White_Space).
const std::string& gpt2_pattern();

// Calls `chunk` for each piece of `text`, in order. Thread-safe.
void pretokenize(std::string_view text, const std::function<void(std::string_view)>& chunk);
std::vector<std::string_view> pretokenize(std::string_view text);

}  // namespace kvtie::bpe
