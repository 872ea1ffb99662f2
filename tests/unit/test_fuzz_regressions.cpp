// Regression tests for what the libFuzzer targets in fuzz/ found
// (docs/fuzzing.md, "Findings"). Each test names its target and reproduces
// the input that failed before the fix.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "membalancer/json.h"
#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "membalancer/sysfs.h"
#include "membalancer/tiers.h"
#include "membalancer/topology.h"
#include "profiler/report.h"
#include "temp_tree.h"
#include "written.h"

namespace {

// fuzz_json_csv: json_quote() copied bytes >= 0x80 through unchecked, so a
// process name or path that is not UTF-8 made a JSON line that strict
// parsers (nlohmann::json, Python's json) reject. Ill-formed sequences now
// become U+FFFD; well-formed UTF-8 is unchanged.
TEST(FuzzRegressions, JsonQuoteReplacesIllFormedUtf8) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(mb::json_quote("\xc0\xaf"), "\"" + fffd + fffd + "\"");  // the input the fuzzer found: overlong '/'
  EXPECT_EQ(mb::json_quote("a\xff" "b"), "\"a" + fffd + "b\"");
  EXPECT_EQ(mb::json_quote("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a surrogate
  EXPECT_EQ(mb::json_quote("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // above U+10FFFF
  EXPECT_EQ(mb::json_quote("ab\xe2\x82"), "\"ab" + fffd + "\"");  // truncated: one U+FFFD for the prefix
  EXPECT_EQ(mb::json_quote("\xe2\x82" "x"), "\"" + fffd + "x\"");
  EXPECT_EQ(mb::json_quote("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  for (const char* s : {"\xc0\xaf", "\xff\xfe", "\xed\xa0\x80", "x\x80y", "\xf8\x88\x80\x80\x80"}) {
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(mb::json_quote(s))) << mb::json_quote(s);
    EXPECT_TRUE(j.is_string());
  }
}

std::string report(const mb::ProfileReader& r, const mb::prof::Aggregate& agg, const char* by, const char* format) {
  mb::prof::ReportOptions o;
  o.by = by;
  o.format = format;
  return mb_test::written_by([&](FILE* f) { mb::prof::print_report(f, r, agg, o); });
}

// fuzz_json_csv: csv_cell() quoted a cell holding a comma, quote or LF but
// not one holding a bare CR, which CSV readers take as a line end (RFC 4180
// wants such fields quoted). A process may name itself "cr\rhere".
// The JSON report of a process with a non-UTF-8 name must parse, too.
TEST(FuzzRegressions, CsvQuotesCarriageReturnAndJsonReportIsUtf8) {
  mb_test::TempTree dir("mb_fuzzreg");
  const std::string path = dir.path("r.prof");
  {
    mb::ProfileStart st;
    st.sampler = "fault";
    mb::ProfileWriter w(path, st);
    w.add_process(0, 42, 1, mb::kProcSeen, "cr\rhere");
    w.add_process(0, 43, 1, mb::kProcSeen, "bad\xff");
    mb_sample s{};
    s.tgid = s.tid = 42;
    s.vaddr = 0x401000;
    s.flags = MB_ACC_VADDR;
    w.add_sample(s);
    s.tgid = s.tid = 43;
    w.add_sample(s);
    w.finish(1, 0);
  }
  mb::ProfileReader r(path);
  auto agg = std::make_unique<mb::prof::Aggregate>();
  mb::prof::aggregate_file(r, agg.get());
  const std::string csv = report(r, *agg, "process", "csv");
  EXPECT_NE(csv.find("42,1,\"cr\rhere\",1,1,50.0,1,0.000\n"), std::string::npos) << csv;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(report(r, *agg, "process", "json")));
  ASSERT_EQ(j["processes"].size(), 2u);
  EXPECT_EQ(j["processes"][0]["name"], "cr\rhere");
  EXPECT_EQ(j["processes"][1]["name"], "bad\xEF\xBF\xBD");
}

void one_node(const mb_test::TempTree& t) {
  t.write("devices/system/node/online", "0\n");
  t.write("devices/system/node/node0/cpulist", "0\n");
  t.write("devices/system/node/node0/meminfo", "Node 0 MemTotal: 1024 kB\nNode 0 MemFree: 512 kB\n");
}

// fuzz_sysfs: a block_size_bytes that is not hexadecimal made read_topology()
// throw std::invalid_argument (from std::stoull), which is neither UsageError
// nor SystemError. It now reads as no memory-block table.
TEST(FuzzRegressions, BadBlockSizeMeansNoBlockTable) {
  for (const char* text : {"zz\n", "\n", "-1\n", "8000000x\n", "fffffffffffffffffffff\n"}) {
    mb_test::TempTree t("mb_fuzzreg");
    one_node(t);
    t.write("devices/system/memory/block_size_bytes", text);
    t.mkdir("devices/system/memory/memory0/node0");
    mb::Topology topo;
    ASSERT_NO_THROW(topo = mb::read_topology(t.path())) << text;
    EXPECT_EQ(topo.mem_block_bytes, 0u) << text;
    EXPECT_EQ(topo.node_of_phys(0), -1) << text;
  }
  mb_test::TempTree t("mb_fuzzreg");
  one_node(t);
  t.write("devices/system/memory/block_size_bytes", "8000000\n");
  t.mkdir("devices/system/memory/memory1/node0");
  mb::Topology topo = mb::read_topology(t.path());
  EXPECT_EQ(topo.mem_block_bytes, 0x8000000u);
  EXPECT_EQ(topo.node_of_phys(0x8000000), 0);
}

// fuzz_sysfs: the number in "memoryN" (and "nodeN", "memory_tierN") was
// accumulated in an int without a bound: memory2147483648 overflowed to a
// negative block number, which passed the size check and was written far
// before the table (a heap write out of bounds). Absurd numbers are now not
// taken as entries.
TEST(FuzzRegressions, HugeMemoryBlockNumberIsIgnored) {
  mb_test::TempTree t("mb_fuzzreg");
  one_node(t);
  t.write("devices/system/memory/block_size_bytes", "8000000\n");
  t.mkdir("devices/system/memory/memory2147483648/node0");
  t.mkdir("devices/system/memory/memory99999999999/node0");
  t.mkdir("devices/system/memory/memory2/node4294967296");
  t.mkdir("devices/system/memory/memory3/node0");
  mb::Topology topo;
  ASSERT_NO_THROW(topo = mb::read_topology(t.path()));
  EXPECT_EQ(topo.mem_block_node.size(), 4u);
  EXPECT_EQ(topo.node_of_phys(3 * 0x8000000ull), 0);
  EXPECT_EQ(topo.node_of_phys(2 * 0x8000000ull), -1);
}

// fuzz_tier_spec: each list item was bounded (at most 0-4194304) but the
// list was not, so a 2 KB --tiers value ("0-4194304," 200 times) built a
// vector of 800 million ints before any node was checked: an out-of-memory
// crash instead of a UsageError. parse_int_list now refuses more than
// 4194305 entries in all.
TEST(FuzzRegressions, IntListIsBoundedInTotal) {
  EXPECT_EQ(mb::parse_int_list("0-4194304", "x").size(), 4194305u);  // the largest single item still parses
  EXPECT_THROW(mb::parse_int_list("0-4194304,0", "x"), mb::UsageError);
  std::string spec;
  for (int i = 0; i < 200; ++i) spec += "0-4194304,";
  spec += "0:1";
  mb::Topology topo;
  for (int id = 0; id < 2; ++id) {
    mb::NumaNode n;
    n.id = id;
    n.mem_total_bytes = 1 << 30;
    topo.nodes.push_back(n);
  }
  try {
    mb::parse_tier_spec(spec, topo);
    FAIL() << "no UsageError";
  } catch (const mb::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("entries"), std::string::npos) << e.what();
  }
}

}  // namespace
