// A mode's actions, plugged into the one sampling loop (trace.cpp): after
// each interval's pages are in the page table and its report is built, the
// backend plans and acts (moves pages, moves threads) and adds what it did to
// the report. `trace` has no backend.
#pragma once

#include <sys/types.h>

#include <vector>

#include "membalancer/pipeline.h"
#include "membalancer/report.h"

namespace mb {

class Backend {
 public:
  virtual ~Backend() = default;
  // tracked: the processes tracked now; elapsed_s: since the start.
  virtual void interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double elapsed_s,
                        IntervalReport& report) = 0;
  // A tracked process exec'd: what was planned on its old image is void,
  // and nothing is planned on it in the interval that follows. `tid` is the
  // thread that called exec, by its id before (0: not known); one other
  // than the leader has the id tgid now, and the leader is gone. Told once
  // per exec, as soon as the loop sees it (at the interval's poll of
  // events, or just before interval() when it came since).
  virtual void process_execed(pid_t /*tgid*/, pid_t /*tid*/) {}
  // A stop signal came: work not started is dropped now, and the intervals
  // still taken in (the last one, for the report) act on nothing. stop()
  // follows.
  virtual void hold() = 0;
  // Stops: drops work not started, restores what was changed, and adds the
  // final accounting to the summary. Must return quickly (SIGTERM).
  virtual void stop(Summary& summary) = 0;
};

}  // namespace mb
