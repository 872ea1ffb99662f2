// What `membalancer trace` reports each interval, and its three displays:
//   histogram   redraws one page: bars per node (the AMD tool's -H view)
//   continuous  one row per interval
//   json        one JSON object per line (docs/json-output.md)
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "membalancer/records.h"

namespace mb {

enum class Display { kHistogram, kContinuous, kJson };

const char* counter_name(int counter);  // enum mb_counter -> "samples", ...

struct NodeAccesses {
  int node;  // -1: unknown
  uint64_t accesses = 0;
  uint64_t pages = 0;
};

struct ProcessLine {
  uint32_t pid = 0;
  std::string comm;
  uint64_t pages = 0;        // distinct pages in the table
  uint64_t accesses = 0;     // this interval
  double heat = 0;
};

struct Region {
  uint32_t pid = 0;
  std::string comm;
  uint64_t start = 0;
  uint64_t bytes = 0;
  uint64_t pages = 0;       // pages of the region in the table
  double heat = 0;
  int node = -1;            // node holding most of its heat (-1 unknown)
};

struct PageRange {  // pages accessed this interval, merged when adjacent
  uint32_t pid;
  uint64_t start;
  uint64_t end;  // exclusive
};

struct IntervalReport {
  uint32_t interval = 0;
  double elapsed_s = 0;
  std::string sampler;
  std::array<uint64_t, MB_NR_COUNTERS> counters{};  // this interval
  uint64_t dropped = 0;                             // sum of the drop counters, this interval
  uint64_t tracked_processes = 0;
  uint64_t table_pages = 0;
  uint64_t pages_this_interval = 0;
  uint64_t accesses_this_interval = 0;
  uint64_t exited_processes = 0;
  uint64_t table_dropped_full = 0;  // cumulative, user-space page table
  std::vector<NodeAccesses> nodes;      // by memory node
  std::vector<NodeAccesses> cpu_nodes;  // by the node of the CPU that accessed (samplers that know it)
  uint64_t threads = 0;                 // live threads with samples
  std::vector<ProcessLine> processes;
  std::vector<Region> hottest;
  std::vector<PageRange> ranges;
  bool ranges_truncated = false;
};

struct Summary {
  double elapsed_s = 0;
  uint32_t intervals = 0;
  std::string sampler;
  std::array<uint64_t, MB_NR_COUNTERS> counters{};  // whole run
  uint64_t dropped = 0;
  uint64_t processes_seen = 0;
  uint64_t processes_exited = 0;
  uint64_t table_pages = 0;
  uint64_t table_dropped_full = 0;
  uint64_t node_queries = 0;
  uint64_t node_query_failures = 0;
  std::vector<NodeAccesses> nodes;  // whole run
};

// Sum of the counters that mean "lost": full maps and full ring buffers.
uint64_t dropped_total(const std::array<uint64_t, MB_NR_COUNTERS>& c);

class Reporter {
 public:
  Reporter(Display display, FILE* out, bool tty);
  void interval(const IntervalReport& r);
  void summary(const Summary& s);

 private:
  void histogram(const IntervalReport& r);
  void continuous(const IntervalReport& r);
  void json(const IntervalReport& r);

  Display display_;
  FILE* out_;
  bool tty_;
  bool header_done_ = false;
};

std::string format_bytes(uint64_t bytes);
std::string format_hex(uint64_t v);

}  // namespace mb
