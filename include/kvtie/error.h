#pragma once
// Every user-facing failure is a kvtie::Error whose message is one line naming the file or
// field at fault; the CLI prints it and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kvtie {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kvtie
