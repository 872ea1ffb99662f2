// Unit tests for membalancer/report_output.h: a stop signal gives up only a
// write that would wait; output that can take more is written.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "membalancer/report_output.h"
#include "temp_tree.h"

namespace {

// SIGUSR1 blocked in this thread and pending on it for the test's length.
struct PendingSignal {
  sigset_t set, old;
  PendingSignal() {
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
  }
  ~PendingSignal() {
    timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
};

}  // namespace

TEST(ReportOutput, WritesWhatTheOutputCanTakeThoughASignalIsPending) {
  mb_test::TempTree dir("mb_report_output");
  const std::string path = dir.path("out");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  PendingSignal sig;
  {
    mb::ReportOutput out(fd, sig.set);
    std::fputs("a line\n", out.file());
    EXPECT_EQ(std::fflush(out.file()), 0);
    EXPECT_EQ(out.error(), 0) << "a file always takes more: the signal waits for the loop";
  }
  close(fd);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "a line");
  sigset_t pending;
  sigpending(&pending);
  EXPECT_TRUE(sigismember(&pending, SIGUSR1)) << "left for the loop to take";
}

TEST(ReportOutput, AStopSignalEndsAWriteThatWouldWait) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_GE(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
  const std::string page(4096, 'x');
  ASSERT_EQ(write(p[1], page.data(), page.size()), 4096);  // full: nobody reads
  PendingSignal sig;
  {
    mb::ReportOutput out(p[1], sig.set);
    std::fputs("more\n", out.file());
    EXPECT_NE(std::fflush(out.file()), 0);
    EXPECT_EQ(out.error(), EINTR);
  }
  close(p[0]);
  close(p[1]);
}

TEST(ReportOutput, AReaderThatLeftIsEpipeNotADeath) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[0]);
  sigset_t none;
  sigemptyset(&none);
  signal(SIGPIPE, SIG_IGN);  // as run_mode does
  {
    mb::ReportOutput out(p[1], none);
    std::fputs("line\n", out.file());
    EXPECT_NE(std::fflush(out.file()), 0);
    EXPECT_EQ(out.error(), EPIPE);
    std::fputs("more\n", out.file());
    std::fflush(out.file());
    EXPECT_EQ(out.error(), EPIPE) << "the first failure is kept";
  }
  signal(SIGPIPE, SIG_DFL);
  close(p[1]);
}

TEST(ReportOutput, AReaderThatLeftIsSeenBeforeAnythingIsWritten) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_FALSE(mb::output_reader_left(p[1])) << "a reader is there";
  close(p[0]);
  EXPECT_TRUE(mb::output_reader_left(p[1]));
  close(p[1]);
  EXPECT_TRUE(mb::output_reader_left(p[1])) << "a closed descriptor takes nothing either";
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(mb::output_reader_left(fileno(f))) << "a file has no reader to lose";
  std::fclose(f);
}
