#include "data/byte_unicode.h"

namespace kvtie::bpe {
namespace {

// bytes_to_unicode() of GPT-2's encoder.py: printable ranges first, then the others in byte
// order, each given the next code point from 256.
struct Tables {
  std::array<uint32_t, 256> cp{};
  std::array<uint8_t, 256> order{};
  std::array<int16_t, 324> byte_of{};  // code point -> byte, -1 outside the alphabet
  Tables() {
    int n = 0, k = 0;
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    for (int b = 0; b < 256; b++)
      if (printable(b)) order[k++] = static_cast<uint8_t>(b), cp[b] = static_cast<uint32_t>(b);
    for (int b = 0; b < 256; b++)
      if (!printable(b)) order[k++] = static_cast<uint8_t>(b), cp[b] = static_cast<uint32_t>(256 + n++);
    byte_of.fill(-1);
    for (int b = 0; b < 256; b++) byte_of[cp[b]] = static_cast<int16_t>(b);
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

void append_utf8(uint32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {  // the alphabet stops at U+0143: two bytes suffice
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace

const std::array<uint32_t, 256>& byte_to_codepoint() { return tables().cp; }
const std::array<uint8_t, 256>& byte_order() { return tables().order; }

void bytes_to_unicode(std::string_view bytes, std::string& out) {
  const auto& cp = tables().cp;
  for (const char ch : bytes) append_utf8(cp[static_cast<uint8_t>(ch)], out);
}

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  bytes_to_unicode(bytes, out);
  return out;
}

bool unicode_to_bytes(std::string_view text, std::string& out) {
  const auto& byte_of = tables().byte_of;
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<uint8_t>(text[i]);
    uint32_t c;
    if (b0 < 0x80) {
      c = b0;
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < text.size() && (static_cast<uint8_t>(text[i + 1]) & 0xC0) == 0x80) {
      c = ((b0 & 0x1Fu) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu);
      if (c < 0x80) return false;  // overlong
      i += 2;
    } else {
      return false;  // three- and four-byte characters are all outside the alphabet
    }
    if (c >= byte_of.size() || byte_of[c] < 0) return false;
    out += static_cast<char>(byte_of[c]);
  }
  return true;
}

}  // namespace kvtie::bpe
