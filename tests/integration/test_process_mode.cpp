// `membalancer process` and `autotune` on the build machine (one NUMA node):
// bad options are one-line errors (status 2), the scripts check PPID, and a
// report-only run on a real multi-threaded workload reports every thread and
// the per-node CPU/memory access pattern in all three displays, changing no
// affinity. Moving threads needs two nodes with CPUs: tests/vm/tests/
// process_balance.sh and autotune.sh.
#include <sched.h>

#include "tests/integration/harness.h"

using namespace mbtest;

namespace {

struct Result {
  int status;
  std::string out, err;
};

Result run(const std::vector<std::string>& argv, const std::string& tag = "run", double timeout_s = 60) {
  std::string dir = temp_dir();
  Child c = spawn(argv, dir, tag);
  int status = wait_exit(c.pid, timeout_s);
  return {status, slurp(c.out_path), slurp(c.err_path)};
}

void expect_usage(const std::vector<std::string>& args, const std::string& needle) {
  std::vector<std::string> argv = {bin("membalancer")};
  argv.insert(argv.end(), args.begin(), args.end());
  Result r = run(argv);
  EXPECT_EQ(r.status, 2) << r.err;
  auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

}  // namespace

TEST(ProcessMode, BadOptionsAreOneLineErrors) {
  expect_usage({"process", "--ppid", "1", "--load-max", "0"}, "--load-max");
  expect_usage({"process", "--ppid", "1", "--load-max", "150%"}, "--load-max");
  expect_usage({"process", "--ppid", "1", "--max-move-share", "x"}, "--max-move-share");
  expect_usage({"process", "--ppid", "1", "--cooldown", "-1"}, "--cooldown");
  expect_usage({"autotune", "--ppid", "1", "--observe", "0"}, "--observe");
  expect_usage({"autotune", "--ppid", "1", "--observe", "5", "--reevaluate", "3"}, "--reevaluate");
  expect_usage({"autotune", "--ppid", "1", "--hysteresis", "2"}, "--hysteresis");
  expect_usage({"process"}, "--ppid");
}

TEST(ProcessMode, ScriptsCheckPpid) {
  // The scripts sit next to bin/ (in a checkout and in the VM guest).
  for (const std::string& s : {bin("../scripts/run_process_balancer.sh"), bin("../scripts/run_process_profiler.sh"),
                               bin("../scripts/run_autotune.sh")}) {
    Result r = run({s});
    EXPECT_EQ(r.status, 2) << s;
    EXPECT_NE(r.err.find("usage:"), std::string::npos) << s << ": " << r.err;
    r = run({s, "12x"});
    EXPECT_EQ(r.status, 2) << s;
    EXPECT_NE(r.err.find("'12x' is not a process id"), std::string::npos) << s << ": " << r.err;
  }
}

TEST(ProcessMode, ReportOnlyRunReportsThreadsAndAccessPattern) {
  REQUIRE_ROOT();
  std::string dir = temp_dir();
  Child mx = spawn({bin("memexercise"), "--size", "32M", "--hot-size", "8M", "--threads", "2", "--duration", "120",
                    "--thp", "off", "--report", dir + "/mx.json", "--ready-file", dir + "/ready"},
                   dir, "mx");
  ASSERT_TRUE(wait_for([&] { return file_exists(dir + "/ready"); }, 20));
  auto report = json_lines(dir + "/mx.json");
  ASSERT_EQ(report.size(), 1u);
  std::vector<pid_t> workers = report[0]["threads"].get<std::vector<pid_t>>();
  std::map<pid_t, std::string> before;
  for (pid_t t : workers) before[t] = allowed_list(mx.pid, t);
  const std::string pid = std::to_string(mx.pid);

  Result j = run({bin("membalancer"), "process", "--ppid", pid, "--sampler", "fault", "--interval", "300",
                  "--duration", "2", "--display", "json"},
                 "json");
  EXPECT_EQ(j.status, 0) << j.err;
  auto lines = lines_of(j.out);
  size_t intervals = 0;
  bool summary = false;
  for (const auto& l : lines) {
    auto o = nlohmann::json::parse(l);
    if (o["type"] == "interval") {
      ++intervals;
      ASSERT_TRUE(o.contains("thread_balance")) << l;
      const auto& t = o["thread_balance"];
      EXPECT_EQ(t["mode"], "process");
      EXPECT_EQ(t["migrate"], false);
      EXPECT_GE(t["threads"].get<int>(), 3) << "main thread and two workers";
      EXPECT_EQ(t["threads_moved"], 0);
    }
    if (o["type"] == "summary") {
      summary = true;
      EXPECT_EQ(o["thread_balance"]["restored"], 0);
      EXPECT_EQ(o["thread_balance"]["affinities_held"], 0);
    }
  }
  EXPECT_GE(intervals, 3u);
  EXPECT_TRUE(summary);

  Result h = run({bin("membalancer"), "process", "--ppid", pid, "--sampler", "fault", "--interval", "300",
                  "--duration", "1.5"},
                 "histogram");
  EXPECT_EQ(h.status, 0) << h.err;
  EXPECT_NE(h.out.find("NUMA PROCESS CPU AND MEMORY ACCESS PATTERN"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("report only: no affinity is changed"), std::string::npos);
  EXPECT_NE(h.out.find("affinities restored 0"), std::string::npos);

  Result c = run({bin("membalancer"), "autotune", "--ppid", pid, "--sampler", "fault", "--interval", "300",
                  "--duration", "2.5", "--observe", "3", "--display", "continuous"},
                 "continuous");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("| threads cpu"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("# autotune pid " + pid + ": "), std::string::npos) << "one decision line per process\n"
                                                                              << c.out;

  for (pid_t t : workers) EXPECT_EQ(allowed_list(mx.pid, t), before[t]) << "tid " << t;
  kill(mx.pid, SIGTERM);
  wait_exit(mx.pid, 10);
}
