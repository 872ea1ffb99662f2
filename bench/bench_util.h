// Small helpers shared by the benchmark programs.
//
// Every benchmark prints human-readable lines, plus one machine-readable line
// per measured value:
//   RESULT <name> <value> <unit>
// bench/run.sh collects those lines into docs/benchmarks.md.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <stdexcept>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/samplers.h"

namespace bench {

// The fault sampler and a collector configuration tracking one process: the
// start of every benchmark that drives the real BPF object.
struct FaultCollector {
  mb::SamplerPlan plan;
  mb::CollectorConfig cfg;
};

inline FaultCollector fault_collector(pid_t pid) {
  std::string why;
  auto plan = mb::plan_sampler("fault", mb::SamplerOptions{}, &why);
  if (!plan) throw std::runtime_error("fault sampler: " + why);
  FaultCollector fc{*plan, {}};
  fc.cfg.mode = mb::TrackMode::kPid;
  fc.cfg.pid = pid;
  return fc;
}

inline double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline void result(const char* name, double value, const char* unit) {
  std::printf("RESULT %s %.6g %s\n", name, value, unit);
  std::fflush(stdout);
}

// A field of /proc/self/status in kB ("VmRSS"), as bytes.
inline uint64_t proc_status_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line, want = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, want.size(), want) == 0) return std::stoull(line.substr(want.size())) * 1024;
  }
  return 0;
}

// BPF maps are charged to memlock on old kernels: lift the limit.
inline void raise_memlock() {
  rlimit r{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &r);
}

}  // namespace bench
