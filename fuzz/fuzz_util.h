// Helpers shared by the libFuzzer targets in fuzz/ (see docs/fuzzing.md).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <typeinfo>

extern "C" void __sanitizer_set_report_fd(void* fd);

namespace mb_fuzz {

// A finding: one line saying what is wrong, then abort() so that libFuzzer
// reports a crash and writes the input to a crash-* file.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\nFUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, msg)                                                         \
  do {                                                                                \
    if (!(cond)) ::mb_fuzz::fail(std::string("check failed: " #cond ": ") + (msg)); \
  } while (0)

// An exception that is not allowed to escape: a finding naming its type.
[[noreturn]] inline void unexpected_exception(const char* where, const std::exception& e) {
  fail(std::string(where) + " threw " + typeid(e).name() + ": " + e.what());
}

// A private directory for the process's lifetime, removed at exit: below
// $TMPDIR when set, else /dev/shm (tmpfs: the targets write a file per
// input), else /tmp.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* t = std::getenv("TMPDIR");
    std::string base = t && *t ? t : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/mb_fuzz_XXXXXX";
    if (!mkdtemp(tmpl.data())) fail("mkdtemp " + tmpl);
    static std::string keep = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return tmpl;
  }();
  return dir;
}

// Writes (replaces) a file with exactly these bytes.
inline void write_file(const std::string& path, const void* data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create " + path);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t w = write(fd, p, size);
    if (w <= 0) fail("cannot write " + path);
    p += w;
    size -= static_cast<size_t>(w);
  }
  close(fd);
}

// Sends stdout and stderr to /dev/null while it lives (the code under test
// prints parse errors). Sanitizer reports keep going to the real stderr: the
// report fd is pointed at a copy of it once, at the first use.
class Silence {
 public:
  Silence() {
    static const int real_stderr = [] {
      int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
      __sanitizer_set_report_fd(reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
      return fd;
    }();
    (void)real_stderr;
    std::fflush(nullptr);
    out_ = dup(1);
    err_ = dup(2);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
  }
  ~Silence() {
    std::fflush(nullptr);
    dup2(out_, 1);
    dup2(err_, 2);
    close(out_);
    close(err_);
  }
  Silence(const Silence&) = delete;
  Silence& operator=(const Silence&) = delete;

 private:
  int out_ = -1, err_ = -1;
};

}  // namespace mb_fuzz
