// Command line and config file (CLI11). Everything is validated here, before
// anything is opened or changed; errors are UsageError (status 2).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "membalancer/bpf_collector.h"
#include "membalancer/report.h"

namespace mb {

struct Options {
  std::string command;  // "trace", or "" with --info

  // Which processes.
  TrackMode mode = TrackMode::kTree;
  pid_t pid = 0;
  std::string cgroup;

  // Sampling.
  std::string sampler = "auto";
  uint64_t ibs_period = 0x10000;
  uint64_t pebs_period = 1000;

  // Loop and display.
  uint32_t interval_ms = 1000;
  double duration_s = 0;  // 0: until SIGINT/SIGTERM or the processes are gone
  Display display = Display::kHistogram;
  int top = 5;
  uint64_t region_bytes = 2 << 20;
  uint32_t max_ranges = 256;

  // Sizes (bounded everything).
  uint64_t max_pages = 1 << 20;     // user-space page table
  uint32_t bpf_page_slots = 1 << 18; // per-interval BPF page table
  uint32_t max_tasks = 16384;
  uint32_t max_processes = 65536;
  double decay = 0.5;

  bool verbose = false;
  bool info = false;
};

// Parses argv. Returns the options, or sets *exit_status (help/version: 0;
// bad input: 2 after printing one line) and returns defaults.
Options parse_options(int argc, const char* const* argv, int* exit_status);

}  // namespace mb
