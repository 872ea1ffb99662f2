// The cost of a system call in a process a recorder follows: the best time
// (of 5 rounds) per mmap+munmap pair of one anonymous page never touched (no
// fault, so no sample: what is measured is the calls and whatever runs at
// their return, the recorder's on_sys_exit among it), and per getpid (a
// call that changes no maps: the raw tracepoint's cost alone).
// bench/sections/maps.sh runs it alone and under `profiler record`.
//   maps_syscall_cost [PAIRS]   (default 200000 per round)
//   maps_syscall_cost loop mmap|getpid SECONDS: that call (mmap+munmap) in a
//     tight loop for SECONDS, for the recorder's CPU time (maps.sh)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace {

double now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <typename F>
double best_ns_per_call(long n, F f) {
  double best = 1e18;
  for (int round = 0; round < 5; ++round) {
    const double t0 = now_ns();
    for (long i = 0; i < n; ++i) f();
    best = std::min(best, (now_ns() - t0) / static_cast<double>(n));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "loop") {
    const bool maps = std::string(argv[2]) == "mmap";
    const double end = now_ns() + std::atof(argv[3]) * 1e9;
    while (now_ns() < end)
      for (int i = 0; i < 1000; ++i) {
        if (!maps) {
          syscall(SYS_getpid);
          continue;
        }
        void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || munmap(p, 4096) != 0) return 1;
      }
    return 0;
  }
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  if (n <= 0) {
    std::fprintf(stderr, "maps_syscall_cost: PAIRS must be a positive number\n");
    return 2;
  }
  bool failed = false;
  const double pair = best_ns_per_call(n, [&] {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p, 4096) != 0) failed = true;
  });
  const double getpid_ns = best_ns_per_call(n, [] { syscall(SYS_getpid); });
  if (failed) {
    std::perror("maps_syscall_cost: mmap/munmap");
    return 1;
  }
  std::printf("RESULT mmap_munmap_ns %.1f\nRESULT getpid_ns %.1f\n", pair, getpid_ns);
  return 0;
}
