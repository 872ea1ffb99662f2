// What users see on bad input or a missing feature: one line, naming the
// problem, and the documented exit status (2 bad input, 1 missing feature).
#include <sys/stat.h>
#include <sys/syscall.h>

#include <atomic>

#include "membalancer/topology.h"
#include "tests/integration/harness.h"

using namespace mbtest;

namespace {

struct Result {
  int status;
  std::string out, err;
};

Result run(const std::vector<std::string>& args) {
  std::string dir = temp_dir();
  std::vector<std::string> argv = {bin("membalancer")};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c = spawn(argv, dir, "cli");
  int status = wait_exit(c.pid, 60);
  return {status, slurp(c.out_path), slurp(c.err_path)};
}

Result run_profiler(std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), bin("profiler"));
  Ran r = mbtest::run(args, dir, "profiler");
  return {r.status, r.out, r.err};
}

pid_t unused_pid() {
  for (pid_t p = 4000000; p > 100000; p -= 7919)
    if (kill(p, 0) != 0 && errno == ESRCH) return p;
  return 4194000;
}

void expect_one_line(const Result& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.err;
  auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << "'" << lines[0] << "' does not name '" << needle << "'";
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace

TEST(CliErrors, NonexistentPid) {
  REQUIRE_ROOT();
  pid_t p = unused_pid();
  expect_one_line(run({"trace", "--ppid", std::to_string(p), "--duration", "1"}), 2, std::to_string(p));
  expect_one_line(run({"trace", "--pid", std::to_string(p), "--duration", "1"}), 2, std::to_string(p));
}

TEST(CliErrors, BadInterval) {
  expect_one_line(run({"trace", "--ppid", "1", "--interval", "abc"}), 2, "--interval");
  expect_one_line(run({"trace", "--ppid", "1", "--interval", "0"}), 2, "--interval");
}

TEST(CliErrors, UnknownSampler) {
  expect_one_line(run({"trace", "--ppid", "1", "--sampler", "magic"}), 2, "magic");
}

TEST(CliErrors, UnreadableOrBadConfig) {
  std::string dir = temp_dir();
  expect_one_line(run({"--config", dir + "/missing.toml", "trace", "--ppid", "1"}), 2, "--config");
  expect_one_line(run({"--config", dir, "trace", "--ppid", "1"}), 2, "--config");
  std::ofstream(dir + "/unknown.toml") << "[trace]\ninterval = 250\nno_such_key = 1\n";
  expect_one_line(run({"--config", dir + "/unknown.toml", "trace", "--ppid", "1"}), 2, "no_such_key");
}

TEST(CliErrors, NoTargetOrTwoTargets) {
  expect_one_line(run({"trace"}), 2, "--ppid");
  expect_one_line(run({"trace", "--ppid", "1", "--all"}), 2, "exactly one");
}

TEST(CliErrors, RequestedSamplerThatCannotOpenIsStatus1) {
  REQUIRE_ROOT();
  struct stat st;
  if (stat("/sys/bus/event_source/devices/ibs_op", &st) == 0) GTEST_SKIP() << "this machine has IBS";
  expect_one_line(run({"trace", "--ppid", "1", "--sampler", "ibs", "--duration", "1"}), 1, "ibs_op");
  if (stat("/sys/bus/event_source/devices/cpu/events/mem-loads", &st) != 0 &&
      stat("/sys/bus/event_source/devices/cpu_core/events/mem-loads", &st) != 0)
    expect_one_line(run({"trace", "--ppid", "1", "--sampler", "pebs", "--duration", "1"}), 1, "mem-loads");
  if (stat("/dev/membalancer_abit", &st) != 0)
    expect_one_line(run({"trace", "--ppid", "1", "--sampler", "abit", "--duration", "1"}), 1, "make module");
}

TEST(CliErrors, HelpListsEveryOption) {
  Result r = run({"trace", "--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* opt : {"--ppid", "--pid", "--cgroup", "--all", "--sampler", "--interval", "--duration", "--display",
                          "--top", "--max-pages", "--bpf-page-slots", "--decay", "--verbose"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

// --pid/--ppid must name a live process: the BPF side tracks thread-group
// ids, so a thread id would track nothing, and a zombie never exits again.
// Checked before privileges: status 2 with or without root.
TEST(CliErrors, TargetThatIsNotALiveProcess) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread t([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  while (tid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  expect_one_line(run({"trace", "--pid", std::to_string(tid), "--duration", "1"}), 2,
                  "--pid " + std::to_string(tid) + ": is a thread of process " + std::to_string(getpid()));
  stop = true;
  t.join();

  pid_t z = fork();
  if (z == 0) _exit(0);
  ASSERT_TRUE(wait_for([&] { return slurp("/proc/" + std::to_string(z) + "/status").find("State:\tZ") !=
                                    std::string::npos; }, 10));
  expect_one_line(run({"trace", "--ppid", std::to_string(z), "--duration", "1"}), 2,
                  "--ppid " + std::to_string(z) + ": has exited (a zombie)");
  waitpid(z, nullptr, 0);

  // A kernel thread (kthreadd, pid 2 outside a pid namespace) has no user
  // memory: nothing to sample or move, and it never exits.
  ASSERT_EQ(slurp("/proc/2/comm"), "kthreadd\n");
  for (const char* mode : {"numa", "process"})
    expect_one_line(run({mode, "--pid", "2", "--migrate", "--duration", "1"}), 2,
                    "--pid 2: is a kernel thread (kthreadd)");
  expect_one_line(run({"trace", "--ppid", "2", "--duration", "1"}), 2, "--ppid 2: is a kernel thread (kthreadd)");

  expect_one_line(run({"trace", "--cgroup", "/tmp", "--duration", "1"}), 2, "--cgroup /tmp: not a cgroup v2 directory");
  expect_one_line(run({"trace", "--cgroup", "/nonexistent", "--duration", "1"}), 2, "not a directory");
  // A size the kernel would refuse at load time (status 1) is bad input.
  expect_one_line(run({"trace", "--pid", "1", "--max-tasks", "0"}), 2, "--max-tasks");
}

// Output files: an existing one is replaced only with --force, a symbolic
// link never, and both are refused before anything is loaded.
TEST(CliErrors, OutputFilesAreNotFollowedOrReplaced) {
  std::string dir = temp_dir();
  const std::string old = dir + "/old.prof", link = dir + "/link.prof", target = dir + "/target";
  std::ofstream(old) << "old\n";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  const std::string self = std::to_string(getpid());
  expect_one_line(run({"trace", "--pid", self, "--record", old, "--duration", "1"}), 2,
                  old + ": the file exists (use --force to replace it)");
  expect_one_line(run({"trace", "--pid", self, "--record", link, "--force", "--duration", "1"}), 2,
                  link + ": is a symbolic link; refusing to follow it");
  auto profiler = [&](const std::vector<std::string>& args) { return run_profiler(args, dir); };
  expect_one_line(profiler({"record", "--pid", self, "-o", old, "--duration", "1"}), 2, old + ": the file exists");
  expect_one_line(profiler({"record", "--pid", self, "-o", link, "--force", "--duration", "1"}), 2,
                  "is a symbolic link");
  expect_one_line(profiler({"synth", "--pattern", "gups", "--footprint", "1M", "--samples", "10", "-o", link,
                            "--force"}),
                  2, "is a symbolic link");
  Result made = profiler({"synth", "--pattern", "gups", "--footprint", "1M", "--samples", "1000", "-o",
                          dir + "/s.prof"});
  ASSERT_EQ(made.status, 0) << made.err;
  struct stat st;
  ASSERT_EQ(stat((dir + "/s.prof").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // a profile is its owner's
  const std::string svg = dir + "/link.svg";
  ASSERT_EQ(symlink(target.c_str(), svg.c_str()), 0);
  expect_one_line(profiler({"heatmap", dir + "/s.prof", "-o", svg, "--force"}), 2, "is a symbolic link");
  // 0 is whatif's "not given": said, not taken silently as the recorded size.
  expect_one_line(profiler({"whatif", dir + "/s.prof", "--fast", "0"}), 2, "--fast: must be more than 0");
  EXPECT_EQ(slurp(old), "old\n");
  EXPECT_FALSE(file_exists(target));
  // The command of `profiler record --` is looked up first, as execvp will.
  expect_one_line(profiler({"record", "-o", dir + "/c.prof", "--", "/nonexistent/cmd"}), 2,
                  "-- /nonexistent/cmd: not an executable file");
  expect_one_line(profiler({"record", "-o", dir + "/c.prof", "--", "no-such-command-mb"}), 2,
                  "-- no-such-command-mb: command not found in PATH");
  EXPECT_FALSE(file_exists(dir + "/c.prof"));
}

// numa mode on a machine of one memory node fails before it loads BPF or
// creates the --record file (which a second run would then refuse).
TEST(CliErrors, NumaOnOneMemoryNodeFailsBeforeAnythingIsCreated) {
  REQUIRE_ROOT();
  const std::string dir = temp_dir(), rec = dir + "/y.prof";
  const std::string self = std::to_string(getpid());
  Result r = run({"numa", "--pid", self, "--sampler", "fault", "--record", rec, "--duration", "1"});
  if (mb::memory_nodes(mb::read_topology()).size() >= 2) {
    EXPECT_EQ(r.status, 0) << r.err;  // the VM suite's machines
    EXPECT_TRUE(file_exists(rec));
    return;
  }
  expect_one_line(r, 1, "numa mode needs at least two nodes with memory, and this machine has 1");
  EXPECT_FALSE(file_exists(rec));
}

// whatif --sweep gives the fast tier's sizes: a --fast beside it was
// dropped silently (status 0, the sweep's sizes simulated).
TEST(CliErrors, WhatifSweepWithFast) {
  const std::string dir = temp_dir();
  const std::string prof = dir + "/s.prof";
  ASSERT_EQ(run_profiler({"synth", "--pattern", "gups", "--footprint", "1M", "--samples", "1000", "-o", prof}, dir)
                .status,
            0);
  expect_one_line(run_profiler({"whatif", prof, "--fast", "16M", "--sweep", "4K:8K:4K"}, dir), 2,
                  "--fast: --sweep FROM:TO:STEP gives the fast tier's sizes; not with --fast");
}

// whatif --tiers: sizes through the size parser, each more than 0 and at
// least a page, at most 7 (8 tiers); not with --fast or --sweep; the
// two-tier rules are refused by name with more tiers.
TEST(CliErrors, WhatifTiers) {
  const std::string dir = temp_dir();
  const std::string prof = dir + "/s.prof";
  ASSERT_EQ(run_profiler({"synth", "--pattern", "gups", "--footprint", "1M", "--samples", "1000", "-o", prof}, dir)
                .status,
            0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tiers", "4M,8M", "--fast", "4M"}, "--tiers: give either --fast SIZE or --tiers SIZE,..., not both"},
      {{"--tiers", "4M,0"}, "--tiers: tier 1 must be more than 0"},
      {{"--tiers", "4M,,8M"}, "--tiers '4M,,8M': tier 1 has no size"},
      {{"--tiers", "4M,8Q"}, "--tiers"},
      {{"--tiers", "1M,1M,1M,1M,1M,1M,1M,1M"}, "--tiers: at most 7 sizes (8 tiers)"},
      {{"--tiers", "4M,1K"}, "--tiers: tier 1 must hold at least one page"},
      {{"--tiers", "4M,8M", "--sweep", "1M:2M:1M"}, "--tiers: --sweep varies the fast tier of two tiers"},
      {{"--tiers", "4M,8M", "--policy", "membalancer,tpp"},
       "--policy: tpp is a two-tier rule; with 3 tiers only membalancer runs (and the oracle)"},
  };
  for (const auto& [args, what] : cases) {
    std::vector<std::string> argv = {"whatif", prof};
    argv.insert(argv.end(), args.begin(), args.end());
    expect_one_line(run_profiler(argv, dir), 2, what);
  }
}

// A privileged run refuses a config file others could change.
TEST(CliErrors, ConfigWritableByOthers) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  const std::string cfg = dir + "/open.toml";
  std::ofstream(cfg) << "[trace]\ninterval = 250\n";
  chmod(cfg.c_str(), 0666);
  expect_one_line(run({"--config", cfg, "trace", "--ppid", "1"}), 2,
                  "--config: config " + cfg + " is writable by group/others (chmod go-w " + cfg + ")");
  chmod(cfg.c_str(), 0644);
  chmod(dir.c_str(), 0777);
  expect_one_line(run({"--config", cfg, "trace", "--ppid", "1"}), 2, "its directory " + dir + " is writable");
}
