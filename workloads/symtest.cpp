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
//   symtest late-swap WINDOW LIB...: each LIB in turn (copies of
//     libsymtest.so, the loader placing each where the last was): dlopen it
//     and print where, as swap does; then, but for the last, map an
//     unrelated anonymous page and, for WINDOW seconds of wall time, drop the
//     page of its symtest_lib_spin (MADV_DONTNEED, no maps change) and call
//     it, a page fault each time; print "refaults LIB N"; dlclose it. A
//     recorder that timed the swap at the unrelated mmap gave those faults
//     to the next LIB.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

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

double wall_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

int late_swap(double window, int nlibs, char** libs) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (int i = 0; i < nlibs; ++i) {
    void* h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    auto spin = h ? reinterpret_cast<uint64_t (*)(uint64_t)>(dlsym(h, "symtest_lib_spin")) : nullptr;
    Dl_info info{};
    if (!spin || !dladdr(reinterpret_cast<void*>(spin), &info)) {
      std::fprintf(stderr, "symtest: %s: %s\n", libs[i], h ? "no symtest_lib_spin" : dlerror());
      return 1;
    }
    std::printf("%s %p\n", libs[i], info.dli_fbase);
    std::fflush(stdout);
    spin(1 << 16);
    if (i + 1 < nlibs) {
      // The unrelated maps change, then the faults of this library.
      if (mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
        std::perror("symtest: mmap");
        return 1;
      }
      void* code = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(spin) & ~(page - 1));
      uint64_t refaults = 0;
      for (const double end = wall_s() + window; wall_s() < end; ++refaults) {
        madvise(code, page, MADV_DONTNEED);
        spin(1);
      }
      std::printf("refaults %s %llu\n", libs[i], static_cast<unsigned long long>(refaults));
      std::fflush(stdout);
    }
    dlclose(h);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "late-swap") == 0) return late_swap(std::atof(argv[2]), argc - 3, argv + 3);
  if (argc == 5 && std::strcmp(argv[1], "swap") == 0) {
    const double seconds = std::atof(argv[4]);
    return spin_in(argv[2], seconds) || spin_in(argv[3], seconds);
  }
  if (argc != 3 || (std::strcmp(argv[1], "main") != 0 && std::strcmp(argv[1], "lib") != 0)) {
    std::fprintf(stderr, "usage: symtest main|lib SECONDS, symtest swap LIB_A LIB_B SECONDS, or symtest late-swap WINDOW LIB...\n");
    return 2;
  }
  const bool lib = std::strcmp(argv[1], "lib") == 0;
  const double seconds = std::atof(argv[2]);
  const double end = cpu_s() + seconds;
  uint64_t sink = 0;
  while (cpu_s() < end) sink += lib ? symtest_lib_spin(1 << 20) : symtest_main_spin(1 << 20);
  return sink == 42 ? 1 : 0;
}
