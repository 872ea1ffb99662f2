// Unit tests for membalancer/privilege.h: what each run needs and keeps, the
// one-line message for a missing capability, which targets count as foreign
// (fake /proc trees), and drop_capabilities() in a forked child (it changes
// the calling process for good).
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "membalancer/options.h"
#include "membalancer/privilege.h"
#include "temp_tree.h"

namespace {

using mb::cap_bit;
using mb::CapSet;

// Needs root's capabilities; fails instead of skipping under CI=true.
#define REQUIRE_CAPS()                                                                  \
  do {                                                                                  \
    if ((mb::effective_capabilities() & cap_bit(CAP_SETPCAP)) == 0) {                   \
      const char* ci = std::getenv("CI");                                               \
      if (ci && std::string(ci) == "true") FAIL() << "CI=true: this test needs root";   \
      GTEST_SKIP() << "needs root";                                                     \
    }                                                                                   \
  } while (0)

mb::Options opts(const std::string& command, const std::string& sampler = "fault", bool migrate = false) {
  mb::Options o;
  o.command = command;
  o.sampler = sampler;
  o.migrate = migrate;
  o.mode = mb::TrackMode::kPid;
  o.pid = 1;
  return o;
}

CapSet all_but(CapSet without) { return ~without & ((CapSet{1} << (CAP_LAST_CAP + 1)) - 1); }

// /proc/PID/status lines of a fake process.
std::string status(unsigned uid, unsigned gid, CapSet prm, pid_t ppid = 1) {
  std::ostringstream s;
  s << "Name:\tx\nTgid:\t0\nPPid:\t" << ppid << "\nUid:\t" << uid << "\t" << uid << "\t" << uid << "\t" << uid
    << "\nGid:\t" << gid << "\t" << gid << "\t" << gid << "\t" << gid << "\nCapPrm:\t" << std::hex << prm << "\n";
  return s.str();
}

void fake_process(const mb_test::TempTree& proc, pid_t pid, pid_t ppid, unsigned uid, unsigned gid, CapSet prm) {
  proc.write(std::to_string(pid) + "/status", status(uid, gid, prm, ppid));
  proc.write(std::to_string(pid) + "/stat", std::to_string(pid) + " (x) S " + std::to_string(ppid) + " 0 0\n");
}

}  // namespace

TEST(Privilege, Names) {
  EXPECT_EQ(mb::capability_name(CAP_BPF), "CAP_BPF");
  EXPECT_EQ(mb::capability_name(CAP_SYS_PTRACE), "CAP_SYS_PTRACE");
  EXPECT_EQ(mb::capability_name(CAP_CHECKPOINT_RESTORE), "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(mb::capability_name(60), "CAP_60");
  EXPECT_EQ(mb::capability_names(cap_bit(CAP_SYS_NICE) | cap_bit(CAP_SYS_PTRACE)), "CAP_SYS_PTRACE, CAP_SYS_NICE");
  EXPECT_EQ(mb::capability_names(0), "none");
}

TEST(Privilege, SamplerNeeds) {
  auto fault = mb::sampler_needs("fault");
  ASSERT_EQ(fault.size(), 2u);
  EXPECT_EQ(fault[0].cap, CAP_BPF);
  EXPECT_EQ(fault[0].alternative, CAP_SYS_ADMIN);
  EXPECT_EQ(fault[1].cap, CAP_PERFMON);
  EXPECT_EQ(fault[1].alternative, CAP_SYS_ADMIN);
  auto abit = mb::sampler_needs("abit");
  ASSERT_EQ(abit.size(), 3u);
  EXPECT_EQ(abit[2].cap, CAP_SYS_ADMIN);
  EXPECT_EQ(abit[2].alternative, -1);
  EXPECT_NE(abit[2].why.find("/dev/membalancer_abit"), std::string::npos);
  EXPECT_TRUE(mb::sampler_needs("replay:/tmp/x.prof").empty());
}

// Modes, samplers, --migrate, --dry-run and replays need and keep what they use.
TEST(Privilege, PlanPerMode) {
  const CapSet ptrace = cap_bit(CAP_SYS_PTRACE), nice = cap_bit(CAP_SYS_NICE);
  EXPECT_EQ(mb::privilege_plan(opts("trace"), "").keep, ptrace);
  EXPECT_EQ(mb::privilege_plan(opts("trace"), "").needs.size(), 2u);  // the sampler's
  EXPECT_EQ(mb::privilege_plan(opts("numa", "fault", true), "").keep, ptrace);
  EXPECT_EQ(mb::privilege_plan(opts("tier"), "").keep,
            ptrace | cap_bit(CAP_DAC_READ_SEARCH) | cap_bit(CAP_SYS_ADMIN));
  EXPECT_EQ(mb::privilege_plan(opts("process"), "").keep, ptrace);
  EXPECT_EQ(mb::privilege_plan(opts("process", "fault", true), "").keep, ptrace | nice);
  EXPECT_EQ(mb::privilege_plan(opts("autotune", "fault", true), "").keep, ptrace | nice);

  // A replay touches no process: nothing needed, nothing kept.
  auto replay = mb::privilege_plan(opts("tier", "replay:/tmp/a.prof"), "pid 1 (it runs as another user)");
  EXPECT_TRUE(replay.needs.empty());
  EXPECT_EQ(replay.keep, 0u);

  // Foreign targets: ptrace for their pages, nice for their threads.
  auto numa = mb::privilege_plan(opts("numa", "fault", true), "pid 7 (it runs as another user)");
  ASSERT_EQ(numa.needs.size(), 3u);
  EXPECT_EQ(numa.needs[2].cap, CAP_SYS_PTRACE);
  EXPECT_NE(numa.needs[2].why.find("numa --migrate to move the pages of pid 7"), std::string::npos)
      << numa.needs[2].why;
  mb::Options dry = opts("numa", "fault", true);
  dry.dry_run = true;
  EXPECT_NE(mb::privilege_plan(dry, "pid 7").needs[2].why.find("to read the page nodes"), std::string::npos);
  auto proc = mb::privilege_plan(opts("process", "fault", true), "pid 7");
  ASSERT_EQ(proc.needs.size(), 4u);
  EXPECT_EQ(proc.needs[3].cap, CAP_SYS_NICE);
  EXPECT_NE(proc.needs[3].why.find("move the threads of pid 7"), std::string::npos);
  EXPECT_EQ(mb::privilege_plan(opts("process"), "pid 7").needs.size(), 3u);  // report only: no nice

  auto rec = mb::record_privilege_plan("cpu-clock", "");
  EXPECT_EQ(rec.keep, ptrace);
  EXPECT_EQ(rec.needs.size(), 2u);
}

TEST(Privilege, MissingCapabilityMessage) {
  auto needs = mb::sampler_needs("fault");
  EXPECT_EQ(mb::missing_capability(needs, all_but(0)), "");
  // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (kernels before 5.8).
  EXPECT_EQ(mb::missing_capability(needs, cap_bit(CAP_SYS_ADMIN)), "");
  EXPECT_EQ(mb::missing_capability(needs, all_but(cap_bit(CAP_BPF) | cap_bit(CAP_SYS_ADMIN))),
            "missing capability CAP_BPF (needed by the fault sampler to load its BPF programs; CAP_SYS_ADMIN would "
            "also do)");
  std::string perfmon = mb::missing_capability(needs, cap_bit(CAP_BPF));
  EXPECT_EQ(perfmon.rfind("missing capability CAP_PERFMON (needed by the fault sampler", 0), 0u) << perfmon;
  std::string abit = mb::missing_capability(mb::sampler_needs("abit"), cap_bit(CAP_BPF) | cap_bit(CAP_PERFMON));
  EXPECT_EQ(abit, "missing capability CAP_SYS_ADMIN (needed by the abit sampler to open /dev/membalancer_abit)");
  EXPECT_NE(mb::missing_capability(mb::sampler_needs("auto"), 0).find("every live sampler"), std::string::npos);
}

// Foreign: another user or group, or capabilities outside what the run keeps
// (the kernel's ptrace check compares permitted sets).
TEST(Privilege, ForeignTargets) {
  mb_test::TempTree proc("mb_priv");
  const unsigned uid = getuid(), gid = getgid();
  const CapSet keep = cap_bit(CAP_SYS_PTRACE);
  fake_process(proc, 100, 1, uid, gid, 0);
  fake_process(proc, 101, 100, uid, gid, keep);               // within what we keep
  fake_process(proc, 102, 101, uid + 1, gid, 0);              // another user
  fake_process(proc, 200, 1, uid, gid + 1, 0);                // another group
  fake_process(proc, 300, 1, uid, gid, cap_bit(CAP_SYS_ADMIN));  // more capabilities
  EXPECT_EQ(mb::foreign_process(100, keep, proc.path()), "");
  EXPECT_EQ(mb::foreign_process(101, keep, proc.path()), "");
  EXPECT_EQ(mb::foreign_process(102, keep, proc.path()), "pid 102 (it runs as another user)");
  EXPECT_EQ(mb::foreign_process(200, keep, proc.path()), "pid 200 (it runs with another group)");
  EXPECT_EQ(mb::foreign_process(300, keep, proc.path()), "pid 300 (it holds capabilities this run drops)");
  EXPECT_EQ(mb::foreign_process(999, keep, proc.path()), "");  // gone

  using mb::TrackMode;
  EXPECT_EQ(mb::foreign_target(TrackMode::kPid, 101, "", keep, proc.path()), "");
  // --ppid: the first foreign process of the present tree.
  EXPECT_EQ(mb::foreign_target(TrackMode::kTree, 100, "", keep, proc.path()), "pid 102 (it runs as another user)");
  EXPECT_EQ(mb::foreign_target(TrackMode::kAll, 0, "", keep, proc.path()), "every process (--all)");
  EXPECT_EQ(mb::foreign_target(TrackMode::kCgroup, 0, "/sys/fs/cgroup/app", keep, proc.path()),
            "the processes of cgroup /sys/fs/cgroup/app");
}

namespace {

// Runs fn in a forked child; its exit status (fn's return value).
int in_child(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A hex field of /proc/self/status.
CapSet status_field(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + ":", 0) == 0) return std::stoull(line.substr(name.size() + 1), nullptr, 16);
  return ~CapSet{0};
}

}  // namespace

TEST(Privilege, DropKeepsOnlyWhatTheLoopNeeds) {
  REQUIRE_CAPS();
  const CapSet keep = cap_bit(CAP_SYS_PTRACE) | cap_bit(CAP_SYS_NICE);
  // Exit codes say which check failed.
  int rc = in_child([&] {
    bool asked = false;
    CapSet left = mb::drop_capabilities(keep, [&] { return asked = true; });
    if (!asked) return 10;                       // the probe ran
    if (left != keep) return 11;                 // BPF worked without CAP_BPF: dropped
    if (status_field("CapEff") != keep) return 12;
    if (status_field("CapPrm") != keep) return 13;  // not only lowered: gone
    if (status_field("CapInh") != 0 || status_field("CapAmb") != 0) return 14;
    if (status_field("CapBnd") != keep) return 15;  // an exec cannot regain them
    if (status_field("NoNewPrivs") != 1) return 16;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(Privilege, DropKeepsBpfWhenTheKernelWantsIt) {
  REQUIRE_CAPS();
  const CapSet keep = cap_bit(CAP_SYS_PTRACE);
  int rc = in_child([&] {
    // The probe says map operations fail without CAP_BPF (Linux < 5.19).
    CapSet left = mb::drop_capabilities(keep, [] { return false; });
    if (left != (keep | cap_bit(CAP_BPF))) return 20;
    if (status_field("CapEff") != left) return 21;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(Privilege, DropRefusesWhileOtherThreadsRun) {
  REQUIRE_CAPS();
  int rc = in_child([] {
    std::atomic<bool> stop{false};
    std::thread t([&] {
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    int r = 30;
    try {
      mb::drop_capabilities(0);
    } catch (const std::logic_error&) {
      r = 0;
    }
    stop = true;
    t.join();
    if (r == 0 && status_field("CapEff") == 0) r = 31;  // nothing was dropped
    return r;
  });
  EXPECT_EQ(rc, 0);
}
