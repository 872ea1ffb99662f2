// --sampler abit with the helper module (VM only: the build machine cannot
// load modules; tests/vm/tests/trace_abit.sh runs these in a guest). A
// process sweeps a known 32 MiB range of a 256 MiB region; membalancer must
// report that range with page-level precision and recall >= 95%, and the
// cold rest not at all.
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <set>

#include "membalancer/profile_file.h"
#include "tests/integration/harness.h"

using namespace mbtest;
using nlohmann::json;

namespace {

struct Score {
  double precision = 0, recall = 0;
  uint64_t reported = 0, cold_reported = 0;
};

// Pages pid's interval `line` reports as accessed, scored against the hot
// range; cold = the rest of the region.
Score score(const json& line, int pid, uint64_t hot_start, uint64_t hot_size, uint64_t region_start,
            uint64_t region_size) {
  std::set<uint64_t> pages;
  for (const auto& a : line["accessed_ranges"]) {
    if (a["pid"] != pid) continue;
    uint64_t s = std::stoull(a["start"].get<std::string>(), nullptr, 16);
    uint64_t e = std::stoull(a["end"].get<std::string>(), nullptr, 16);
    for (uint64_t p = s; p < e; p += 4096) pages.insert(p);
  }
  Score sc;
  uint64_t hit = 0;
  for (uint64_t p : pages) {
    if (p >= hot_start && p < hot_start + hot_size) ++hit;
    else if (p >= region_start && p < region_start + region_size) ++sc.cold_reported;
  }
  sc.reported = pages.size();
  sc.precision = pages.empty() ? 0 : static_cast<double>(hit) / pages.size();
  sc.recall = static_cast<double>(hit) / (hot_size / 4096);
  return sc;
}

void run_hot_range_case(const std::string& thp) {
  struct stat st;
  if (stat("/dev/membalancer_abit", &st) != 0) {
    if (in_ci()) FAIL() << "CI=true: /dev/membalancer_abit missing (the module must be loaded)";
    GTEST_SKIP() << "helper module not loaded";
  }
  std::string dir = temp_dir();
  // The huge-page case needs 2 MiB blocks free: after the guest's earlier
  // tests its free memory can be too fragmented for them (once 22 of the 32
  // MiB came as huge pages), so compact it first.
  if (thp == "on") {
    std::ofstream compact("/proc/sys/vm/compact_memory");
    compact << "1\n";
  }
  // 256 MiB, hot 32 MiB at offset 64 MiB (2 MiB aligned), swept a page at a
  // time so that every hot page is touched between two scans.
  Child w = spawn({bin("memexercise"), "--size", "256M", "--hot-offset", "64M", "--hot-size", "32M", "--per-page",
                   "--thp", thp, "--report", dir + "/report", "--duration", "0"},
                  dir, "w");
  ASSERT_TRUE(wait_for([&] { return json_lines(dir + "/report").size() == 1; }, 120)) << slurp(w.err_path);
  json r = json_lines(dir + "/report")[0];
  uint64_t region = std::stoull(r["region_start"].get<std::string>(), nullptr, 16);
  uint64_t hot = std::stoull(r["hot_start"].get<std::string>(), nullptr, 16);
  uint64_t hot_size = r["hot_size"], region_size = r["region_size"];
  if (thp == "on") {
    // The huge-page path is only exercised if the kernel gave huge pages.
    std::string rollup = slurp("/proc/" + std::to_string(w.pid) + "/smaps_rollup");
    auto at = rollup.find("AnonHugePages:");
    ASSERT_NE(at, std::string::npos);
    uint64_t huge_kb = std::stoull(rollup.substr(at + 14));
    EXPECT_GE(huge_kb, hot_size / 1024) << "THP on, but the hot range is not in huge pages";
  }

  Child mb = spawn({bin("membalancer"), "trace", "--pid", std::to_string(w.pid), "--sampler", "abit", "--interval",
                    "1000", "--display", "json", "--max-ranges", "100000", "--record", dir + "/abit.prof"},
                   dir, "mb");
  // The first intervals include the pages touched while populating (their
  // bits were set then); judge intervals 4 to 6.
  ASSERT_TRUE(wait_for([&] { return json_lines(mb.out_path).size() >= 6; }, 180)) << slurp(mb.err_path);
  auto lines = json_lines(mb.out_path);
  for (size_t i = 3; i < 6; ++i) {
    Score sc = score(lines[i], w.pid, hot, hot_size, region, region_size);
    std::printf("abit thp=%s interval %zu: %llu pages reported, precision %.4f, recall %.4f, cold reported %llu\n",
                thp.c_str(), i + 1, static_cast<unsigned long long>(sc.reported), sc.precision, sc.recall,
                static_cast<unsigned long long>(sc.cold_reported));
    EXPECT_GE(sc.precision, 0.95) << "thp " << thp << " interval " << i + 1 << ": " << sc.reported << " pages reported";
    EXPECT_GE(sc.recall, 0.95) << "thp " << thp << " interval " << i + 1;
    EXPECT_LE(sc.cold_reported, (region_size - hot_size) / 4096 / 100)
        << "thp " << thp << " interval " << i + 1 << ": cold pages reported as accessed";
    EXPECT_EQ(lines[i]["sampler"], "abit");
  }
  kill(mb.pid, SIGTERM);
  EXPECT_EQ(wait_exit(mb.pid, 60), 0) << slurp(mb.err_path);
  lines = json_lines(mb.out_path);
  EXPECT_EQ(lines.back()["type"], "summary");
  EXPECT_EQ(lines.back()["dropped"], 0);
  if (thp == "off") {
    // Every accepted sample is in a node's accesses (base pages: one each;
    // a huge page's counts 512 there): the module's passes end with the
    // last interval's table, not after its swap.
    uint64_t in_nodes = 0;
    for (const auto& n : lines.back()["nodes"]) in_nodes += n["accesses"].get<uint64_t>();
    EXPECT_EQ(lines.back()["counters"]["accepted"].get<uint64_t>(), in_nodes) << lines.back().dump();
  }
  kill(w.pid, SIGTERM);
  wait_exit(w.pid, 60);

  // The walk saw each page's size, and the recording says it: the hot
  // range's samples are all huge with THP on, all base pages with it off
  // (replay reads a base page inside a huge one as a split, a sample of no
  // size as the huge page's).
  mb::ProfileReader reader(dir + "/abit.prof");
  ASSERT_TRUE(reader.ok()) << reader.error();
  const uint16_t want = thp == "on" ? MB_ACC_HUGE : MB_ACC_BASE_PAGE;
  uint64_t in_hot = 0, other_size = 0;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (s[i].tgid != static_cast<uint32_t>(w.pid) || s[i].vaddr < hot || s[i].vaddr >= hot + hot_size) continue;
      ++in_hot;
      if ((s[i].flags & (MB_ACC_HUGE | MB_ACC_BASE_PAGE)) != want) ++other_size;
    }
  });
  EXPECT_GT(in_hot, 0u);
  EXPECT_EQ(other_size, 0u) << "of " << in_hot << " samples in the hot range, thp " << thp;
}

}  // namespace

TEST(VmAbit, HotRangeWithBasePages) { run_hot_range_case("off"); }

TEST(VmAbit, HotRangeWithTransparentHugePages) { run_hot_range_case("on"); }
