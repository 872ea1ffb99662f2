// What membalancer reports each interval (trace, and the moving modes' plan
// and mover accounting), and its three displays:
//   histogram   redraws one page: bars per node (the AMD tool's -H view)
//   continuous  one row per interval
//   json        one JSON object per line (docs/json-output.md)
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/mover.h"
#include "membalancer/policy.h"
#include "membalancer/records.h"
#include "membalancer/thread_policy.h"
#include "membalancer/topology.h"

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

// A memory tier's line: the share of this interval's accesses it served,
// the tracked processes' resident pages on it (numa_maps), and the pages
// moved into it so far.
struct TierLine {
  int tier = 0;
  std::vector<int> nodes;
  uint64_t accesses = 0;
  uint64_t resident_pages = 0;
  uint64_t promoted_pages = 0;  // moved up into this tier, whole run
  uint64_t demoted_pages = 0;   // moved down into this tier, whole run
  float hot_threshold = 0;      // heat a page needs to belong here (not for the last tier)
};

// What the moving modes (numa, tier) add to a report.
struct MigrationReport {
  std::string mode;    // "numa", "tier"
  bool migrate = false;  // false: report-only, the plan is not carried out
  bool dry_run = false;  // plans committed as if done; a replay applies them to its model
  uint64_t dry_run_applied_pages = 0, dry_run_refused_pages = 0;  // whole run so far (model: no room)
  std::string tiers;   // tier: "0 : 1" and how they were chosen
  PlanStats plan;      // this interval's plan
  uint64_t plan_promote_pages = 0, plan_demote_pages = 0, plan_numa_pages = 0;
  MoverStats mover;    // whole run so far
  double elapsed_s = 0;
  uint64_t queued_pages = 0;
  std::vector<TierLine> tiers_view;
};

// A thread move planned (and, with --migrate, applied) this interval.
struct ThreadMoveLine {
  int tid = 0;
  int tgid = 0;
  int from = -1;
  int to = -1;
  double gain = 0;
  std::string cpus;  // the affinity set
  int error = 0;     // errno of sched_setaffinity (0: applied or report-only)
};

// One process's autotune decision.
struct TuneLine {
  int pid = 0;
  std::string choice;  // "none", "threads", "memory"
  std::string why;
};

// What the thread-moving modes (process, autotune) add to a report.
struct ThreadReport {
  std::string mode;      // "process", "autotune"
  bool migrate = false;  // false: report-only, no affinity is changed
  bool per_thread = false;  // accesses are each thread's own (else its process's page locations split by CPU time)
  std::vector<NodeShare> shares;  // this interval: each node's share of the tree's CPU time and accesses
  uint64_t threads = 0;    // live threads of the balanced processes
  uint64_t judged = 0, candidates = 0, eligible = 0, budget = 0;  // this interval (ThreadPlan)
  std::vector<ThreadMoveLine> moves;        // this interval
  std::map<std::string, uint64_t> skipped;  // this interval, by reason
  uint64_t threads_moved = 0;   // whole run: affinity changes applied
  uint64_t move_failures = 0;   // whole run: sched_setaffinity failures
  uint64_t affinities_held = 0;  // threads whose original affinity is remembered now
  uint64_t moved_exited = 0;     // whole run: threads that exited while moved (nothing to restore)
  // whole run: moved threads whose affinity someone else (the thread itself,
  // its user) set since, let go: neither moved back by the plan nor restored
  uint64_t overridden = 0;
  // Summary: the restore when membalancer stopped (restore_overridden: found
  // set by someone else then, left as they are).
  uint64_t restored = 0, restore_gone = 0, restore_failed = 0, restore_overridden = 0;
  std::string restore_error;
  // autotune
  std::string autotune_state;     // "observing 2/5 intervals", "decided at interval 5, next at 35"
  bool decided_now = false;       // the decisions were made this interval
  std::vector<TuneLine> decisions;  // the latest, one per process
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
  std::optional<MigrationReport> migration;
  std::optional<ThreadReport> thread_balance;
};

struct Summary {
  double elapsed_s = 0;
  uint32_t intervals = 0;
  std::string sampler;
  std::array<uint64_t, MB_NR_COUNTERS> counters{};  // whole run
  uint64_t dropped = 0;
  uint64_t processes_seen = 0;
  uint64_t processes_exited = 0;
  uint64_t exits_without_event = 0;  // of processes_exited: found untracked, their exit event lost
  uint64_t execs_without_event = 0;  // execs found by the exec count, their event lost
  uint64_t table_pages = 0;
  uint64_t table_dropped_full = 0;
  uint64_t node_queries = 0;
  uint64_t node_query_failures = 0;
  std::vector<NodeAccesses> nodes;  // whole run
  std::optional<MigrationReport> migration;
  std::optional<ThreadReport> thread_balance;
};

// Sum of the counters that mean "lost": full maps and full ring buffers.
uint64_t dropped_total(const std::array<uint64_t, MB_NR_COUNTERS>& c);

// Nodes, CPUs, memory, distances and kernel memory tiers, several lines.
std::string describe_topology(const Topology& topo);

class Reporter {
 public:
  Reporter(Display display, FILE* out, bool tty);
  // json: one {"type":"topology"} line; other displays: nothing (--verbose
  // prints describe_topology() on stderr).
  void topology(const Topology& topo);
  void interval(const IntervalReport& r);
  void summary(const Summary& s);

 private:
  void histogram(const IntervalReport& r);
  void continuous(const IntervalReport& r);
  void json(const IntervalReport& r);
  void migration_text(const MigrationReport& m, bool summary);
  void thread_text(const ThreadReport& t, bool summary);

  Display display_;
  FILE* out_;
  bool tty_;
  bool header_done_ = false;
};

std::string format_bytes(uint64_t bytes);
std::string format_hex(uint64_t v);

}  // namespace mb
