#include "profiler/text.h"

#include <cstdint>
#include <cstdio>

namespace mb::prof {

namespace {

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF included).
size_t utf8_length(const std::string& s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t v, min;
  if (c < 0x80) n = 1, v = c, min = 0;
  else if ((c & 0xe0) == 0xc0) n = 2, v = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0) n = 3, v = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0) n = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    v = v << 6 | (b(i + k) & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

}  // namespace

std::string printable(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_length(in, i, &cp);
    const bool control = n && (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0));
    if (n && !control) {
      out.append(in, i, n);
      i += n;
      continue;
    }
    // One byte at a time: an invalid sequence resynchronises on the next byte.
    const size_t bytes = n ? n : 1;
    for (size_t k = 0; k < bytes; ++k) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(in[i + k]));
      out += b;
    }
    i += bytes;
  }
  return out;
}

std::string xml_escape(const std::string& in) {
  std::string o;
  for (char c : printable(in)) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else if (c == '\'') o += "&apos;";
    else o += c;
  }
  return o;
}

}  // namespace mb::prof
