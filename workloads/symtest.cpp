// Symbolisation test program: a position-independent executable that spends
// nearly all its CPU time in one known function, either its own
// (symtest_main_spin, `main`) or one in libsymtest.so (symtest_lib_spin,
// `lib`), for SECONDS seconds of its own CPU time (not wall time: on a
// loaded machine or in a software-emulated guest a wall-clock spin can get
// almost no CPU, and its samples would be few). Used by tests/integration/test_profiler.cpp
// with `profiler record --sampler cpu-clock`.
//   symtest main|lib SECONDS
//   symtest swap LIB_A LIB_B SECONDS: dlopen LIB_A (a copy of libsymtest.so)
//     and spin in its symtest_lib_spin, dlclose it, then the same with LIB_B
//     (the loader places it where LIB_A was when it fits there); prints the
//     address each was loaded at, one line each.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <dlfcn.h>

extern "C" uint64_t symtest_lib_spin(uint64_t iterations);

extern "C" __attribute__((noinline)) uint64_t symtest_main_spin(uint64_t iterations) {
  volatile uint64_t x = 7;
  for (uint64_t i = 0; i < iterations; ++i) x = x * 2862933555777941757ULL + 3037000493ULL;
  return x;
}

namespace {

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// dlopen lib, spin in its symtest_lib_spin for seconds of CPU time, print
// where it was loaded, dlclose it.
int spin_in(const char* lib, double seconds) {
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "symtest: %s\n", dlerror());
    return 1;
  }
  auto spin = reinterpret_cast<uint64_t (*)(uint64_t)>(dlsym(h, "symtest_lib_spin"));
  Dl_info info{};
  if (!spin || !dladdr(reinterpret_cast<void*>(spin), &info)) {
    std::fprintf(stderr, "symtest: %s: no symtest_lib_spin\n", lib);
    return 1;
  }
  std::printf("%s %p\n", lib, info.dli_fbase);
  std::fflush(stdout);
  const double end = cpu_s() + seconds;
  uint64_t sink = 0;
  while (cpu_s() < end) sink += spin(1 << 20);
  dlclose(h);
  return sink == 42 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "swap") == 0) {
    const double seconds = std::atof(argv[4]);
    return spin_in(argv[2], seconds) || spin_in(argv[3], seconds);
  }
  if (argc != 3 || (std::strcmp(argv[1], "main") != 0 && std::strcmp(argv[1], "lib") != 0)) {
    std::fprintf(stderr, "usage: symtest main|lib SECONDS, or symtest swap LIB_A LIB_B SECONDS\n");
    return 2;
  }
  const bool lib = std::strcmp(argv[1], "lib") == 0;
  const double seconds = std::atof(argv[2]);
  const double end = cpu_s() + seconds;
  uint64_t sink = 0;
  while (cpu_s() < end) sink += lib ? symtest_lib_spin(1 << 20) : symtest_main_spin(1 << 20);
  return sink == 42 ? 1 : 0;
}
