// A signalfd for a set of (blocked) stop signals, closed when it goes out of
// scope: the recorders wait on it together with the process-event ring
// buffer, so a stop signal wakes them as an event does.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "membalancer/error.h"

namespace mb {

// The signals that stop a run, membalancer's or `profiler record`'s, with its
// summary: ^C, kill's default, and the end of the terminal or session
// (SIGHUP), which would otherwise kill it without one.
inline sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  return set;
}

class SignalFd {
 public:
  explicit SignalFd(const sigset_t& signals) : fd_(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK)) {
    if (fd_ < 0) throw SystemError("signalfd", errno);
  }
  ~SignalFd() { close(fd_); }
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace mb
