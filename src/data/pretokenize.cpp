#include "data/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "kvtie/error.h"

namespace kvtie::bpe {

// GPT-2 used Python's `regex` module, where \s is Unicode White_Space (as in tiktoken's Rust
// regex); PCRE2's \s with UCP leaves out U+0085, so the class is written out. The pattern is
// GPT-2's 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ with that class.
const std::string& gpt2_pattern() {
  static const std::string pattern = [] {
    const std::string ws = R"(\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" + ws + R"(\p{L}\p{N}]+|[)" + ws + "]+(?![^" + ws +
           "])|[" + ws + "]+";
  }();
  return pattern;
}

namespace {

struct Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  Compiled() {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 never matches, and matching resumes after it, instead of
    // the whole subject being rejected.
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(gpt2_pattern().data()), gpt2_pattern().size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenisation pattern: {} at offset {}", reinterpret_cast<const char*>(msg), offset);
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Compiled() { pcre2_code_free(code); }
};

const Compiled& compiled() {
  static const Compiled c;
  return c;
}

// Match data and JIT stack are per thread: PCRE2 forbids sharing them between concurrent matches.
struct ThreadState {
  pcre2_match_data* md;
  pcre2_jit_stack* stack;
  pcre2_match_context* ctx;
  ThreadState() {
    md = pcre2_match_data_create_from_pattern(compiled().code, nullptr);
    // The whitespace alternatives backtrack over the run; a large stack keeps long runs on JIT.
    stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadState() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

}  // namespace

void pretokenize(std::string_view text, const std::function<void(std::string_view)>& chunk) {
  const Compiled& c = compiled();
  thread_local ThreadState ts;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = c.jit ? pcre2_jit_match(c.code, subject, text.size(), pos, 0, ts.md, ts.ctx)
                         : pcre2_match(c.code, subject, text.size(), pos, 0, ts.md, ts.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) {  // only invalid UTF-8 is left
      chunk(text.substr(pos));
      return;
    }
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("pre-tokenisation failed at byte {}: {}", pos, reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
    if (ov[0] > pos) chunk(text.substr(pos, ov[0] - pos));  // skipped invalid UTF-8
    chunk(text.substr(ov[0], ov[1] - ov[0]));
    pos = ov[1];
  }
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  pretokenize(text, [&](std::string_view s) { out.push_back(s); });
  return out;
}

}  // namespace kvtie::bpe
