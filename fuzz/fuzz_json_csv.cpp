// libFuzzer target: string escaping of the JSON writer (membalancer/json.h)
// and of the profiler's CSV and JSON reports (profiler/report.cpp).
//
// JSON: json_quote() and JsonWriter on arbitrary bytes must always give JSON
// that nlohmann::json parses (RFC 8259: valid UTF-8, escaped control
// characters); for valid UTF-8 the parsed string must equal the input.
// CSV: a process name and a mapping path taken from the input (NULs removed:
// the kernel never gives them) go through a real profile file and
// print_report(--format csv); a strict RFC 4180 reader written here must read
// the table back with the right shape and the name and mapping intact. The
// same profile's --format json report must parse and carry the name.

#include <stdio.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "membalancer/json.h"
#include "membalancer/profile_file.h"
#include "profiler/report.h"

using nlohmann::json;

namespace {

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if (c >= 0xe1 && c <= 0xec) len = 3;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c >= 0xee && c <= 0xef) len = 3;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else return false;
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
    i += len;
  }
  return true;
}

std::string show(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') o += static_cast<char>(c);
    else {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      o += b;
    }
  }
  return o;
}

json parse_json(const std::string& text, const std::string& what, const std::string& input) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    mb_fuzz::fail(what + " is not valid JSON (" + e.what() + ") for input '" + show(input) + "': " + show(text));
  }
}

void fuzz_json(const std::string& s, const uint8_t* data, size_t size) {
  const bool utf8 = valid_utf8(s);
  json q = parse_json(mb::json_quote(s), "json_quote", s);
  FUZZ_CHECK(q.is_string(), show(s));
  if (utf8) FUZZ_CHECK(q.get<std::string>() == s, "json_quote round trip of '" + show(s) + "'");

  double d = 0;
  if (size >= sizeof(d)) std::memcpy(&d, data, sizeof(d));
  // [{s: s}, [s, size, -size, d, true, {}]]: no fixed key that s could repeat.
  mb::JsonWriter w;
  w.begin_array();
  w.begin_object().field(s, s).end_object();
  w.begin_array().value(s).value(static_cast<uint64_t>(size)).value(-static_cast<int64_t>(size));
  w.value(d).value(true).begin_object().end_object().end_array();
  w.end_array();
  json j = parse_json(w.str(), "JsonWriter output", s);
  FUZZ_CHECK(j.is_array() && j.size() == 2 && j[0].is_object() && j[0].size() == 1 && j[1].is_array() &&
                 j[1].size() == 6,
             show(w.str()));
  const json& a = j[1];
  FUZZ_CHECK(a[1].get<uint64_t>() == size, show(w.str()));
  FUZZ_CHECK(a[2].get<int64_t>() == -static_cast<int64_t>(size), show(w.str()));
  if (std::isfinite(d)) {
    FUZZ_CHECK(a[3].is_number(), show(w.str()));
    double back = a[3].get<double>();
    if (std::fabs(d) > 1e-300 && std::fabs(d) < 1e300)
      FUZZ_CHECK(std::fabs(back - d) <= 1e-5 * std::fabs(d), std::to_string(d) + " came back as " + std::to_string(back));
  } else {
    FUZZ_CHECK(a[3].is_null(), show(w.str()));
  }
  if (utf8) {
    FUZZ_CHECK(j[0].contains(s) && j[0][s] == s, "key/value round trip of '" + show(s) + "'");
    FUZZ_CHECK(a[0] == s, "array value round trip of '" + show(s) + "'");
  }
}

// A strict RFC 4180 reader: records end with LF or CRLF; a field holding a
// comma, quote, CR or LF is quoted, with quotes doubled. Anything else (a
// bare CR or a quote in an unquoted field, text after a closing quote, an
// unterminated quote) is an error, returned as the message.
std::optional<std::string> read_csv(const std::string& text, std::vector<std::vector<std::string>>* rows) {
  size_t i = 0, n = text.size();
  while (i < n) {
    std::vector<std::string> rec;
    for (;;) {
      std::string f;
      if (i < n && text[i] == '"') {
        ++i;
        for (;;) {
          if (i >= n) return "unterminated quoted field at " + std::to_string(i);
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              f += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          f += text[i++];
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n'))
          return "text after a closing quote at " + std::to_string(i);
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') {
          if (text[i] == '"') return "quote in an unquoted field at " + std::to_string(i);
          if (text[i] == '\r') {
            if (i + 1 < n && text[i + 1] == '\n') break;
            return "bare CR in an unquoted field at " + std::to_string(i);
          }
          f += text[i++];
        }
      }
      rec.push_back(std::move(f));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') ++i;
      break;
    }
    rows->push_back(std::move(rec));
  }
  return std::nullopt;
}

std::string report(const mb::ProfileReader& r, const mb::prof::Aggregate& agg, const char* by, const char* format) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  if (!out) mb_fuzz::fail("open_memstream");
  mb::prof::ReportOptions ro;
  ro.by = by;
  ro.format = format;
  mb::prof::print_report(out, r, agg, ro);
  std::fclose(out);
  std::string s(buf, len);
  free(buf);
  return s;
}

void check_csv_table(const std::string& csv, const std::vector<std::pair<std::string, std::string>>& want,
                     const std::string& input) {
  std::vector<std::vector<std::string>> rows;
  if (auto err = read_csv(csv, &rows)) mb_fuzz::fail("CSV report: " + *err + " for input '" + show(input) + "': " + show(csv));
  FUZZ_CHECK(rows.size() == 2, std::to_string(rows.size()) + " records for input '" + show(input) + "': " + show(csv));
  FUZZ_CHECK(rows[0].size() == rows[1].size(), "header and row differ in width: " + show(csv));
  for (const auto& [col, value] : want) {
    size_t c = 0;
    while (c < rows[0].size() && rows[0][c] != col) ++c;
    FUZZ_CHECK(c < rows[0].size(), "no column " + col);
    FUZZ_CHECK(rows[1][c] == value, col + " '" + show(rows[1][c]) + "' instead of '" + show(value) + "'");
  }
}

void fuzz_reports(std::string s) {
  std::string name;
  for (char c : s)
    if (c) name += c;
  static const std::string path = mb_fuzz::scratch_dir() + "/report.prof";
  constexpr uint32_t kTgid = 42;
  {
    mb::ProfileStart start;
    start.sampler = "fault";
    start.sampler_kind = MB_SAMPLER_FAULT;
    start.topology.nodes.resize(1);
    start.topology.nodes[0].id = 0;
    start.topology.nodes[0].cpus = {0};
    start.topology.nodes[0].mem_total_bytes = 1 << 30;
    start.start_realtime_ns = 1;
    start.start_monotonic_ns = 1;
    mb::ProfileWriter w(path, start, true);
    w.add_process(1, kTgid, 1, mb::kProcSeen, name);
    mb::ProfileMap m;
    m.start = 0x400000;
    m.end = 0x800000;
    m.prot = mb::kMapRead | mb::kMapWrite;
    m.path = name;
    w.add_maps(1, kTgid, {m});
    mb_sample smp{};
    smp.time_ns = 2;
    smp.tgid = smp.tid = kTgid;
    smp.vaddr = 0x401000;
    smp.flags = MB_ACC_VADDR;
    w.add_sample(smp);
    w.finish(3, 0);
  }
  mb::ProfileReader r(path);
  auto agg = std::make_unique<mb::prof::Aggregate>();
  mb::prof::aggregate_file(r, agg.get());

  const std::string shown = name.empty() ? "?" : name;
  mb::ProfileMap m;
  m.path = name;
  const std::string kind = mb::ProfileProcesses::mapping_kind(&m);
  check_csv_table(report(r, *agg, "process", "csv"), {{"pid", "42"}, {"name", shown}}, name);
  check_csv_table(report(r, *agg, "region", "csv"), {{"pid", "42"}, {"name", shown}, {"mapping", kind}}, name);

  json j = parse_json(report(r, *agg, "region", "json"), "JSON report", name);
  FUZZ_CHECK(j.contains("regions") && j["regions"].size() == 1, show(j.dump()));
  if (valid_utf8(name)) {
    FUZZ_CHECK(j["regions"][0]["name"] == shown, show(j.dump()));
    FUZZ_CHECK(j["regions"][0]["mapping"] == kind, show(j.dump()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  try {
    fuzz_json(s, data, size);
    fuzz_reports(s);
  } catch (const std::exception& e) {
    mb_fuzz::unexpected_exception("json_csv", e);
  }
  return 0;
}
