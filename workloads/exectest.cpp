// Exec test program: a non-PIE executable (loaded at 0x400000, as the program
// it execs) that spends SECONDS in its one hot function, then execs the rest
// of its command line. Built twice with another EXECTEST_SPIN name
// (exectest_first, exectest_second): the same addresses in two programs, one
// pid. Used by tests/integration/test_profiler.cpp.
//   exectest_first SECONDS [PROGRAM ARGS...]
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" __attribute__((noinline)) uint64_t EXECTEST_SPIN(uint64_t iterations) {
  volatile uint64_t x = 7;
  for (uint64_t i = 0; i < iterations; ++i) x = x * 2862933555777941757ULL + 3037000493ULL;
  return x;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SECONDS [PROGRAM ARGS...]\n", argv[0]);
    return 2;
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[1]));
  uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < end) sink += EXECTEST_SPIN(1 << 20);
  if (argc > 2) {
    execv(argv[2], argv + 2);
    std::perror(argv[2]);
    return 127;
  }
  return sink == 42 ? 1 : 0;
}
