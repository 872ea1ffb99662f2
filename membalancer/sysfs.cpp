#include "membalancer/sysfs.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <fstream>
#include <sstream>

#include "membalancer/error.h"

namespace mb {

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

static bool parse_nonneg(const std::string& s, long long* out) {
  if (s.empty() || s.size() > 18) return false;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

std::vector<int> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<int> out;
  std::string t = trim(text);
  if (t.empty()) return out;
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    long long a, b;
    auto dash = item.find('-');
    bool ok;
    if (dash == std::string::npos) {
      ok = parse_nonneg(item, &a);
      b = a;
    } else {
      ok = parse_nonneg(item.substr(0, dash), &a) && parse_nonneg(item.substr(dash + 1), &b);
    }
    if (!ok || b < a || b > 1 << 22)
      throw UsageError(what + ": bad list item '" + item + "' in '" + t + "'");
    // Bounded in total too: "0-4194304," repeated would take gigabytes.
    if (out.size() + static_cast<size_t>(b - a + 1) > (1u << 22) + 1)
      throw UsageError(what + ": more than " + std::to_string((1u << 22) + 1) + " entries in '" + t.substr(0, 64) +
                       (t.size() > 64 ? "...'" : "'"));
    for (long long v = a; v <= b; ++v) out.push_back(static_cast<int>(v));
  }
  return out;
}

uint64_t parse_size(const std::string& text, const std::string& what) {
  std::string t = trim(text);
  size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  long long n;
  if (i == 0 || !parse_nonneg(t.substr(0, i), &n))
    throw UsageError(what + ": '" + text + "' is not a size (examples: 4096, 64K, 200M, 2G)");
  std::string unit = t.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  if (!unit.empty() && unit.back() == 'I') unit.pop_back();  // KiB, MiB
  uint64_t mult = 1;
  if (unit.empty()) mult = 1;
  else if (unit == "K") mult = 1ULL << 10;
  else if (unit == "M") mult = 1ULL << 20;
  else if (unit == "G") mult = 1ULL << 30;
  else if (unit == "T") mult = 1ULL << 40;
  else throw UsageError(what + ": unknown unit in '" + text + "' (use K, M, G or T)");
  if (static_cast<uint64_t>(n) > (~0ULL) / mult) throw UsageError(what + ": '" + text + "' is too large");
  return static_cast<uint64_t>(n) * mult;
}

uint32_t parse_sample_ring_size(const std::string& text, const std::string& what) {
  // The kernel refuses a ring buffer that is not a power of two of whole
  // pages (EINVAL at load); 1G bounds the memory it pins.
  const uint64_t page = std::max<uint64_t>(4096, static_cast<uint64_t>(getpagesize()));
  const uint64_t bytes = parse_size(text, what);
  if (bytes < page || bytes > (1ULL << 30) || !std::has_single_bit(bytes))
    throw UsageError(what + " " + text + ": want a power of two from " + std::to_string(page >> 10) +
                     "K (a page) to 1G");
  return static_cast<uint32_t>(bytes);
}

}  // namespace mb
