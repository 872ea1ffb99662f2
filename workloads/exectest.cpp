// Exec test program: a non-PIE executable (loaded at 0x400000, as the program
// it execs) that writes its data pages, spends SECONDS in its one hot
// function, then execs the rest of its command line. Built twice with another
// EXECTEST_SPIN name (exectest_first, exectest_second): the same addresses in
// two programs, one pid. Used by tests/integration/test_profiler.cpp and
// test_trace_tree.cpp.
//   exectest_first [--fork N] SECONDS [PROGRAM ARGS...]
// --fork N: PROGRAM is exec'd by a child instead, which first writes the data
// pages again (copy-on-write faults in this program's data, at the addresses
// PROGRAM's data will have); this process waits for it and exits with its
// status. N children that only wait are forked just before it: a recorder
// has N forks to take in first, as a slow machine would be slow with one.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Initialised: in the program file's data segment, mapped from the file.
char data_pages[64 * 4096] = {1};

void write_data_pages() {
  volatile char* p = data_pages;  // written for the faults: the stores must stay
  for (size_t i = 0; i < sizeof data_pages; i += 4096) p[i] = static_cast<char>(i >> 12);
}

}  // namespace

extern "C" __attribute__((noinline)) uint64_t EXECTEST_SPIN(uint64_t iterations) {
  volatile uint64_t x = 7;
  for (uint64_t i = 0; i < iterations; ++i) x = x * 2862933555777941757ULL + 3037000493ULL;
  return x;
}

int main(int argc, char** argv) {
  const bool fork_first = argc > 2 && std::strcmp(argv[1], "--fork") == 0;
  const int waiting_children = fork_first ? std::atoi(argv[2]) : 0;
  if (fork_first) argc -= 2, argv += 2;
  if (argc < 2 || (fork_first && argc < 3)) {
    std::fprintf(stderr, "usage: %s [--fork N] SECONDS [PROGRAM ARGS...]\n", argv[0]);
    return 2;
  }
  write_data_pages();
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[1]));
  uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < end) sink += EXECTEST_SPIN(1 << 20);
  if (argc > 2 && fork_first) {
    std::vector<pid_t> waiting;
    for (int i = 0; i < waiting_children; ++i) {
      const pid_t w = fork();
      if (w == 0) {
        for (;;) pause();
      }
      if (w > 0) waiting.push_back(w);
    }
    const pid_t child = fork();
    if (child < 0) {
      std::perror("fork");
      return 1;
    }
    if (child == 0) {
      write_data_pages();
      execv(argv[2], argv + 2);
      std::perror(argv[2]);
      _exit(127);
    }
    int status = 0;
    const bool reaped = waitpid(child, &status, 0) == child;
    for (pid_t w : waiting) kill(w, SIGKILL), waitpid(w, nullptr, 0);
    if (!reaped) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  if (argc > 2) {
    execv(argv[2], argv + 2);
    std::perror(argv[2]);
    return 127;
  }
  return sink == 42 ? 1 : 0;
}
