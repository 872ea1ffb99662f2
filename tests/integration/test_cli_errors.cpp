// What users see on bad input or a missing feature: one line, naming the
// problem, and the documented exit status (2 bad input, 1 missing feature).
#include <sys/stat.h>

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
