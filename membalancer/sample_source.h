// Where the sampling loop's accesses come from: the BPF collector on the live
// machine, or a recorded profile (replay). The loop (trace.cpp) asks the same
// questions of both every interval.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "membalancer/records.h"
#include "membalancer/samplers.h"

namespace mb {

// One process's execs so far, asked at any time from any thread (the live
// collector's BpfCollector::exec_counter; nullopt: unknown).
using ExecCountFn = std::function<std::optional<uint32_t>(pid_t pid)>;

struct TaskSnapshot {
  uint32_t tid;
  mb_task_stats stats;
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;

  // Moves to the next interval's accesses. A live source always can; a
  // replay returns false once the recording is used up.
  virtual bool advance() { return true; }
  // Process fork/exec/exit events since the last call.
  virtual void poll_process_events(const std::function<void(const mb_proc_event&)>& fn) = 0;
  // The events that arrived since and wait for the next poll_process_events,
  // shown without delivering them (they keep their place): what a planner
  // must know of now. A source whose events all come at the poll has none.
  virtual void peek_process_events(const std::function<void(const mb_proc_event&)>& /*fn*/) {}
  // (tgid, execs since it was tracked) of every tracked process: the exec
  // events sent, and lost, included. A source without the count: none.
  virtual std::vector<std::pair<pid_t, uint32_t>> exec_counts() const { return {}; }
  // Every page accessed this interval, once, with its accesses.
  using PageFn = std::function<void(const mb_page_slot&)>;
  virtual uint64_t drain_pages(const PageFn& fn) = 0;
  // Cumulative per-thread statistics.
  virtual void drain_tasks(std::vector<TaskSnapshot>* tasks) = 0;
  // Cumulative counters (enum mb_counter), and their value matching the
  // pages of the last drain.
  virtual std::array<uint64_t, MB_NR_COUNTERS> counters() const = 0;
  virtual const std::array<uint64_t, MB_NR_COUNTERS>& counters_at_swap() const = 0;
  virtual std::vector<pid_t> tracked_processes() const = 0;
  virtual const SamplerPlan& sampler() const = 0;
};

}  // namespace mb
