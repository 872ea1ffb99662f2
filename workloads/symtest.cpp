// Symbolisation test program: a position-independent executable that spends
// nearly all its CPU time in one known function, either its own
// (symtest_main_spin, `main`) or one in libsymtest.so (symtest_lib_spin,
// `lib`), for SECONDS seconds. Used by tests/integration/test_profiler.cpp
// with `profiler record --sampler cpu-clock`.
//   symtest main|lib SECONDS
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" uint64_t symtest_lib_spin(uint64_t iterations);

extern "C" __attribute__((noinline)) uint64_t symtest_main_spin(uint64_t iterations) {
  volatile uint64_t x = 7;
  for (uint64_t i = 0; i < iterations; ++i) x = x * 2862933555777941757ULL + 3037000493ULL;
  return x;
}

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "main") != 0 && std::strcmp(argv[1], "lib") != 0)) {
    std::fprintf(stderr, "usage: symtest main|lib SECONDS\n");
    return 2;
  }
  const bool lib = std::strcmp(argv[1], "lib") == 0;
  const double seconds = std::atof(argv[2]);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < end) sink += lib ? symtest_lib_spin(1 << 20) : symtest_main_spin(1 << 20);
  return sink == 42 ? 1 : 0;
}
