#include "membalancer/process_backend.h"

#include <cstdio>
#include <cstring>

#include "membalancer/memory_backend.h"
#include "membalancer/proc.h"

namespace mb {

namespace {

uint64_t total(const std::map<int, uint64_t>& m) {
  uint64_t s = 0;
  for (const auto& [k, v] : m) s += v;
  return s;
}

// The part of a mode's thread report that comes from the interval's sample.
ThreadReport thread_report(const char* mode, bool migrate, const ThreadSample& sample) {
  ThreadReport t;
  t.mode = mode;
  t.migrate = migrate;
  t.per_thread = sample.per_thread;
  t.shares = node_shares(sample.cpu_ticks_by_node, sample.mem_by_node);
  t.threads = sample.threads.size();
  return t;
}

// A mode's last thread report: the run's totals, after every affinity it
// changed has been restored.
ThreadReport stopped_report(const char* mode, bool migrate, ThreadBalancer& balancer) {
  ThreadReport t;
  t.mode = mode;
  t.migrate = migrate;
  balancer.totals(t);
  balancer.restore(t);
  return t;
}

}  // namespace

ThreadSample build_thread_sample(const std::vector<ThreadCpu>& cpu, const std::vector<ThreadGrowth>& growth,
                                 const std::map<uint32_t, std::map<int, uint64_t>>& process_node_accesses) {
  ThreadSample s;
  std::map<pid_t, const ThreadGrowth*> by_tid;
  for (const auto& g : growth) {
    by_tid[static_cast<pid_t>(g.tid)] = &g;
    if (!g.mem_nodes.empty()) s.per_thread = true;
  }
  for (const auto& [tgid, nodes] : process_node_accesses)
    for (const auto& [node, acc] : nodes)
      if (node >= 0 && acc) s.process_mem[static_cast<pid_t>(tgid)][node] += acc;

  for (const auto& c : cpu) {
    ThreadInfo t;
    t.tid = c.tid;
    t.tgid = c.tgid;
    t.current_node = c.node;
    auto it = by_tid.find(c.tid);
    const ThreadGrowth* g = it == by_tid.end() ? nullptr : it->second;
    if (s.per_thread && g && !g->cpu_nodes.empty()) t.cpu_weight = g->cpu_nodes;
    else if (c.ticks && c.node >= 0) t.cpu_weight[c.node] = c.ticks;
    if (c.ticks) s.cpu_ticks_by_node[c.node] += c.ticks;
    if (g && !g->mem_nodes.empty()) {
      s.own_mem[c.tgid][c.tid] = g->mem_nodes;
      if (s.per_thread) t.mem_accesses = g->mem_nodes;
    }
    s.threads.push_back(std::move(t));
  }
  if (s.per_thread) {
    for (const auto& g : growth)
      for (const auto& [node, acc] : g.mem_nodes) s.mem_by_node[node] += acc;
  } else {
    for (const auto& [tgid, nodes] : s.process_mem)
      for (const auto& [node, acc] : nodes) s.mem_by_node[node] += acc;
    fill_from_process(s.threads, s.process_mem);
  }
  return s;
}

ThreadSample ThreadSampler::sample(const Pipeline& pipeline, const std::vector<pid_t>& tracked, const Topology& topo) {
  auto iv = tracker_.update_from_proc(tracked, topo, proc_root_);
  ThreadSample s = build_thread_sample(iv.threads, pipeline.thread_growth(), pipeline.process_node_accesses());
  s.baseline = !primed_;
  primed_ = true;
  return s;
}

ThreadPolicyConfig thread_policy_config(const Options& opts) {
  ThreadPolicyConfig c;
  c.load_max = opts.load_max;
  c.max_move_share = opts.max_move_share;
  c.cooldown_intervals = opts.thread_cooldown_intervals;
  c.override_pinned = opts.override_pinned;
  return c;
}

// ---- ThreadBalancer ------------------------------------------------------------------

ThreadBalancer::ThreadBalancer(const Topology& topo, const ThreadPolicyConfig& cfg, bool migrate, bool verbose,
                               AffinityOps ops, std::string proc_root)
    : topo_(topo),
      cfg_(cfg),
      migrate_(migrate),
      verbose_(verbose),
      loads_(proc_root),
      keeper_(std::move(ops)),
      proc_root_(std::move(proc_root)) {
  loads_.update(topo_);  // baseline: the first loads are since boot
}

void ThreadBalancer::update_loads() { last_loads_ = loads_.update(topo_); }

void ThreadBalancer::balance(const ThreadSample& sample, uint32_t interval, const std::function<bool(pid_t)>& include,
                             ThreadReport& r) {
  std::vector<ThreadInfo> threads;
  for (const auto& t : sample.threads) {
    if (include && !include(t.tgid)) continue;
    threads.push_back(t);
    ThreadInfo& ti = threads.back();
    // Only threads that can be judged need their affinity. The node they run
    // on is the plan's (most CPU weight, else the current CPU's node): a
    // thread whose current CPU has no known node (onlined since the start)
    // may still be judged from the sampler's CPU nodes.
    int runs_on = ti.current_node;
    uint64_t most = 0;
    for (const auto& [n, w] : ti.cpu_weight)
      if (w > most) runs_on = n, most = w;
    if (total(ti.mem_accesses) < cfg_.min_accesses || runs_on < 0) continue;
    CpuSet a;
    if (keeper_.get(ti.tid, &a) != 0) {
      // Exited since the sample: not a move to try (nor a failure to count).
      ti.gone = true;
      continue;
    }
    ti.affinity = a;
    // What it may use: its affinity before we changed it.
    ti.allowed = keeper_.original(ti.tid).value_or(a);
    // A thread this balancer moved is not the user's pin.
    ti.moved_before = keeper_.remembers(ti.tid);
    // Within a cpuset, only the CPUs it allows count: affinity that is all
    // the cpuset lets it have is the cgroup's limit, not the user's pin.
    ti.cpuset = keeper_.cpuset(ti.tid).value_or(CpuSet{});
    ti.pinned = !ti.moved_before &&
                narrower_than_node(a, node_cpu_set(topo_, runs_on), ti.cpuset.empty() ? nullptr : &ti.cpuset);
  }
  const ThreadPlan plan = plan_thread_moves(threads, node_states(topo_, last_loads_), cfg_, cool_, interval);
  r.judged = plan.judged;
  r.candidates = plan.candidates;
  r.eligible = plan.eligible;
  r.budget = plan.budget;
  for (const auto& s : plan.skipped) {
    ++r.skipped[skip_reason_name(s.why)];
    if (verbose_) std::fprintf(stderr, "membalancer: %s\n", describe(s).c_str());
  }
  for (const auto& m : plan.moves) {
    ThreadMoveLine line;
    line.tid = m.tid;
    line.tgid = m.tgid;
    line.from = m.from;
    line.to = m.to;
    line.gain = m.gain;
    line.cpus = m.cpus.to_string();
    if (migrate_) {
      line.error = keeper_.set(m.tid, m.cpus);
      if (line.error == 0) {
        cool_.moved(m.tid, interval);
        held_.insert(m.tid);
        ++moved_;
      } else {
        // Refused (a cpuset without the target's CPUs: EINVAL) is refused
        // again next interval: not retried within the cool-down, so it does
        // not take the budget of the threads behind it every interval.
        cool_.moved(m.tid, interval);
        ++failed_;
      }
    }
    if (verbose_)
      std::fprintf(stderr, "membalancer: %s%s\n", describe(m).c_str(),
                   !migrate_ ? " (report only)"
                   : line.error ? (" - sched_setaffinity failed: " + std::string(std::strerror(line.error))).c_str()
                                : "");
    r.moves.push_back(std::move(line));
  }
  if (interval % 16 == 0) cool_.expire(interval, cfg_.cooldown_intervals);
}

void ThreadBalancer::follow_threads(const ThreadSample& sample) {
  std::set<pid_t> live;
  std::map<pid_t, pid_t> tgid_of;
  processes_.clear();
  for (const auto& t : sample.threads) {
    live.insert(t.tid);
    tgid_of[t.tid] = t.tgid;
    processes_.insert(t.tgid);
  }
  for (auto it = held_.begin(); it != held_.end();) {
    if (live.count(*it)) {
      vanished_.erase(*it);
      ++it;
      continue;
    }
    // Gone from /proc: exited, or a non-leader exec renumbered it to the
    // leader's id after the loop's peek at the events, whose event is only
    // polled next interval (thread_execed). Kept until then.
    if (vanished_.insert(*it).second) {
      ++it;
      continue;
    }
    vanished_.erase(*it);
    keeper_.forget(*it);
    cool_.forget(*it);
    it = held_.erase(it);
    ++exited_moved_;
  }
  // An id whose thread exited and was given to a new thread (same interval):
  // the new one is neither moved by us (it may be pinned by its user) nor
  // cooling down.
  for (pid_t tid : keeper_.forget_reused(vanished_)) {
    cool_.forget(tid);
    held_.erase(tid);
    vanished_.erase(tid);
    ++exited_moved_;
  }
  // Taken on before the threads they inherited from may be let go below:
  // they have the affinity set here, whatever their creator did since.
  for (pid_t tid : keeper_.adopt_inherited({live.begin(), live.end()})) held_.insert(tid);
  // A held thread missing may be a non-leader exec whose event comes next
  // interval: the leader's id then has that thread's affinity, which is not
  // someone else's change. Its process's threads wait until it is known.
  std::set<pid_t> execing, not_yet;
  for (pid_t tid : vanished_)
    if (auto it = tgid_of_.find(tid); it != tgid_of_.end()) execing.insert(it->second);
  for (const auto& [tid, tgid] : tgid_of)
    if (execing.count(tgid)) not_yet.insert(tid);
  tgid_of_ = std::move(tgid_of);
  for (pid_t tid : keeper_.forget_overridden(not_yet)) {
    held_.erase(tid);
    vanished_.erase(tid);
    ++overridden_;
    if (verbose_)
      std::fprintf(stderr,
                   "membalancer: tid %d: its affinity was set by someone else since membalancer moved it; "
                   "it is its own now (not restored at the stop)\n",
                   static_cast<int>(tid));
  }
}

void ThreadBalancer::thread_execed(pid_t tgid, pid_t tid) {
  if (tid <= 0 || tid == tgid) return;  // the leader exec'd: its id stays its own
  if (held_.erase(tgid)) ++exited_moved_;
  keeper_.renumber(tid, tgid);
  cool_.renumber(tid, tgid);
  vanished_.erase(tgid);
  vanished_.erase(tid);
  if (held_.erase(tid)) held_.insert(tgid);
}

void ThreadBalancer::restore(ThreadReport& r) {
  // Still missing after the last events (the loop tells the execs waiting
  // before stopping): they exited.
  for (pid_t tid : vanished_) {
    keeper_.forget(tid);
    held_.erase(tid);
    ++exited_moved_;
  }
  vanished_.clear();
  r.moved_exited = exited_moved_;
  if (keeper_.size()) {
    // Threads and processes started since the last sample inherit too.
    std::vector<pid_t> tids;
    for (pid_t p : process_forest({processes_.begin(), processes_.end()}, proc_root_))
      for (pid_t t : threads_of(p, proc_root_)) tids.push_back(t);
    keeper_.adopt_inherited(tids);
  }
  // What the restore goes over: held = restored + gone + failed + overridden.
  r.affinities_held = keeper_.size();
  const AffinityKeeper::RestoreCounts c = keeper_.restore_all();
  held_.clear();
  r.restored += c.restored;
  r.restore_gone += c.gone;
  r.restore_failed += c.failed;
  r.restore_overridden += c.overridden;
  if (c.failed && r.restore_error.empty()) r.restore_error = std::strerror(c.first_error);
}

void ThreadBalancer::totals(ThreadReport& r) const {
  r.threads_moved = moved_;
  r.moved_exited = exited_moved_;
  r.overridden = overridden_;
  r.move_failures = failed_;
  r.affinities_held = keeper_.size();
}

// ---- process ---------------------------------------------------------------------------

ProcessBackend::ProcessBackend(const Options& opts, const Topology& topo, AffinityOps ops, std::string proc_root)
    : opts_(opts),
      topo_(topo),
      sampler_(proc_root),
      balancer_(topo, thread_policy_config(opts), opts.moves_threads(), opts.verbose, std::move(ops), proc_root) {}

void ProcessBackend::interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double /*elapsed_s*/,
                              IntervalReport& report) {
  const ThreadSample sample = sampler_.sample(pipeline, tracked, topo_);
  balancer_.update_loads();
  balancer_.follow_threads(sample);
  ThreadReport t = thread_report("process", opts_.moves_threads(), sample);
  if (!sample.baseline && !held_) balancer_.balance(sample, report.interval, {}, t);
  balancer_.totals(t);
  report.thread_balance = std::move(t);
}

void ProcessBackend::process_execed(pid_t tgid, pid_t tid) {
  sampler_.thread_execed(tgid, tid);
  balancer_.thread_execed(tgid, tid);
}

void ProcessBackend::stop(Summary& summary) {
  summary.thread_balance = stopped_report("process", opts_.moves_threads(), balancer_);
}

// ---- autotune --------------------------------------------------------------------------

AutotunePlan autotune_plan(const std::vector<TuneDecision>& decisions) {
  AutotunePlan p;
  for (const auto& d : decisions) {
    if (d.choice == TuneChoice::kThreads) p.threads.insert(d.tgid);
    if (d.choice == TuneChoice::kMemory) p.memory.insert(d.tgid);
  }
  return p;
}

AutotuneBackend::AutotuneBackend(const Options& opts, Topology& topo, AffinityOps ops, std::string proc_root,
                                 ExecCountFn exec_count)
    : opts_(opts),
      topo_(topo),
      sampler_(proc_root),
      balancer_(topo, thread_policy_config(opts), opts.moves_threads(), opts.verbose, std::move(ops), proc_root),
      observer_(opts.observe_intervals),
      exec_count_(std::move(exec_count)) {
  for (const auto& n : topo.nodes) node_cpus_[n.id] = static_cast<int>(n.cpus.size());
  tune_cfg_.memory_movable = memory_nodes(topo).size() >= 2;
}

AutotuneBackend::~AutotuneBackend() = default;

void AutotuneBackend::interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double elapsed_s,
                               IntervalReport& report) {
  const uint32_t now = report.interval;
  const ThreadSample sample = sampler_.sample(pipeline, tracked, topo_);
  balancer_.update_loads();
  balancer_.follow_threads(sample);

  // Processes gone: no decision, no data.
  const std::set<pid_t> live(tracked.begin(), tracked.end());
  for (pid_t p : tracked_)
    if (!live.count(p)) {
      observer_.forget_process(p);
      plan_.threads.erase(p);
      plan_.memory.erase(p);
      std::erase_if(decisions_, [p](const TuneLine& d) { return d.pid == p; });
    }
  tracked_ = live;

  // The window of a re-evaluation is the last --observe intervals before it.
  const uint32_t R = opts_.reevaluate_intervals, O = opts_.observe_intervals;
  if (decided_at_ && R && now == decided_at_ + R - O + 1) observer_ = AutotuneObserver(O);
  // Between a decision and the next window (forever with --reevaluate 0)
  // nothing is observed: the data would only pile up, a thread id per
  // thread ever started.
  const bool observing = decided_at_ == 0 || (R && now >= decided_at_ + R - O + 1);
  if (observing && !sample.baseline) {
    for (const auto& t : sample.threads) {
      static const std::map<int, uint64_t> none;
      const std::map<int, uint64_t>* own = &none;
      if (auto p = sample.own_mem.find(t.tgid); p != sample.own_mem.end())
        if (auto q = p->second.find(t.tid); q != p->second.end()) own = &q->second;
      observer_.add_thread(t.tgid, t.tid, t.cpu_weight, sample.per_thread ? *own : none);
    }
    for (const auto& [tgid, nodes] : sample.process_mem) observer_.add_page_accesses(tgid, nodes);
    observer_.end_interval();
  }

  ThreadReport t = thread_report("autotune", opts_.moves_threads(), sample);
  if (!held_ && observer_.ready() && (decided_at_ == 0 || (R && now - decided_at_ >= R))) {
    const auto decisions = observer_.decide(node_cpus_, tune_cfg_);
    decisions_.clear();
    for (const auto& d : decisions) decisions_.push_back({d.tgid, tune_choice_name(d.choice), d.why});
    plan_ = autotune_plan(decisions);
    decided_at_ = now;
    t.decided_now = true;
    if (opts_.verbose)
      for (const auto& d : decisions_)
        std::fprintf(stderr, "membalancer: autotune pid %d: %s: %s\n", d.pid, d.choice.c_str(), d.why.c_str());
    if (!plan_.memory.empty() && !memory_) memory_ = std::make_unique<MemoryBackend>(opts_, topo_, exec_count_);
    if (memory_) memory_->restrict_to(std::set<uint32_t>(plan_.memory.begin(), plan_.memory.end()));
  }
  if (!decided_at_)
    t.autotune_state = "observing: " + std::to_string(observer_.intervals_seen()) + " of " + std::to_string(O) +
                       " intervals before deciding";
  else
    t.autotune_state = "decided at interval " + std::to_string(decided_at_) + " from " + std::to_string(O) +
                       " intervals; " + std::to_string(plan_.threads.size()) + " process(es) moving threads, " +
                       std::to_string(plan_.memory.size()) + " moving memory; " +
                       (R ? "next decision at interval " + std::to_string(decided_at_ + R) : "not re-evaluated");
  t.decisions = decisions_;
  if (!sample.baseline && !held_ && !plan_.threads.empty())
    balancer_.balance(sample, now, [this](pid_t p) { return plan_.threads.count(p) != 0; }, t);
  balancer_.totals(t);
  report.thread_balance = std::move(t);
  if (memory_ && !plan_.memory.empty()) memory_->interval(pipeline, tracked, elapsed_s, report);
}

size_t AutotuneBackend::observed_threads() const { return observer_.threads(); }

void AutotuneBackend::process_execed(pid_t tgid, pid_t tid) {
  sampler_.thread_execed(tgid, tid);
  balancer_.thread_execed(tgid, tid);
  if (memory_) memory_->process_execed(tgid, tid);
}

void AutotuneBackend::hold() {
  held_ = true;
  if (memory_) memory_->hold();
}

void AutotuneBackend::stop(Summary& summary) {
  ThreadReport t = stopped_report("autotune", opts_.moves_threads(), balancer_);
  t.decisions = decisions_;
  t.autotune_state = decided_at_ ? "last decision at interval " + std::to_string(decided_at_) : "never decided";
  summary.thread_balance = std::move(t);
  if (memory_) memory_->stop(summary);
}

}  // namespace mb
