#include "membalancer/thread_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "membalancer/renumber.h"

namespace mb {

namespace {

uint64_t sum(const std::map<int, uint64_t>& m) {
  uint64_t s = 0;
  for (const auto& [k, v] : m) s += v;
  return s;
}

// Key with the largest value (ties: lowest key); -1 when empty or all zero.
int argmax(const std::map<int, uint64_t>& m) {
  int best = -1;
  uint64_t best_v = 0;
  for (const auto& [k, v] : m)
    if (v > best_v) best = k, best_v = v;
  return best;
}

uint64_t at(const std::map<int, uint64_t>& m, int k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

const NodeState* find_node(const std::vector<NodeState>& nodes, int id) {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

int dist(const std::vector<NodeState>& nodes, int from, int to) {
  if (const NodeState* n = find_node(nodes, from)) {
    auto it = n->distance.find(to);
    if (it != n->distance.end()) return it->second;
  }
  return from == to ? 10 : 20;
}

std::string pct(double f) {
  char buf[16];
  snprintf(buf, sizeof buf, "%.0f%%", f * 100.0);
  return buf;
}

std::string fmt_gain(double g) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.0f", g);
  return buf;
}

// Why a node is not a target ("" when it qualifies).
std::string why_not(const NodeState* n, const ThreadPolicyConfig& cfg) {
  if (!n) return "unknown node";
  if (n->cpus.empty()) return "no CPUs";
  if (n->load >= cfg.load_max) return "load " + pct(n->load) + " >= " + pct(cfg.load_max);
  if (n->idle_cpus < cfg.min_idle_cpus)
    return std::to_string(n->idle_cpus) + " idle CPUs < " + std::to_string(cfg.min_idle_cpus);
  return "";
}

}  // namespace

std::vector<NodeState> node_states(const Topology& topo, const std::map<int, NodeLoad>& loads) {
  std::vector<NodeState> out;
  for (const auto& n : topo.nodes) {
    NodeState s;
    s.id = n.id;
    s.cpus = CpuSet(n.cpus);
    s.distance = n.distance;
    auto it = loads.find(n.id);
    if (it != loads.end()) {
      s.load = it->second.busy_fraction;
      s.idle_cpus = it->second.idle_cpus;
    } else {
      s.idle_cpus = static_cast<int>(s.cpus.count());
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool ThreadCoolDown::cooling(pid_t tid, uint32_t now, uint32_t cooldown) const {
  auto it = last_.find(tid);
  return it != last_.end() && now - it->second < cooldown;
}

void ThreadCoolDown::renumber(pid_t from, pid_t to) {
  if (from > 0) renumber_key(last_, from, to);
}

void ThreadCoolDown::expire(uint32_t now, uint32_t cooldown) {
  for (auto it = last_.begin(); it != last_.end();)
    it = now - it->second >= cooldown ? last_.erase(it) : std::next(it);
}

void fill_from_process(std::vector<ThreadInfo>& threads, const std::map<pid_t, std::map<int, uint64_t>>& process_mem) {
  std::map<pid_t, uint64_t> proc_cpu;
  std::map<pid_t, size_t> proc_threads;
  for (const auto& t : threads) {
    proc_cpu[t.tgid] += sum(t.cpu_weight);
    ++proc_threads[t.tgid];
  }
  for (auto& t : threads) {
    if (!t.mem_accesses.empty()) continue;
    auto pm = process_mem.find(t.tgid);
    if (pm == process_mem.end()) continue;
    uint64_t pc = proc_cpu[t.tgid];
    double w = pc ? static_cast<double>(sum(t.cpu_weight)) / static_cast<double>(pc)
                  : 1.0 / static_cast<double>(proc_threads[t.tgid]);
    for (const auto& [node, acc] : pm->second) {
      auto v = static_cast<uint64_t>(std::llround(static_cast<double>(acc) * w));
      if (v) t.mem_accesses[node] = v;
    }
    t.per_thread = false;
  }
}

bool node_qualifies(const NodeState& node, const ThreadPolicyConfig& cfg) { return why_not(&node, cfg).empty(); }

std::optional<int> choose_target(int preferred, const std::vector<NodeState>& nodes, const ThreadPolicyConfig& cfg) {
  if (const NodeState* p = find_node(nodes, preferred); p && node_qualifies(*p, cfg)) return preferred;
  const NodeState* best = nullptr;
  int best_d = std::numeric_limits<int>::max();
  for (const auto& n : nodes) {
    if (!node_qualifies(n, cfg)) continue;
    int d = dist(nodes, preferred, n.id);
    if (!best || d < best_d || (d == best_d && (n.load < best->load || (n.load == best->load && n.id < best->id))))
      best = &n, best_d = d;
  }
  if (!best) return std::nullopt;
  return best->id;
}

double move_gain(const std::map<int, uint64_t>& mem, int from, int to, const std::vector<NodeState>& nodes) {
  double g = 0;
  for (const auto& [n, acc] : mem)
    g += static_cast<double>(acc) * (dist(nodes, from, n) - dist(nodes, to, n));
  return g / 10.0;
}

const char* skip_reason_name(SkipReason r) {
  switch (r) {
    case SkipReason::kPinned: return "pinned";
    case SkipReason::kCoolDown: return "cool-down";
    case SkipReason::kNoTarget: return "no target";
    case SkipReason::kNoGain: return "no gain";
    case SkipReason::kThrottled: return "throttled";
    case SkipReason::kGone: return "gone";
    case SkipReason::kCpuset: return "cpuset";
  }
  return "?";
}

ThreadPlan plan_thread_moves(const std::vector<ThreadInfo>& threads, const std::vector<NodeState>& nodes,
                             const ThreadPolicyConfig& cfg, const ThreadCoolDown& cool, uint32_t interval) {
  ThreadPlan plan;
  struct Eligible {
    const ThreadInfo* t;
    int from, preferred;
    double share, initial_gain;
    std::string what;  // "87% of 1234 accesses on node 1, runs on node 0"
  };
  std::vector<Eligible> eligible;

  auto skip = [&plan](const ThreadInfo& t, int from, int preferred, SkipReason why, std::string reason) {
    plan.skipped.push_back({t.tid, t.tgid, from, preferred, why, std::move(reason)});
  };

  for (const auto& t : threads) {
    uint64_t total = sum(t.mem_accesses);
    if (total == 0 || total < cfg.min_accesses) continue;
    int from = argmax(t.cpu_weight);
    if (from < 0) from = t.current_node;
    if (from < 0) continue;
    ++plan.judged;
    int p = argmax(t.mem_accesses);
    if (p == from || at(t.mem_accesses, p) <= at(t.mem_accesses, from)) continue;
    double share = static_cast<double>(at(t.mem_accesses, p)) / static_cast<double>(total);
    if (share <= cfg.majority) continue;
    ++plan.candidates;
    std::string what = pct(share) + " of " + std::to_string(total) + " accesses on node " + std::to_string(p) +
                       (t.per_thread ? "" : " (process page locations)") + ", runs on node " + std::to_string(from);
    if (t.gone) {
      skip(t, from, p, SkipReason::kGone, what + "; exited since it was sampled");
      continue;
    }
    if (t.pinned && !cfg.override_pinned) {
      skip(t, from, p, SkipReason::kPinned,
           what + "; affinity " + t.affinity.to_string() + " is narrower than its node (--override-pinned moves it)");
      continue;
    }
    if (cool.cooling(t.tid, interval, cfg.cooldown_intervals)) {
      skip(t, from, p, SkipReason::kCoolDown,
           what + "; moved (or its move refused) less than " + std::to_string(cfg.cooldown_intervals) + " intervals ago");
      continue;
    }
    auto target = choose_target(p, nodes, cfg);
    double g = target ? move_gain(t.mem_accesses, from, *target, nodes) : -std::numeric_limits<double>::infinity();
    eligible.push_back({&t, from, p, share, g, std::move(what)});
  }

  plan.eligible = eligible.size();
  if (!eligible.empty() && cfg.max_move_share > 0) {
    double b = std::ceil(cfg.max_move_share * static_cast<double>(eligible.size()) - 1e-9);
    plan.budget = std::min(eligible.size(), static_cast<size_t>(std::max(b, 1.0)));
  }
  std::stable_sort(eligible.begin(), eligible.end(), [](const Eligible& a, const Eligible& b) {
    if (a.initial_gain != b.initial_gain) return a.initial_gain > b.initial_gain;
    return a.t->tid < b.t->tid;
  });

  std::vector<NodeState> state = nodes;
  for (auto& e : eligible) {
    const ThreadInfo& t = *e.t;
    auto target = choose_target(e.preferred, state, cfg);
    std::string why_p = why_not(find_node(state, e.preferred), cfg);
    if (!target) {
      skip(t, e.from, e.preferred, SkipReason::kNoTarget,
           e.what + "; node " + std::to_string(e.preferred) + ": " + why_p + "; no other node qualifies");
      continue;
    }
    if (*target == e.from) {
      skip(t, e.from, e.preferred, SkipReason::kNoTarget,
           e.what + "; node " + std::to_string(e.preferred) + ": " + why_p +
               "; the nearest qualifying node is its own");
      continue;
    }
    NodeState* ts = nullptr;
    for (auto& n : state)
      if (n.id == *target) ts = &n;
    const CpuSet target_cpus = t.cpuset.empty() ? ts->cpus : ts->cpus.intersect(t.cpuset);
    if (target_cpus.empty()) {
      // sched_setaffinity would fail (EINVAL): the cgroup's limit, not ours to lift.
      skip(t, e.from, e.preferred, SkipReason::kCpuset,
           e.what + "; its cpuset allows cpus " + t.cpuset.to_string() + ", none of node " +
               std::to_string(*target) + "'s");
      continue;
    }
    double gain = move_gain(t.mem_accesses, e.from, *target, state);
    std::string where = *target == e.preferred
                            ? "; node " + std::to_string(*target) + " qualifies"
                            : "; node " + std::to_string(e.preferred) + ": " + why_p + "; nearest qualifying node " +
                                  std::to_string(*target) + " (distance " +
                                  std::to_string(dist(state, e.preferred, *target)) + ")";
    if (gain <= 0) {
      skip(t, e.from, e.preferred, SkipReason::kNoGain, e.what + where + "; gain " + fmt_gain(gain));
      continue;
    }
    if (t.moved_before) {
      const double total = static_cast<double>(sum(t.mem_accesses));
      const double margin = (static_cast<double>(at(t.mem_accesses, e.preferred)) -
                             static_cast<double>(at(t.mem_accesses, e.from))) / total;
      if (margin < cfg.move_again_margin) {
        skip(t, e.from, e.preferred, SkipReason::kNoGain,
             e.what + where + "; gain " + fmt_gain(gain) + ", but node " + std::to_string(e.preferred) + " holds only " +
                 pct(margin) + " of its accesses more than node " + std::to_string(e.from) + " (< " +
                 pct(cfg.move_again_margin) + " to move a thread moved before)");
        continue;
      }
    }
    if (plan.moves.size() >= plan.budget) {
      skip(t, e.from, e.preferred, SkipReason::kThrottled,
           e.what + where + "; gain " + fmt_gain(gain) + "; " + std::to_string(plan.budget) + " of " +
               std::to_string(plan.eligible) + " candidates move per interval");
      continue;
    }
    ThreadMove m;
    m.tid = t.tid;
    m.tgid = t.tgid;
    m.from = e.from;
    m.to = *target;
    m.preferred = e.preferred;
    m.share = e.share;
    m.gain = gain;
    m.cpus = target_cpus;
    m.reason = e.what + where + "; gain " + fmt_gain(gain);
    if (target_cpus.count() < ts->cpus.count())
      m.reason += "; its cpuset allows cpus " + target_cpus.to_string() + " there";
    // Never more of the target than the thread was allowed there.
    if (CpuSet within = target_cpus.intersect(t.allowed); !within.empty() && within.count() < target_cpus.count()) {
      m.cpus = within;
      m.reason += "; its affinity " + t.allowed.to_string() + " allows cpus " + within.to_string() + " there";
    }
    plan.moves.push_back(std::move(m));
    // The moved thread takes one idle CPU there.
    ts->idle_cpus -= 1;
    ts->load += 1.0 / static_cast<double>(ts->cpus.count());
  }
  return plan;
}

std::string describe(const ThreadMove& m) {
  return "move tid " + std::to_string(m.tid) + " (tgid " + std::to_string(m.tgid) + ") node " +
         std::to_string(m.from) + " -> " + std::to_string(m.to) + " [cpus " + m.cpus.to_string() + "]: " + m.reason;
}

std::string describe(const ThreadSkip& s) {
  return "skip tid " + std::to_string(s.tid) + " (tgid " + std::to_string(s.tgid) + ") node " +
         std::to_string(s.from) + ": " + skip_reason_name(s.why) + ": " + s.reason;
}

// ---- report ----------------------------------------------------------------------

std::vector<NodeShare> node_shares(const std::map<int, uint64_t>& cpu, const std::map<int, uint64_t>& mem) {
  std::map<int, NodeShare> rows;
  for (const auto& [n, v] : cpu) rows[n].cpu_ticks = v;
  for (const auto& [n, v] : mem) rows[n].mem_accesses = v;
  uint64_t ct = sum(cpu), mt = sum(mem);
  std::vector<NodeShare> out;
  for (auto& [n, r] : rows) {
    r.node = n;
    r.cpu_share = ct ? static_cast<double>(r.cpu_ticks) / static_cast<double>(ct) : 0.0;
    r.mem_share = mt ? static_cast<double>(r.mem_accesses) / static_cast<double>(mt) : 0.0;
    out.push_back(r);
  }
  return out;
}

std::string format_node_shares(const std::vector<NodeShare>& rows, uint64_t threads_moved) {
  std::string out = "NUMA PROCESS CPU AND MEMORY ACCESS PATTERN\n";
  char buf[128];
  snprintf(buf, sizeof buf, "%6s %8s %8s\n", "node", "cpu%", "mem%");
  out += buf;
  for (const auto& r : rows) {
    std::string node = r.node < 0 ? "?" : std::to_string(r.node);
    snprintf(buf, sizeof buf, "%6s %8.1f %8.1f\n", node.c_str(), r.cpu_share * 100.0, r.mem_share * 100.0);
    out += buf;
  }
  out += "threads moved: " + std::to_string(threads_moved) + "\n";
  return out;
}

// ---- autotune ----------------------------------------------------------------------

const char* tune_choice_name(TuneChoice c) {
  switch (c) {
    case TuneChoice::kNone: return "none";
    case TuneChoice::kThreads: return "threads";
    case TuneChoice::kMemory: return "memory";
  }
  return "?";
}

static TuneDecision decide_by_rule(const ProcessProfile& p, const std::map<int, int>& node_cpus,
                                   const AutotuneConfig& cfg) {
  TuneDecision d;
  d.tgid = p.tgid;
  std::map<int, uint64_t> cpu, mem;
  uint64_t local = 0, judged = 0;
  uint64_t busiest = 0;
  for (const auto& t : p.threads)
    if (!t.exited) busiest = std::max(busiest, sum(t.cpu));
  for (const auto& t : p.threads) {
    for (const auto& [n, v] : t.cpu) cpu[n] += v;
    for (const auto& [n, v] : t.mem) mem[n] += v;
    const uint64_t c = sum(t.cpu);
    if (!t.exited && c && static_cast<double>(c) >= cfg.active_share * static_cast<double>(busiest))
      ++d.active_threads;
    int home = argmax(t.cpu);
    if (home >= 0 && !t.mem.empty()) {
      local += at(t.mem, home);
      judged += sum(t.mem);
    }
  }
  bool per_thread = sum(mem) > 0;
  if (!per_thread) mem = p.page_accesses;
  d.accesses = sum(mem);
  uint64_t cpu_total = sum(cpu);
  if (d.accesses == 0 || d.accesses < cfg.min_accesses) {
    d.why = "too few samples: " + std::to_string(d.accesses) + " accesses < " + std::to_string(cfg.min_accesses) +
            " -> undecided";
    return d;
  }
  if (cpu_total == 0) {
    d.why = "no CPU use seen -> undecided";
    return d;
  }
  d.mem_node = argmax(mem);
  d.mem_share = static_cast<double>(at(mem, d.mem_node)) / static_cast<double>(d.accesses);
  d.cpu_node = argmax(cpu);
  d.cpu_share = static_cast<double>(at(cpu, d.cpu_node)) / static_cast<double>(cpu_total);
  d.cpu_on_mem_node = static_cast<double>(at(cpu, d.mem_node)) / static_cast<double>(cpu_total);
  if (per_thread && judged) {
    d.local_share = static_cast<double>(local) / static_cast<double>(judged);
  } else {
    for (const auto& [n, v] : mem)
      d.local_share += static_cast<double>(at(cpu, n)) / static_cast<double>(cpu_total) *
                       (static_cast<double>(v) / static_cast<double>(d.accesses));
  }

  std::string mem_s = "memory " + pct(d.mem_share) + " on node " + std::to_string(d.mem_node);
  std::string cpu_s = "threads " + pct(d.cpu_share) + " on node " + std::to_string(d.cpu_node);
  std::string local_s = pct(d.local_share) + " local";
  if (d.local_share >= cfg.local_ok) {
    d.why = "already local: " + local_s + " (" + mem_s + ", " + cpu_s + ") -> nothing to move";
    return d;
  }
  auto nc = node_cpus.find(d.mem_node);
  int cpus_there = nc == node_cpus.end() ? 0 : nc->second;
  if (d.mem_share >= cfg.mem_concentrated && d.cpu_on_mem_node < cfg.threads_elsewhere) {
    std::string elsewhere = cpu_s + " (" + pct(d.cpu_on_mem_node) + " on node " + std::to_string(d.mem_node) + ")";
    if (cpus_there <= 0) {
      d.choice = TuneChoice::kMemory;
      d.why = mem_s + ", which has no CPUs; " + elsewhere + ", " + local_s + " -> move memory";
    } else if (d.active_threads > static_cast<size_t>(cpus_there)) {
      d.choice = TuneChoice::kMemory;
      d.why = mem_s + ", but " + std::to_string(d.active_threads) + " active threads > " +
              std::to_string(cpus_there) + " CPUs there; " + elsewhere + ", " + local_s + " -> move memory";
    } else {
      d.choice = TuneChoice::kThreads;
      d.why = mem_s + ", " + elsewhere + ", " + local_s + " -> move threads";
    }
    return d;
  }
  d.choice = TuneChoice::kMemory;
  std::string because = d.mem_share < cfg.mem_concentrated
                            ? "memory spread (" + mem_s + " at most)"
                            : mem_s + " but threads already " + pct(d.cpu_on_mem_node) + " there";
  d.why = because + ", " + cpu_s + ", " + local_s + " -> move memory";
  return d;
}

void AutotuneObserver::add_thread(pid_t tgid, pid_t tid, const std::map<int, uint64_t>& cpu,
                                  const std::map<int, uint64_t>& mem) {
  ThreadDistribution& t = threads_[tgid][tid];
  t.tid = tid;
  last_added_[tid] = seen_;
  for (const auto& [n, v] : cpu) t.cpu[n] += v;
  for (const auto& [n, v] : mem) t.mem[n] += v;
}

void AutotuneObserver::add_page_accesses(pid_t tgid, const std::map<int, uint64_t>& by_node) {
  auto& p = pages_[tgid];
  for (const auto& [n, v] : by_node) p[n] += v;
}

size_t AutotuneObserver::threads() const {
  size_t n = 0;
  for (const auto& [tgid, t] : threads_) n += t.size();
  return n;
}

void AutotuneObserver::forget_process(pid_t tgid) {
  if (auto it = threads_.find(tgid); it != threads_.end())
    for (const auto& [tid, t] : it->second) last_added_.erase(tid);
  threads_.erase(tgid);
  pages_.erase(tgid);
}

std::vector<TuneDecision> AutotuneObserver::decide(const std::map<int, int>& node_cpus,
                                                   const AutotuneConfig& cfg) const {
  std::map<pid_t, ProcessProfile> profiles;
  for (const auto& [tgid, threads] : threads_) {
    ProcessProfile& p = profiles[tgid];
    p.tgid = tgid;
    for (const auto& [tid, t] : threads) {
      p.threads.push_back(t);
      p.threads.back().exited = last_added_.at(tid) + 1 < seen_;
    }
  }
  for (const auto& [tgid, pages] : pages_) {
    profiles[tgid].tgid = tgid;
    profiles[tgid].page_accesses = pages;
  }
  std::vector<TuneDecision> out;
  for (const auto& [tgid, p] : profiles) out.push_back(autotune_decide(p, node_cpus, cfg));
  return out;
}

TuneDecision autotune_decide(const ProcessProfile& p, const std::map<int, int>& node_cpus,
                             const AutotuneConfig& cfg) {
  TuneDecision d = decide_by_rule(p, node_cpus, cfg);
  if (d.choice == TuneChoice::kMemory && !cfg.memory_movable) {
    d.choice = TuneChoice::kNone;
    d.why.replace(d.why.rfind(" -> move memory"), std::string::npos,
                  "; memory would move, but this machine has one node with memory -> nothing to move");
  }
  return d;
}

}  // namespace mb
