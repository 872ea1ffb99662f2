// Least privilege (docs/reliability.md): the real binaries started with fewer
// capabilities name the one they miss in one line with status 1; a run that
// has set up keeps only what its loop needs, in every thread; the command
// `profiler record` starts keeps the credentials it was given. The tests set
// the credentials themselves (as setpriv would; the VM's busybox has no
// --bounding-set), so they run wherever root does.
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "tests/integration/harness.h"

using namespace mbtest;

namespace {

// Capability numbers (linux/capability.h) the tests name.
constexpr int kDacOverride = 1, kSetpcap = 8, kNetAdmin = 12, kSysModule = 16, kSysPtrace = 19, kSysAdmin = 21,
              kSysNice = 23, kPerfmon = 38, kBpf = 39;
uint64_t bit(int cap) { return uint64_t{1} << cap; }
const uint64_t kAllCaps = ~uint64_t{0};

// Credentials a child gets before its exec.
struct Creds {
  uint64_t drop = 0;      // taken out of the bounding set: root's exec then lacks them
  uid_t uid = 0;          // with gid: run as this user (0: stay root)
  uint64_t ambient = 0;   // with uid: handed over as ambient capabilities
};

[[noreturn]] void die(const char* what) {
  perror(what);
  _exit(126);
}

// spawn() with credentials set in the child before the exec.
Child spawn_as(const Creds& cr, const std::vector<std::string>& argv, const std::string& dir, const std::string& tag) {
  return spawn(argv, dir, tag, [&] {
    for (int cap = 0; cap < 64; ++cap)
      if ((cr.drop & bit(cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("PR_CAPBSET_DROP");
    if (cr.uid == 0) return;
    if (cr.ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die("PR_SET_KEEPCAPS");
    if (setgroups(0, nullptr) != 0 || setresgid(cr.uid, cr.uid, cr.uid) != 0 || setresuid(cr.uid, cr.uid, cr.uid) != 0)
      die("setresuid");
    if (!cr.ambient) return;
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    for (int i = 0; i < 2; ++i)
      d[i].effective = d[i].permitted = d[i].inheritable = static_cast<uint32_t>(cr.ambient >> (32 * i));
    if (syscall(SYS_capset, &h, d) != 0) die("capset");
    for (int cap = 0; cap < 64; ++cap)
      if ((cr.ambient & bit(cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
        die("PR_CAP_AMBIENT_RAISE");
  });
}

// run() with credentials.
Ran run_as(const Creds& cr, const std::vector<std::string>& argv, const std::string& dir, const std::string& tag) {
  Child c = spawn_as(cr, argv, dir, tag);
  int st = wait_exit(c.pid, 120);
  if (st < 0) {
    kill(c.pid, SIGKILL);
    wait_exit(c.pid, 5);
  }
  return {st, slurp(c.out_path), slurp(c.err_path)};
}

// Fields of /proc/PID/task/TID/status ("CapEff" -> value).
std::map<std::string, std::string> task_status(pid_t pid, pid_t tid) {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto v = line.find_first_not_of(" \t", colon + 1);
    out[line.substr(0, colon)] = v == std::string::npos ? "" : line.substr(v);
  }
  return out;
}

uint64_t hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

std::vector<pid_t> tasks_of(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    out.push_back(std::stoi(e.path().filename().string()));
  return out;
}

// A process to point membalancer at, once it runs `sleep` (after its exec).
struct Sleeper {
  Child c;
  Sleeper(const Creds& cr, const std::string& dir) {
    c = spawn_as(cr, {"/bin/sleep", "120"}, dir, "sleeper");
    wait_for([&] { return slurp("/proc/" + std::to_string(c.pid) + "/comm") == "sleep\n"; }, 10);
  }
  ~Sleeper() {
    kill(c.pid, SIGKILL);
    wait_exit(c.pid, 5);
  }
  std::string pid() const { return std::to_string(c.pid); }
};

void expect_one_line(const Ran& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.err;
  auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << "'" << lines[0] << "' does not say '" << needle << "'";
}

}  // namespace

TEST(Privilege, MissingCapabilityIsNamedWithStatus1) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Sleeper own({kAllCaps}, dir);  // ours, without capabilities: not foreign
  const std::string prof = dir + "/r.prof";
  struct Case {
    uint64_t drop;
    std::vector<std::string> argv;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {bit(kBpf) | bit(kSysAdmin), {bin("membalancer"), "trace", "--pid", own.pid(), "--sampler", "fault", "--duration", "1"},
       "membalancer: missing capability CAP_BPF (needed by the fault sampler to load its BPF programs; CAP_SYS_ADMIN "
       "would also do)"},
      {bit(kPerfmon) | bit(kSysAdmin), {bin("membalancer"), "trace", "--pid", own.pid(), "--duration", "1"},
       "membalancer: missing capability CAP_PERFMON (needed by every live sampler"},
      {bit(kPerfmon) | bit(kSysAdmin), {bin("profiler"), "record", "--pid", own.pid(), "--sampler", "fault", "-o", prof},
       "profiler: missing capability CAP_PERFMON (needed by the fault sampler"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.argv[1] + " without " + std::to_string(c.drop));
    Ran r = run_as({c.drop}, c.argv, dir, "missing");
    expect_one_line(r, 1, c.needle);
    EXPECT_NE(r.err.find("(hint: run as root, or grant it"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(file_exists(prof));  // nothing created before the check
}

// A sampler the machine lacks is named before a capability it would need:
// granting the capability would not help. (`--sampler ibs` without CAP_BPF
// used to ask for CAP_BPF on a machine without IBS.) Where the hardware or
// the module is present, the capability is what is missing.
TEST(Privilege, MissingHardwareIsNamedBeforeMissingCapabilities) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Sleeper own({kAllCaps}, dir);
  const std::string pmus = "/sys/bus/event_source/devices/";
  const bool has_ibs = file_exists(pmus + "ibs_op/type");
  const bool has_pebs = file_exists(pmus + "cpu/events/mem-loads") || file_exists(pmus + "cpu_core/events/mem-loads");
  const bool has_abit = file_exists("/dev/membalancer_abit");
  const std::string prof = dir + "/r.prof";
  struct Case {
    std::vector<std::string> argv;
    bool present;
    std::string absent_needle, present_needle;
  };
  const std::string no_bpf = "missing capability CAP_BPF (needed by the ";
  const std::vector<Case> cases = {
      {{bin("membalancer"), "trace", "--pid", own.pid(), "--sampler", "ibs", "--duration", "1"}, has_ibs,
       "membalancer: sampler ibs: no ibs_op PMU", "membalancer: " + no_bpf + "ibs sampler"},
      {{bin("membalancer"), "process", "--pid", own.pid(), "--sampler", "pebs", "--duration", "1"}, has_pebs,
       "membalancer: sampler pebs: no PEBS load event", "membalancer: " + no_bpf + "pebs sampler"},
      {{bin("membalancer"), "trace", "--pid", own.pid(), "--sampler", "abit", "--duration", "1"}, has_abit,
       "membalancer: sampler abit: /dev/membalancer_abit is missing", "membalancer: " + no_bpf + "abit sampler"},
      {{bin("profiler"), "record", "--pid", own.pid(), "--sampler", "ibs", "-o", prof}, has_ibs,
       "profiler: sampler ibs: no ibs_op PMU", "profiler: " + no_bpf + "ibs sampler"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.argv[0] + " " + c.argv[1] + " " + c.argv[5] + (c.present ? " (present)" : " (absent)"));
    Ran r = run_as({bit(kBpf) | bit(kSysAdmin)}, c.argv, dir, "hardware");
    expect_one_line(r, 1, c.present ? c.present_needle : c.absent_needle);
    if (!c.present) {
      EXPECT_EQ(r.err.find("CAP_"), std::string::npos) << r.err;
    }
  }
  EXPECT_FALSE(file_exists(prof));
}

// --info answers for the user who asks: the fault sampler, present on every
// machine with BPF, used to be "available" to a user who could not load it.
TEST(Privilege, InfoNamesTheCapabilityASamplerLacks) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Ran r = run_as({bit(kBpf) | bit(kSysAdmin)}, {bin("membalancer"), "--info"}, dir, "info");
  EXPECT_EQ(r.status, 0) << r.err;
  std::string fault;
  for (const auto& l : lines_of(r.out))
    if (l.rfind("fault:", 0) == 0) fault = l;
  EXPECT_NE(fault.find("not to this user: missing capability CAP_BPF"), std::string::npos) << r.out;
  r = run_as({0}, {bin("membalancer"), "--info"}, dir, "info-root");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("fault:     available: software page-fault events"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("not to this user"), std::string::npos) << r.out;
}

// Processes of another user, or holding capabilities the run drops, need
// CAP_SYS_PTRACE (pages, maps) and, to move their threads, CAP_SYS_NICE;
// our own capability-less processes need neither.
TEST(Privilege, ForeignTargetsNeedPtraceAndNice) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Sleeper root({}, dir);
  Sleeper nobody({0, 65534}, dir);
  Sleeper own({kAllCaps}, dir);

  Ran r = run_as({bit(kSysPtrace)}, {bin("membalancer"), "trace", "--pid", root.pid(), "--duration", "1"}, dir, "t");
  expect_one_line(r, 1,
                  "missing capability CAP_SYS_PTRACE (needed by trace to read the page nodes and maps of pid " +
                      root.pid() + " (it holds capabilities this run drops))");
  r = run_as({bit(kSysPtrace)}, {bin("membalancer"), "numa", "--pid", nobody.pid(), "--migrate", "--duration", "1"},
             dir, "n");
  expect_one_line(r, 1,
                  "missing capability CAP_SYS_PTRACE (needed by numa --migrate to move the pages of pid " +
                      nobody.pid() + " (it runs as another user))");
  r = run_as({bit(kSysNice)}, {bin("membalancer"), "process", "--pid", nobody.pid(), "--migrate", "--duration", "1"},
             dir, "p");
  expect_one_line(r, 1,
                  "missing capability CAP_SYS_NICE (needed by process --migrate to move the threads of pid " +
                      nobody.pid() + " (it runs as another user))");
  // Report only: no thread moves, no CAP_SYS_NICE.
  r = run_as({bit(kSysNice)}, {bin("membalancer"), "process", "--pid", nobody.pid(), "--sampler", "fault", "--display",
                               "json", "--duration", "1"},
             dir, "pr");
  EXPECT_EQ(r.status, 0) << r.err;

  r = run_as({bit(kSysPtrace) | bit(kSysNice)}, {bin("membalancer"), "process", "--pid", own.pid(), "--migrate",
                                                 "--sampler", "fault", "--display", "json", "--duration", "1"},
             dir, "own");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"type\":\"summary\""), std::string::npos) << r.out;
}

namespace {

// Starts PROGRAM ARGS --verbose on a workload, waits until it says what it
// kept after setup and runs `min_threads` threads, and checks every thread's
// capability sets against what it said; `want` must be among them, CAP_BPF
// may be (kernels before 5.19 want it for map operations). It must then stop
// cleanly on SIGTERM, having worked with what it kept.
void expect_dropped(const std::string& program, const std::vector<std::string>& args, uint64_t want,
                    size_t min_threads) {
  std::string dir = temp_dir();
  Child mx = spawn({bin("memexercise"), "--size", "32M", "--hot-size", "8M", "--duration", "60", "--thp", "off",
                    "--ready-file", dir + "/ready"},
                   dir, "mx");
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 20));
  std::vector<std::string> argv = {bin(program)};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--pid", std::to_string(mx.pid), "--sampler", "fault", "--duration", "60", "--verbose"});
  if (program == "profiler") argv.insert(argv.end(), {"-q", "-o", dir + "/p.prof"});
  Child mb = spawn(argv, dir, "run");
  const std::string tag = program + ": capabilities kept after setup: ";
  ASSERT_TRUE(wait_for([&] { return slurp(mb.err_path).find(tag) != std::string::npos; }, 60)) << slurp(mb.err_path);
  EXPECT_TRUE(wait_for([&] { return tasks_of(mb.pid).size() >= min_threads; }, 10));
  if (program == "membalancer") {  // an interval ran after the drop
    EXPECT_TRUE(wait_for([&] { return slurp(mb.out_path).find("\"type\":\"interval\"") != std::string::npos; }, 30));
  }
  std::string err = slurp(mb.err_path);
  auto at = err.find(tag);
  std::string said = err.substr(at + tag.size(), err.find('\n', at) - at - tag.size());
  static const std::map<std::string, int> names = {{"CAP_SYS_PTRACE", kSysPtrace}, {"CAP_SYS_NICE", kSysNice},
                                                   {"CAP_BPF", kBpf}, {"CAP_DAC_READ_SEARCH", 2},
                                                   {"CAP_SYS_ADMIN", kSysAdmin}};
  uint64_t kept = 0;
  std::stringstream ss(said);
  for (std::string n; std::getline(ss, n, ',');) {
    n.erase(0, n.find_first_not_of(' '));
    ASSERT_TRUE(names.count(n)) << "unexpected capability kept: " << n << " (" << said << ")";
    kept |= bit(names.at(n));
  }
  EXPECT_EQ(kept & ~bit(kBpf), want) << said;

  for (pid_t t : tasks_of(mb.pid)) {
    SCOPED_TRACE("thread " + std::to_string(t));
    auto st = task_status(mb.pid, t);
    EXPECT_EQ(hex(st["CapEff"]), kept);
    EXPECT_EQ(hex(st["CapPrm"]), kept);  // gone, not only lowered
    EXPECT_EQ(hex(st["CapBnd"]), kept);  // no exec can regain the others
    EXPECT_EQ(hex(st["CapInh"]), 0u);
    EXPECT_EQ(hex(st["CapAmb"]), 0u);
    EXPECT_EQ(st["NoNewPrivs"], "1");
    for (int c : {kDacOverride, kSetpcap, kNetAdmin, kSysModule, kSysAdmin, kPerfmon})
      EXPECT_EQ(hex(st["CapEff"]) & bit(c), 0u) << "capability " << c;
  }
  kill(mb.pid, SIGTERM);
  EXPECT_EQ(wait_exit(mb.pid, 30), 0) << slurp(mb.err_path);
  if (program == "membalancer") {
    auto lines = json_lines(mb.out_path);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "summary");
  }
  kill(mx.pid, SIGTERM);
  wait_exit(mx.pid, 10);
}

}  // namespace

TEST(Privilege, TraceKeepsOnlyPtraceAfterSetup) {
  REQUIRE_ROOT();
  expect_dropped("membalancer", {"trace", "--interval", "200", "--display", "json"}, bit(kSysPtrace), 1);
}

TEST(Privilege, AutotuneMigrateKeepsPtraceAndNice) {
  REQUIRE_ROOT();
  expect_dropped("membalancer", {"autotune", "--migrate", "--interval", "200", "--display", "json"},
                 bit(kSysPtrace) | bit(kSysNice), 1);
}

// The profiler's sample consumer is a thread started after the drop: it
// inherits the reduced sets.
TEST(Privilege, RecordThreadsKeepOnlyPtrace) {
  REQUIRE_ROOT();
  expect_dropped("profiler", {"record"}, bit(kSysPtrace), 2);
}

// The command is forked before the profiler drops anything: as root it runs
// as root would, without no_new_privs; capabilities handed to the profiler
// through the ambient set do not reach it.
TEST(Privilege, RecordedCommandKeepsItsCredentials) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  chmod(dir.c_str(), 0777);  // nobody writes here below
  const std::string shell = "grep -E '^(CapEff|CapAmb|NoNewPrivs)' /proc/self/status > " + dir + "/$0";
  Ran r = run({bin("profiler"), "record", "--sampler", "fault", "-q", "-v", "-o", dir + "/root.prof", "--", "/bin/sh",
               "-c", shell, "root.caps"},
              dir, "root");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("profiler: capabilities kept after setup: CAP_SYS_PTRACE"), std::string::npos) << r.err;
  auto mine = task_status(getpid(), getpid());
  std::string caps = slurp(dir + "/root.caps");
  EXPECT_NE(caps.find("CapEff:\t" + mine["CapEff"]), std::string::npos) << caps;
  EXPECT_NE(caps.find("NoNewPrivs:\t0"), std::string::npos) << caps;

  // A user given exactly what recording needs, as ambient capabilities.
  // Debian's kernels add perf_event_paranoid 3, which refuses perf events to
  // every process without CAP_SYS_ADMIN, CAP_PERFMON or not; whoever grants
  // a user CAP_PERFMON there also sets 2 (the upstream default), as here.
  const std::string paranoid_path = "/proc/sys/kernel/perf_event_paranoid";
  const std::string paranoid = slurp(paranoid_path);
  const bool lower = !paranoid.empty() && std::stoi(paranoid) > 2;
  auto write_paranoid = [&](const std::string& v) {
    std::ofstream(paranoid_path) << v;
  };
  if (lower) write_paranoid("2\n");
  r = run_as({0, 65534, bit(kBpf) | bit(kPerfmon) | bit(kSysPtrace)},
             {bin("profiler"), "record", "--sampler", "fault", "-q", "-o", dir + "/user.prof", "--", "/bin/sh", "-c",
              shell, "user.caps"},
             dir, "user");
  if (lower) write_paranoid(paranoid);
  ASSERT_EQ(r.status, 0) << r.err;
  caps = slurp(dir + "/user.caps");
  EXPECT_NE(caps.find("CapEff:\t0000000000000000"), std::string::npos) << caps;
  EXPECT_NE(caps.find("CapAmb:\t0000000000000000"), std::string::npos) << caps;
  struct stat st;
  ASSERT_EQ(stat((dir + "/user.prof").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}
