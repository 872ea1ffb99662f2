// Command line and config file (CLI11). Everything is validated here, before
// anything is opened or changed; errors are UsageError (status 2).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "membalancer/bpf_collector.h"
#include "membalancer/report.h"

namespace mb {

// tier's heat decay: ranking pages against a capacity gains from the longer
// memory (less sampling noise), and a changed pattern is forgotten anyway by
// the page table's adaptive forgetting (PageTable::end_interval).
constexpr double kTierDecay = 0.875;

struct Options {
  std::string command;  // "trace", "numa", "tier", "process", "autotune", or "" with --info

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
  double decay = 0.5;                // tier: kTierDecay unless --decay

  // Memory balancing (numa, tier).
  bool migrate = false;                    // report-only without it
  uint64_t rate_limit_bytes = 200ull << 20;  // mover bytes/s, 0 = unlimited
  uint32_t move_workers = 1;
  uint64_t min_free_bytes = 256ull << 20;  // numa: free memory a target keeps
  double hysteresis = 0.15;                // numa: required cost reduction
  uint32_t cooldown_intervals = 30;        // a moved page stays put this long
  double min_hot_heat = 2.0;               // heat a page needs to count as hot
  std::string tiers = "auto";              // tier: auto|kernel|cpuless|distance|SPEC
  double watermark_low = 0.01;             // tier: share of an upper node's memory
  double watermark_high = 0.02;
  bool watermark_auto = true;              // tier: sized to allocations, at most low:high

  // Thread balancing (process, autotune).
  double load_max = 0.8;                   // a target node's busy fraction stays below this
  double max_move_share = 0.25;            // of the eligible candidates, moved per interval
  uint32_t thread_cooldown_intervals = 10; // a moved thread is not moved again for this long
  bool override_pinned = false;            // move threads pinned narrower than a node too
  // autotune
  uint32_t observe_intervals = 5;          // intervals observed before deciding
  uint32_t reevaluate_intervals = 30;      // decide again this often (0: never)

  // --sampler replay:FILE: recorded time per wall second (0: as fast as possible).
  double replay_speed = 1.0;
  // numa/tier: plan and commit as if the moves were made, moving nothing;
  // a replay applies them to its model of the recorded memory.
  bool dry_run = false;
  // Does this run change thread affinities? (process and autotune with
  // --migrate; --dry-run moves nothing, threads included.)
  bool moves_threads() const { return (command == "process" || command == "autotune") && migrate && !dry_run; }

  // --record FILE: every sample also goes to a profile file (profiler format).
  std::string record_path;
  bool record_force = false;
  uint32_t record_ring_bytes = kDefaultSampleRingBytes;  // --ring-size: the samples wait there for the interval loop

  bool verbose = false;
  bool info = false;
};

// The pipeline's configuration from the options (sizes, decay, report).
struct PipelineConfig;
PipelineConfig pipeline_config(const Options& o);

// Parses argv. Returns the options, or sets *exit_status (help/version: 0;
// bad input: 2 after printing one line) and returns defaults.
Options parse_options(int argc, const char* const* argv, int* exit_status);

}  // namespace mb
