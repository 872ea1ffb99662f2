// Shared library of the symbolisation test program (workloads/symtest.cpp):
// a function that spends CPU time where the profiler must find it.
#include <cstdint>

extern "C" __attribute__((noinline)) uint64_t symtest_lib_spin(uint64_t iterations) {
  volatile uint64_t x = 1;
  for (uint64_t i = 0; i < iterations; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x;
}
