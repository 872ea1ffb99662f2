// Unit tests for membalancer/report.h: the three displays written to a
// temporary file, the summary, counter names and drop accounting. JSON output
// is checked with a small strict parser, so that it is valid JSON and holds
// the right values.

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "membalancer/report.h"

namespace {

// ---- a minimal strict JSON parser (RFC 8259 subset sufficient for tests) ----
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;

  const Json& operator[](const std::string& k) const {
    for (const auto& [key, v] : obj)
      if (key == k) return v;
    static const Json missing{};
    ADD_FAILURE() << "key '" << k << "' missing";
    return missing;
  }
  bool has(const std::string& k) const {
    for (const auto& kv : obj)
      if (kv.first == k) return true;
    return false;
  }
  const Json& operator[](size_t i) const { return arr.at(i); }
};

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}
  // Parses the whole text; false (with error()) when it is not one JSON value.
  bool parse(Json* out) {
    try {
      *out = value();
      ws();
      if (i_ != s_.size()) fail("trailing text");
      return true;
    } catch (const std::runtime_error& e) {
      err_ = e.what();
      return false;
    }
  }
  const std::string& error() const { return err_; }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + " at " + std::to_string(i_) + ": " + s_.substr(i_, 20));
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected ") + c);
    ++i_;
  }
  bool literal(const char* w) {
    size_t n = std::strlen(w);
    if (s_.compare(i_, n, w) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }
  Json value() {
    Json j;
    char c = peek();
    if (c == '{') {
      j.kind = Json::kObject;
      ++i_;
      if (peek() == '}') {
        ++i_;
        return j;
      }
      for (;;) {
        if (peek() != '"') fail("expected key");
        std::string k = string();
        expect(':');
        j.obj.emplace_back(k, value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return j;
      }
    }
    if (c == '[') {
      j.kind = Json::kArray;
      ++i_;
      if (peek() == ']') {
        ++i_;
        return j;
      }
      for (;;) {
        j.arr.push_back(value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return j;
      }
    }
    if (c == '"') {
      j.kind = Json::kString;
      j.str = string();
      return j;
    }
    if (literal("true")) {
      j.kind = Json::kBool;
      j.b = true;
      return j;
    }
    if (literal("false")) {
      j.kind = Json::kBool;
      return j;
    }
    if (literal("null")) return j;
    // number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    } else {
      fail("bad value");
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) fail("bad fraction");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) fail("bad exponent");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    j.kind = Json::kNumber;
    j.num = std::stod(s_.substr(start, i_ - start));
    return j;
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      unsigned char c = s_[i_++];
      if (c == '"') return out;
      if (c < 0x20) fail("raw control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) fail("bad escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("bad \\u");
          unsigned v = std::stoul(s_.substr(i_, 4), nullptr, 16);
          i_ += 4;
          if (v >= 0x80) fail("test parser handles ASCII \\u only");
          out += static_cast<char>(v);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  const std::string& s_;
  size_t i_ = 0;
  std::string err_;
};

Json parse_json(const std::string& line) {
  Json j;
  Parser p(line);
  EXPECT_TRUE(p.parse(&j)) << p.error() << "\n" << line;
  return j;
}

TEST(TestJsonParser, RejectsInvalid) {
  Json j;
  for (const char* bad : {"", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "[01]", "\"a\nb\"", "{} x", "nan", "[1 2]"})
    EXPECT_FALSE(Parser(bad).parse(&j)) << bad;
  EXPECT_TRUE(Parser(R"({"a":[1,-2.5e3,true,null,"x\"y"]})").parse(&j));
  EXPECT_EQ(j["a"][4].str, "x\"y");
  EXPECT_DOUBLE_EQ(j["a"][1].num, -2500);
}

// ---- output capture ----
class Capture {
 public:
  Capture() : f_(std::tmpfile()) {}
  ~Capture() {
    if (f_) std::fclose(f_);
  }
  FILE* file() { return f_; }
  std::string text() {
    std::fflush(f_);
    long n = std::ftell(f_);
    std::string s(static_cast<size_t>(n), '\0');
    std::rewind(f_);
    size_t got = std::fread(s.data(), 1, s.size(), f_);
    s.resize(got);
    std::fseek(f_, 0, SEEK_END);
    return s;
  }
  std::vector<std::string> lines() {
    std::vector<std::string> out;
    std::istringstream in(text());
    std::string l;
    while (std::getline(in, l)) out.push_back(l);
    return out;
  }

 private:
  FILE* f_;
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

mb::IntervalReport sample_report() {
  mb::IntervalReport r;
  r.interval = 3;
  r.elapsed_s = 3.5;
  r.sampler = "fault";
  r.counters[MB_CTR_SAMPLES] = 120;
  r.counters[MB_CTR_ACCEPTED] = 100;
  r.counters[MB_CTR_FILTERED] = 20;
  r.counters[MB_CTR_SAMPLES_LOST] = 4;
  r.dropped = 4;
  r.tracked_processes = 2;
  r.table_pages = 42;
  r.pages_this_interval = 7;
  r.accesses_this_interval = 100;
  r.exited_processes = 1;
  r.table_dropped_full = 9;
  r.nodes = {{-1, 25, 2}, {0, 75, 5}};
  r.processes = {{100, "my \"app\"", 30, 80, 95.5}, {101, "child", 12, 20, 4.0}};
  r.hottest = {{100, "my \"app\"", 0x40000000, 2 << 20, 17, 60.25, 0}, {101, "child", 0x200000, 2 << 20, 3, 2.5, -1}};
  r.ranges = {{100, 0x10000, 0x13000}, {101, 0x21000, 0x22000}};
  r.ranges_truncated = true;
  return r;
}

TEST(ReportJson, OneValidLinePerInterval) {
  Capture c;
  mb::Reporter rep(mb::Display::kJson, c.file(), false);
  rep.interval(sample_report());
  auto lines = c.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(c.text().back(), '\n');
  Json j = parse_json(lines[0]);
  ASSERT_EQ(j.kind, Json::kObject);
  EXPECT_EQ(j["type"].str, "interval");
  EXPECT_EQ(j["interval"].num, 3);
  EXPECT_DOUBLE_EQ(j["time_s"].num, 3.5);
  EXPECT_EQ(j["sampler"].str, "fault");
  EXPECT_EQ(j["samples"].num, 120);
  EXPECT_EQ(j["accepted"].num, 100);
  EXPECT_EQ(j["dropped"].num, 4);
  EXPECT_EQ(j["tracked_processes"].num, 2);
  EXPECT_EQ(j["table_pages"].num, 42);
  EXPECT_EQ(j["pages_this_interval"].num, 7);
  EXPECT_EQ(j["accesses_this_interval"].num, 100);
  EXPECT_EQ(j["exited_processes"].num, 1);
  EXPECT_EQ(j["table_dropped_full"].num, 9);

  const Json& ctr = j["counters"];
  ASSERT_EQ(ctr.kind, Json::kObject);
  EXPECT_EQ(ctr.obj.size(), static_cast<size_t>(MB_NR_COUNTERS));
  EXPECT_EQ(ctr["samples"].num, 120);
  EXPECT_EQ(ctr["filtered"].num, 20);
  EXPECT_EQ(ctr["dropped_sample_records"].num, 4);
  EXPECT_EQ(ctr["decode_invalid"].num, 0);

  const Json& nodes = j["nodes"];
  ASSERT_EQ(nodes.arr.size(), 2u);
  EXPECT_EQ(nodes[0]["node"].str, "unknown");
  EXPECT_EQ(nodes[0]["accesses"].num, 25);
  EXPECT_EQ(nodes[0]["pages"].num, 2);
  EXPECT_DOUBLE_EQ(nodes[0]["share"].num, 0.25);
  EXPECT_EQ(nodes[1]["node"].kind, Json::kNumber);
  EXPECT_EQ(nodes[1]["node"].num, 0);
  EXPECT_DOUBLE_EQ(nodes[1]["share"].num, 0.75);

  const Json& procs = j["processes"];
  ASSERT_EQ(procs.arr.size(), 2u);
  EXPECT_EQ(procs[0]["pid"].num, 100);
  EXPECT_EQ(procs[0]["comm"].str, "my \"app\"");
  EXPECT_EQ(procs[0]["pages"].num, 30);
  EXPECT_EQ(procs[0]["accesses"].num, 80);
  EXPECT_DOUBLE_EQ(procs[0]["heat"].num, 95.5);

  const Json& hot = j["hottest_regions"];
  ASSERT_EQ(hot.arr.size(), 2u);
  EXPECT_EQ(hot[0]["start"].str, "0x40000000");
  EXPECT_EQ(hot[0]["bytes"].num, 2 << 20);
  EXPECT_EQ(hot[0]["pages"].num, 17);
  EXPECT_DOUBLE_EQ(hot[0]["heat"].num, 60.25);
  EXPECT_EQ(hot[0]["node"].num, 0);
  EXPECT_EQ(hot[1]["node"].str, "unknown");
  EXPECT_EQ(hot[1]["comm"].str, "child");

  const Json& ranges = j["accessed_ranges"];
  ASSERT_EQ(ranges.arr.size(), 2u);
  EXPECT_EQ(ranges[0]["pid"].num, 100);
  EXPECT_EQ(ranges[0]["start"].str, "0x10000");
  EXPECT_EQ(ranges[0]["end"].str, "0x13000");
  EXPECT_EQ(ranges[1]["start"].str, "0x21000");
  EXPECT_EQ(j["accessed_ranges_truncated"].kind, Json::kBool);
  EXPECT_TRUE(j["accessed_ranges_truncated"].b);
}

TEST(ReportJson, EmptyIntervalAndSeveralIntervals) {
  Capture c;
  mb::Reporter rep(mb::Display::kJson, c.file(), true);  // a tty changes nothing in json
  mb::IntervalReport empty;
  empty.interval = 1;
  rep.interval(empty);
  auto r = sample_report();
  rep.interval(r);
  r.interval = 4;
  rep.interval(r);
  auto lines = c.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(c.text().find('\033'), std::string::npos);
  Json e = parse_json(lines[0]);
  EXPECT_EQ(e["interval"].num, 1);
  EXPECT_TRUE(e["nodes"].arr.empty());
  EXPECT_TRUE(e["hottest_regions"].arr.empty());
  EXPECT_FALSE(e["accessed_ranges_truncated"].b);
  EXPECT_EQ(parse_json(lines[2])["interval"].num, 4);
}

TEST(ReportJson, ZeroAccessesGiveZeroShares) {
  Capture c;
  mb::Reporter rep(mb::Display::kJson, c.file(), false);
  mb::IntervalReport r;
  r.nodes = {{0, 0, 3}};
  rep.interval(r);
  Json j = parse_json(c.lines().at(0));
  EXPECT_EQ(j["nodes"][0]["share"].num, 0);
}

TEST(ReportJson, Summary) {
  Capture c;
  mb::Reporter rep(mb::Display::kJson, c.file(), false);
  mb::Summary s;
  s.elapsed_s = 10;
  s.intervals = 10;
  s.sampler = "abit";
  s.counters[MB_CTR_SAMPLES] = 1000;
  s.counters[MB_CTR_EVENTS_LOST] = 2;
  s.counters[MB_CTR_ABIT_REFUSED] = 7;
  s.dropped = 2;
  s.processes_seen = 5;
  s.processes_exited = 3;
  s.table_pages = 77;
  s.table_dropped_full = 1;
  s.node_queries = 50;
  s.node_query_failures = 6;
  s.nodes = {{0, 300, 10}, {1, 100, 4}};
  rep.summary(s);
  auto lines = c.lines();
  ASSERT_EQ(lines.size(), 1u);
  Json j = parse_json(lines[0]);
  EXPECT_EQ(j["type"].str, "summary");
  EXPECT_EQ(j["intervals"].num, 10);
  EXPECT_EQ(j["sampler"].str, "abit");
  EXPECT_EQ(j["dropped"].num, 2);
  EXPECT_EQ(j["processes_seen"].num, 5);
  EXPECT_EQ(j["processes_exited"].num, 3);
  EXPECT_EQ(j["table_pages"].num, 77);
  EXPECT_EQ(j["table_dropped_full"].num, 1);
  EXPECT_EQ(j["node_queries"].num, 50);
  EXPECT_EQ(j["node_query_failures"].num, 6);
  EXPECT_EQ(j["counters"]["samples"].num, 1000);
  EXPECT_EQ(j["counters"]["dropped_process_events"].num, 2);
  EXPECT_EQ(j["counters"]["dropped_abit_refused"].num, 7);
  ASSERT_EQ(j["nodes"].arr.size(), 2u);
  EXPECT_DOUBLE_EQ(j["nodes"][0]["share"].num, 0.75);
  EXPECT_DOUBLE_EQ(j["nodes"][1]["share"].num, 0.25);
}

TEST(ReportHistogram, BarsAndHottestRegions) {
  Capture c;
  mb::Reporter rep(mb::Display::kHistogram, c.file(), false);
  rep.interval(sample_report());
  std::string out = c.text();
  EXPECT_EQ(out.find('\033'), std::string::npos) << "no terminal codes when not a tty";
  EXPECT_NE(out.find("interval 3"), std::string::npos);
  EXPECT_NE(out.find("sampler fault"), std::string::npos);
  EXPECT_NE(out.find("ACCESSES BY MEMORY NODE"), std::string::npos);
  EXPECT_NE(out.find("HOTTEST REGIONS"), std::string::npos);
  EXPECT_NE(out.find("dropped 4"), std::string::npos);
  // One bar line per node; 75% of a 50-wide bar is 38 '#', 25% is 13.
  std::string node0, unknown;
  for (const auto& l : c.lines()) {
    if (l.find("node 0 ") != std::string::npos && l.find('|') != std::string::npos) node0 = l;
    if (l.find("node ? ") != std::string::npos && l.find('|') != std::string::npos) unknown = l;
  }
  ASSERT_FALSE(node0.empty()) << out;
  ASSERT_FALSE(unknown.empty()) << out;
  EXPECT_NE(node0.find("75.0%"), std::string::npos) << node0;
  EXPECT_NE(node0.find("|" + std::string(38, '#') + std::string(12, ' ') + "|"), std::string::npos) << node0;
  EXPECT_NE(node0.find("75 accesses, 5 pages"), std::string::npos) << node0;
  EXPECT_NE(unknown.find("25.0%"), std::string::npos) << unknown;
  EXPECT_EQ(count(unknown, "#"), 13u) << unknown;
  // Regions: pid, comm, start, size, node.
  std::string region;
  for (const auto& l : c.lines())
    if (l.find("0x40000000") != std::string::npos) region = l;
  ASSERT_FALSE(region.empty()) << out;
  EXPECT_NE(region.find("pid 100"), std::string::npos) << region;
  EXPECT_NE(region.find("2.0 MiB"), std::string::npos) << region;
  EXPECT_NE(region.find("17 pages"), std::string::npos) << region;
  EXPECT_NE(region.find("node 0"), std::string::npos) << region;
  EXPECT_LT(out.find("0x40000000"), out.find("0x200000 ")) << "hottest first";
}

TEST(ReportHistogram, TtyRedrawsAndEmptyReport) {
  Capture c;
  mb::Reporter rep(mb::Display::kHistogram, c.file(), true);
  rep.interval(mb::IntervalReport{});
  std::string out = c.text();
  EXPECT_EQ(out.rfind("\033[H\033[2J", 0), 0u) << "starts by clearing the screen";
  EXPECT_NE(out.find("(no accesses this interval)"), std::string::npos);
  EXPECT_NE(out.find("(none yet)"), std::string::npos);
}

TEST(ReportContinuous, HeaderOnceThenOneRowPerInterval) {
  Capture c;
  mb::Reporter rep(mb::Display::kContinuous, c.file(), false);
  auto r = sample_report();
  rep.interval(r);
  r.interval = 4;
  r.hottest.clear();
  rep.interval(r);
  rep.interval(mb::IntervalReport{});
  auto lines = c.lines();
  ASSERT_EQ(lines.size(), 4u) << c.text();
  EXPECT_NE(lines[0].find("time_s"), std::string::npos);
  EXPECT_EQ(count(c.text(), "time_s"), 1u);
  EXPECT_NE(lines[1].find("N?=25%"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("N0=75%"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("100:0x40000000+2.0 MiB"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(" 120 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("| -"), std::string::npos) << lines[2];
  std::istringstream row(lines[2]);
  double t;
  unsigned interval;
  row >> t >> interval;
  EXPECT_DOUBLE_EQ(t, 3.5);
  EXPECT_EQ(interval, 4u);
}

TEST(ReportText, Summary) {
  Capture c;
  mb::Reporter rep(mb::Display::kContinuous, c.file(), false);
  mb::Summary s;
  s.intervals = 2;
  s.sampler = "fault";
  s.dropped = 3;
  s.counters[MB_CTR_PAGE_TABLE_FULL] = 3;
  s.processes_seen = 4;
  s.nodes = {{0, 1, 1}, {2, 3, 1}};
  rep.summary(s);
  std::string out = c.text();
  EXPECT_NE(out.find("SUMMARY"), std::string::npos);
  EXPECT_NE(out.find("2 intervals"), std::string::npos);
  EXPECT_NE(out.find("dropped 3 (page table full 3"), std::string::npos) << out;
  EXPECT_NE(out.find("processes seen 4"), std::string::npos) << out;
  EXPECT_NE(out.find("75.0% of accesses (3)"), std::string::npos) << out;
  EXPECT_EQ(out.find("abit scanner"), std::string::npos) << "shown only when it happened: " << out;
}

TEST(ReportText, SummaryShowsProcessesTheAbitScannerCouldNotTake) {
  Capture c;
  mb::Reporter rep(mb::Display::kContinuous, c.file(), false);
  mb::Summary s;
  s.sampler = "abit";
  s.counters[MB_CTR_ABIT_REFUSED] = 12;
  s.dropped = mb::dropped_total(s.counters);
  rep.summary(s);
  std::string out = c.text();
  EXPECT_NE(out.find("dropped 12 "), std::string::npos) << out;
  EXPECT_NE(out.find("processes the abit scanner could not take 12"), std::string::npos) << out;
}

// The text summary's dropped count is the sum of the parts it lists: the
// sample records lost on the way to a --record file and the processes the
// abit scanner refused were in the total but not among the parts.
TEST(ReportText, SummaryDroppedIsTheSumOfItsParts) {
  Capture c;
  mb::Reporter rep(mb::Display::kContinuous, c.file(), false);
  mb::Summary s;
  s.sampler = "fault";
  for (int i = 0; i < MB_NR_COUNTERS; ++i) s.counters[i] = 10 + i;
  s.dropped = mb::dropped_total(s.counters);
  rep.summary(s);
  const std::string out = c.text();
  const size_t at = out.find("  dropped ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  const size_t open = line.find('('), close = line.find(')');
  ASSERT_NE(open, std::string::npos) << line;
  ASSERT_NE(close, std::string::npos) << line;
  EXPECT_EQ(std::stoull(line.substr(10, open - 10)), s.dropped) << line;
  uint64_t parts = 0;
  std::istringstream in(line.substr(open + 1, close - open - 1));
  for (std::string part; std::getline(in, part, ',');) parts += std::stoull(part.substr(part.find_last_of(' ') + 1));
  EXPECT_EQ(parts, s.dropped) << line;
  EXPECT_NE(line.find("sample records lost " + std::to_string(10 + MB_CTR_SAMPLES_LOST)), std::string::npos) << line;
}

// The summary of a tier run whose mover counted `c` for pid 7's pages of
// one direction and reason.
mb::Summary tier_summary(mb::MoveDirection d, mb::MoveReason r, const mb::MoveCounts& c) {
  mb::Summary s;
  s.intervals = 5;
  s.sampler = "abit";
  mb::MigrationReport m;
  m.mode = "tier";
  m.migrate = true;
  m.mover.by_key[{7, d, r}] = c;
  s.migration = m;
  return s;
}

// Full target nodes: per node in JSON (target_full) and in text (one line),
// and the pages moved to a stand-in (redirected) per direction.
TEST(ReportMigration, FullTargetsAreReported) {
  mb::MoveCounts c;
  c.requested = 700;
  c.moved = 690;
  c.redirected = 612;
  c.failed_by_errno[ENOMEM] = 10;
  mb::Summary s = tier_summary(mb::MoveDirection::kDemote, mb::MoveReason::kWatermark, c);
  mb::MigrationReport& m = *s.migration;
  mb::TargetFullCounts n1;
  n1.refused = 522;
  n1.skipped = 100;
  n1.marks = 2;
  n1.full = true;
  n1.refused_since_mark = 10;
  m.mover.target_full[1] = n1;
  m.mover.target_full[2].taken = 612;
  Capture cj;
  mb::Reporter(mb::Display::kJson, cj.file(), false).summary(s);
  Json j = parse_json(cj.lines().at(0));
  const Json& mig = j["migration"];
  EXPECT_EQ(mig["directions"]["demote"]["redirected"].num, 612);
  EXPECT_EQ(mig["directions"]["demote"]["failed_by_reason"]["ENOMEM"].num, 10);
  ASSERT_EQ(mig["target_full"].arr.size(), 2u);
  const Json& f1 = mig["target_full"][0];
  EXPECT_EQ(f1["node"].num, 1);
  EXPECT_EQ(f1["refused"].num, 522);
  EXPECT_EQ(f1["skipped"].num, 100);
  EXPECT_EQ(f1["taken"].num, 0);
  EXPECT_EQ(f1["marks"].num, 2);
  EXPECT_TRUE(f1["full"].b);
  EXPECT_EQ(mig["target_full"][1]["taken"].num, 612);
  EXPECT_FALSE(mig["target_full"][1]["full"].b);
  Capture ct;
  mb::Reporter(mb::Display::kContinuous, ct.file(), false).summary(s);
  const std::string out = ct.text();
  EXPECT_NE(out.find("full targets: node 1 refused 522 pages (marked 2 times, full now), skipped 100; "
                     "node 2 took 612 in place of a full node"),
            std::string::npos)
      << out;
}

// Pages cancelled because their process exec'd: with the other counts, per
// direction and per process in JSON, on the total line in text.
TEST(ReportMigration, PagesCancelledAtAnExecAreReported) {
  mb::MoveCounts c;
  c.requested = 1000;
  c.moved = 488;
  c.failed_by_errno[EFAULT] = 12;
  c.cancelled_exec = 500;
  const mb::Summary s = tier_summary(mb::MoveDirection::kPromote, mb::MoveReason::kHot, c);
  Capture cj;
  mb::Reporter(mb::Display::kJson, cj.file(), false).summary(s);
  Json j = parse_json(cj.lines().at(0));
  EXPECT_EQ(j["migration"]["directions"]["promote"]["cancelled_exec"].num, 500);
  EXPECT_EQ(j["migration"]["by_process"][0]["cancelled_exec"].num, 500);
  Capture ct;
  mb::Reporter(mb::Display::kContinuous, ct.file(), false).summary(s);
  const std::string out = ct.text();
  EXPECT_NE(out.find("cancelled at exec 500"), std::string::npos) << out;
}

// Pages never attempted (a full queue, the stop, an exec) are named on the
// direction's row and the process's line, so that each adds up in text too:
// requested = moved + failed + not attempted.
TEST(ReportMigration, PagesNeverAttemptedAddUpPerDirectionAndProcess) {
  mb::MoveCounts c;
  c.requested = 1000;
  c.moved = 400;
  c.failed_by_errno[EFAULT] = 100;
  c.dropped_queue_full = 200;
  c.abandoned = 300;
  const mb::Summary s = tier_summary(mb::MoveDirection::kPromote, mb::MoveReason::kHot, c);
  Capture ct;
  mb::Reporter(mb::Display::kContinuous, ct.file(), false).summary(s);
  const std::string out = ct.text();
  size_t row = out.find("  promote ");
  ASSERT_NE(row, std::string::npos) << out;
  EXPECT_NE(out.substr(row, out.find('\n', row) - row).find("EFAULT=100; not attempted 500 (queue full 200, abandoned 300)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("requested 1000, moved 400 (0 B), failed 100 (EFAULT=100); not attempted 500 (queue full 200, "
                     "abandoned 300)\n"),
            std::string::npos)
      << out;
}

TEST(CounterName, UniqueAndKnown) {
  std::set<std::string> names;
  for (int i = 0; i < MB_NR_COUNTERS; ++i) {
    std::string n = mb::counter_name(i);
    EXPECT_NE(n, "unknown") << i;
    EXPECT_FALSE(n.empty()) << i;
    EXPECT_EQ(n.find(' '), std::string::npos) << n;
    EXPECT_TRUE(names.insert(n).second) << "duplicate " << n;
  }
  EXPECT_STREQ(mb::counter_name(MB_NR_COUNTERS), "unknown");
  EXPECT_STREQ(mb::counter_name(-1), "unknown");
  EXPECT_STREQ(mb::counter_name(MB_CTR_SAMPLES), "samples");
}

TEST(DroppedTotal, SumsOnlyDropCounters) {
  std::array<uint64_t, MB_NR_COUNTERS> c{};
  for (int i = 0; i < MB_NR_COUNTERS; ++i) c[i] = 1ull << i;
  uint64_t want = c[MB_CTR_PAGE_TABLE_FULL] + c[MB_CTR_TASK_TABLE_FULL] + c[MB_CTR_TRACKED_FULL] +
                  c[MB_CTR_EVENTS_LOST] + c[MB_CTR_SAMPLES_LOST] + c[MB_CTR_ABIT_REFUSED];
  EXPECT_EQ(mb::dropped_total(c), want);
  std::array<uint64_t, MB_NR_COUNTERS> zero{};
  EXPECT_EQ(mb::dropped_total(zero), 0u);
  // Every counter that is not a drop can be huge without changing the total.
  std::array<uint64_t, MB_NR_COUNTERS> others{};
  for (int i : {MB_CTR_SAMPLES, MB_CTR_ACCEPTED, MB_CTR_FILTERED, MB_CTR_NO_ADDRESS, MB_CTR_KERNEL_ADDRESS,
                MB_CTR_LANE_SATURATED, MB_CTR_LANE_NONE, MB_CTR_NODE_OUT_OF_RANGE, MB_CTR_DECODE_INVALID})
    others[i] = 1000000;
  EXPECT_EQ(mb::dropped_total(others), 0u);
}

TEST(Format, BytesAndHex) {
  EXPECT_EQ(mb::format_bytes(0), "0 B");
  EXPECT_EQ(mb::format_bytes(1023), "1023 B");
  EXPECT_EQ(mb::format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(mb::format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(mb::format_bytes(2 << 20), "2.0 MiB");
  EXPECT_EQ(mb::format_bytes(3ull << 30), "3.0 GiB");
  EXPECT_EQ(mb::format_bytes(1ull << 40), "1.0 TiB");
  EXPECT_EQ(mb::format_bytes(1ull << 50), "1024.0 TiB");
  EXPECT_EQ(mb::format_hex(0), "0x0");
  EXPECT_EQ(mb::format_hex(0xdeadbeef), "0xdeadbeef");
  EXPECT_EQ(mb::format_hex(~0ull), "0xffffffffffffffff");
}

}  // namespace
