// Where the report cannot go: a full disk, a reader that left, a reader that
// stopped reading. membalancer stops the normal way (what it changed is put
// back), says why in one line, and exits with status 1, rather than dying by
// SIGPIPE, carrying on with the report lost, or ignoring SIGTERM while its
// write waits for a reader.
#include <fcntl.h>
#include <sys/ioctl.h>

#include "tests/integration/harness.h"

using namespace mbtest;

namespace {

std::vector<std::string> trace_self(const std::string& interval_ms) {
  return {bin("membalancer"), "trace", "--pid", std::to_string(getpid()), "--sampler", "fault",
          "--display", "json", "--interval", interval_ms, "--duration", "120"};
}

// Runs trace with fd 1 replaced by what `stdout_fd` gives in the child.
Child spawn_with_stdout(const std::string& dir, const std::string& tag, const std::function<int()>& stdout_fd,
                        const std::string& interval_ms = "100") {
  return spawn(trace_self(interval_ms), dir, tag, [&] {
    int fd = stdout_fd();
    if (fd < 0 || dup2(fd, 1) < 0) _exit(125);
  });
}

}  // namespace

TEST(ReportOutput, AFullDiskStopsWithOneLine) {
  REQUIRE_ROOT();
  const std::string dir = temp_dir();
  Child c = spawn_with_stdout(dir, "full", [] { return open("/dev/full", O_WRONLY); });
  EXPECT_EQ(wait_exit(c.pid, 60), 1) << "not 0: the report was lost";
  auto err = lines_of(slurp(c.err_path));
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), "membalancer: writing the report to standard output: No space left on device; stopped");
  // The sampler line, then that one.
  EXPECT_LE(err.size(), 2u) << slurp(c.err_path);
}

TEST(ReportOutput, AReaderThatLeftStopsWithOneLineNotSigpipe) {
  REQUIRE_ROOT();
  const std::string dir = temp_dir();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Child c = spawn_with_stdout(dir, "epipe", [&] {
    close(p[0]);
    return p[1];
  });
  close(p[1]);
  // Read the first line, then leave, as `| head -1` does.
  char buf[256];
  ASSERT_GT(read(p[0], buf, sizeof buf), 0);
  close(p[0]);
  EXPECT_EQ(wait_exit(c.pid, 60), 1) << "141 is death by SIGPIPE, without the summary or the restore";
  auto err = lines_of(slurp(c.err_path));
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), "membalancer: writing the report to standard output: Broken pipe; stopped");
}

TEST(ReportOutput, SigtermStopsItWhileNothingReadsItsOutput) {
  REQUIRE_ROOT();
  const std::string dir = temp_dir();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_GE(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
  Child c = spawn_with_stdout(dir, "blocked", [&] {
    close(p[0]);
    return p[1];
  }, "20");
  close(p[1]);
  // The pipe fills (a write that does not fit waits for a reader that never
  // comes): what is queued stops growing, though an interval is 20 ms.
  int last = -1;
  ASSERT_TRUE(wait_for([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    int queued = 0;
    if (ioctl(p[0], FIONREAD, &queued) != 0) return false;
    const bool stuck = queued > 0 && queued == last;
    last = queued;
    return stuck;
  }, 60)) << slurp(c.err_path);
  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  const int status = wait_exit(c.pid, 30);
  if (status == -1) kill(c.pid, SIGKILL), waitpid(c.pid, nullptr, 0);
  EXPECT_EQ(status, 1) << "-1: SIGTERM did not stop it";
  auto err = lines_of(slurp(c.err_path));
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), "membalancer: stopped by SIGTERM while nothing read standard output; the summary is not written");
  close(p[0]);
}
