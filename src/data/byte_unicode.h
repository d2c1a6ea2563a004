#pragma once
// GPT-2's byte <-> unicode alphabet: every byte gets a printable character (bytes that are
// printable Latin-1 keep their own code point, the rest move to U+0100..U+0143), so that a
// token's bytes can be written as a JSON string key and a space-separated merges line.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvtie::bpe {

// Code point of each byte's character, in byte order.
const std::array<uint32_t, 256>& byte_to_codepoint();
// The bytes in GPT-2's id order: the byte whose token id is i is byte_order()[i].
const std::array<uint8_t, 256>& byte_order();

// Bytes -> their alphabet string (UTF-8), appended to `out`.
void bytes_to_unicode(std::string_view bytes, std::string& out);
std::string bytes_to_unicode(std::string_view bytes);
// Alphabet string -> bytes, appended to `out`; false when the string is not valid UTF-8 or holds
// a character outside the alphabet (then `out` is left partly written).
bool unicode_to_bytes(std::string_view text, std::string& out);

}  // namespace kvtie::bpe
