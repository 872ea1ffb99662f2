// membalancer trace on a real process tree with the fault sampler: distinct
// pages per process match what the workload touched, untracked processes stay
// out, exited processes leave the table, and the run ends by itself when the
// tree is gone.
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstring>
#include <map>
#include <set>

#include "membalancer/profile_file.h"
#include "tests/integration/harness.h"
#include "tests/integration/recording.h"

using namespace mbtest;
using nlohmann::json;

namespace {

struct Reported {
  uint64_t pages = 0;
  bool present = false;
};

// Pages of pid in the last interval line that lists it.
Reported last_pages(const std::vector<json>& lines, int pid) {
  Reported r;
  for (const auto& l : lines) {
    if (l["type"] != "interval") continue;
    for (const auto& p : l["processes"])
      if (p["pid"] == pid) r.pages = p["pages"], r.present = true;
  }
  return r;
}

bool mentions_pid(const std::vector<json>& lines, int pid) {
  for (const auto& l : lines) {
    if (l["type"] != "interval") continue;
    for (const auto& p : l["processes"])
      if (p["pid"] == pid) return true;
    for (const auto& a : l["accessed_ranges"])
      if (a["pid"] == pid) return true;
  }
  return false;
}

// Pages of [start, start+size) covered by pid's accessed ranges, all intervals.
uint64_t covered_pages(const std::vector<json>& lines, int pid, uint64_t start, uint64_t size) {
  std::set<uint64_t> pages;
  for (const auto& l : lines) {
    if (l["type"] != "interval") continue;
    for (const auto& a : l["accessed_ranges"]) {
      if (a["pid"] != pid) continue;
      uint64_t s = std::stoull(a["start"].get<std::string>(), nullptr, 16);
      uint64_t e = std::stoull(a["end"].get<std::string>(), nullptr, 16);
      for (uint64_t p = std::max(s, start); p < std::min(e, start + size); p += 4096) pages.insert(p);
    }
  }
  return pages.size();
}

// A memexercise process that waits for dir/start, then touches SIZE once
// (4 KiB pages) and writes its report line to dir/REPORT.
Child touch_once(const std::string& dir, const std::string& tag, const std::string& size, const std::string& report) {
  return spawn({bin("memexercise"), "--size", size, "--touch-once", "--thp", "off", "--wait-before-touch",
                dir + "/start", "--report", dir + "/" + report, "--duration", "0"},
               dir, tag);
}

std::vector<json> reports(const std::string& path) { return json_lines(path); }

// membalancer has reported its first interval (the json display starts with
// a topology line).
bool has_interval(const std::string& path) {
  for (const auto& l : json_lines(path))
    if (l.value("type", "") == "interval") return true;
  return false;
}

size_t interval_count(const std::string& path) {
  size_t n = 0;
  for (const auto& l : json_lines(path)) n += l.value("type", "") == "interval";
  return n;
}

// Waits for two more intervals: the second began after this call, so it has
// drained every sample taken before it, however slow the machine (a fixed
// sleep was not enough for --all under the sanitizers in CI). Then returns
// everything printed.
std::vector<json> lines_once_drained(const std::string& path) {
  const size_t seen = interval_count(path);
  EXPECT_TRUE(wait_for([&] { return interval_count(path) >= seen + 2; }, 60)) << "no interval after " << seen;
  return json_lines(path);
}

}  // namespace

TEST(TraceTree, CountsEachProcessOfAGrowingTreeAndDropsExitedOnes) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  // P waits for `start`, touches 64 MiB once, waits for `go`, then forks a
  // child that touches 48 MiB and forks a grandchild that does the same.
  Child tree = spawn({bin("memexercise"), "--size", "64M", "--child-size", "48M", "--touch-once", "--thp", "off",
                      "--chain", "2", "--wait-before-touch", dir + "/start", "--spawn-after", dir + "/go", "--report",
                      dir + "/report", "--ready-file", dir + "/ready", "--duration", "0"},
                     dir, "tree");
  // An untracked process faulting at the same time.
  Child other = touch_once(dir, "other", "32M", "other-report");
  Child mb = spawn({bin("membalancer"), "trace", "--ppid", std::to_string(tree.pid), "--sampler", "fault", "--interval",
                    "200", "--display", "json", "--max-ranges", "100000"},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30))
      << "membalancer produced no interval: " << slurp(mb.err_path);

  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return reports(dir + "/report").size() >= 1; }, 30));
  touch(dir + "/go");  // the child and grandchild are born after membalancer started
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 30)) << slurp(tree.err_path);
  ASSERT_TRUE(wait_for([&] { return reports(dir + "/other-report").size() == 1; }, 30));
  auto lines = lines_once_drained(mb.out_path);
  auto tree_reports = reports(dir + "/report");
  ASSERT_EQ(tree_reports.size(), 3u);
  // The json display starts with the topology.
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().value("type", ""), "topology");
  EXPECT_FALSE(lines.front()["nodes"].empty());
  std::map<int, int> depth_pid;
  for (const auto& r : tree_reports) {
    int pid = r["pid"];
    uint64_t touched = r["pages_touched"];
    uint64_t start = std::stoull(r["region_start"].get<std::string>(), nullptr, 16);
    uint64_t size = r["region_size"];
    depth_pid[r["depth"]] = pid;
    Reported got = last_pages(lines, pid);
    ASSERT_TRUE(got.present) << "pid " << pid << " (depth " << r["depth"] << ") never reported";
    // Distinct pages in the table: the region plus the few pages the process
    // faulted outside it (stack, heap, copy-on-write after fork).
    EXPECT_NEAR(static_cast<double>(got.pages), static_cast<double>(touched),
                0.01 * touched + static_cast<double>(sanitizer_slack_pages()))
        << "pid " << pid << " depth " << r["depth"];
    // Every page of the region was seen, and attributed to this process.
    EXPECT_GE(covered_pages(lines, pid, start, size), static_cast<uint64_t>(0.99 * touched)) << "pid " << pid;
  }
  int untracked = reports(dir + "/other-report")[0]["pid"];
  EXPECT_FALSE(mentions_pid(lines, untracked)) << "untracked pid " << untracked << " was reported";
  EXPECT_FALSE(mentions_pid(lines, mb.pid)) << "membalancer reported itself";

  // The grandchild exits: it leaves the table; the others stay.
  int grandchild = depth_pid[2];
  kill(grandchild, SIGTERM);
  // Its exit may take a while (a slow VM): once the tracked set has lost it,
  // its last interval is that one or the next, and it is gone after that.
  ASSERT_TRUE(wait_for([&] { return json_lines(mb.out_path).back()["tracked_processes"] == 2; }, 30));
  size_t before = json_lines(mb.out_path).size();
  ASSERT_TRUE(wait_for([&] { return json_lines(mb.out_path).size() >= before + 2; }, 30));
  lines = json_lines(mb.out_path);
  const json& latest = lines.back();
  bool grandchild_listed = false, parent_listed = false;
  for (const auto& p : latest["processes"]) {
    if (p["pid"] == grandchild) grandchild_listed = true;
    if (p["pid"] == depth_pid[0]) parent_listed = true;
  }
  EXPECT_FALSE(grandchild_listed) << "exited grandchild still in the table";
  EXPECT_TRUE(parent_listed);
  EXPECT_EQ(latest["tracked_processes"], 2);

  // The whole tree exits: membalancer ends on its own, status 0, with a summary.
  kill(tree.pid, SIGTERM);
  EXPECT_EQ(wait_exit(tree.pid, 30), 0) << slurp(tree.err_path);
  int status = wait_exit(mb.pid, 30);
  EXPECT_EQ(status, 0) << slurp(mb.err_path);
  lines = json_lines(mb.out_path);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["type"], "summary");
  EXPECT_EQ(lines.back()["processes_exited"], 3);
  EXPECT_EQ(lines.back()["table_pages"], 0) << "pages of exited processes left in the table";
  EXPECT_EQ(lines.back()["dropped"], 0);

  kill(other.pid, SIGTERM);
  wait_exit(other.pid, 30);
}

TEST(TraceTree, PidModeDoesNotFollowChildren) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child tree = spawn({bin("memexercise"), "--size", "16M", "--touch-once", "--thp", "off", "--chain", "1",
                      "--wait-before-touch", dir + "/start", "--report", dir + "/report", "--ready-file",
                      dir + "/ready", "--duration", "0"},
                     dir, "tree");
  Child mb = spawn({bin("membalancer"), "trace", "--pid", std::to_string(tree.pid), "--sampler", "fault",
                    "--interval", "200", "--display", "json"},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 30));
  auto lines = lines_once_drained(mb.out_path);
  int child = -1;
  for (const auto& r : json_lines(dir + "/report"))
    if (r["depth"] == 1) child = r["pid"];
  ASSERT_GT(child, 0);
  EXPECT_TRUE(last_pages(lines, tree.pid).present);
  EXPECT_GE(last_pages(lines, tree.pid).pages, 4096u * 99 / 100);
  EXPECT_FALSE(mentions_pid(lines, child)) << "--pid followed a child";
  kill(mb.pid, SIGINT);
  EXPECT_EQ(wait_exit(mb.pid, 30), 0);
  lines = json_lines(mb.out_path);
  EXPECT_EQ(lines.back()["type"], "summary");
  kill(tree.pid, SIGTERM);
  wait_exit(tree.pid, 30);
}

namespace {

// The first cgroup v2 mount, or "".
std::string cgroup2_mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, path, type, rest;
  while (in >> dev >> path >> type && std::getline(in, rest))
    if (type == "cgroup2") return path;
  return "";
}

}  // namespace

TEST(TraceTree, CgroupModeTracksOnlyTheCgroup) {
  REQUIRE_ROOT();
  std::string root = cgroup2_mount();
  if (root.empty()) {
    if (in_ci()) FAIL() << "CI=true: no cgroup v2 mount";
    GTEST_SKIP() << "no cgroup v2 mount";
  }
  std::string cg = root + "/mbtest-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(cg.c_str(), 0755), 0) << cg << ": " << strerror(errno);
  std::string dir = temp_dir();
  Child inside = touch_once(dir, "inside", "16M", "in-report");
  Child outside = touch_once(dir, "outside", "16M", "out-report");
  std::ofstream(cg + "/cgroup.procs") << inside.pid << "\n";
  Child mb = spawn({bin("membalancer"), "trace", "--cgroup", cg, "--sampler", "fault", "--interval", "200",
                    "--display", "json"},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return json_lines(dir + "/in-report").size() == 1 && json_lines(dir + "/out-report").size() == 1; }, 30));
  auto lines = lines_once_drained(mb.out_path);
  EXPECT_GE(last_pages(lines, inside.pid).pages, 4096u * 99 / 100);
  EXPECT_FALSE(mentions_pid(lines, outside.pid));
  kill(mb.pid, SIGTERM);
  EXPECT_EQ(wait_exit(mb.pid, 30), 0);
  kill(inside.pid, SIGTERM);
  kill(outside.pid, SIGTERM);
  wait_exit(inside.pid, 30);
  wait_exit(outside.pid, 30);
  rmdir(cg.c_str());
}

TEST(TraceTree, AllModeSeesOthersButNotItself) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child w = touch_once(dir, "w", "16M", "report");
  Child mb = spawn({bin("membalancer"), "trace", "--all", "--sampler", "fault", "--interval", "200", "--display",
                    "json", "--max-processes", "4096"},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return json_lines(dir + "/report").size() == 1; }, 30));
  auto lines = lines_once_drained(mb.out_path);
  EXPECT_GE(last_pages(lines, w.pid).pages, 4096u * 99 / 100);
  EXPECT_FALSE(mentions_pid(lines, mb.pid));
  kill(mb.pid, SIGINT);
  EXPECT_EQ(wait_exit(mb.pid, 30), 0);
  kill(w.pid, SIGTERM);
  wait_exit(w.pid, 30);
}

// membalancer started below the root it is given (`--ppid $$` from a shell)
// is not one of the processes it tracks: when the rest of the tree exits, it
// stops, instead of tracking itself for ever.
TEST(TraceTree, AnAncestorRootDoesNotTrackMembalancerItself) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  // Orphans come to this process, so it can wait for membalancer.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  Child sh = spawn({"/bin/sh", "-c",
                    "\"$0\" trace --ppid $$ --sampler fault --display json --interval 200 --duration 120 & "
                    "echo $! > \"$1\"; sleep 2",
                    bin("membalancer"), dir + "/mbpid"},
                   dir, "sh");
  EXPECT_EQ(wait_exit(sh.pid, 30), 0);
  const pid_t mb = static_cast<pid_t>(std::stol(slurp(dir + "/mbpid")));
  const int status = wait_exit(mb, 60);
  if (status == -1) kill(mb, SIGKILL), waitpid(mb, nullptr, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  EXPECT_EQ(status, 0) << "-1: still running after its tree exited";
  auto lines = json_lines(sh.out_path);
  ASSERT_FALSE(lines.empty()) << slurp(sh.err_path);
  EXPECT_FALSE(mentions_pid(lines, mb));
  EXPECT_EQ(lines.back()["type"], "summary");
}

// `membalancer trace --record FILE` writes the profiler's format: every page
// the workload faulted is a sample of its process, and the file is complete.
// The summary accounts for every sample it counts accepted: each is in a
// node's accesses or counted dropped (full page tables, kernel addresses, a
// full user-space table). The last interval's counters were read after its
// table swap, while sampling went on: under a fork-and-exec loop 450-1050
// samples were counted accepted but went to a table never drained. Both ways
// a run stops with its summary: --duration and SIGTERM.
TEST(TraceTree, TheSummaryAccountsForEveryAcceptedSample) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child loop = spawn({"/bin/sh", "-c", "while :; do /bin/true; done"}, dir, "loop");
  const std::vector<std::string> trace = {bin("membalancer"), "trace",      "--ppid",     std::to_string(loop.pid),
                                          "--sampler",        "fault",      "--interval", "500",
                                          "--display",        "json"};
  auto check = [&](const std::string& how, const std::string& out) {
    std::vector<json> lines;
    std::stringstream in(out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(json::parse(l));
    ASSERT_FALSE(lines.empty()) << how;
    const json& s = lines.back();
    ASSERT_EQ(s["type"], "summary") << how;
    const json& c = s["counters"];
    uint64_t in_nodes = 0;
    for (const auto& n : s["nodes"]) in_nodes += n["accesses"].get<uint64_t>();
    EXPECT_GT(c["accepted"].get<uint64_t>(), 1000u) << how << ": the loop faults all the time (7,000+ in a TCG guest)";
    EXPECT_EQ(c["accepted"].get<uint64_t>(), in_nodes + c["dropped_page_table_full"].get<uint64_t>() +
                                                 c["kernel_address"].get<uint64_t>() +
                                                 s["table_dropped_full"].get<uint64_t>())
        << how;
  };
  std::vector<std::string> timed = trace;
  timed.insert(timed.end(), {"--duration", "2"});
  Ran r = run(timed, dir, "duration", 60);
  ASSERT_EQ(r.status, 0) << r.err;
  check("--duration", r.out);
  Child mb = spawn(trace, dir, "sigterm");
  ASSERT_TRUE(wait_for([&] { return json_lines(mb.out_path).size() >= 4; }, 30));
  kill(mb.pid, SIGTERM);
  EXPECT_EQ(wait_exit(mb.pid, 30), 0);
  check("SIGTERM", slurp(mb.out_path));
  kill(loop.pid, SIGKILL);
  wait_exit(loop.pid, 5);
}

TEST(TraceRecord, WritesTheProfilerFormat) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child w = touch_once(dir, "w", "16M", "report");
  const std::string file = dir + "/trace.mbp";
  Child mb = spawn({bin("membalancer"), "trace", "--pid", std::to_string(w.pid), "--sampler", "fault", "--interval",
                    "200", "--display", "json", "--record", file},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return reports(dir + "/report").size() == 1; }, 30));
  lines_once_drained(mb.out_path);
  kill(mb.pid, SIGTERM);
  ASSERT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);
  const uint64_t touched = reports(dir + "/report")[0]["pages_touched"];
  Child rep = spawn({bin("profiler"), "report", file, "--by", "process", "--format", "json"}, dir, "rep");
  ASSERT_EQ(wait_exit(rep.pid, 30), 0) << slurp(rep.err_path);
  json r = json::parse(slurp(rep.out_path));
  EXPECT_TRUE(r["profile"]["complete"].get<bool>());
  EXPECT_EQ(r["profile"]["samples_lost"], 0);
  ASSERT_EQ(r["processes"].size(), 1u) << r.dump();
  EXPECT_EQ(r["processes"][0]["pid"], w.pid);
  EXPECT_GE(r["processes"][0]["pages"].get<uint64_t>(), touched);
  EXPECT_LE(r["processes"][0]["pages"].get<uint64_t>(), touched + touched / 100 + 16 + sanitizer_slack_pages());
  // A second run does not replace the file without --force.
  Child again = spawn({bin("membalancer"), "trace", "--pid", std::to_string(w.pid), "--sampler", "fault",
                       "--duration", "0.2", "--record", file},
                      dir, "again");
  EXPECT_EQ(wait_exit(again.pid, 30), 2);
  EXPECT_NE(slurp(again.err_path).find("exists"), std::string::npos) << slurp(again.err_path);
  kill(w.pid, SIGTERM);
  wait_exit(w.pid, 10);
}

// `--record`: a child that execs at once after its fork is written, at its
// fork, with its parent's maps (its address space until the exec), not with
// its own read once the event was handled, after its exec (dated back to
// the fork, the new program took the samples of the old). The 1000 forks
// just before it keep the recorder busy, as on a slow machine.
TEST(TraceRecord, ForkedChildIsItsParentsProgramUntilItsExec) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child sh = spawn({"/bin/sh", "-c",
                    "while [ ! -e " + dir + "/start ]; do sleep 0.05; done; exec " + bin("exectest_first") +
                        " --fork 1000 0.2 " + bin("exectest_second") + " 1.5"},
                   dir, "sh");
  const std::string file = dir + "/forkexec.mbp";
  Child mb = spawn({bin("membalancer"), "trace", "--ppid", std::to_string(sh.pid), "--sampler", "fault", "--interval",
                    "500", "--display", "json", "--record", file},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_EQ(wait_exit(sh.pid, 60), 0) << slurp(sh.err_path);
  ASSERT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);  // stops when the tree is gone
  expect_parents_program_until_exec(samples_of_forked_child(file, static_cast<uint32_t>(sh.pid)));
}

// `--record`: a child that execs a short program is written with the new
// program's name and maps, read at its exec event, not once an interval
// (the program is gone by then: the child had no name, no maps, and its
// samples no mapping).
TEST(TraceRecord, ChildThatExecsAShortProgramHasItsMaps) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string symtest = bin("symtest");
  Child sh = spawn({"/bin/sh", "-c",
                    "while [ ! -e " + dir + "/start ]; do sleep 0.05; done; " + symtest + " main 0.04; " + symtest +
                        " lib 0.04; sleep 0.2"},
                   dir, "sh");
  const std::string file = dir + "/exec.mbp";
  Child mb = spawn({bin("membalancer"), "trace", "--ppid", std::to_string(sh.pid), "--sampler", "fault", "--interval",
                    "500", "--display", "json", "--record", file},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_EQ(wait_exit(sh.pid, 30), 0);
  ASSERT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);  // stops when the tree is gone
  mb::ProfileReader reader(file);
  ASSERT_TRUE(reader.ok()) << reader.error();
  mb::ProfileProcesses procs(reader.info());
  std::set<uint32_t> execd, symtests;  // exec events naming symtest; processes named symtest
  std::map<uint32_t, uint64_t> exec_at;
  for (const auto& p : reader.info().processes) {
    if (p.event == mb::kProcExec && p.name == "symtest") execd.insert(p.tgid), exec_at[p.tgid] = p.time_ns;
    if (procs.name(p.tgid) == "symtest") symtests.insert(p.tgid);
  }
  ASSERT_EQ(symtests.size(), 2u) << "the two children are named after the program they exec'd";
  EXPECT_EQ(execd, symtests) << "one exec event each, with the new name";
  std::map<uint32_t, uint64_t> samples, mapped;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!symtests.count(s[i].tgid) || !(s[i].flags & MB_ACC_IP)) continue;
      // A fault the kernel took on the program's behalf (execve writing its
      // stack, read() filling its buffer) has a kernel address: in no maps.
      if (s[i].ip >= 0xffff800000000000ull) continue;
      // Before its exec the child was the shell (its copy-on-write faults).
      if (s[i].time_ns < exec_at[s[i].tgid]) continue;
      ++samples[s[i].tgid];
      // The faulting instruction is in the new program's maps: symtest, its
      // loader or its libraries.
      if (procs.mapping(s[i].tgid, s[i].ip, s[i].time_ns)) ++mapped[s[i].tgid];
    }
  });
  for (uint32_t pid : symtests) {
    bool has_program = false;
    for (const auto& c : reader.info().maps_changes)
      if (c.tgid == pid)
        for (uint32_t id : c.added) has_program |= reader.info().mappings[id].path.ends_with("/symtest");
    EXPECT_TRUE(has_program) << "pid " << pid;
    EXPECT_GE(samples[pid], 20u) << "pid " << pid;  // a program faults in its code and data
    // Faults in library code before the loader mapped the library are found
    // in a later look at the maps (several, the last 310 ms after the exec).
    EXPECT_GE(mapped[pid] * 10, samples[pid] * 9) << "pid " << pid;
  }
}

// `--record`: a child forked while recording is written with its parent's
// maps at its fork, and its own memory, mapped after the fork, is in the
// maps the recorder looks at once an interval (it was in no maps at all:
// its samples, all of the child's region, were [unmapped]).
TEST(TraceRecord, AForkedChildsOwnMemoryIsInItsMaps) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child tree = spawn({bin("memexercise"), "--size", "4M", "--child-size", "16M", "--children", "1", "--touch-once",
                      "--thp", "off", "--wait-before-touch", dir + "/start", "--spawn-after", dir + "/start",
                      "--report", dir + "/report", "--ready-file", dir + "/ready", "--duration", "0"},
                     dir, "tree");
  const std::string file = dir + "/child.mbp";
  Child mb = spawn({bin("membalancer"), "trace", "--ppid", std::to_string(tree.pid), "--sampler", "fault",
                    "--interval", "200", "--display", "json", "--record", file},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 60)) << slurp(tree.err_path);
  const size_t seen = json_lines(mb.out_path).size();
  ASSERT_TRUE(wait_for([&] { return json_lines(mb.out_path).size() >= seen + 2; }, 30));  // two looks since
  kill(mb.pid, SIGTERM);
  ASSERT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);
  uint32_t child = 0;
  uint64_t start = 0, size = 0, touched = 0;
  for (const auto& r : json_lines(dir + "/report"))
    if (r["depth"] == 1) child = r["pid"], start = hex(r["region_start"]), size = r["region_size"],
                         touched = r["pages_touched"];
  ASSERT_GT(child, 0u);
  mb::ProfileReader reader(file);
  ASSERT_TRUE(reader.ok()) << reader.error();
  mb::ProfileProcesses procs(reader.info());
  uint64_t in_region = 0, mapped = 0;
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (s[i].tgid != child || s[i].vaddr < start || s[i].vaddr >= start + size) continue;
      ++in_region;
      const mb::ProfileMap* m = procs.mapping(child, s[i].vaddr, s[i].time_ns);
      if (m && m->path.empty()) ++mapped;  // anonymous memory
    }
  });
  EXPECT_EQ(in_region, touched);
  EXPECT_EQ(mapped, in_region) << "the child's region is in its maps";
  kill(tree.pid, SIGTERM);
  EXPECT_EQ(wait_exit(tree.pid, 30), 0);
}

// `--record` with a ring far smaller than an interval's samples: a 4 KiB ring
// (56 samples) read every 2 s while a process faults 64 MiB in at once. What
// the ring could not take is reported as the same count everywhere: the
// intervals' and the summary's dropped_sample_records, the file's END chunk
// and `profiler report` (json and text); and every sample the BPF side
// accepted is either in the file or counted lost (docs/cli.md, --record).
// Both ways the run ends: SIGTERM, and the process exiting mid-interval.
TEST(TraceRecord, AFullRingsLossesAreTheSameEverywhereAndAddUp) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  auto record = [&](const std::string& how) {
    SCOPED_TRACE(how);
    Child w = touch_once(dir, "w_" + how, "64M", "report_" + how);
    const std::string file = dir + "/" + how + ".mbp";
    Child mb = spawn({bin("membalancer"), "trace", "--pid", std::to_string(w.pid), "--sampler", "fault", "--interval",
                      "2000", "--display", "json", "--record", file, "--ring-size", "4K"},
                     dir, "mb_" + how);
    ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
    touch(dir + "/start");
    ASSERT_TRUE(wait_for([&] { return reports(dir + "/report_" + how).size() == 1; }, 30));
    if (how == "sigterm") {
      lines_once_drained(mb.out_path);
      kill(mb.pid, SIGTERM);
    } else {  // the process exits mid-interval: membalancer stops when it is gone
      kill(w.pid, SIGTERM);
      wait_exit(w.pid, 10);
    }
    ASSERT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);
    if (how == "sigterm") {
      kill(w.pid, SIGTERM);
      wait_exit(w.pid, 10);
    }
    const uint64_t touched = reports(dir + "/report_" + how)[0]["pages_touched"];
    ASSERT_EQ(touched, 16384u);

    const auto lines = json_lines(mb.out_path);
    ASSERT_FALSE(lines.empty());
    const json& summary = lines.back();
    ASSERT_EQ(summary["type"], "summary") << slurp(mb.out_path);
    uint64_t lost_in_intervals = 0;
    for (const auto& l : lines)
      if (l["type"] == "interval") lost_in_intervals += l["counters"]["dropped_sample_records"].get<uint64_t>();
    const uint64_t lost = summary["counters"]["dropped_sample_records"];
    const uint64_t accepted = summary["counters"]["accepted"];
    EXPECT_EQ(lost_in_intervals, lost);
    EXPECT_GE(accepted, touched) << "one fault per page touched";
    // At most 56 samples a read fit: nearly all of the 16384 faults were lost.
    EXPECT_GT(lost, touched - touched / 8) << "accepted " << accepted;

    mb::ProfileReader reader(file);
    ASSERT_TRUE(reader.ok()) << reader.error();
    ASSERT_TRUE(reader.info().complete);
    EXPECT_EQ(reader.info().samples_lost, lost) << "the END chunk";
    ASSERT_FALSE(reader.info().counters.empty());
    EXPECT_EQ(reader.info().counters.back().values[MB_CTR_SAMPLES_LOST], lost) << "the last counter snapshot";
    EXPECT_EQ(reader.info().counters.back().values[MB_CTR_ACCEPTED], accepted);
    EXPECT_EQ(reader.info().samples + lost, accepted) << reader.info().samples << " samples in the file";

    Ran rep = run({bin("profiler"), "report", file, "--by", "process", "--format", "json"}, dir, "json_" + how);
    ASSERT_EQ(rep.status, 0) << rep.err;
    const json r = json::parse(rep.out);
    EXPECT_EQ(r["profile"]["samples_lost"], lost) << rep.out;
    EXPECT_EQ(r["profile"]["samples"], reader.info().samples) << rep.out;
    Ran text = run({bin("profiler"), "report", file}, dir, "text_" + how);
    ASSERT_EQ(text.status, 0) << text.err;
    EXPECT_NE(text.out.find("lost in the ring buffer: " + std::to_string(lost) + ";"), std::string::npos) << text.out;
  };
  record("sigterm");
  std::remove((dir + "/start").c_str());
  record("exited");
}

// `--record` onto a full disk (a 1 MiB tmpfs; 24576 faults make 1.5 MiB of
// samples): the failed write stops the run the normal way, with its summary,
// in one line that says what the file holds, status 1; the file is read up to
// where the write failed, and the samples it holds, those not written and
// those lost add up to the samples accepted. Before, the write's exception
// left the loop at once: no summary, no backend stop, and the samples taken
// but not written were said nowhere.
TEST(TraceRecord, AFullDiskStopsTheRunWithItsSummaryAndSaysWhatTheFileHolds) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string disk = dir + "/disk";
  ASSERT_EQ(mkdir(disk.c_str(), 0700), 0);
  ASSERT_EQ(mount("none", disk.c_str(), "tmpfs", 0, "size=1M"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{disk};
  Child w = touch_once(dir, "w", "96M", "report");
  const std::string file = disk + "/full.mbp";
  Child mb = spawn({bin("membalancer"), "trace", "--pid", std::to_string(w.pid), "--sampler", "fault", "--interval",
                    "500", "--display", "json", "--record", file},
                   dir, "mb");
  ASSERT_TRUE(wait_for([&] { return has_interval(mb.out_path); }, 30)) << slurp(mb.err_path);
  touch(dir + "/start");
  const int status = wait_exit(mb.pid, 60);
  kill(w.pid, SIGTERM);
  wait_exit(w.pid, 10);
  if (status < 0) kill(mb.pid, SIGKILL), wait_exit(mb.pid, 10);
  ASSERT_EQ(status, 1) << "the full disk stops it: " << slurp(mb.err_path);

  const auto err = lines_of(slurp(mb.err_path));
  ASSERT_FALSE(err.empty());
  const std::string& said = err.back();
  EXPECT_EQ(err.size(), 1u) << "one line: " << slurp(mb.err_path);
  EXPECT_NE(said.find("writing " + file + ": No space left on device"), std::string::npos) << said;
  uint64_t in_file = 0, not_written = 0, lost = 0;
  const size_t at = said.find("holds the first ");
  ASSERT_NE(at, std::string::npos) << said;
  ASSERT_EQ(std::sscanf(said.c_str() + at, "holds the first %lu samples (%lu more not written, %lu lost", &in_file,
                        &not_written, &lost),
            3)
      << said;

  const auto lines = json_lines(mb.out_path);
  ASSERT_FALSE(lines.empty());
  const json& summary = lines.back();
  ASSERT_EQ(summary["type"], "summary") << "stopped the normal way: " << slurp(mb.out_path);
  const uint64_t accepted = summary["counters"]["accepted"];
  EXPECT_EQ(summary["counters"]["dropped_sample_records"], lost);
  EXPECT_GE(accepted, 24576u) << "one fault per page touched";
  EXPECT_EQ(in_file + not_written + lost, accepted);
  EXPECT_GT(not_written, 0u);

  mb::ProfileReader reader(file);
  EXPECT_FALSE(reader.ok()) << "the file ends where the write failed";
  EXPECT_FALSE(reader.info().complete);
  EXPECT_EQ(reader.info().samples, in_file) << reader.error();
  Ran rep = run({bin("profiler"), "report", file, "--by", "process", "--format", "json"}, dir, "report_json");
  EXPECT_EQ(rep.status, 2) << rep.err;
  EXPECT_NE(rep.err.find("offset"), std::string::npos) << rep.err;
  const json r = json::parse(rep.out);
  EXPECT_EQ(r["profile"]["samples"], in_file) << rep.out;
}

// `--record` in a mode with a backend (process here; numa, tier and autotune
// stop the same way): at the stop the backend is told of the execs since the
// last interval, which took them out of the ring buffer and had the recorder
// write them to a file already closed: status 1, "the file is closed", no
// summary, in most runs under a fork-and-exec loop. The events before the end
// are in the file, and every sample accepted is in it or counted lost.
TEST(TraceRecord, AModeWithABackendEndsItsRecordingWholeWhileProcessesExec) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child loop = spawn({"/bin/sh", "-c", "while :; do /bin/true; done"}, dir, "loop");
  for (int i = 0; i < 4; ++i) {
    const std::string file = dir + "/process" + std::to_string(i) + ".mbp";
    Ran r = run({bin("membalancer"), "process", "--ppid", std::to_string(loop.pid), "--sampler", "fault", "--interval",
                 "200", "--duration", "1", "--display", "json", "--record", file},
                dir, "mb" + std::to_string(i), 60);
    ASSERT_EQ(r.status, 0) << "run " << i << ": " << r.err;
    const auto lines = lines_of(r.out);
    ASSERT_FALSE(lines.empty());
    const json summary = json::parse(lines.back());
    ASSERT_EQ(summary["type"], "summary");
    mb::ProfileReader reader(file);
    ASSERT_TRUE(reader.ok()) << "run " << i << ": " << reader.error();
    EXPECT_TRUE(reader.info().complete);
    size_t execs = 0;
    for (const auto& p : reader.info().processes) execs += p.event == mb::kProcExec;
    EXPECT_GT(execs, 10u) << "run " << i << ": the loop execs all the time";
    EXPECT_EQ(reader.info().samples + reader.info().samples_lost, summary["counters"]["accepted"].get<uint64_t>())
        << "run " << i;
  }
  kill(loop.pid, SIGKILL);
  wait_exit(loop.pid, 5);
}
