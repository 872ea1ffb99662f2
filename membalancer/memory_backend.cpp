#include "membalancer/memory_backend.h"

#include <cerrno>
#include <cstdlib>
#include <cstdio>

#include "membalancer/error.h"
#include "membalancer/proc.h"
#include "membalancer/rate_limiter.h"
#include "membalancer/replay.h"

namespace mb {

void require_numa_machine(const Topology& topo) {
  if (memory_nodes(topo).size() < 2)
    throw SystemError("numa mode needs at least two nodes with memory, and this machine has " +
                          std::to_string(memory_nodes(topo).size()),
                      "'membalancer trace' reports access patterns on any machine");
}

MemoryBackend::MemoryBackend(const Options& opts, Topology& topo, ExecCountFn exec_count)
    : opts_(opts),
      topo_(topo),
      budget_(opts.rate_limit_bytes, opts.interval_ms),
      cool_(opts.cooldown_intervals),
      scanner_(topo) {
  if (opts.command == "tier") {
    TierPolicyConfig tc;
    tc.low_watermark = opts.watermark_low;
    tc.high_watermark = opts.watermark_high;
    tc.follow_allocations = opts.watermark_auto;
    tc.min_hot_heat = static_cast<float>(opts.min_hot_heat);
    tier_.emplace(choose_tiers(opts.tiers, topo), tc);
  } else {
    NumaPolicyConfig nc;
    nc.min_hot_heat = static_cast<float>(opts.min_hot_heat);
    nc.hysteresis = opts.hysteresis;
    nc.min_free_bytes = opts.min_free_bytes;
    require_numa_machine(topo);
    numa_.emplace(topo, nc);
  }
  if (opts.migrate && !opts.dry_run) {
    MoverConfig mc;
    mc.rate_limit_bytes_per_s = opts.rate_limit_bytes;
    mc.workers = static_cast<int>(opts.move_workers);
    mc.on_failed = [this](pid_t pid, const std::vector<std::pair<uint64_t, int>>& failed) {
      std::lock_guard<std::mutex> lock(failed_mu_);
      for (auto& [addr, status] : failed)
        failed_.emplace_back(mb_page_key(static_cast<uint32_t>(pid), addr >> MB_PAGE_SHIFT), status);
    };
    // A full node's pages go to another node of its tier (numa: no stand-in;
    // the node waits, and the policy picks the next best one).
    if (tier_) mc.same_tier = same_tier_stand_ins(tier_->tiers(), topo);
    mc.on_redirected = [this](pid_t pid, const std::vector<std::pair<uint64_t, int>>& moved) {
      std::lock_guard<std::mutex> lock(failed_mu_);
      for (auto& [addr, node] : moved)
        redirected_.emplace_back(mb_page_key(static_cast<uint32_t>(pid), addr >> MB_PAGE_SHIFT), node);
    };
    mc.exec_count = std::move(exec_count);
    mover_ = std::make_unique<Mover>(mc);
  }
  if (opts.verbose && tier_)
    std::fprintf(stderr, "membalancer: tiers %s (%s)\n", tier_->tiers().describe().c_str(),
                 tier_->tiers().source.c_str());
}

MemoryBackend::~MemoryBackend() {
  if (mover_) mover_->abandon();  // an error stops the run: no more moves
}

PlacementModel* MemoryBackend::use_model(uint64_t fast_bytes, PlacementModel::Start start) {
  std::vector<int> fast;
  int slow = -1;
  if (tier_) {
    fast = tier_->tiers().tiers.front();
    slow = tier_->tiers().tiers.back().front();
  } else {
    uint64_t most = 0;
    for (const auto& n : topo_.nodes)
      if (n.mem_total_bytes > most) most = n.mem_total_bytes, slow = n.id;
  }
  model_ = replay_model(topo_, fast, slow, fast_bytes, start);
  return model_.get();
}

MemoryState MemoryBackend::read_memory(const std::vector<pid_t>& tracked) {
  if (model_) {
    MemoryState mem = model_->state();
    resident_by_node_.clear();
    for (const auto& [n, nm] : mem.nodes) resident_by_node_[n] = nm.tree_pages;
    return mem;
  }
  refresh_node_memory(topo_);
  MemoryState mem;
  for (const auto& n : topo_.nodes) mem.nodes[n.id] = {n.mem_total_bytes, n.mem_free_bytes, 0};
  resident_by_node_.clear();
  for (pid_t p : tracked) {
    auto pages = numa_maps_node_pages(p);
    if (!pages) continue;  // exited since: its exit event is on its way
    for (auto& [n, c] : *pages) resident_by_node_[n] += c;
  }
  for (auto& [n, c] : resident_by_node_)
    if (mem.nodes.count(n)) mem.nodes[n].tree_pages = c;
  // Processes in a cpuset that leaves out memory nodes: move_pages would
  // refuse their pages there (EACCES) every interval.
  std::map<uint32_t, std::set<int>> limited;
  for (pid_t p : tracked)
    if (auto nodes = mems_allowed(p)) {
      std::set<int> allowed(nodes->begin(), nodes->end());
      for (const auto& [n, nm] : mem.nodes)
        if (nm.total_bytes && !allowed.count(n)) {
          limited[static_cast<uint32_t>(p)] = std::move(allowed);
          break;
        }
    }
  if (!limited.empty())
    mem.allowed = [limited = std::move(limited)](uint32_t tgid, int node) {
      auto it = limited.find(tgid);
      return it == limited.end() || it->second.count(node) != 0;
    };
  if (tier_)
    for (auto& [n, bytes] : kernel_high_watermarks())
      if (mem.nodes.count(n)) mem.nodes[n].kernel_high_bytes = bytes;
  // Demotion asks for the tracked processes' pages on a node only when a
  // node needs room: the walk is bounded by what it needs.
  mem.resident = [this, tracked](int node, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
    const std::set<int> nodes{node};
    for (pid_t p : tracked) {
      bool more = true;
      scanner_.scan(p, nodes, [&](const ResidentPage& rp) {
        more = fn(static_cast<uint32_t>(p), rp.vaddr, rp.huge);
        return more;
      });
      if (!more) return;
    }
  };
  return mem;
}

// tier: what the tracked processes allocated, and where it landed, for the
// room kept for new pages (AllocationReserve).
void MemoryBackend::observe_allocations(const std::map<int, NodeFlow>& flows_before,
                                        const std::map<int, NodeFlow>& flows_after, const Arrivals& arrivals,
                                        MemoryState& mem) {
  // Pages moved into node n (less those out) from snapshot a to b.
  auto net_in = [](int n, const std::map<int, NodeFlow>& a, const std::map<int, NodeFlow>& b) {
    auto signed_net = [n](const std::map<int, NodeFlow>& f) {
      auto it = f.find(n);
      return it == f.end() ? int64_t{0} : static_cast<int64_t>(it->second.in) - static_cast<int64_t>(it->second.out);
    };
    return signed_net(b) - signed_net(a);
  };
  std::map<int, AllocationReserve::NodeObservation> seen;
  for (const auto& [n, nm] : mem.nodes) {
    auto& o = seen[n];
    o.tree_pages = nm.tree_pages;
    o.room_pages = nm.room_pages();
    // Certain: completed between the last read and this one. Uncertain:
    // completed during either, or still under way at the end of this one.
    o.moved_in = net_in(n, flows_after_read_, flows_before);
    auto under_way = flows_after.find(n);
    o.maybe_moved_in = static_cast<uint64_t>(std::abs(net_in(n, flows_before_read_, flows_after_read_)) +
                                             std::abs(net_in(n, flows_before, flows_after))) +
                       (under_way == flows_after.end() ? 0 : under_way->second.in_flight);
  }
  flows_before_read_ = flows_before;
  flows_after_read_ = flows_after;
  reserve_.observe(seen, arrivals);
  mem.allocation_reserve_bytes = reserve_.bytes();
  mem.allocation_heat = reserve_.arrival_heat();
  mem.allocation_landing = reserve_.landing_shares();
}

// Nodes the kernel refused pages on for want of room wait (FullNodeWait):
// meanwhile the policy sees no room on them.
void MemoryBackend::wait_on_full_nodes(MemoryState& mem, uint32_t now) {
  if (!mover_) return;
  std::map<int, uint64_t> marked, free_bytes;
  for (const auto& [node, f] : mover_->stats().target_full)
    if (f.full) marked[node] = f.refused_since_mark * kBasePageBytes;
  for (const auto& [node, nm] : mem.nodes) free_bytes[node] = nm.free_bytes;
  for (int node : full_wait_.update(now, marked, free_bytes)) mover_->clear_full(node);
  full_wait_.hide_room(mem, tier_ ? opts_.watermark_low : 0);
}

MigrationReport MemoryBackend::base_report(double elapsed_s) const {
  MigrationReport m;
  m.mode = opts_.command;
  m.migrate = opts_.migrate && !opts_.dry_run;
  m.dry_run = opts_.dry_run;
  m.dry_run_applied_pages = dry_applied_;
  m.dry_run_refused_pages = dry_refused_;
  if (tier_) m.tiers = tier_->tiers().describe() + " (" + tier_->tiers().source + ")";
  if (mover_) {
    m.mover = mover_->stats();
    m.queued_pages = mover_->queued_pages();
  }
  m.elapsed_s = elapsed_s;
  return m;
}

std::vector<TierLine> MemoryBackend::tier_lines(const IntervalReport& report, const std::vector<float>& thresholds) {
  std::vector<TierLine> lines;
  const Tiers& tiers = tier_->tiers();
  // What arrived (the mover's or the model's count); a live --dry-run moves
  // nothing and counts its plans as if done.
  const bool moves = mover_ || model_;
  const std::map<int, NodeFlow> flows = mover_ ? mover_->flows() : model_flows_;
  for (size_t t = 0; t < tiers.size(); ++t) {
    TierLine line;
    line.tier = static_cast<int>(t);
    line.nodes = tiers.tiers[t];
    for (int n : line.nodes) {
      for (const auto& na : report.nodes)
        if (na.node == n) line.accesses += na.accesses;
      line.resident_pages += resident_by_node_.count(n) ? resident_by_node_[n] : 0;
      const auto f = flows.find(n);
      if (!moves) {
        line.promoted_pages += moved_into_node_promote_[n];
        line.demoted_pages += moved_into_node_demote_[n];
      } else if (f != flows.end()) {
        line.promoted_pages += f->second.promoted_in;
        line.demoted_pages += f->second.demoted_in;
      }
    }
    if (t < thresholds.size()) line.hot_threshold = thresholds[t];
    lines.push_back(line);
  }
  return lines;
}

void MemoryBackend::process_execed(pid_t tgid, pid_t /*tid*/) {
  if (mover_) mover_->cancel_process(tgid);
  execed_.insert(static_cast<uint32_t>(tgid));
}

void MemoryBackend::hold() {
  held_ = true;
  if (mover_) mover_->abandon();
}

void MemoryBackend::interval(Pipeline& pipeline, const std::vector<pid_t>& all_tracked, double elapsed_s,
                             IntervalReport& report) {
  if (held_) {
    // After a stop signal: what was done so far, under the last thresholds;
    // nothing is planned.
    MigrationReport m = base_report(elapsed_s);
    if (tier_) {
      std::vector<float> thresholds;
      if (last_)
        for (const auto& line : last_->tiers_view) thresholds.push_back(line.hot_threshold);
      m.tiers_view = tier_lines(report, thresholds);
    }
    report.migration = std::move(m);
    execed_.clear();
    return;
  }
  PageTable& table = pipeline.table();
  // Execs seen since the last interval: the old image's pages leave now
  // (they are in the table still when the exec came after this interval's
  // events were read; the pipeline drops those drained later).
  table.remove_processes(execed_, PageTable::Removal::kExec);
  // Moves that failed (no room yet, page busy, gone): the page is where the
  // kernel left it, and may be planned again without waiting for the
  // cool-down; the failure itself is counted by the mover.
  {
    std::vector<std::pair<uint64_t, int>> failed, redirected;
    {
      std::lock_guard<std::mutex> lock(failed_mu_);
      failed.swap(failed_);
      redirected.swap(redirected_);
    }
    for (auto& [key, status] : failed) {
      cool_.forget(key);
      // Gone (EFAULT: unmapped, or exec'd away; ESRCH: its process): no use
      // planning it again; it comes back if it is sampled again.
      if (status == -EFAULT || status == -ESRCH) {
        table.erase(key);
        continue;
      }
      if (PageEntry* e = table.find(key)) {
        if (status >= 0) e->node = static_cast<uint16_t>(status);
        else e->node_checked = 0;  // ask the kernel again when next sampled
      }
    }
    // Moved, but to a stand-in of a full target: it cools down all the same.
    for (auto& [key, node] : redirected)
      if (PageEntry* e = table.find(key)) e->node = static_cast<uint16_t>(node);
  }
  std::vector<pid_t> tracked;
  for (pid_t p : all_tracked)
    if (!only_ || only_->count(static_cast<uint32_t>(p))) tracked.push_back(p);
  // The mover's flows before and after the tracked pages are read: moves
  // completed in between may or may not show in the counts.
  auto flows_now = [this] { return mover_ ? mover_->flows() : model_flows_; };
  const std::map<int, NodeFlow> flows_before = tier_ ? flows_now() : std::map<int, NodeFlow>{};
  MemoryState mem = read_memory(tracked);
  if (!execed_.empty() && mem.resident) {
    // Nor is the new image of a process that exec'd demoted: it was never
    // sampled yet, which does not make it cold.
    mem.resident = [this, all = std::move(mem.resident)](
                       int node, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
      all(node, [&](uint32_t tgid, uint64_t vaddr, bool huge) { return execed_.count(tgid) || fn(tgid, vaddr, huge); });
    };
  }
  if (tier_) observe_allocations(flows_before, flows_now(), table.arrivals(), mem);
  wait_on_full_nodes(mem, table.interval());
  Plan plan;
  TierPlanView view;
  // This interval's budget: what the mover can move before the next, with
  // what earlier plans left unspent.
  const uint64_t budget = budget_.next();
  if (tier_) {
    tier_->set_budget_bytes(budget);
    plan = tier_->plan(table, mem, cool_, &view);
  } else {
    // Where each process's threads ran this interval, for pages whose
    // sampler knows no CPU.
    // (A replay has no live threads: its pages' CPU nodes come from the
    // recorded samples' lanes.)
    process_cpu_.clear();
    auto cpu = model_ ? ThreadCpuTracker::Interval{} : cpu_tracker_.update_from_proc(tracked, topo_);
    std::map<uint32_t, uint64_t> total;
    for (const auto& t : cpu.threads) {
      if (t.node < 0) continue;
      // A thread that used no CPU still says where the process lives.
      const double w = t.ticks ? static_cast<double>(t.ticks) : 0.01;
      process_cpu_[static_cast<uint32_t>(t.tgid)][t.node] += w;
    }
    numa_->set_budget_bytes(budget);
    NumaPolicy::ProcessFilter include;
    if (only_) include = [this](uint32_t tgid) { return only_->count(tgid) != 0; };
    plan = numa_->plan(
        table, mem, cool_,
        [this](uint32_t tgid) -> const std::map<int, double>* {
          auto it = process_cpu_.find(tgid);
          return it == process_cpu_.end() ? nullptr : &it->second;
        },
        include);
  }
  budget_.spend(plan.stats.planned_bytes);
  const uint32_t now = table.interval();
  MigrationReport m;
  if (mover_ || opts_.dry_run) {
    // What the queue refuses is counted by the mover and not committed.
    if (mover_) submit_and_commit(plan, *mover_, table, cool_, now);
    else commit_plan(plan, table, cool_, now);
    if (model_ && opts_.dry_run) {
      const uint64_t refused = apply_plan(plan, *model_, &model_flows_);
      dry_refused_ += refused;
      dry_applied_ += plan.stats.planned_bytes / kBasePageBytes - refused;
    } else if (opts_.dry_run) {
      dry_applied_ += plan.stats.planned_bytes / kBasePageBytes;
    }
    if (!mover_ && !model_)
      for (const auto& mv : plan.moves) {
        const uint64_t pages = mv.bytes() / kBasePageBytes;
        (mv.direction == MoveDirection::kDemote ? moved_into_node_demote_ : moved_into_node_promote_)[mv.to] += pages;
      }
  }
  if (now % 16 == 0) cool_.expire(now);
  m = base_report(elapsed_s);
  m.plan = plan.stats;
  for (const auto& mv : plan.moves) {
    const uint64_t pages = mv.bytes() / kBasePageBytes;
    if (mv.direction == MoveDirection::kPromote) m.plan_promote_pages += pages;
    if (mv.direction == MoveDirection::kDemote) m.plan_demote_pages += pages;
    if (mv.direction == MoveDirection::kNuma) m.plan_numa_pages += pages;
  }
  if (tier_) m.tiers_view = tier_lines(report, view.thresholds);
  last_ = m;
  report.migration = std::move(m);
  execed_.clear();
}

void MemoryBackend::stop(Summary& summary) {
  if (mover_) mover_->abandon();
  MigrationReport m = base_report(summary.elapsed_s);
  if (last_) m.tiers_view = last_->tiers_view;
  summary.migration = std::move(m);
}

}  // namespace mb
