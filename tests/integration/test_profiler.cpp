// profiler on the real kernel: record memexercise with the fault sampler
// (hottest region = the known hot range; samples attributed to the right
// process of a tree with a child; `-- COMMAND` records from the start; the
// file reads back), cpu-clock symbolisation of a PIE and a shared library,
// and the command line's errors.
#include <sys/mman.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "membalancer/profile_file.h"
#include "membalancer/report.h"
#include "membalancer/tiers.h"
#include "tests/integration/harness.h"
#include "tests/integration/recording.h"

using namespace mbtest;
using nlohmann::json;

TEST(Profiler, FaultRecordOfACommandFindsItsHotRangeAndReadsBack) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/mx.prof";
  // Only the hot range is ever touched (--no-cold-touch), once per page:
  // with the fault sampler that is where the samples are.
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("memexercise"), "--size",
               "64M", "--hot-offset", "16M", "--hot-size", "8M", "--no-cold-touch", "--thp", "off", "--duration", "1",
               "--report", dir + "/rep"},
              dir, "record");
  ASSERT_EQ(r.status, 0) << r.err;
  auto reps = json_lines(dir + "/rep");
  ASSERT_EQ(reps.size(), 1u);
  const int pid = reps[0]["pid"];
  const uint64_t hot = hex(reps[0]["hot_start"]);
  const uint64_t hot_size = reps[0]["hot_size"];
  struct stat st;
  ASSERT_EQ(stat(prof.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // a profile is its owner's (safe_file.h)

  Ran rep = run({bin("profiler"), "report", "--by", "region", "--top", "4", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  ASSERT_EQ(j["regions"].size(), 4u) << rep.out;
  for (const auto& g : j["regions"]) {
    EXPECT_EQ(g["pid"], pid);
    uint64_t start = hex(g["start"]);
    EXPECT_GE(start, hot) << g.dump();
    EXPECT_LT(start, hot + hot_size) << g.dump();
    EXPECT_EQ(g["pages"], 512) << g.dump();
    EXPECT_EQ(g["mapping"], "anon");
  }
  EXPECT_EQ(j["profile"]["samples_lost"], 0);

  // Round trip: the file reads back whole; the command's name was recorded
  // (after its exec) and every sample belongs to it.
  mb::ProfileReader reader(prof);
  EXPECT_TRUE(reader.ok()) << reader.error();
  EXPECT_TRUE(reader.info().complete);
  EXPECT_EQ(reader.info().sampler, "fault");
  mb::ProfileProcesses procs(reader.info());
  EXPECT_EQ(procs.name(static_cast<uint32_t>(pid)), "memexercise");
  uint64_t in_hot = 0, total = 0, with_ip = 0;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      ++total;
      EXPECT_EQ(s[i].tgid, static_cast<uint32_t>(pid));
      if (s[i].vaddr >= hot && s[i].vaddr < hot + hot_size) ++in_hot;
      if (s[i].flags & MB_ACC_IP) ++with_ip;
    }
  });
  EXPECT_EQ(total, reader.info().samples);
  EXPECT_EQ(in_hot, hot_size / 4096);  // one first-touch fault per page
  EXPECT_EQ(with_ip, total);           // the fault sampler streams the user IP
}

// An operator's question on the machine at hand: how much of this memory
// must be fast? A recording of a machine with one memory tier (this one,
// or sockets of DRAM alike) is simulated as two: the asked fast size, the
// rest slow, pages starting fast as first touched.
TEST(Profiler, WhatifOfARecordingFromThisMachine) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/mx.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("memexercise"), "--size",
               "16M", "--thp", "off", "--duration", "0.5"},
              dir, "record");
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  const bool one_tier = !mb::automatic_tiers("auto", reader.info().topology);

  Ran w = run({bin("profiler"), "whatif", prof, "--fast", "4M", "--format", "json"}, dir, "whatif");
  ASSERT_EQ(w.status, 0) << w.err;
  json j = json::parse(w.out);
  EXPECT_EQ(j["samples"], reader.info().samples);
  EXPECT_EQ(j["sampler"], "fault");
  EXPECT_GE(j["pages_seen"].get<uint64_t>(), 4096u);  // the 16M region, each page faulted once
  EXPECT_EQ(j["recorded_tiers"].get<size_t>() == 1, one_tier);
  ASSERT_EQ(j["policies"].size(), 7u);
  const double oracle = j["policies"][0]["hit_ratio"];
  EXPECT_GT(oracle, 0.0);
  EXPECT_LT(oracle, 0.5);  // 4M of at least 16M, each page faulted once
  for (const auto& p : j["policies"]) EXPECT_LE(p["hit_ratio"].get<double>(), oracle) << p["policy"];

  // With one tier there is no recorded fast size to default to.
  uint64_t recorded_bytes = 0;
  for (const auto& n : reader.info().topology.nodes) recorded_bytes += n.mem_total_bytes;
  Ran d = run({bin("profiler"), "whatif", prof}, dir, "default");
  if (one_tier) {
    EXPECT_EQ(d.status, 2);
    EXPECT_EQ(d.err, "profiler: " + prof + ": recorded on a machine of one memory tier (" +
                         mb::format_bytes(recorded_bytes) +
                         "): give the fast tier's size (--fast SIZE, --tiers or --sweep)\n");
    // Replaying it in tier mode is the file's problem, and whatif the way on.
    Ran t = run({bin("membalancer"), "tier", "--sampler", "replay:" + prof, "--dry-run", "--speed", "max"}, dir, "tier");
    EXPECT_EQ(t.status, 2);
    EXPECT_NE(t.err.find("membalancer: " + prof + ": recorded on a machine of one memory tier; tier mode needs two "
                         "(hint: 'profiler whatif " + prof + " --fast SIZE' simulates a fast tier of SIZE and a slow "
                         "one)\n"),
              std::string::npos)
        << t.err;
  } else {
    EXPECT_EQ(d.status, 0) << d.err;
  }
}

TEST(Profiler, TreeWithAChildIsAttributedPerProcess) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/tree.prof";
  // P (16 MiB) forks a child (32 MiB); each touches its region once, after
  // the recorder is attached (`start`).
  Child tree = spawn({bin("memexercise"), "--size", "16M", "--child-size", "32M", "--children", "1", "--touch-once",
                      "--thp", "off", "--wait-before-touch", dir + "/start", "--report", dir + "/rep", "--ready-file",
                      dir + "/ready", "--duration", "0"},
                     dir, "tree");
  Child rec = spawn({bin("profiler"), "record", "--ppid", std::to_string(tree.pid), "--sampler", "fault", "-q", "-o",
                     prof},
                    dir, "record");
  // The file appears once the BPF side is attached.
  ASSERT_TRUE(wait_for([&] { return file_exists(prof); }, 30)) << slurp(rec.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(tree.pid, SIGTERM);
  ASSERT_EQ(wait_exit(tree.pid, 30), 0);
  ASSERT_EQ(wait_exit(rec.pid, 30), 0) << slurp(rec.err_path);  // stops when the tree is gone

  auto reps = json_lines(dir + "/rep");
  ASSERT_EQ(reps.size(), 2u);
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  mb::ProfileProcesses procs(reader.info());
  // Regions of different processes may share virtual addresses: a sample
  // counts for a region only with the region's own pid.
  std::map<uint32_t, uint64_t> in_own_region, all;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      ++all[s[i].tgid];
      for (const auto& rp : reps) {
        uint64_t start = hex(rp["region_start"]), size = rp["region_size"];
        if (s[i].tgid == rp["pid"].get<uint32_t>() && s[i].vaddr >= start && s[i].vaddr < start + size)
          ++in_own_region[s[i].tgid];
      }
    }
  });
  for (const auto& rp : reps) {
    uint32_t pid = rp["pid"];
    const uint64_t touched = rp["pages_touched"];
    EXPECT_EQ(in_own_region[pid], touched) << "pid " << pid;
    // Besides its region, a process faults only a few hundred pages (its
    // program, libraries, stacks): the other process's region is not its.
    EXPECT_LT(all[pid], touched + 1000) << "pid " << pid;
    EXPECT_EQ(procs.name(pid), "memexercise");
  }
  // The child's parent is recorded.
  for (const auto& rp : reps) {
    if (rp["depth"] == 1) {
      EXPECT_EQ(procs.parent(rp["pid"]), static_cast<uint32_t>(tree.pid));
    }
  }

  Ran rep = run({bin("profiler"), "report", "--by", "process", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  ASSERT_GE(j["processes"].size(), 2u);
  EXPECT_EQ(j["processes"][0]["pid"], reps[0]["depth"] == 1 ? reps[0]["pid"] : reps[1]["pid"]);  // 32 MiB child first
}

// symtest_lld and its library are linked with lld, whose segments sit a page
// above their file offsets: their code's mapping has file offset 0 without
// being the load base (it was taken for it: every name came out wrong).
TEST(Profiler, CpuClockNamesTheHotFunctionInAPieAndASharedLibrary) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  for (auto [program, where, want, module] :
       {std::tuple{"symtest", "main", "symtest_main_spin", "symtest"},
        std::tuple{"symtest", "lib", "symtest_lib_spin", "libsymtest.so"},
        std::tuple{"symtest_lld", "main", "symtest_main_spin", "symtest_lld"},
        std::tuple{"symtest_lld", "lib", "symtest_lib_spin", "libsymtest_lld.so"}}) {
    const std::string name = std::string(program) + "_" + where;
    std::string prof = dir + "/" + name + ".prof";
    Ran r = run({bin("profiler"), "record", "--sampler", "cpu-clock", "-q", "-o", prof, "--", bin(program), where, "1.5"},
                dir, "rec_" + name);
    ASSERT_EQ(r.status, 0) << r.err;
    Ran rep = run({bin("profiler"), "report", "--by", "symbol", "--top", "3", "--format", "json", prof}, dir,
                  "rep_" + name);
    ASSERT_EQ(rep.status, 0) << rep.err;
    json j = json::parse(rep.out);
    ASSERT_FALSE(j["symbols"].empty()) << rep.out;
    EXPECT_EQ(j["symbols"][0]["function"], want) << rep.out;
    EXPECT_EQ(j["symbols"][0]["module"], module) << rep.out;
    EXPECT_GT(j["symbols"][0]["share_pct"].get<double>(), 80.0) << rep.out;
    EXPECT_NE(j["symbols"][0]["source"].get<std::string>().find("symtest"), std::string::npos) << rep.out;
    // No data address: whatif has no pages to place, and says so.
    Ran w = run({bin("profiler"), "whatif", prof, "--fast", "1M"}, dir, "whatif_" + name);
    EXPECT_EQ(w.status, 2);
    EXPECT_EQ(w.err, "profiler: " + prof + ": no samples with a data address (recorded with cpu-clock): whatif needs "
                                           "the pages accessed (ibs, pebs, abit or fault)\n");
  }
}

namespace {

// `profiler record --sampler SAMPLER -- symtest swap A B SECONDS`, A and B
// copies of libsymtest.so (dlclose A, then dlopen B, which the loader puts
// where A was), and its report by symbol (json, the TOP first); null after
// a failure (reported), also when B was loaded elsewhere: then nothing is
// tested.
json report_of_a_swap(const std::string& sampler, const std::string& seconds, const std::string& top) {
  std::string dir = temp_dir();
  const std::string a = dir + "/libswap_a.so", b = dir + "/libswap_b.so", prof = dir + "/swap.prof";
  std::filesystem::copy_file(bin("libsymtest.so"), a);
  std::filesystem::copy_file(bin("libsymtest.so"), b);
  Ran r = run({bin("profiler"), "record", "--sampler", sampler, "-q", "-o", prof, "--", bin("symtest"), "swap", a, b,
               seconds},
              dir, "rec");
  if (r.status != 0) {
    ADD_FAILURE() << r.err;
    return nullptr;
  }
  std::istringstream out(r.out);
  std::string path_a, base_a, path_b, base_b;
  if (!(out >> path_a >> base_a >> path_b >> base_b) || base_a != base_b) {
    ADD_FAILURE() << "the loader placed " << b << " elsewhere: " << r.out;
    return nullptr;
  }
  Ran rep = run({bin("profiler"), "report", "--by", "symbol", "--top", top, "--format", "json", prof}, dir, "rep");
  if (rep.status != 0) {
    ADD_FAILURE() << rep.err;
    return nullptr;
  }
  return json::parse(rep.out);
}

}  // namespace

// dlclose, then dlopen of another library at the same address: the code
// run in each is named in its own module (the report keyed code by address
// per program: all of it was the first library's).
TEST(Profiler, ALibrarySwappedAtTheSameAddressIsNamedInItsOwnModule) {
  REQUIRE_ROOT();
  const json j = report_of_a_swap("cpu-clock", "1.5", "5");
  if (j.is_null()) return;
  std::map<std::string, double> share;  // module -> share of symtest_lib_spin
  for (const auto& s : j["symbols"])
    if (s["function"] == "symtest_lib_spin") share[s["module"]] += s["share_pct"].get<double>();
  // 1.5 s of CPU in each: most of each library's samples are its own.
  EXPECT_GT(share["libswap_a.so"], 20.0) << j.dump();
  EXPECT_GT(share["libswap_b.so"], 20.0) << j.dump();
  EXPECT_GT(share["libswap_a.so"] + share["libswap_b.so"], 80.0) << j.dump();
}

// The same swap seen by the fault sampler: libswap_b.so's page faults come
// right after the dlopen that put it where libswap_a.so was, long before the
// recorder's next look finds the change (up to 0.5 s). Timed at that look,
// the change gave all of them to libswap_a.so; timed at the dlclose's
// munmap (the BPF side's time of the first maps-changing call since the
// look before), they are libswap_b.so's.
TEST(Profiler, ALibrarySwappedBetweenTwoLooksHasItsOwnFaults) {
  REQUIRE_ROOT();
  // Every symbol: a few faults each, among the loader's and libc's many
  // (the VM's guest has more than 50 symbols of one fault).
  const json j = report_of_a_swap("fault", "0.7", "1000000");
  if (j.is_null()) return;
  std::map<std::string, uint64_t> faults;  // module -> samples (faults) in it
  for (const auto& s : j["symbols"]) faults[s["module"]] += s["samples"].get<uint64_t>();
  // Each library's code faults in when it first runs (its spin loop): both
  // have some, found in their own module.
  EXPECT_GT(faults["libswap_a.so"], 0u) << j.dump();
  EXPECT_GT(faults["libswap_b.so"], 0u) << j.dump();
}

// A library swapped 0.1 s after an unrelated mmap, seen by the fault
// sampler (symtest late-swap): each library's faults in those 0.1 s are
// its own. The change used to be timed at the first maps call since the
// recorder's look before (every 0.5 s), the unrelated mmap: the faults
// between it and the swap counted for the next library. Now the first maps
// call since a look makes the recorder look again soon (MB_PROC_MAPS), and
// the swap gets its own time. Seven windows: a look fell in every one of
// them only rarely before.
TEST(Profiler, ALibrarySwappedAfterAnUnrelatedMmapKeepsItsFaultsBeforeTheSwap) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string prof = dir + "/late.prof";
  std::vector<std::string> cmd = {bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--",
                                  bin("symtest"), "late-swap", "0.1"};
  const int nlibs = 8;
  for (int i = 0; i < nlibs; ++i) {
    const std::string lib = dir + "/liblate_" + std::to_string(i) + ".so";
    std::filesystem::copy_file(bin("libsymtest.so"), lib);
    cmd.push_back(lib);
  }
  Ran r = run(cmd, dir, "rec");
  ASSERT_EQ(r.status, 0) << r.err;
  // "PATH BASE" per library, "refaults PATH N" after each window.
  std::map<std::string, uint64_t> refaults;  // module -> faults of its window
  std::set<std::string> bases;
  std::istringstream out(r.out);
  for (std::string line; std::getline(out, line);) {
    std::istringstream words(line);
    std::string a, b, c;
    words >> a >> b >> c;
    if (a == "refaults") refaults[std::filesystem::path(b).filename()] = std::stoull(c);
    else bases.insert(b);
  }
  if (bases.size() != 1) FAIL() << "the loader placed the libraries at different addresses: " << r.out;
  ASSERT_EQ(refaults.size(), static_cast<size_t>(nlibs - 1)) << r.out;
  Ran rep = run({bin("profiler"), "report", "--by", "symbol", "--top", "1000000", "--format", "json", prof}, dir,
                "rep");
  ASSERT_EQ(rep.status, 0) << rep.err;
  const json j = json::parse(rep.out);
  std::map<std::string, uint64_t> faults;  // module -> samples (faults) in it
  for (const auto& s : j["symbols"]) faults[s["module"]] += s["samples"].get<uint64_t>();
  for (const auto& [module, n] : refaults) {
    ASSERT_GT(n, 100u) << r.out;
    // Its window's faults, and at most a few hundred of its own besides.
    EXPECT_GE(faults[module], n * 9 / 10) << module << " refaulted " << n << " times; " << rep.out;
    EXPECT_LE(faults[module], n + 300) << module << " refaulted " << n << " times; " << rep.out;
  }
  const std::string last = "liblate_" + std::to_string(nlibs - 1) + ".so";
  EXPECT_LE(faults[last], 300u) << rep.out;  // no window: only its first faults
}

TEST(Profiler, BadInputIsOneLineAndStatus2) {
  std::string dir = temp_dir();
  Ran none = run({bin("profiler"), "record", "-o", dir + "/x.prof"}, dir, "none");
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(lines_of(none.err).size(), 1u) << none.err;
  Ran missing = run({bin("profiler"), "report", dir + "/nope.prof"}, dir, "missing");
  EXPECT_EQ(missing.status, 2);
  std::ofstream(dir + "/exists") << "x";
  Ran exists = run({bin("profiler"), "record", "--pid", "1", "-o", dir + "/exists"}, dir, "exists");
  EXPECT_EQ(exists.status, 2);
  EXPECT_NE(exists.err.find("--force"), std::string::npos) << exists.err;
  std::ofstream(dir + "/junk.prof") << std::string(300, 'j');
  Ran junk = run({bin("profiler"), "report", dir + "/junk.prof"}, dir, "junk");
  EXPECT_EQ(junk.status, 2);
  EXPECT_NE(junk.err.find("offset 0"), std::string::npos) << junk.err;
  Ran help = run({bin("profiler"), "--help"}, dir, "help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("heatmap"), std::string::npos);
}

TEST(Profiler, TruncatedRecordingIsReportedUpToTheDamage) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/t.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("memexercise"), "--size",
               "32M", "--touch-once", "--thp", "off", "--duration", "0.5"},
              dir, "record");
  ASSERT_EQ(r.status, 0) << r.err;
  struct stat st;
  ASSERT_EQ(stat(prof.c_str(), &st), 0);
  ASSERT_EQ(truncate(prof.c_str(), st.st_size - 100), 0);
  Ran rep = run({bin("profiler"), "report", prof}, dir, "report");
  EXPECT_EQ(rep.status, 2);
  EXPECT_NE(rep.err.find("offset "), std::string::npos) << rep.err;
  EXPECT_NE(rep.out.find("Hottest regions"), std::string::npos) << rep.out;  // what was readable
}

// profiler synth (no root needed): a hotset trace written as a profile, read
// back by `profiler report`: the hottest regions are the hot range the
// command announced, on the fast node, in the one anonymous mapping; the
// same arguments give the same bytes.
TEST(Profiler, SynthHotsetReportsItsHotRange) {
  std::string dir = temp_dir();
  std::string prof = dir + "/h.prof";
  const std::vector<std::string> args = {"synth", "--pattern", "hotset", "--footprint", "256M", "--hot-size", "16M",
                                         "--samples", "200000", "--seed", "3"};
  auto cmd = [&](const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> v = {bin("profiler")};
    v.insert(v.end(), args.begin(), args.end());
    v.insert(v.end(), {"-o", out});
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  Ran r = run(cmd(prof), dir, "synth");
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
  // "...; hot set 0xSTART-0xEND; ..."
  size_t at = r.err.find("hot set 0x");
  ASSERT_NE(at, std::string::npos) << r.err;
  size_t dash = r.err.find('-', at);
  const uint64_t hot = std::stoull(r.err.substr(at + 8), nullptr, 16);
  const uint64_t hot_end = std::stoull(r.err.substr(dash + 1), nullptr, 16);
  EXPECT_EQ(hot_end - hot, 16u << 20) << r.err;
  EXPECT_EQ(hot % 4096, 0u);
  EXPECT_GE(hot, 0x7f0000000000u);
  EXPECT_LE(hot_end, 0x7f0000000000u + (256u << 20));
  struct stat st;
  ASSERT_EQ(stat(prof.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // a profile is its owner's (safe_file.h)

  // 16 MiB at a page-aligned offset touches 8 or 9 regions of 2 MiB: the
  // top 8 are all in the hot range.
  Ran rep = run({bin("profiler"), "report", "--by", "region", "--top", "8", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  EXPECT_EQ(j["profile"]["sampler"], "synth:hotset");
  EXPECT_EQ(j["profile"]["samples"], 200000);
  EXPECT_EQ(j["profile"]["complete"], true);
  ASSERT_EQ(j["regions"].size(), 8u) << rep.out;
  for (const auto& g : j["regions"]) {
    const uint64_t start = hex(g["start"]), end = hex(g["end"]);
    EXPECT_LT(start, hot_end) << g.dump();
    EXPECT_GT(end, hot) << g.dump();
    EXPECT_EQ(g["pid"], 1000);
    EXPECT_EQ(g["name"], "synth-hotset");
    EXPECT_EQ(g["node"], 0) << g.dump();  // first touched while the fast node had room
    EXPECT_EQ(g["mapping"], "anon");
  }
  const uint64_t top = hex(j["regions"][0]["start"]);
  EXPECT_GE(top, hot & ~((2ull << 20) - 1));

  // Deterministic: the same arguments, the same bytes. The file exists now:
  // replaced only with --force.
  Ran again = run(cmd(dir + "/h2.prof"), dir, "again");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(slurp(prof), slurp(dir + "/h2.prof"));
  Ran exists = run(cmd(prof), dir, "exists");
  EXPECT_EQ(exists.status, 2);
  EXPECT_NE(exists.err.find("--force"), std::string::npos) << exists.err;
  Ran forced = run(cmd(prof, {"--force"}), dir, "forced");
  EXPECT_EQ(forced.status, 0) << forced.err;
}

TEST(Profiler, SynthBadInputIsOneLineAndStatus2) {
  std::string dir = temp_dir();
  std::string prof = dir + "/bad.prof";
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"--pattern", "phase", "--footprint", "64M", "--hot-size", "40M", "--samples", "10"}, "--hot-size"},
      {{"--pattern", "random", "--footprint", "64M", "--samples", "10"}, "--pattern"},
      {{"--pattern", "gups", "--footprint", "1K", "--samples", "10"}, "--footprint"},
      {{"--pattern", "zipf", "--footprint", "64M", "--skew", "0", "--samples", "10"}, "--skew"},
      {{"--pattern", "hotset", "--footprint", "64M", "--hot-share", "1.5", "--samples", "10"}, "--hot-share"},
      {{"--pattern", "gups", "--footprint", "64M", "--samples", "0"}, "--samples"},
      {{"--pattern", "gups", "--footprint", "64M", "--samples", "-3"}, "--samples"},
      {{"--pattern", "gups", "--footprint", "64M", "--samples", "10", "--rate", "0"}, "--rate"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> v = {bin("profiler"), "synth"};
    v.insert(v.end(), c.args.begin(), c.args.end());
    v.insert(v.end(), {"-o", prof});
    Ran r = run(v, dir, "bad" + std::to_string(i++));
    EXPECT_EQ(r.status, 2) << c.names << ": " << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find(c.names), std::string::npos) << r.err;
    EXPECT_FALSE(file_exists(prof)) << c.names;
  }
  Ran help = run({bin("profiler"), "--help"}, dir, "help");
  EXPECT_NE(help.out.find("synth"), std::string::npos);
}

// whatif's --rate-limit is written as membalancer's ("as the mover"): 64M/s
// is 64M; it was refused ("unknown unit"), which membalancer takes.
TEST(Profiler, WhatifTakesTheMoversRateSyntax) {
  std::string dir = temp_dir();
  const std::string prof = dir + "/r.prof";
  ASSERT_EQ(run({bin("profiler"), "synth", "--pattern", "zipf", "--footprint", "8M", "--samples", "20000", "--rate",
                 "10000", "-o", prof},
                dir, "synth")
                .status,
            0);
  Ran per_s = run({bin("profiler"), "whatif", prof, "--fast", "1M", "--policy", "membalancer", "--rate-limit", "1M/s"},
                  dir, "per_s");
  ASSERT_EQ(per_s.status, 0) << per_s.err;
  EXPECT_NE(per_s.out.find("moves limited to 1.0 MiB/s"), std::string::npos) << per_s.out;
  Ran plain = run({bin("profiler"), "whatif", prof, "--fast", "1M", "--policy", "membalancer", "--rate-limit", "1M"},
                  dir, "plain");
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(per_s.out, plain.out);
}

// A full disk while recording: one line naming the write that failed, status 1,
// the command stopped; never an abort from the consumer thread (it used to
// throw out of its thread: std::terminate, status 134). Without huge pages:
// 16384 faults are samples enough to fill 256 KiB on any kernel.
TEST(Profiler, RecordOnAFullDiskIsOneLineAndStatus1) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string small = dir + "/small";
  ASSERT_EQ(mkdir(small.c_str(), 0755), 0);
  ASSERT_EQ(system(("mount -t tmpfs -o size=256k tmpfs " + small).c_str()), 0);
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", small + "/r.prof", "--", bin("memexercise"),
               "--size", "64M", "--thp", "off", "--duration", "1", "--touch-once"},
              dir, "full", 60);
  system(("umount " + small).c_str());
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

// A command that ignores SIGTERM: after --duration it has a few seconds, then
// SIGKILL; the summary gives the recording's time, not the command's end.
TEST(Profiler, RecordKillsACommandThatIgnoresSigterm) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  auto t0 = std::chrono::steady_clock::now();
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "--duration", "1", "-o", dir + "/r.prof", "--",
               "/bin/sh", "-c", "trap '' TERM; exec sleep 60"},
              dir, "ignore", 30);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_LT(took, 15) << r.err;
  EXPECT_NE(r.err.find(" in 1.0 s "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SIGKILL"), std::string::npos) << r.err;
}

// A second SIGTERM while waiting for such a command kills it at once.
TEST(Profiler, RecordSecondSignalKillsTheCommandAtOnce) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child c = spawn({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", dir + "/r.prof", "--", "/bin/sh", "-c",
                   "trap '' TERM INT; exec sleep 60"},
                  dir, "twice");
  // The file is created just before the command is released.
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/r.prof"); }, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto t0 = std::chrono::steady_clock::now();
  kill(c.pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(c.pid, SIGTERM);
  int st = wait_exit(c.pid, 30);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string err = slurp(c.err_path);
  EXPECT_EQ(st, 0) << err;
  EXPECT_LT(took, 2.5) << err;  // the grace period is 3 s
  EXPECT_NE(err.find("SIGKILL"), std::string::npos) << err;
}

// SIGHUP (the terminal or the session gone) stops a recording as SIGINT and
// SIGTERM do: status 0, the file whole; it used to kill the recorder (status
// 129) and leave a file without its end. The signal is passed on to the
// command, and the line about a command that ignored it names that signal
// (it said SIGTERM whatever was sent).
TEST(Profiler, EveryStopSignalEndsTheRecordingAndIsNamed) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  for (const int sig : {SIGHUP, SIGINT}) {
    const std::string name = std::string("SIG") + sigabbrev_np(sig);
    const std::string prof = dir + "/" + name + ".prof";
    Child c = spawn({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", "/bin/sh", "-c",
                     "trap '' " + std::string(sigabbrev_np(sig)) + "; exec sleep 60"},
                    dir, name);
    ASSERT_TRUE(wait_for([&] { return file_exists(prof); }, 30));
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    kill(c.pid, sig);
    const int st = wait_exit(c.pid, 30);
    const std::string err = slurp(c.err_path);
    EXPECT_EQ(st, 0) << name << ": " << err;
    EXPECT_NE(err.find("stopped: " + name), std::string::npos) << err;
    EXPECT_NE(err.find("the command did not exit after " + name + ": killed (SIGKILL)"), std::string::npos) << err;
    mb::ProfileReader reader(prof);
    EXPECT_TRUE(reader.ok()) << name << ": " << reader.error();
  }
}

// Children that exit before the recorder reads their name carry their
// parent's (a fork inherits comm), not "?".
TEST(Profiler, ShortLivedForksAreNamedAfterTheirParent) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/f.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", "/bin/sh", "-c",
               "sleep 0.3; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do ( : ) & done; wait; "
               "sleep 0.3"},
              dir, "forks", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  size_t forks = 0;
  for (const auto& p : reader.info().processes) {
    if (p.event != mb::kProcFork) continue;
    ++forks;
    EXPECT_NE(p.name, "?") << "pid " << p.tgid;
  }
  EXPECT_GE(forks, 10u);
}

// A command that ends on its own gives record its exit status, as a shell
// would (128 + N for signal N), so that `profiler record -- make test && ...`
// keeps its meaning; it used to be 0 whatever the command did.
TEST(Profiler, RecordExitsWithTheStatusOfTheCommand) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Ran three = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", dir + "/three.prof", "--", "/bin/sh",
                   "-c", "exit 3"},
                  dir, "three", 60);
  EXPECT_EQ(three.status, 3) << three.err;
  EXPECT_NE(three.err.find("the command exited with status 3"), std::string::npos) << three.err;
  mb::ProfileReader reader(dir + "/three.prof");
  EXPECT_TRUE(reader.ok()) << reader.error();  // the recording itself is whole
  Ran segv = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", dir + "/segv.prof", "--", "/bin/sh",
                  "-c", "kill -SEGV $$"},
                 dir, "segv", 60);
  EXPECT_EQ(segv.status, 128 + SIGSEGV) << segv.err;
  Ran ok = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", dir + "/ok.prof", "--", "/bin/true"}, dir,
               "ok", 60);
  EXPECT_EQ(ok.status, 0) << ok.err;
}

// The line saying which sampler auto chose is the profiler's: it read
// "membalancer: sampler fault (...)", naming a program the user did not run.
TEST(Profiler, AutoSamplerLineNamesTheProfiler) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Ran r = run({bin("profiler"), "record", "-q", "-o", dir + "/auto.prof", "--", "/bin/true"}, dir, "auto", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = lines_of(r.err);
  ASSERT_FALSE(lines.empty()) << r.err;
  EXPECT_EQ(lines.front().rfind("profiler: sampler ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find("membalancer:"), std::string::npos) << r.err;
}

// Every sample the BPF side accepted is in the file or counted lost, also
// when recording stops while the command still runs: the samples between the
// consumer's last drain and the detach were neither (a few to a hundred per
// stop of this fork-and-exec loop, which faults all the time).
TEST(Profiler, RecordStoppedMidRunKeepsOrCountsEverySample) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  for (int i = 0; i < 3; ++i) {
    const std::string prof = dir + "/loop" + std::to_string(i) + ".prof";
    Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "--duration", "1", "-o", prof, "--", "/bin/sh",
                 "-c", "while :; do /bin/true; done"},
                dir, "loop" + std::to_string(i), 60);
    ASSERT_EQ(r.status, 0) << r.err;
    mb::ProfileReader reader(prof);
    ASSERT_TRUE(reader.ok()) << reader.error();
    ASSERT_FALSE(reader.info().counters.empty());
    const auto& last = reader.info().counters.back().values;
    ASSERT_GT(last.size(), static_cast<size_t>(MB_CTR_SAMPLES_LOST));
    EXPECT_GT(reader.info().samples, 1000u);  // the loop faulted throughout
    EXPECT_EQ(reader.info().samples + last[MB_CTR_SAMPLES_LOST], last[MB_CTR_ACCEPTED]) << "run " << i;
  }
}

// A command shorter than the periodic look at names and maps (0.5 s) was
// recorded with only what it was before its exec, the profiler's own fork:
// named "profiler", its code all [unmapped]. Processes with samples are
// looked at again while they run.
TEST(Profiler, ShortCommandIsNamedAndSymbolisedAfterItsExec) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/short.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "cpu-clock", "-q", "-o", prof, "--", bin("symtest"), "main",
               "0.3"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  ASSERT_EQ(reader.info().processes.size() > 0, true);
  const uint32_t pid = reader.info().processes.front().tgid;
  EXPECT_EQ(mb::ProfileProcesses(reader.info()).name(pid), "symtest");
  Ran rep = run({bin("profiler"), "report", "--by", "symbol", "--top", "3", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  ASSERT_FALSE(j["symbols"].empty()) << rep.out;
  EXPECT_EQ(j["symbols"][0]["function"], "symtest_main_spin") << rep.out;
  EXPECT_EQ(j["symbols"][0]["module"], "symtest") << rep.out;
  EXPECT_GT(j["symbols"][0]["share_pct"].get<double>(), 50.0) << rep.out;
}

// The command's process is the profiler's fork until its exec: with the fault
// sampler its copy-on-write faults after the release are sampled, and the row
// read "profiler > symtest". It is the command's row, named by it; those
// samples are said apart in the header, and the heatmap labels their range.
TEST(Profiler, TheCommandsRowIsNamedByTheCommandNotTheProfiler) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/command.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("symtest"), "main", "0.1"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  Ran rep = run({bin("profiler"), "report", "--by", "process", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  ASSERT_EQ(j["processes"].size(), 1u) << rep.out;
  EXPECT_EQ(j["processes"][0]["name"], "symtest") << rep.out;
  EXPECT_EQ(j["processes"][0]["samples"], j["profile"]["samples"]) << rep.out;
  const uint64_t before = j["profile"]["samples_before_command"].get<uint64_t>();
  ASSERT_GT(before, 0u) << "the fork's faults between its release and its exec: " << rep.out;
  Ran text = run({bin("profiler"), "report", prof}, dir, "report_text");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("(symtest) was the profiler starting it: " + std::to_string(before) + " samples"),
            std::string::npos)
      << text.out;
  Ran hm = run({bin("profiler"), "heatmap", prof, "-o", dir + "/command.svg"}, dir, "heatmap");
  ASSERT_EQ(hm.status, 0) << hm.err;
  std::ifstream svg_in(dir + "/command.svg");
  const std::string svg((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(svg.find("symtest (before exec)"), std::string::npos);
  EXPECT_EQ(svg.find("profiler"), std::string::npos) << "no range named after the profiler";
}

// A recorder killed outright (SIGKILL, the OOM killer) keeps in its file what
// it had taken a quarter second before: samples used to wait in memory until
// 32768 of them (over 3 s of cpu-clock at 10 kHz), and all were lost.
TEST(Profiler, AKilledRecorderLeavesWhatItTookInTheFile) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string prof = dir + "/killed.prof";
  Child c = spawn({bin("profiler"), "record", "--sampler", "cpu-clock", "--cpu-clock-period", "100", "-q", "-o", prof,
                   "--", bin("symtest"), "main", "30"},
                  dir, "killed");
  ASSERT_TRUE(wait_for([&] { return file_exists(prof); }, 30));
  // The command: the profiler's child, which outlives it.
  pid_t command = -1;
  ASSERT_TRUE(wait_for(
      [&] {
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
          const std::string stat = slurp(e.path().string() + "/stat");
          const size_t close = stat.rfind(')');
          if (close == std::string::npos || stat.find("(symtest)") == std::string::npos) continue;
          if (std::atoi(stat.c_str() + close + 4) == c.pid) command = std::atoi(e.path().filename().c_str());
        }
        return command > 0;
      },
      30));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(c.pid, SIGKILL);
  wait_exit(c.pid, 30);
  kill(command, SIGKILL);
  mb::ProfileReader reader(prof);
  // About 10000 samples per CPU second of the spinning command, which ran
  // 1.5 s: the file holds more than a tenth of a CPU second of them (none
  // before; a loaded machine may give the command little CPU).
  EXPECT_GT(reader.info().samples, 1000u) << reader.error();
}

namespace {

// A process that has mapped 64 pages; touch() makes it fault in each once
// (its maps unchanged), then it sleeps until end().
struct PageToucher {
  pid_t pid = -1;
  int go = -1;
  // profiler record (fault sampler) of it into prof, started: its file
  // created, or the test failed.
  Child record(const std::string& dir, const std::string& prof, const std::string& tag) const {
    Child rec = spawn({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--pid", std::to_string(pid)},
                      dir, tag);
    EXPECT_TRUE(wait_for([&] { return file_exists(prof); }, 30)) << slurp(rec.err_path);
    return rec;
  }
  void touch() const {
    ASSERT_EQ(write(go, "g", 1), 1);
    close(go);
  }
  // Kills the recorder outright (SIGKILL), then the process.
  void end(const Child& rec) const {
    kill(rec.pid, SIGKILL);
    wait_exit(rec.pid, 30);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

PageToucher fork_page_toucher() {
  int go[2];
  if (pipe(go) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(go[1]);
    void* p = mmap(nullptr, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char c;
    if (p == MAP_FAILED || read(go[0], &c, 1) != 1) _exit(1);
    for (int i = 0; i < 64; ++i) static_cast<volatile char*>(p)[i * 4096] = 1;
    pause();
    _exit(0);
  }
  close(go[0]);
  return {pid, go[1]};
}

}  // namespace

// A recorded process that faults in 64 pages, then sleeps: the recorder's
// sample thread sleeps too (it woke every 20 ms, 50 times a second, idle or
// not), and the samples it took reach the file while it sleeps (a recorder
// killed then keeps them).
TEST(Profiler, AnIdleRecordersSampleThreadSleepsWithItsSamplesWritten) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string prof = dir + "/idle.prof";
  const PageToucher target = fork_page_toucher();
  const Child rec = target.record(dir, prof, "idle");
  ASSERT_FALSE(HasFailure());
  // The sample thread, by its name.
  const std::string tasks = "/proc/" + std::to_string(rec.pid) + "/task";
  std::string sample_task;
  ASSERT_TRUE(wait_for(
      [&] {
        for (const auto& t : std::filesystem::directory_iterator(tasks))
          if (slurp(t.path().string() + "/comm") == "mb-samples\n") sample_task = t.path().string();
        return !sample_task.empty();
      },
      30));
  auto sleeps = [&] {  // voluntary context switches: each a sleep, then a wake-up
    std::istringstream status(slurp(sample_task + "/status"));
    for (std::string line; std::getline(status, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::atol(line.c_str() + 24);
    return -1L;
  };
  target.touch();
  usleep(500000);  // the faults taken, read and written
  const long before = sleeps();
  usleep(1000000);
  const long woke = sleeps() - before;
  EXPECT_GE(before, 0);
  EXPECT_LE(woke, 2) << "the idle recorder's sample thread woke " << woke << " times in 1 s";
  target.end(rec);
  mb::ProfileReader reader(prof);
  EXPECT_GE(reader.info().samples, 64u) << "the faults of the 64 pages are not in the file; " << reader.error();
}

// The samples taken reach the file within a quarter second of their own
// (SampleConsumer's periodic write), not only when another record (a
// process, maps, the counters written every second) flushes the writer: the
// 64 faults of a process whose maps do not change, just after a counters
// record and 0.6 s before the next, are in the file of a recorder killed
// then. (The test above passes without the periodic write: the counters
// written within its second after the faults flush them.)
TEST(Profiler, AKilledRecordersSamplesReachTheFileWithNothingElseWritten) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string prof = dir + "/quiet.prof";
  const PageToucher target = fork_page_toucher();
  const Child rec = target.record(dir, prof, "quiet");
  ASSERT_FALSE(HasFailure());
  usleep(1500000);  // started: the process and its maps written, the first counters
  // The next counters record: the file grows by it, and by nothing else
  // for a second.
  const auto size = [&] { return std::filesystem::file_size(prof); };
  const uintmax_t before = size();
  ASSERT_TRUE(wait_for([&] { return size() > before; }, 30));
  target.touch();
  usleep(600000);
  target.end(rec);
  mb::ProfileReader reader(prof);
  EXPECT_GE(reader.info().samples, 64u) << "the faults of the 64 pages are not in the file; " << reader.error();
  uint64_t first_sample = UINT64_MAX;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) first_sample = std::min<uint64_t>(first_sample, s[i].time_ns);
  });
  for (const auto& c : reader.info().counters)
    EXPECT_LT(c.time_ns, first_sample) << "counters written after the faults: the test's premise failed";
}

// One pid, two programs: a non-PIE program that execs another non-PIE one,
// both at 0x400000. Each phase's samples are its own program's (the maps
// recorded last answered for all: the first program's time was the
// second's). The recorder sees the exec within its 0.5 s look at maps, so
// each of the two 1.5 s phases keeps most of its own samples.
TEST(Profiler, ReportAttributesEachPhaseOfAnExecToItsProgram) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/exec.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "cpu-clock", "-q", "-o", prof, "--", bin("exectest_first"),
               "1.5", bin("exectest_second"), "1.5"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  Ran rep = run({bin("profiler"), "report", "--top", "5", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  std::map<std::string, double> share;
  for (const auto& s : j["symbols"]) {
    if (s["function"] == "exectest_first_spin") {
      EXPECT_EQ(s["module"], "exectest_first") << rep.out;
    }
    if (s["function"] == "exectest_second_spin") {
      EXPECT_EQ(s["module"], "exectest_second") << rep.out;
    }
    share[s["function"]] = s["share_pct"];
  }
  EXPECT_GT(share["exectest_first_spin"], 25.0) << rep.out;
  EXPECT_GT(share["exectest_second_spin"], 25.0) << rep.out;
  // One process, named by both programs, in the order they ran.
  ASSERT_EQ(j["processes"].size(), 1u) << rep.out;
  EXPECT_NE(j["processes"][0]["name"].get<std::string>().find("exectest_first > exectest_second"), std::string::npos)
      << rep.out;
}

// A child that execs at once after its fork: its address space until the
// exec is its parent's, and that is what its fork is recorded with, so its
// samples from before the exec (copy-on-write faults in the parent
// program's data) are found in the parent's program, and those after in the
// new one, at the same addresses (two non-PIE programs). The child's own
// maps used to be read once the fork event was handled, after its exec:
// the new program was dated back to the fork and took every sample. (The
// new program runs 1.5 s: in the VM guest the recorder takes its exec
// event in after the 1000 forks, and a program gone by then has no maps.)
TEST(Profiler, ForkedChildIsItsParentsProgramUntilItsExec) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/forkexec.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("exectest_first"), "--fork",
               "1000", "0.2", bin("exectest_second"), "1.5"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  uint32_t parent = 0;
  for (const auto& p : reader.info().processes)
    if (p.event == mb::kProcExec && p.name == "exectest_first") parent = p.tgid;
  ASSERT_NE(parent, 0u);
  expect_parents_program_until_exec(samples_of_forked_child(prof, parent));
}

// A child that execs a program running for a few tens of milliseconds: the
// recorder reads its name and maps at the exec event (and once more a moment
// later, for the libraries its loader maps), not at the next look, 0.1 s or
// more later, by which time it is gone. It used to be recorded with its
// shell's name and maps only, its samples all [unmapped].
TEST(Profiler, ChildThatExecsAShortProgramIsNamedAndSymbolised) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/exec.prof";
  const std::string symtest = bin("symtest");
  // Each symtest is a child of the shell (a command in a list is forked,
  // then exec'd); the sleeps keep the shell alive around them.
  Ran r = run({bin("profiler"), "record", "--sampler", "cpu-clock", "-q", "-o", prof, "--", "/bin/sh", "-c",
               "sleep 0.2; " + symtest + " main 0.2; " + symtest + " lib 0.2; " + symtest + " main 0.15; sleep 0.2"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  mb::ProfileProcesses procs(reader.info());
  // The busy children are the three symtests (sleep and the shell hardly run).
  std::set<uint32_t> forked, execd;
  for (const auto& p : reader.info().processes) {
    if (p.event == mb::kProcFork) forked.insert(p.tgid);
    if (p.event == mb::kProcExec && p.name == "symtest") execd.insert(p.tgid);
  }
  std::map<uint32_t, uint64_t> samples, mapped, in_program;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!forked.count(s[i].tgid) || !(s[i].flags & MB_ACC_IP)) continue;
      ++samples[s[i].tgid];
      const mb::ProfileMap* m = procs.mapping(s[i].tgid, s[i].ip, s[i].time_ns);
      if (m) ++mapped[s[i].tgid];
      if (m && (m->path.ends_with("/symtest") || m->path.ends_with("/libsymtest.so"))) ++in_program[s[i].tgid];
    }
  });
  // The three symtests, known by their exec events (on a slow machine the
  // shell's own start takes as many samples as a short program's spin).
  ASSERT_EQ(execd.size(), 3u) << "each symtest's exec is recorded, with the new name";
  for (uint32_t pid : execd) {
    EXPECT_EQ(procs.name(pid), "symtest") << "pid " << pid;
    // Nine in ten samples are in the maps of their time: the shell's before
    // the exec, then the program, its loader or its libraries (none was
    // before). Its spin, 150-200 ms of its own CPU time, is in symtest or
    // its library: 1500 samples or more at one per 100 us of CPU here. In
    // the VM's software CPU on a busy host the guest's timer fires late and
    // a sampling period can pass with one sample: 40 ms spins had 30 to 80
    // there. How long the loader takes besides depends on the machine.
    EXPECT_GE(mapped[pid] * 10, samples[pid] * 9) << "pid " << pid;
    EXPECT_GE(in_program[pid], 100u) << "pid " << pid << " (" << samples[pid] << " samples)";
  }
  Ran rep = run({bin("profiler"), "report", "--by", "symbol", "--top", "5", "--format", "json", prof}, dir, "report");
  ASSERT_EQ(rep.status, 0) << rep.err;
  json j = json::parse(rep.out);
  // Both spins are named with their modules, each with the samples of tens
  // of milliseconds of CPU (their shares of the whole recording depend on
  // how long the shell and the loader take, a third of it in the VM).
  std::map<std::string, uint64_t> by_symbol;
  for (const auto& row : j["symbols"])
    by_symbol[row["function"].get<std::string>() + "@" + row["module"].get<std::string>()] +=
        row["samples"].get<uint64_t>();
  EXPECT_GE(by_symbol["symtest_main_spin@symtest"], 40u) << rep.out;
  EXPECT_GE(by_symbol["symtest_lib_spin@libsymtest.so"], 20u) << rep.out;
}

// The faults the kernel takes while it loads a program (its bss's first page
// cleared, its stack written), after exec_mmap and before the exec event,
// are the new program's: exectest_second's, at an address exectest_first
// maps too. They used to come before the exec event and count with
// exectest_first.
TEST(Profiler, TheKernelsFaultsLoadingAProgramAreItsOwn) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  std::string prof = dir + "/loading.prof";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-o", prof, "--", bin("exectest_first"), "0.3",
               bin("exectest_second"), "0.3"},
              dir, "record", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  mb::ProfileReader reader(prof);
  ASSERT_TRUE(reader.ok()) << reader.error();
  uint32_t pid = 0;
  uint64_t exec_ns = 0;
  for (const auto& p : reader.info().processes)
    if (p.event == mb::kProcExec && p.name == "exectest_second") pid = p.tgid, exec_ns = p.time_ns;
  ASSERT_NE(pid, 0u);
  mb::ProfileProcesses procs(reader.info());
  std::map<std::string, uint64_t> loading;  // program of each kernel fault in the image around the exec
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const bool kernel_ip = s[i].ip >= 0xffff800000000000ULL;
      const bool in_image = s[i].vaddr >= 0x400000 && s[i].vaddr < 0x1000000;  // both programs' (non-PIE)
      const uint64_t apart = s[i].time_ns > exec_ns ? s[i].time_ns - exec_ns : exec_ns - s[i].time_ns;
      if (s[i].tgid != pid || !kernel_ip || !in_image || apart > 5000000) continue;
      const mb::ProfileMap* m = procs.mapping(pid, s[i].vaddr, s[i].time_ns);
      ++loading[!m ? "unmapped" : m->path.substr(m->path.rfind('/') + 1)];
    }
  });
  ASSERT_EQ(loading.size(), 1u) << "programs of the kernel's faults loading exectest_second: " << describe(loading);
  EXPECT_EQ(loading.begin()->first, "exectest_second") << describe(loading);
}
