// A clock's time in nanoseconds: sample times (CLOCK_MONOTONIC, as BPF's
// bpf_ktime_get_ns), a recording's wall-clock start (CLOCK_REALTIME).
#pragma once

#include <time.h>

#include <cstdint>

namespace mb {

inline uint64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

}  // namespace mb
