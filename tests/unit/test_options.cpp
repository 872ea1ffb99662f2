// Unit tests for membalancer/options.h: parse_options() on argv vectors and
// config files. Parse errors found by CLI11 print one line on stderr and set
// status 2; validation errors throw mb::UsageError (status 2), which main()
// prints. Both paths are asserted case by case.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/error.h"
#include "membalancer/options.h"
#include "membalancer/privilege.h"
#include "temp_tree.h"

namespace {

// Redirects a file descriptor into a temporary file for its lifetime.
class FdCapture {
 public:
  explicit FdCapture(int fd) : fd_(fd), file_(std::tmpfile()) {
    std::fflush(nullptr);
    saved_ = dup(fd_);
    dup2(fileno(file_), fd_);
  }
  std::string finish() {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    if (saved_ >= 0) {
      dup2(saved_, fd_);
      close(saved_);
      saved_ = -1;
    }
    std::string s;
    std::rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) s.append(buf, n);
    return s;
  }
  ~FdCapture() {
    finish();
    std::fclose(file_);
  }

 private:
  int fd_;
  FILE* file_;
  int saved_ = -1;
};

struct Result {
  int status = -1;
  mb::Options opts;
  bool threw = false;
  int error_status = 0;
  std::string error;  // the UsageError's message
  std::string err;    // stderr
  std::string out;    // stdout
};

Result parse(std::vector<std::string> args) {
  args.insert(args.begin(), "membalancer");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  Result r;
  FdCapture out(1), err(2);
  try {
    r.opts = mb::parse_options(static_cast<int>(args.size()), argv.data(), &r.status);
  } catch (const mb::Error& e) {
    r.threw = true;
    r.error_status = e.status();
    r.error = e.what();
  }
  r.err = err.finish();
  r.out = out.finish();
  return r;
}

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// CLI11 found it: status 2, one line on stderr naming `names`.
void expect_parse_error(const std::vector<std::string>& args, std::initializer_list<std::string> names) {
  SCOPED_TRACE(::testing::PrintToString(args));
  Result r = parse(args);
  EXPECT_FALSE(r.threw) << r.error;
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("membalancer: ", 0), 0u) << r.err;
  for (const auto& n : names) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in: " << r.err;
}

// Validation found it: a UsageError (status 2) naming `names`, nothing printed.
void expect_usage_error(const std::vector<std::string>& args, std::initializer_list<std::string> names) {
  SCOPED_TRACE(::testing::PrintToString(args));
  Result r = parse(args);
  ASSERT_TRUE(r.threw) << "status " << r.status << ", stderr: " << r.err;
  EXPECT_EQ(r.error_status, 2);
  EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  EXPECT_TRUE(r.err.empty()) << r.err;
  for (const auto& n : names) EXPECT_NE(r.error.find(n), std::string::npos) << "'" << n << "' not in: " << r.error;
}

Result expect_ok(const std::vector<std::string>& args) {
  Result r = parse(args);
  EXPECT_FALSE(r.threw) << ::testing::PrintToString(args) << ": " << r.error;
  EXPECT_EQ(r.status, -1) << ::testing::PrintToString(args) << ": " << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  return r;
}

TEST(Options, ValidTrace) {
  Result r = expect_ok({"trace", "--ppid", "1", "--interval", "500", "--duration", "2", "--display", "json"});
  const mb::Options& o = r.opts;
  EXPECT_EQ(o.command, "trace");
  EXPECT_EQ(o.mode, mb::TrackMode::kTree);
  EXPECT_EQ(o.pid, 1);
  EXPECT_EQ(o.interval_ms, 500u);
  EXPECT_DOUBLE_EQ(o.duration_s, 2.0);
  EXPECT_EQ(o.display, mb::Display::kJson);
  EXPECT_FALSE(o.info);
}

// The scripts put a mode's defaults first and the user's options after them.
TEST(Options, RepeatedOptionLastWins) {
  Result r = expect_ok({"tier", "--ppid", "1", "--display", "histogram", "--display", "json", "--ppid", "2"});
  EXPECT_EQ(r.opts.display, mb::Display::kJson);
  EXPECT_EQ(r.opts.pid, 2);
}

TEST(Options, MovingModes) {
  Result r = expect_ok({"tier", "--ppid", "5", "--migrate", "--tiers", "0,1:2", "--watermark", "4%:9%", "--rate-limit",
                        "64M", "--cooldown", "7", "--min-heat", "3"});
  const mb::Options& o = r.opts;
  EXPECT_EQ(o.command, "tier");
  EXPECT_TRUE(o.migrate);
  EXPECT_EQ(o.tiers, "0,1:2");
  EXPECT_DOUBLE_EQ(o.watermark_low, 0.04);
  EXPECT_DOUBLE_EQ(o.watermark_high, 0.09);
  EXPECT_EQ(o.rate_limit_bytes, 64ull << 20);
  EXPECT_EQ(o.cooldown_intervals, 7u);
  EXPECT_DOUBLE_EQ(o.min_hot_heat, 3.0);
  Result w = expect_ok({"tier", "--ppid", "5", "--watermark", "3"});
  EXPECT_DOUBLE_EQ(w.opts.watermark_high, 0.06);  // twice the low one
  EXPECT_FALSE(w.opts.migrate);                   // report-only by default
  Result n = expect_ok({"numa", "--pid", "5", "--min-free", "1G", "--hysteresis", "0.3", "--rate-limit", "0"});
  EXPECT_EQ(n.opts.command, "numa");
  EXPECT_EQ(n.opts.min_free_bytes, 1ull << 30);
  EXPECT_DOUBLE_EQ(n.opts.hysteresis, 0.3);
  EXPECT_EQ(n.opts.rate_limit_bytes, 0u);
  // A rate may say per second, as parse_rate (rate_limiter.h) reads it.
  EXPECT_EQ(expect_ok({"numa", "--pid", "5", "--rate-limit", "64MiB/s"}).opts.rate_limit_bytes, 64ull << 20);
  EXPECT_EQ(expect_ok({"tier", "--pid", "5", "--rate-limit", "1G/s"}).opts.rate_limit_bytes, 1ull << 30);
}

TEST(Options, MovingModeErrors) {
  expect_usage_error({"tier", "--ppid", "1", "--watermark", "10:5"}, {"--watermark", "above"});
  expect_usage_error({"tier", "--ppid", "1", "--watermark", "60"}, {"--watermark", "percentage"});
  // LOW alone means HIGH = 2 LOW: held to the bound a given HIGH has.
  expect_usage_error({"tier", "--ppid", "1", "--watermark", "30"}, {"--watermark 30", "LOW:HIGH"});
  expect_usage_error({"tier", "--ppid", "1", "--watermark", "30:60"}, {"--watermark", "below 50"});
  EXPECT_DOUBLE_EQ(expect_ok({"tier", "--ppid", "1", "--watermark", "24.9"}).opts.watermark_high, 0.498);
  expect_usage_error({"tier", "--ppid", "1", "--watermark", "x"}, {"--watermark"});
  expect_usage_error({"numa", "--ppid", "1", "--rate-limit", "5x"}, {"--rate-limit"});
  expect_usage_error({"numa", "--ppid", "1", "--rate-limit", "1000"}, {"--rate-limit", "1M"});
  expect_usage_error({"numa", "--ppid", "1", "--hysteresis", "1.5"}, {"--hysteresis"});
  expect_usage_error({"numa", "--ppid", "1", "--min-free", "lots"}, {"--min-free"});
  expect_usage_error({"tier", "--ppid", "1", "--min-heat", "0"}, {"--min-heat"});
  expect_parse_error({"trace", "--ppid", "1", "--migrate"}, {"--migrate"});     // trace never moves
  expect_usage_error({"autotune", "--ppid", "1", "--reevaluate", "4294967295"}, {"--reevaluate", "0 never"});
  EXPECT_EQ(expect_ok({"autotune", "--ppid", "1", "--reevaluate", "100000000"}).opts.reevaluate_intervals, 100000000u);
  expect_parse_error({"numa", "--ppid", "1", "--tiers", "0:1"}, {"--tiers"});   // tier only
}

TEST(Options, Defaults) {
  Result r = expect_ok({"trace", "--ppid", "7"});
  const mb::Options& o = r.opts;
  EXPECT_EQ(o.sampler, "auto");
  EXPECT_EQ(o.interval_ms, 1000u);
  EXPECT_DOUBLE_EQ(o.duration_s, 0.0);
  EXPECT_EQ(o.display, mb::Display::kHistogram);
  EXPECT_EQ(o.top, 5);
  EXPECT_EQ(o.region_bytes, 2u << 20);
  EXPECT_EQ(o.max_pages, 1u << 20);
  EXPECT_EQ(o.bpf_page_slots, 1u << 18);
  EXPECT_DOUBLE_EQ(o.decay, 0.5);
  EXPECT_FALSE(o.verbose);
}

TEST(Options, TargetsAndValues) {
  Result r = expect_ok({"trace", "--pid", "42", "--sampler", "fault", "--display", "continuous", "-v"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kPid);
  EXPECT_EQ(r.opts.pid, 42);
  EXPECT_EQ(r.opts.sampler, "fault");
  EXPECT_EQ(r.opts.display, mb::Display::kContinuous);
  EXPECT_TRUE(r.opts.verbose);

  r = expect_ok({"trace", "--all"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kAll);

  r = expect_ok({"trace", "--cgroup", "/sys/fs/cgroup/app"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kCgroup);
  EXPECT_EQ(r.opts.cgroup, "/sys/fs/cgroup/app");

  r = expect_ok({"trace", "--ppid", "1", "--region-size", "64K", "--max-pages", "2M", "--bpf-page-slots", "1024",
                 "--decay", "1", "--top", "0", "--interval", "10", "--max-ranges", "9", "--ibs-period", "4096",
                 "--pebs-period", "333", "--max-tasks", "100", "--max-processes", "50"});
  EXPECT_EQ(r.opts.region_bytes, 64u << 10);
  EXPECT_EQ(r.opts.max_pages, 2u << 20);
  EXPECT_EQ(r.opts.bpf_page_slots, 1024u);
  EXPECT_DOUBLE_EQ(r.opts.decay, 1.0);
  EXPECT_EQ(r.opts.top, 0);
  EXPECT_EQ(r.opts.interval_ms, 10u);
  EXPECT_EQ(r.opts.max_ranges, 9u);
  EXPECT_EQ(r.opts.ibs_period, 4096u);
  EXPECT_EQ(r.opts.pebs_period, 333u);
  EXPECT_EQ(r.opts.max_tasks, 100u);
  EXPECT_EQ(r.opts.max_processes, 50u);

  r = expect_ok({"trace", "--ppid", "1", "--interval", "60000"});
  EXPECT_EQ(r.opts.interval_ms, 60000u);
}

TEST(Options, Info) {
  Result r = expect_ok({"--info"});
  EXPECT_TRUE(r.opts.info);
  EXPECT_EQ(r.opts.command, "");
}

TEST(Options, Help) {
  Result r = parse({"--help"});
  EXPECT_FALSE(r.threw);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("trace"), std::string::npos) << r.out;
  r = parse({"trace", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--ppid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fault"), std::string::npos) << "sampler list in the help";
}

TEST(Options, ParseErrorsSetStatus2) {
  expect_parse_error({"--bogus"}, {"--bogus"});
  expect_parse_error({"trace", "--ppid", "1", "--bogus"}, {"--bogus"});
  expect_parse_error({"trace", "--ppid", "1", "--interval", "abc"}, {"--interval", "abc"});
  expect_parse_error({"trace", "--ppid", "x"}, {"--ppid"});
  expect_parse_error({"trace", "--ppid", "1", "stray"}, {"stray"});
  expect_parse_error({"trace", "--ppid"}, {"--ppid"});
  expect_parse_error({"bogus-command"}, {"bogus-command"});
}

TEST(Options, ValidationErrorsThrowUsageError) {
  expect_usage_error({"trace", "--ppid", "1", "--interval", "5"}, {"--interval", "5"});
  expect_usage_error({"trace", "--ppid", "1", "--interval", "60001"}, {"--interval"});
  expect_usage_error({"trace", "--ppid", "1", "--sampler", "bogus"}, {"--sampler", "bogus"});
  expect_usage_error({"trace"}, {"--ppid", "--pid", "--cgroup", "--all"});
  expect_usage_error({"trace", "--ppid", "1", "--pid", "2"}, {"exactly one"});
  expect_usage_error({"trace", "--ppid", "1", "--all"}, {"exactly one"});
  expect_usage_error({"trace", "--ppid", "0"}, {"--ppid", "'0'"});
  expect_usage_error({"trace", "--pid", "0"}, {"--pid"});
  // CLI11 reads integers in base 0: 010 would be pid 8, 0100 ms would be 64.
  expect_parse_error({"trace", "--pid", "010"}, {"--pid", "'010'", "leading zero"});
  expect_parse_error({"trace", "--ppid", "1", "--interval", "0100"}, {"--interval", "leading zero"});
  EXPECT_EQ(expect_ok({"trace", "--ppid", "1", "--interval", "100"}).opts.interval_ms, 100u);
  expect_usage_error({"trace", "--ppid", "1", "--display", "bogus"}, {"--display", "bogus"});
  expect_usage_error({"trace", "--ppid", "1", "--region-size", "3K"}, {"--region-size", "power of two"});
  expect_usage_error({"trace", "--ppid", "1", "--region-size", "2K"}, {"--region-size"});
  expect_usage_error({"trace", "--ppid", "1", "--region-size", "2X"}, {"--region-size", "2X"});
  expect_usage_error({"trace", "--ppid", "1", "--max-pages", "1000"}, {"--max-pages"});
  // The kernel allocates both tables whole: 2^31 slots would ask for 128 GiB.
  expect_usage_error({"trace", "--ppid", "1", "--bpf-page-slots", "2147483648"}, {"--bpf-page-slots", "2147483648"});
  expect_usage_error({"trace", "--ppid", "1", "--bpf-page-slots", "134217728"}, {"--bpf-page-slots", "2^26"});
  EXPECT_EQ(expect_ok({"trace", "--ppid", "1", "--bpf-page-slots", "67108864"}).opts.bpf_page_slots, 1u << 26);
  expect_usage_error({"trace", "--ppid", "1", "--decay", "0"}, {"--decay"});
  expect_usage_error({"trace", "--ppid", "1", "--decay", "1.5"}, {"--decay"});
  expect_usage_error({"trace", "--ppid", "1", "--bpf-page-slots", "1000"}, {"--bpf-page-slots"});
  expect_usage_error({"trace", "--ppid", "1", "--bpf-page-slots", "3072"}, {"--bpf-page-slots"});
  expect_usage_error({"trace", "--ppid", "1", "--top", "1001"}, {"--top"});
  expect_usage_error({"trace", "--ppid", "1", "--duration", "-1"}, {"--duration"});
  expect_usage_error({}, {"no command"});
}

class ConfigFile : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) { return tree_.write(name, content); }
  mb_test::TempTree tree_{"mb_options"};
  const std::string& dir_ = tree_.path();
};

TEST_F(ConfigFile, TraceSection) {
  std::string cfg = write("good.toml", "[trace]\ninterval = 250\nppid = 1\ndisplay = \"json\"\n");
  Result r = expect_ok({"--config", cfg, "trace"});
  EXPECT_EQ(r.opts.command, "trace");
  EXPECT_EQ(r.opts.interval_ms, 250u);
  EXPECT_EQ(r.opts.pid, 1);
  EXPECT_EQ(r.opts.display, mb::Display::kJson);
  // The file gives options; the command itself comes from the command line.
  expect_usage_error({"--config", cfg}, {"no command"});
}

TEST_F(ConfigFile, CommandLineOverridesConfig) {
  std::string cfg = write("good.toml", "[trace]\ninterval = 250\nsampler = \"fault\"\n");
  Result r = expect_ok({"--config", cfg, "trace", "--ppid", "3", "--interval", "400"});
  EXPECT_EQ(r.opts.interval_ms, 400u);
  EXPECT_EQ(r.opts.sampler, "fault");
  EXPECT_EQ(r.opts.pid, 3);
}

// One file can hold a section per command: only the command run reads its
// own. The others' keys are still checked, but their values never reach
// the run (every command's options share one Options, so a [numa] interval
// used to set trace's).
TEST_F(ConfigFile, OtherCommandsSectionsDoNotApply) {
  std::string cfg = write("modes.toml", "[trace]\ninterval = 250\n[numa]\ninterval = 500\nmin-free = \"1G\"\n");
  Result r = expect_ok({"--config", cfg, "trace", "--ppid", "1"});
  EXPECT_EQ(r.opts.interval_ms, 250u);
  EXPECT_EQ(r.opts.min_free_bytes, 256ull << 20);
  r = expect_ok({"--config", cfg, "numa", "--ppid", "1"});
  EXPECT_EQ(r.opts.interval_ms, 500u);
  EXPECT_EQ(r.opts.min_free_bytes, 1ull << 30);
  cfg = write("numa_only.toml", "[numa]\ninterval = 50\n");
  r = expect_ok({"--config", cfg, "trace", "--ppid", "1"});
  EXPECT_EQ(r.opts.interval_ms, 1000u);
  // A value another command would refuse is that command's business...
  cfg = write("numa_low.toml", "[numa]\ninterval = 5\n");
  expect_ok({"--config", cfg, "trace", "--ppid", "1"});
  // ...but an unknown key is an error in any section.
  cfg = write("numa_extra.toml", "[numa]\nbogus = 1\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "numa.bogus"});
  cfg = write("numa_trace_only.toml", "[trace]\nmin-free = \"1G\"\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "trace.min-free"});
}

// A flag set to false in the file is not given: "all = false" does not
// count as --all (which made any other target "more than one").
TEST_F(ConfigFile, AFlagSetFalseIsNotGiven) {
  std::string cfg = write("all_false.toml", "[tier]\nall = false\n");
  Result r = expect_ok({"--config", cfg, "tier", "--pid", "3"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kPid);
  EXPECT_EQ(r.opts.pid, 3);
  expect_usage_error({"--config", cfg, "tier"}, {"choose exactly one"});
  cfg = write("all_true.toml", "[tier]\nall = true\n");
  EXPECT_EQ(expect_ok({"--config", cfg, "tier"}).opts.mode, mb::TrackMode::kAll);
}

// The command line overrides the file for the target too: another target
// option there replaces the file's instead of making two.
TEST_F(ConfigFile, ATargetOnTheCommandLineReplacesTheFilesTarget) {
  std::string cfg = write("pid.toml", "[trace]\npid = 5\ninterval = 300\n");
  Result r = expect_ok({"--config", cfg, "trace", "--ppid", "3"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kTree);
  EXPECT_EQ(r.opts.pid, 3);
  EXPECT_EQ(r.opts.interval_ms, 300u) << "the file's other options still apply";
  r = expect_ok({"--config", cfg, "trace"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kPid);
  EXPECT_EQ(r.opts.pid, 5);
  cfg = write("all.toml", "[tier]\nall = true\n");
  r = expect_ok({"--config", cfg, "tier", "--cgroup", "/sys/fs/cgroup"});
  EXPECT_EQ(r.opts.mode, mb::TrackMode::kCgroup);
  // Two targets in the file itself are still two.
  cfg = write("two.toml", "[trace]\npid = 5\nppid = 6\n");
  expect_usage_error({"--config", cfg, "trace"}, {"choose exactly one"});
}

TEST_F(ConfigFile, DottedKeys) {
  std::string cfg = write("dotted.toml", "trace.interval = 300\n");
  Result r = expect_ok({"--config", cfg, "trace", "--ppid", "1"});
  EXPECT_EQ(r.opts.interval_ms, 300u);
}

// --record's ring buffer: profiler record's option, parsed by the same code;
// every mode takes it, from the file too, and only with --record.
TEST_F(ConfigFile, RingSizeOfTheRecording) {
  const std::string prof = dir_ + "/ring.prof";
  EXPECT_EQ(expect_ok({"trace", "--ppid", "1", "--record", prof}).opts.record_ring_bytes,
            mb::parse_sample_ring_size(mb::kDefaultSampleRing, "--ring-size"));
  EXPECT_EQ(mb::kDefaultSampleRingBytes, 32u << 20);
  EXPECT_EQ(expect_ok({"numa", "--ppid", "1", "--record", prof, "--ring-size", "64K"}).opts.record_ring_bytes, 65536u);
  EXPECT_EQ(expect_ok({"tier", "--ppid", "1", "--record", prof, "--ring-size", "1G"}).opts.record_ring_bytes, 1u << 30);
  std::string cfg = write("ring.toml", "[process]\nring-size = \"8K\"\nrecord = \"" + prof + "\"\n");
  Result r = expect_ok({"--config", cfg, "process", "--ppid", "1"});
  EXPECT_EQ(r.opts.record_ring_bytes, 8192u);
  EXPECT_EQ(r.opts.record_path, prof);
  expect_usage_error({"--config", write("bad_ring.toml", "[trace]\nring-size = \"3M\"\n"), "trace", "--ppid", "1",
                      "--record", prof},
                     {"--ring-size 3M", "power of two"});
  for (const char* bad : {"0", "2K", "3M", "2G", "100000", "12Q", "x"})
    expect_usage_error({"autotune", "--ppid", "1", "--record", prof, "--ring-size", bad}, {"--ring-size", bad});
  // It would size nothing without --record: refused, not ignored.
  expect_usage_error({"trace", "--ppid", "1", "--ring-size", "64K"}, {"--ring-size", "--record"});
  expect_usage_error({"trace", "--sampler", "replay:" + prof, "--ring-size", "64K"}, {"--ring-size"});
}

TEST_F(ConfigFile, ValuesAreValidated) {
  std::string cfg = write("low.toml", "[trace]\ninterval = 5\n");
  expect_usage_error({"--config", cfg, "trace", "--ppid", "1"}, {"--interval"});
}

TEST_F(ConfigFile, UnknownKeyInSection) {
  std::string cfg = write("extra.toml", "[trace]\ninterval = 250\nbogus = 3\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "bogus"});
}

TEST_F(ConfigFile, UnknownTopLevelKey) {
  std::string cfg = write("extra.toml", "bogus = 3\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "bogus"});
  // A trace option outside its section is not a top-level option either.
  cfg = write("misplaced.toml", "interval = 250\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "interval"});
}

TEST_F(ConfigFile, BadValue) {
  std::string cfg = write("bad.toml", "[trace]\ninterval = \"abc\"\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"interval", "abc"});
}

// "key = []" used to reach CLI11's converter as an empty list and crash it
// (found by fuzz_config); every kind of option refuses it with one line.
TEST_F(ConfigFile, EmptyArrayValueIsRefused) {
  std::string cfg = write("empty.toml", "[autotune]\nobserve = []\n");
  expect_parse_error({"--config", cfg, "autotune", "--ppid", "1"}, {"--config", "autotune.observe has an empty value"});
  cfg = write("empty2.toml", "[trace]\nsampler = [ ]\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "trace.sampler has an empty value"});
  cfg = write("empty3.toml", "[numa]\nmigrate = []\n");
  expect_parse_error({"--config", cfg, "numa", "--ppid", "1"}, {"--config", "numa.migrate has an empty value"});
  cfg = write("empty4.toml", "info = []\n");
  expect_parse_error({"--config", cfg}, {"--config", "info has an empty value"});
  // The key is not quoted when it does not look like an option name.
  cfg = write("empty5.toml", "[trace]\n\"$6$secret\" = []\n");
  Result r = parse({"--config", cfg, "trace", "--ppid", "1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.find("secret"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--config: a key (not shown) has an empty value"), std::string::npos) << r.err;
}

// Every option takes one value. CLI11 splits an unquoted value at its commas
// and the last piece won unsaid: "tiers = 0,1:2" (tier 0 = nodes 0 and 1) ran
// as tiers "1:2", node 0 in no tier. A list, or a key given twice, dropped
// all but one value the same way.
TEST_F(ConfigFile, AKeyTakesOneValue) {
  std::string cfg = write("comma.ini", "[tier]\ntiers = 0,1:2\n");
  expect_parse_error({"--config", cfg, "tier", "--ppid", "1"}, {"--config", "tier.tiers has 2 values", "unquoted commas"});
  cfg = write("quoted.toml", "[tier]\ntiers = \"0,1:2\"\n");
  EXPECT_EQ(expect_ok({"--config", cfg, "tier", "--ppid", "1"}).opts.tiers, "0,1:2");
  cfg = write("list.toml", "[trace]\ninterval = [250, 300]\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "trace.interval has 2 values"});
  cfg = write("twice.toml", "[trace]\ninterval = 250\ninterval = 300\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "trace.interval has 2 values", "given twice"});
  cfg = write("dotted_twice.toml", "trace.interval = 250\n[trace]\ninterval = 300\n");
  expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", "trace.interval is given twice"});
  // The same key in two commands' sections is two keys.
  cfg = write("two_sections.toml", "[trace]\ninterval = 250\n[numa]\ninterval = 300\n");
  EXPECT_EQ(expect_ok({"--config", cfg, "trace", "--ppid", "1"}).opts.interval_ms, 250u);
}

TEST_F(ConfigFile, MissingOrUnreadable) {
  std::string missing = dir_ + "/missing.toml";
  expect_parse_error({"--config", missing, "trace", "--ppid", "1"}, {"--config", missing});
  expect_parse_error({"--config", dir_, "trace", "--ppid", "1"}, {"--config", dir_});
}

// A privileged run does what the file says: one that others can change is
// refused (the rules themselves: test_safe_file.cpp).
TEST_F(ConfigFile, WritableByOthersIsRefused) {
  std::string cfg = write("open.toml", "[trace]\ninterval = 250\n");
  chmod(cfg.c_str(), 0666);
  if (geteuid() == 0 || mb::effective_capabilities() != 0)
    expect_parse_error({"--config", cfg, "trace", "--ppid", "1"}, {"--config", cfg, "writable by group/others"});
  else
    expect_ok({"--config", cfg, "trace", "--ppid", "1"});
  chmod(cfg.c_str(), 0644);
  EXPECT_EQ(expect_ok({"--config", cfg, "trace", "--ppid", "1"}).opts.interval_ms, 250u);
}

// CLI11 quotes a line it cannot parse; a root run may read a file its user
// cannot, so only a line that looks like an option name is shown.
TEST_F(ConfigFile, UnparsableLineIsNotShown) {
  std::string cfg = write("shadow", "root:$6$secret:19000:0:99999:7:::\n");
  Result r = parse({"--config", cfg, "trace", "--ppid", "1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--config: a line is neither an option nor a section (not shown)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("secret"), std::string::npos) << r.err;
}

TEST(Options, DurationIsBounded) {
  expect_usage_error({"trace", "--ppid", "1", "--duration", "inf"}, {"--duration"});
  expect_usage_error({"trace", "--ppid", "1", "--duration", "1e10"}, {"--duration", "1e9"});
  EXPECT_DOUBLE_EQ(expect_ok({"trace", "--ppid", "1", "--duration", "1e9"}).opts.duration_s, 1e9);
}

// The kernel's tables and the PMU periods: a value the kernel would refuse
// at load time (status 1) is bad input (status 2) here.
TEST(Options, KernelSizesAndPeriods) {
  expect_usage_error({"trace", "--ppid", "1", "--max-tasks", "0"}, {"--max-tasks", "1..4194304"});
  expect_usage_error({"trace", "--ppid", "1", "--max-tasks", "4194305"}, {"--max-tasks"});
  expect_usage_error({"trace", "--ppid", "1", "--max-processes", "0"}, {"--max-processes"});
  expect_usage_error({"trace", "--ppid", "1", "--max-processes", "5000000"}, {"--max-processes"});
  expect_usage_error({"trace", "--ppid", "1", "--pebs-period", "0"}, {"--pebs-period"});
  expect_usage_error({"trace", "--ppid", "1", "--ibs-period", "15"}, {"--ibs-period"});
  Result r = expect_ok({"trace", "--ppid", "1", "--max-tasks", "1", "--max-processes", "4194304", "--ibs-period", "16",
                        "--pebs-period", "1"});
  EXPECT_EQ(r.opts.max_tasks, 1u);
  EXPECT_EQ(r.opts.max_processes, 4194304u);
}

// The kernel refuses an IBS period with its low 4 bits set: it used to be
// rounded down without a word (100 ran as 96).
TEST(Options, IbsPeriodIsAMultipleOf16) {
  expect_usage_error({"trace", "--ppid", "1", "--ibs-period", "100"}, {"--ibs-period", "100", "multiple of 16"});
  expect_usage_error({"trace", "--ppid", "1", "--ibs-period", "65537"}, {"--ibs-period", "multiple of 16"});
  EXPECT_EQ(expect_ok({"trace", "--ppid", "1", "--ibs-period", "96"}).opts.ibs_period, 96u);
}

// abit watches given processes: with --all or --cgroup it is bad input, said
// when the options are read (it used to be a missing module, status 1, first).
TEST(Options, AbitNeedsPidOrPpid) {
  expect_usage_error({"trace", "--all", "--sampler", "abit"}, {"--sampler abit", "--ppid or --pid"});
  expect_usage_error({"numa", "--cgroup", "/sys/fs/cgroup/app", "--sampler", "abit"}, {"--sampler abit", "--cgroup"});
  expect_ok({"trace", "--pid", "1", "--sampler", "abit"});
  expect_ok({"trace", "--ppid", "1", "--sampler", "abit"});
  expect_ok({"trace", "--all"});  // auto skips abit for --all
}

// A period of one sampler given with another used to be ignored silently.
TEST(Options, PeriodOfAnotherSamplerIsRefused) {
  expect_usage_error({"trace", "--ppid", "1", "--sampler", "fault", "--ibs-period", "4096"},
                     {"--ibs-period", "ibs", "fault"});
  expect_usage_error({"numa", "--ppid", "1", "--sampler", "abit", "--pebs-period", "500"},
                     {"--pebs-period", "pebs", "abit"});
  expect_usage_error({"trace", "--ppid", "1", "--sampler", "pebs", "--ibs-period", "4096"}, {"--ibs-period", "pebs"});
  expect_usage_error({"trace", "--ppid", "1", "--sampler", "ibs", "--pebs-period", "500"}, {"--pebs-period", "ibs"});
  expect_usage_error({"trace", "--sampler", "replay:/tmp/x.prof", "--ibs-period", "4096"}, {"--ibs-period", "replay"});
  expect_ok({"trace", "--ppid", "1", "--sampler", "ibs", "--ibs-period", "4096"});
  expect_ok({"trace", "--ppid", "1", "--sampler", "pebs", "--pebs-period", "500"});
  expect_ok({"trace", "--ppid", "1", "--ibs-period", "4096", "--pebs-period", "500"});  // auto: whichever it picks
}

// --record is checked when parsed, before anything is loaded; parsing
// creates nothing.
TEST(Options, RecordFileCheckedEarly) {
  mb_test::TempTree dir("mb_options");
  const std::string old = dir.write("old.prof", "x");
  expect_usage_error({"trace", "--ppid", "1", "--record", old}, {old, "exists", "--force"});
  EXPECT_EQ(expect_ok({"trace", "--ppid", "1", "--record", old, "--force"}).opts.record_path, old);
  dir.symlink(old, "link.prof");
  expect_usage_error({"trace", "--ppid", "1", "--record", dir.path("link.prof"), "--force"}, {"symbolic link"});
  // Options that would be ignored are refused instead.
  expect_usage_error({"trace", "--ppid", "1", "--force"}, {"--force", "no", "--record"});
  expect_usage_error({"--info", "trace", "--ppid", "1"}, {"--info", "not with a command", "trace"});
  expect_usage_error({"trace", "--ppid", "1", "--record", dir.path("none/x.prof")}, {"no directory"});
  expect_usage_error({"numa", "--ppid", "1", "--record", ""}, {"empty"});
  expect_usage_error({"tier", "--ppid", "1", "--record", dir.path()}, {"is a directory"});
  Result r = expect_ok({"trace", "--ppid", "1", "--record", dir.path("new.prof")});
  EXPECT_EQ(r.opts.record_path, dir.path("new.prof"));
  EXPECT_FALSE(std::ifstream(dir.path("new.prof")).good());
}

}  // namespace
