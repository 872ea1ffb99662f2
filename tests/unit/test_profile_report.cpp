// Profiler report: aggregation per node, process, page and region, latency
// percentiles, and the three output formats.
#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "membalancer/profile_file.h"
#include "profiler/report.h"
#include "tests/unit/profile_builders.h"
#include "tests/unit/temp_tree.h"
#include "written.h"

using namespace mb;
using namespace mb::prof;
using mb_test::code_and_data;
using mb_test::fault_profile;
using mb_test::maps_line;

namespace {

mb_sample access(uint32_t tgid, uint64_t vaddr, uint16_t node, uint64_t t = 0) {
  mb_sample s{};
  s.time_ns = t;
  s.tgid = s.tid = tgid;
  s.vaddr = vaddr;
  s.mem_node = node;
  s.flags = MB_ACC_VADDR;
  return s;
}

// The report of the file `r` reads, as print_report writes it with `o`.
std::string report_of(ProfileReader& r, const ReportOptions& o) {
  Aggregate agg;
  aggregate_file(r, &agg);
  return mb_test::written_by([&](FILE* f) { print_report(f, r, agg, o); });
}

// The same as JSON.
nlohmann::json json_report_of(ProfileReader& r, ReportOptions o = {}) {
  o.format = "json";
  return nlohmann::json::parse(report_of(r, o));
}

}  // namespace

TEST(ProfileReport, AggregatesNodesProcessesPagesAndRegions) {
  std::vector<mb_sample> v;
  // Process 10: a hot 2 MiB region at 0x40000000 (8 pages x 100), node 1.
  for (int rep = 0; rep < 100; ++rep)
    for (uint64_t p = 0; p < 8; ++p) v.push_back(access(10, 0x40000000 + p * 4096 + 8, 1));
  // Process 10: a cold region, 20 pages once each, node 0.
  for (uint64_t p = 0; p < 20; ++p) v.push_back(access(10, 0x80000000 + p * 4096, 0));
  // Process 20 (a child): 3 pages x 10 on node 0.
  for (int rep = 0; rep < 10; ++rep)
    for (uint64_t p = 0; p < 3; ++p) v.push_back(access(20, 0x40000000 + p * 4096, 0));
  // Code samples without an address.
  mb_sample code{};
  code.tgid = 20;
  code.ip = 0x1234;
  code.flags = MB_ACC_IP;
  v.push_back(code);

  Aggregate agg;
  agg.add(v.data(), v.size());
  agg.finish();
  EXPECT_EQ(agg.samples, 851u);
  EXPECT_EQ(agg.with_address, 850u);
  EXPECT_EQ(agg.with_ip, 1u);
  EXPECT_EQ(agg.nodes[1].accesses, 800u);
  EXPECT_EQ(agg.nodes[1].pages, 8u);
  EXPECT_EQ(agg.nodes[0].accesses, 50u);
  EXPECT_EQ(agg.nodes[0].pages, 23u);
  ASSERT_NE(agg.processes.find(10), nullptr);
  EXPECT_EQ(agg.processes.find(10)->accesses, 820u);
  EXPECT_EQ(agg.processes.find(10)->pages, 28u);
  EXPECT_EQ(agg.processes.find(20)->samples, 31u);
  EXPECT_EQ(agg.processes.find(20)->pages, 3u);

  auto regions = hottest_regions(agg, 2 << 20, 3);
  ASSERT_EQ(regions.size(), 3u);
  EXPECT_EQ(regions[0].tgid, 10u);
  EXPECT_EQ(regions[0].start, 0x40000000u);
  EXPECT_EQ(regions[0].accesses, 800u);
  EXPECT_EQ(regions[0].node, 1);
  EXPECT_EQ(regions[1].tgid, 20u);  // the child's 30 accesses
  EXPECT_EQ(regions[1].accesses, 30u);
  EXPECT_EQ(regions[2].accesses, 20u);
  auto pages = hottest_pages(agg, 2);
  EXPECT_EQ(pages[0].accesses, 100u);
  EXPECT_EQ(pages[0].tgid, 10u);
}

TEST(ProfileReport, RegionsRankByAccessesThenAddress) {
  std::vector<mb_sample> v;
  for (int i = 0; i < 30; ++i) v.push_back(access(20, 0x40000000, 0));
  for (int i = 0; i < 20; ++i) v.push_back(access(10, 0x80000000 + i * 4096, 0));
  Aggregate agg;
  agg.add(v.data(), v.size());
  agg.finish();
  auto r = hottest_regions(agg, 2 << 20, 10);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].tgid, 20u);
  EXPECT_EQ(r[0].pages, 1u);
  EXPECT_EQ(r[1].pages, 20u);
}

TEST(ProfileReport, LatencyPercentilesAndBuckets) {
  for (uint32_t l : {0u, 1u, 7u, 8u, 9u, 100u, 1000u, 123456u}) {
    int b = latency_bucket(l);
    EXPECT_GE(b, 0);
    EXPECT_LT(b, kLatencyBuckets);
    if (l > 0) {
      EXPECT_GE(latency_bucket(l), latency_bucket(l - 1));
    }
  }
  NodeStats n;
  for (uint32_t l = 1; l <= 1000; ++l) {
    ++n.latency[latency_bucket(l)];
    ++n.latency_samples;
  }
  uint64_t p50 = latency_percentile(n, 0.5), p99 = latency_percentile(n, 0.99);
  EXPECT_GE(p50, 400u);  // 12.5% bucket precision
  EXPECT_LE(p50, 500u);
  EXPECT_GE(p99, 850u);
  EXPECT_LE(p99, 990u);
}

TEST(ProfileReport, PrintsTextCsvAndJson) {
  mb_test::TempTree dir("mbrep");
  std::string path = dir.path("r.prof");
  {
    ProfileStart st;
    st.sampler = "fault";
    ProfileWriter w(path, st);
    w.add_process(0, 10, 1, kProcSeen, "hot one");
    w.add_maps(0, 10, parse_proc_maps("40000000-40200000 rw-p 00000000 00:00 0 [heap]\n"));
    for (int i = 0; i < 50; ++i) w.add_sample(access(10, 0x40000000 + (i % 5) * 4096, 0, i));
    w.finish(0, 0);
  }
  ProfileReader r(path);
  auto capture = [&](const ReportOptions& o) { return report_of(r, o); };

  ReportOptions o;
  std::string text = capture(o);
  EXPECT_NE(text.find("hot one"), std::string::npos) << text;
  EXPECT_NE(text.find("heap"), std::string::npos) << text;
  o.format = "csv";
  o.by = "region";
  std::string csv = capture(o);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "rank,pid,name,start,end,accesses,share_pct,pages,node,mapping");
  EXPECT_NE(csv.find("1,10,hot one,0x40000000,0x40200000,50,100.0,5,0,heap"), std::string::npos) << csv;
  // A region far larger than the mapping: its middle is unmapped, its
  // accesses are in the heap (it was labelled "unmapped").
  o.region_bytes = 1ULL << 40;
  csv = capture(o);
  EXPECT_NE(csv.find(",heap"), std::string::npos) << csv;
  o.region_bytes = 2ULL << 20;
  o.format = "json";
  o.by = "";
  auto j = nlohmann::json::parse(capture(o));
  EXPECT_EQ(j["profile"]["samples"], 50);
  EXPECT_EQ(j["regions"][0]["accesses"], 50);
  EXPECT_EQ(j["processes"][0]["name"], "hot one");
  EXPECT_EQ(j["nodes"][0]["pages"], 5);
  // Numbers are JSON numbers (node ids were strings), and one not known,
  // "?" in text, is null: these samples carry no latency.
  EXPECT_EQ(j["nodes"][0]["node"], 0);
  EXPECT_EQ(j["regions"][0]["node"], 0);
  EXPECT_EQ(j["pages"][0]["node"], 0);
  EXPECT_TRUE(j["nodes"][0]["lat_p50"].is_null()) << j["nodes"][0];
  o.by = "bogus";
  EXPECT_THROW(capture(o), std::exception);
}

// Losses stored in the file (ring-buffer drops, lost process events,
// processes not tracked) are reported, never left out.
TEST(ProfileReport, RecordedLossesAreReported) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("lost.prof");
  {
    ProfileStart st;
    st.sampler = "fault";
    ProfileWriter w(path, st);
    w.add_process(0, 10, 1, kProcSeen, "lossy");
    for (int i = 0; i < 50; ++i) w.add_sample(access(10, 0x40000000 + (i % 5) * 4096, 0, i));
    std::array<uint64_t, MB_NR_COUNTERS> c{};
    c[MB_CTR_SAMPLES_LOST] = 7;
    c[MB_CTR_EVENTS_LOST] = 3;
    c[MB_CTR_TRACKED_FULL] = 2;
    w.add_counters(100, c);
    w.finish(0, 7);
  }
  ProfileReader r(path);
  const ProfileLosses lost = profile_losses(r.info());
  EXPECT_EQ(lost.samples, 7u);
  EXPECT_EQ(lost.events, 3u);
  EXPECT_EQ(lost.untracked, 2u);
  auto capture = [&](const ReportOptions& o) { return report_of(r, o); };
  ReportOptions o;
  const std::string text = capture(o);
  EXPECT_NE(text.find("3 process events lost"), std::string::npos) << text;
  EXPECT_NE(text.find("2 new processes not tracked"), std::string::npos) << text;
  o.format = "json";
  auto j = nlohmann::json::parse(capture(o));
  EXPECT_EQ(j["profile"]["samples_lost"], 7);
  EXPECT_EQ(j["profile"]["events_lost"], 3);
  EXPECT_EQ(j["profile"]["processes_not_tracked"], 2);
}

// A process's share is of the accesses, as in the other tables: a cpu-clock
// recording (instruction pointers only) showed 100% beside 0 accesses.
TEST(ProfileReport, ProcessShareIsOfTheAccesses) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("cc.prof");
  {
    ProfileStart st;
    st.sampler = "cpu-clock";
    ProfileWriter w(path, st);
    w.add_process(0, 10, 1, kProcSeen, "busy");
    for (int i = 0; i < 20; ++i) {
      mb_sample s{};
      s.time_ns = static_cast<uint64_t>(i);
      s.tgid = s.tid = 10;
      s.ip = 0x1000;
      s.flags = MB_ACC_IP;
      w.add_sample(s);
    }
    w.finish(0, 0);
  }
  ProfileReader r(path);
  auto j = json_report_of(r);
  EXPECT_EQ(j["processes"][0]["samples"], 20) << j.dump();
  EXPECT_EQ(j["processes"][0]["accesses"], 0) << j.dump();
  EXPECT_EQ(j["processes"][0]["share_pct"], 0.0) << j.dump();
}

// Samples are attributed with the maps and the name of their time: pid 100
// is a (non-PIE) wrapper at 0x400000 that execs another program at the same
// address, exits, and the pid is reused by a third; pid 200 unmaps a library
// and maps another at the same address. Each phase keeps its own program
// (the latest maps used to answer for all, the last name for the pid).
TEST(ProfileReport, SamplesAreAttributedWithTheMapsOfTheirTime) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("phases.prof");
  const uint64_t t0 = 1000000000;  // the recording's start (monotonic)
  {
    ProfileWriter w = fault_profile(path, t0);
    auto phase = [&](uint64_t t, uint32_t tgid, ProfileProcessEvent ev, const char* name, const char* exe,
                     const char* data, int samples) {
      w.add_process(t, tgid, 1, ev, name);
      w.add_maps(t, tgid, parse_proc_maps(maps_line("400000-401000", exe) + maps_line("600000-601000", data)));
      for (int i = 0; i < samples; ++i) w.add_sample(code_and_data(tgid, 0x400100, 0x600000, t + 10 + i));
    };
    const uint64_t ms = 1000000;
    phase(t0 + 100 * ms, 100, kProcSeen, "wrapper", "/nonexistent/wrapper", "/nonexistent/wrapper.dat", 3);
    phase(t0 + 200 * ms, 100, kProcRename, "target", "/nonexistent/target", "/nonexistent/target.dat", 5);
    w.add_process(t0 + 300 * ms, 100, 0, kProcExit, "target");
    // The new process of pid 100 is noticed after its first samples.
    for (int i = 0; i < 2; ++i) w.add_sample(code_and_data(100, 0x400100, 0x600000, t0 + 400 * ms + i));
    phase(t0 + 500 * ms, 100, kProcFork, "again", "/nonexistent/again", "/nonexistent/again.dat", 7);
    // The loader reads ld.so.cache, unmaps it, and the place is anonymous
    // memory next: the same program, whose data pages stay one row each.
    w.add_process(t0 + 100 * ms, 200, 1, kProcSeen, "dl");
    w.add_maps(t0 + 100 * ms, 200,
               parse_proc_maps(maps_line("700000-701000", "/etc/ld.so.cache") + maps_line("800000-801000", "")));
    w.add_sample(code_and_data(200, 0x800100, 0x800100, t0 + 150 * ms));
    w.add_maps(t0 + 200 * ms, 200, parse_proc_maps(maps_line("700000-702000", "") + maps_line("800000-801000", "")));
    for (int i = 0; i < 4; ++i) w.add_sample(code_and_data(200, 0x800100, 0x800100, t0 + 250 * ms + i));
    w.finish(t0 + 1000 * ms, 0);
  }
  ProfileReader r(path);
  auto j = json_report_of(r);
  // Two processes of pid 100 (told apart by name and start), one of pid 200.
  ASSERT_EQ(j["processes"].size(), 3u) << j["processes"].dump();
  std::map<std::string, nlohmann::json> procs;
  for (const auto& p : j["processes"]) procs[p["name"]] = p;
  ASSERT_EQ(procs.count("wrapper > target"), 1u) << j["processes"].dump();
  ASSERT_EQ(procs.count("again"), 1u) << j["processes"].dump();
  EXPECT_EQ(procs["wrapper > target"]["pid"], 100);
  EXPECT_EQ(procs["wrapper > target"]["samples"], 8);
  EXPECT_EQ(procs["wrapper > target"]["start_s"], 0.1);
  EXPECT_EQ(procs["again"]["pid"], 100);
  EXPECT_EQ(procs["again"]["samples"], 9);
  EXPECT_EQ(procs["again"]["start_s"], 0.5);
  EXPECT_EQ(procs["dl"]["samples"], 5);
  // Code: each phase's samples in its own program.
  std::map<std::string, int> modules;
  for (const auto& s : j["symbols"]) modules[s["module"].get<std::string>().substr(0, s["module"].get<std::string>().find(' '))] += s["samples"].get<int>();
  EXPECT_EQ(modules["wrapper"], 3) << j["symbols"].dump();
  EXPECT_EQ(modules["target"], 5) << j["symbols"].dump();
  EXPECT_EQ(modules["again"], 9) << j["symbols"].dump();

  // Data: page 0x600000 of pid 100 is three pages, each in its own file.
  std::map<std::string, int> pages;
  for (const auto& p : j["pages"])
    if (p["page"] == "0x600000") pages[p["mapping"].get<std::string>() + " " + p["name"].get<std::string>()] = p["accesses"];
  EXPECT_EQ(pages["/nonexistent/wrapper.dat wrapper"], 3) << j["pages"].dump();
  EXPECT_EQ(pages["/nonexistent/target.dat target"], 5) << j["pages"].dump();
  EXPECT_EQ(pages["/nonexistent/again.dat again"], 9) << j["pages"].dump();
  // pid 200's page: one row of 5 (a remap of another address split it in two).
  int rows = 0;
  for (const auto& p : j["pages"])
    if (p["page"] == "0x800000") {
      ++rows;
      EXPECT_EQ(p["accesses"], 5) << j["pages"].dump();
    }
  EXPECT_EQ(rows, 1) << j["pages"].dump();
}

// dlclose, then dlopen of another library placed at the same address, in
// one program: the samples at that address before the swap are the first
// library's code and page, those after it the second's (the report keyed
// pages and code by address per program and looked them all up at one time:
// all 8 counted as liba's). Everything else of the program stays one row:
// its heap page, its region, its process; and the loader's unmapping of
// ld.so.cache before, with anonymous memory there next, changes nothing.
TEST(ProfileReport, ALibrarySwappedAtTheSameAddressIsItsOwnCodeAndPages) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("swap.prof");
  mb_test::write_library_swap(path, 1000000000);
  ProfileReader r(path);
  ReportOptions o;
  o.top = 20;
  auto j = json_report_of(r, o);
  ASSERT_EQ(j["processes"].size(), 1u) << j["processes"].dump();
  EXPECT_EQ(j["processes"][0]["samples"], 9);
  EXPECT_EQ(j["processes"][0]["pages"], 3) << "the heap page, the page of each library";
  std::map<std::string, int> modules;
  for (const auto& s : j["symbols"]) {
    const std::string m = s["module"];
    modules[m.substr(0, m.find(' '))] += s["samples"].get<int>();
  }
  EXPECT_EQ(modules["liba.so"], 3) << j["symbols"].dump();
  EXPECT_EQ(modules["libb.so"], 6) << j["symbols"].dump();
  // "address mapping" -> accesses of a table's rows
  auto accesses = [&](const char* table, const char* address) {
    std::map<std::string, int> rows;
    for (const auto& row : j[table])
      rows[row[address].get<std::string>() + " " + row["mapping"].get<std::string>()] = row["accesses"];
    return rows;
  };
  std::map<std::string, int> pages = accesses("pages", "page");
  EXPECT_EQ(pages.size(), 3u) << j["pages"].dump();
  EXPECT_EQ(pages["0x600000 heap"], 2) << j["pages"].dump();
  EXPECT_EQ(pages["0x7f0000000000 /nonexistent/liba.so"], 2) << j["pages"].dump();
  EXPECT_EQ(pages["0x7f0000000000 /nonexistent/libb.so"], 5) << j["pages"].dump();
  std::map<std::string, int> regions = accesses("regions", "start");
  EXPECT_EQ(regions.size(), 2u) << j["regions"].dump();
  EXPECT_EQ(regions["0x600000 heap"], 2) << j["regions"].dump();
  EXPECT_EQ(regions["0x7f0000000000 /nonexistent/libb.so"], 7) << j["regions"].dump();
}

// --top bounds the processes table of the overview too, as every other table.
TEST(ProfileReport, TopBoundsTheOverviewsProcesses) {
  std::vector<mb_sample> v;
  for (uint32_t tgid = 10; tgid < 15; ++tgid)
    for (uint32_t i = 0; i < tgid; ++i) v.push_back(access(tgid, 0x40000000, 0));
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("five.prof");
  {
    ProfileStart st;
    st.sampler = "fault";
    ProfileWriter w(path, st);
    w.add_samples(v.data(), v.size());
    w.finish(0, 0);
  }
  ProfileReader r(path);
  ReportOptions o;
  o.top = 2;
  auto j = json_report_of(r, o);
  ASSERT_EQ(j["processes"].size(), 2u) << j["processes"].dump();
  EXPECT_EQ(j["processes"][0]["pid"], 14);
  EXPECT_EQ(j["processes"][1]["pid"], 13);
  const std::string text = report_of(r, o);  // text: json_report_of took o by value
  EXPECT_NE(text.find("processes: 5"), std::string::npos) << text;  // the summary counts them all
}

// The kernel's exec event starts a new address space even when nothing else
// tells: a program that execs itself keeps its name and maps the same file at
// the same addresses, and its pages before and after are not the same pages.
TEST(ProfileReport, AnExecEventStartsANewSpanUnderTheSameName) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("selfexec.prof");
  const uint64_t t0 = 1000000000, ms = 1000000;
  {
    ProfileWriter w = fault_profile(path, t0);
    const auto maps = parse_proc_maps(maps_line("400000-401000", "/nonexistent/self"));
    w.add_process(t0 + 100 * ms, 300, 1, kProcSeen, "self");
    w.add_maps(t0 + 100 * ms, 300, maps);
    w.add_process(t0 + 200 * ms, 300, 1, kProcExec, "self");
    w.add_maps(t0 + 200 * ms, 300, maps);
    w.finish(t0 + 300 * ms, 0);
  }
  ProfileReader r(path);
  ASSERT_TRUE(r.ok()) << r.error();
  ProfileProcesses procs(r.info());
  const int64_t before = procs.span_at(300, t0 + 150 * ms), after = procs.span_at(300, t0 + 250 * ms);
  ASSERT_GE(before, 0);
  EXPECT_NE(before, after);
  EXPECT_EQ(procs.name_at(300, t0 + 250 * ms), "self");
  EXPECT_EQ(procs.lives().size(), 1u);  // one process, two images
}

// `profiler record -- app` forks itself and holds the child until the BPF
// side tracks it: until its exec the child is the profiler (its samples were
// a row "profiler > app"). The recorder writes that time as kProcCommand,
// named by the command: the row is the command's, its first samples said
// apart (the header line, json samples_before_command), and their pages and
// code stay the profiler's, labelled "app (before exec)".
TEST(ProfileReport, TheCommandsSamplesBeforeItsExecAreItsRowSaidApart) {
  mb_test::TempTree dir("mbreport");
  const std::string path = dir.path("command.prof");
  const uint64_t t0 = 1000000000, ms = 1000000;
  {
    ProfileWriter w = fault_profile(path, t0);
    auto program = [&](uint64_t t, uint32_t tgid, ProfileProcessEvent ev, const char* exe, const char* data,
                       int samples) {
      w.add_process(t, tgid, 1, ev, "app");
      w.add_maps(t, tgid, parse_proc_maps(maps_line("400000-401000", exe) + maps_line("600000-601000", data)));
      for (int i = 0; i < samples; ++i) w.add_sample(code_and_data(tgid, 0x400100, 0x600000, t + 10 + i));
    };
    program(t0 + 100 * ms, 300, kProcCommand, "/nonexistent/profiler", "/nonexistent/profiler.dat", 3);
    program(t0 + 200 * ms, 300, kProcExec, "/nonexistent/app", "/nonexistent/app.dat", 5);
    // Pid 400's exec event was lost: the next look saw the command's name,
    // the same name. It is the exec all the same.
    program(t0 + 100 * ms, 400, kProcCommand, "/nonexistent/profiler", "/nonexistent/profiler.dat", 2);
    program(t0 + 200 * ms, 400, kProcRename, "/nonexistent/app", "/nonexistent/app.dat", 4);
    w.finish(t0 + 300 * ms, 0);
  }
  ProfileReader r(path);
  ReportOptions o;
  o.top = 20;
  auto j = json_report_of(r, o);
  EXPECT_EQ(j["profile"]["samples_before_command"], 5) << j["profile"].dump();
  ASSERT_EQ(j["processes"].size(), 2u) << j["processes"].dump();
  for (const auto& p : j["processes"]) EXPECT_EQ(p["name"], "app") << j["processes"].dump();
  EXPECT_EQ(j["processes"][0]["samples"], 8);
  EXPECT_EQ(j["processes"][1]["samples"], 6);
  std::map<std::string, int> pages;  // "pid name mapping" -> accesses
  for (const auto& p : j["pages"])
    pages[std::to_string(p["pid"].get<int>()) + " " + p["name"].get<std::string>() + " " +
          p["mapping"].get<std::string>()] = p["accesses"];
  EXPECT_EQ(pages["300 app (before exec) /nonexistent/profiler.dat"], 3) << j["pages"].dump();
  EXPECT_EQ(pages["300 app /nonexistent/app.dat"], 5) << j["pages"].dump();
  EXPECT_EQ(pages["400 app (before exec) /nonexistent/profiler.dat"], 2) << j["pages"].dump();
  EXPECT_EQ(pages["400 app /nonexistent/app.dat"], 4) << j["pages"].dump();
  const std::string text = report_of(r, o);
  EXPECT_NE(text.find("was the profiler starting it: "), std::string::npos) << text;
}
