// One interval of the sampling loop, from a source's accesses to the mode's
// actions: events, pages, threads, the report, the backend. The live loop
// (trace.cpp) and `profiler whatif` run the same steps, so a replay with
// --dry-run and the what-if simulator make the same decisions.
#pragma once

#include <array>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "membalancer/backend.h"
#include "membalancer/pipeline.h"
#include "membalancer/sample_source.h"

namespace mb {

class IntervalRunner {
 public:
  IntervalRunner(SampleSource& source, Pipeline& pipeline, Backend* backend)
      : source_(source), pipeline_(pipeline), backend_(backend) {}

  // Called for every process event after the pipeline took it in.
  std::function<void(const mb_proc_event&)> on_event;
  // Called after the events, before the pages are drained.
  std::function<void()> before_drain;

  // Runs interval `interval`; clock() gives the seconds since the start.
  IntervalReport run(uint32_t interval, const std::function<double()>& clock);

  // Tells the backend the execs that came since the last run's poll (each
  // once): before it stops, so a thread that took its leader's id after the
  // last /proc read is restored under that id.
  void tell_waiting_execs();

  // The processes tracked at the last run.
  const std::vector<pid_t>& tracked() const { return tracked_; }
  // Where the last run's time went, milliseconds.
  double table_ms() const { return table_ms_; }
  double drain_ms() const { return drain_ms_; }

 private:
  SampleSource& source_;
  Pipeline& pipeline_;
  Backend* backend_;
  std::array<uint64_t, MB_NR_COUNTERS> last_{};
  std::vector<TaskSnapshot> tasks_;
  void tell_exec(const mb_proc_event& ev, bool peeked);
  void take_lost_execs();
  void read_exec_counts(uint64_t events_lost);

  std::vector<pid_t> tracked_;
  // Exec events told to the backend before their poll (tgid, time): not told again.
  std::set<std::pair<uint32_t, uint64_t>> execs_told_;
  double table_ms_ = 0, drain_ms_ = 0;
  // An exec whose event was lost (ring buffer full) is found by the source's
  // exec count running ahead of the events: read when events were lost, and
  // taken as an exec when still ahead after the next poll (its event, if
  // sent, would be in by then).
  std::unordered_map<uint32_t, uint32_t> execs_known_;   // tgid -> execs seen (events, and found)
  std::vector<std::pair<pid_t, uint32_t>> execs_ahead_;  // counts ahead of the events at the last read
  uint64_t lost_checked_ = 0;                            // events lost when the counts were last read
};

}  // namespace mb
