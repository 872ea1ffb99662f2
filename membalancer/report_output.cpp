#include "membalancer/report_output.h"

#include <limits.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "membalancer/error.h"

namespace mb {

bool output_reader_left(int fd) {
  // With no events asked for, poll() reports only conditions: a pipe whose
  // read end is closed gives POLLERR; a file or a terminal gives none.
  pollfd p{fd, 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLNVAL));
}

ReportOutput::ReportOutput(int fd, const sigset_t& stop_signals) : fd_(fd) {
  signal_fd_ = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) throw SystemError("signalfd", errno);
  cookie_io_functions_t io{};
  io.write = &ReportOutput::write_cb;
  file_ = fopencookie(this, "w", io);
  if (!file_) {
    close(signal_fd_);
    throw SystemError("fopencookie", errno);
  }
  // Whole lines and pages go out at the reporter's fflush, not piecemeal.
  setvbuf(file_, nullptr, _IOFBF, 1 << 16);
}

ReportOutput::~ReportOutput() {
  std::fclose(file_);  // after a failure write_all writes nothing more
  close(signal_fd_);
}

ssize_t ReportOutput::write_cb(void* cookie, const char* buf, size_t size) {
  return static_cast<ReportOutput*>(cookie)->write_all(buf, size);
}

ssize_t ReportOutput::write_all(const char* buf, size_t size) {
  if (error_) {
    errno = error_;
    return -1;
  }
  size_t done = 0;
  while (done < size) {
    pollfd p[2] = {{fd_, POLLOUT, 0}, {signal_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      break;
    }
    // Output that can take more is written, signal or not (a file always
    // can). Only a write that would wait is given up for a stop signal,
    // which is left pending: the loop takes it and stops.
    if (!(p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      if (p[1].revents & POLLIN) {
        error_ = EINTR;
        break;
      }
      continue;
    }
    // At most PIPE_BUF once poll says there is room: a pipe takes it whole
    // without blocking.
    ssize_t w = ::write(fd_, buf + done, std::min<size_t>(size - done, PIPE_BUF));
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      error_ = errno;
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (error_) {
    errno = error_;
    return -1;
  }
  return static_cast<ssize_t>(done);
}

}  // namespace mb
