// Symbolisation test program: a position-independent executable that spends
// nearly all its CPU time in one known function, either its own
// (symtest_main_spin, `main`) or one in libsymtest.so (symtest_lib_spin,
// `lib`), for SECONDS seconds of its own CPU time (not wall time: on a
// loaded machine or in a software-emulated guest a wall-clock spin can get
// almost no CPU, and its samples would be few). Used by tests/integration/test_profiler.cpp
// with `profiler record --sampler cpu-clock`.
//   symtest main|lib SECONDS
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

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
  auto cpu_s = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
  };
  const double end = cpu_s() + seconds;
  uint64_t sink = 0;
  while (cpu_s() < end) sink += lib ? symtest_lib_spin(1 << 20) : symtest_main_spin(1 << 20);
  return sink == 42 ? 1 : 0;
}
