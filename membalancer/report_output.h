// Where the daemon's report goes: a stdio stream over a descriptor (stdout)
// whose writes wait for room with poll(), so that a stop signal still stops
// membalancer while nobody reads the output (a paused `| less`), and whose
// failures (a closed pipe, a full disk) are kept for the loop to act on: stop,
// restore what was changed, and say so, instead of dying by SIGPIPE or
// carrying on with the report lost.
#pragma once

#include <signal.h>

#include <cstdio>

namespace mb {

// True when fd is a pipe or socket whose reader has gone: whatever is
// computed for it would only fail to be written (a long run's output piped
// into `head` or `true`). Also true for a closed fd.
bool output_reader_left(int fd);

class ReportOutput {
 public:
  // `stop_signals` must be blocked in every thread; they stay pending for
  // the caller to take (sigtimedwait) when one interrupts a write.
  ReportOutput(int fd, const sigset_t& stop_signals);
  ~ReportOutput();
  ReportOutput(const ReportOutput&) = delete;
  ReportOutput& operator=(const ReportOutput&) = delete;

  FILE* file() const { return file_; }
  // 0, or the errno of the first write that failed: EPIPE (the reader left),
  // ENOSPC, ... or EINTR (a stop signal came while the output took nothing).
  // After a failure nothing more is written.
  int error() const { return error_; }

 private:
  static ssize_t write_cb(void* cookie, const char* buf, size_t size);
  ssize_t write_all(const char* buf, size_t size);

  int fd_;
  int signal_fd_ = -1;
  FILE* file_ = nullptr;
  int error_ = 0;
};

}  // namespace mb
