#include "membalancer/interval_runner.h"

#include <unordered_set>

namespace mb {

void IntervalRunner::tell_exec(const mb_proc_event& ev, bool peeked) {
  if (!backend_) return;
  // Told at a peek, then polled: once is what the backend is promised.
  const std::pair<uint32_t, uint64_t> key{ev.tgid, ev.time_ns};
  if (peeked ? !execs_told_.insert(key).second : execs_told_.erase(key) != 0) return;
  backend_->process_execed(static_cast<pid_t>(ev.tgid), static_cast<pid_t>(ev.tid));
}

void IntervalRunner::tell_waiting_execs() {
  source_.peek_process_events([&](const mb_proc_event& ev) {
    if (ev.type == MB_PROC_EXEC) tell_exec(ev, true);
  });
}

void IntervalRunner::take_lost_execs() {
  for (const auto& [tgid, count] : execs_ahead_) {
    uint32_t& known = execs_known_[static_cast<uint32_t>(tgid)];
    if (count <= known) continue;  // its event came
    known = count;
    pipeline_.process_exec_found(tgid);
    if (backend_) backend_->process_execed(tgid, 0);
  }
  execs_ahead_.clear();
}

void IntervalRunner::read_exec_counts(uint64_t events_lost) {
  if (events_lost == lost_checked_) return;  // every exec sent its event
  lost_checked_ = events_lost;
  const std::vector<std::pair<pid_t, uint32_t>> counts = source_.exec_counts();
  for (const auto& [tgid, count] : counts) {
    auto it = execs_known_.find(static_cast<uint32_t>(tgid));
    if (count > (it == execs_known_.end() ? 0 : it->second)) execs_ahead_.emplace_back(tgid, count);
  }
  // Processes no longer tracked whose exit event was lost too.
  std::unordered_set<uint32_t> tracked;
  for (const auto& c : counts) tracked.insert(static_cast<uint32_t>(c.first));
  std::erase_if(execs_known_, [&](const auto& e) { return !tracked.count(e.first); });
}

IntervalReport IntervalRunner::run(uint32_t interval, const std::function<double()>& clock) {
  const double start = clock();
  pipeline_.begin_interval(interval);
  const double t_begin = clock();
  // Events before pages: a process's samples all precede its exit event,
  // so once the exit is seen here, every page it touched is in the table
  // drained next (or an earlier one), and the exit removes them all at
  // the end of this interval. Polled after the drain, samples taken between
  // the swap and the exit would arrive after the removal and linger.
  source_.poll_process_events([&](const mb_proc_event& ev) {
    if (ev.type == MB_PROC_FORK) pipeline_.process_forked(static_cast<pid_t>(ev.tgid));
    if (ev.type == MB_PROC_EXEC) {
      ++execs_known_[ev.tgid];
      pipeline_.process_execed(static_cast<pid_t>(ev.tgid));
      tell_exec(ev, false);
    }
    if (ev.type == MB_PROC_EXIT) {
      execs_known_.erase(ev.tgid);
      pipeline_.process_exited(static_cast<pid_t>(ev.tgid));
    }
    if (on_event) on_event(ev);
  });
  take_lost_execs();
  if (before_drain) before_drain();
  source_.drain_pages([&](const mb_page_slot& s) { pipeline_.add_slot(s); });
  const double t_drain = clock();
  source_.drain_tasks(&tasks_);
  pipeline_.add_tasks(tasks_);
  const auto& now = source_.counters_at_swap();
  std::array<uint64_t, MB_NR_COUNTERS> delta{};
  for (int i = 0; i < MB_NR_COUNTERS; ++i) delta[i] = now[i] - last_[i];
  last_ = now;
  read_exec_counts(now[MB_CTR_EVENTS_LOST]);
  tracked_ = source_.tracked_processes();
  pipeline_.reconcile_tracked(tracked_);
  IntervalReport r = pipeline_.finish_interval(delta, tracked_.size());
  r.elapsed_s = clock();
  r.sampler = source_.sampler().name;
  // An exec since the poll: the table still holds the old image's pages
  // (the pipeline drops them after the next interval), which the backend
  // must not plan on now.
  if (backend_) {
    tell_waiting_execs();
    backend_->interval(pipeline_, tracked_, r.elapsed_s, r);
  }
  table_ms_ = (t_begin - start) * 1e3;
  drain_ms_ = (t_drain - t_begin) * 1e3;
  return r;
}

}  // namespace mb
