#include "membalancer/pipeline.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "membalancer/bpf_collector.h"
#include "membalancer/flat_map.h"
#include "membalancer/proc.h"

namespace mb {

CollapseHeat collapse_heat_for(mb_sampler_kind kind) {
  return kind == MB_SAMPLER_ABIT || kind == MB_SAMPLER_FAULT ? CollapseHeat::kMax : CollapseHeat::kSum;
}

Pipeline::Pipeline(const PipelineConfig& cfg, NodeResolver::QueryFn query, NameFn names)
    : cfg_(cfg), table_(cfg.max_pages, cfg.decay), resolver_(std::move(query)), names_(std::move(names)) {
  table_.set_huge_heat(cfg.collapse_heat);
  if (!names_) names_ = [](pid_t p) { return process_name(p); };
}

const std::string& Pipeline::name_of(pid_t pid) {
  auto it = names_cache_.find(pid);
  if (it == names_cache_.end()) it = names_cache_.emplace(pid, names_(pid)).first;
  return it->second;
}

void Pipeline::begin_interval(uint32_t interval) {
  interval_ = interval;
  table_.begin_interval(interval);
  unresolved_.clear();
  unresolved_keys_.clear();
  node_acc_.clear();
  process_acc_.clear();
  proc_node_acc_.clear();
  process_nodes_.clear();
  pages_this_interval_ = 0;
  accesses_this_interval_ = 0;
}

void Pipeline::add_slot(const mb_page_slot& slot) {
  uint16_t lanes[MB_CPU_LANES];
  slot_lanes(slot, lanes);
  const uint16_t node = mb_slot_node(&slot);
  uint32_t tgid = mb_key_tgid(slot.key);
  if (seen_.insert(tgid).second) ++seen_total_;
  name_of(static_cast<pid_t>(tgid));  // while the process is surely alive
  // Page counts are in base pages: an accessed 2 MiB page is 512 of them.
  const uint64_t pages = mb_slot_huge(&slot) ? MB_HUGE_BASE_PAGES : 1;
  if (pages > 1) {
    // A huge page over base pages: khugepaged collapsed them, and their heat
    // is the huge page's (a huge page is planned by its first base page's).
    const PageEntry* first = table_.find(slot.key);
    if (!first || !first->huge()) table_.collapse(slot.key);
  }
  for (uint64_t i = 0; i < pages; ++i) add_page(slot.key + i, slot.accesses, lanes, node, pages > 1);
}

void Pipeline::add_page(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES], uint16_t slot_node,
                        bool huge) {
  const uint32_t tgid = mb_key_tgid(key);
  if (!huge) {
    // A base-page sample inside a huge page: the kernel split it, and its
    // other base pages are base pages too (each planned on its own now, not
    // as one 2 MiB page at the first), before this sample adds to one.
    const PageEntry* was = table_.find(key);
    if (was && was->huge()) table_.split(mb_huge_page_key(key));
  }
  PageEntry* e = table_.add(key, accesses, lanes, slot_node);
  if (e) e->flags = huge ? (e->flags | kPageHuge) : (e->flags & ~kPageHuge);
  ++pages_this_interval_;
  accesses_this_interval_ += accesses;
  process_acc_[tgid] += accesses;
  bool stale = e && e->node != MB_NODE_UNKNOWN && interval_ - e->node_checked >= cfg_.node_recheck_intervals;
  if (e && (e->node == MB_NODE_UNKNOWN || stale)) {
    unresolved_.push_back({static_cast<pid_t>(tgid), e->vaddr()});
    unresolved_keys_.emplace_back(key, accesses);
    return;
  }
  int node = e ? e->node : (slot_node == MB_NODE_UNKNOWN ? -1 : slot_node);
  proc_node_acc_[static_cast<uint64_t>(tgid) << 32 | static_cast<uint32_t>(node + 1)] += accesses;
  auto& n = node_acc_.try_emplace(node, NodeAccesses{node}).first->second;
  n.accesses += accesses;
  n.pages += 1;
}

void Pipeline::process_forked(pid_t tgid) {
  if (seen_.insert(static_cast<uint32_t>(tgid)).second) ++seen_total_;
  name_of(tgid);
}

// A process whose fork event was lost is still counted seen once: by its
// exit event, a sample, or the tracked set, whichever comes first.
void Pipeline::process_exited(pid_t tgid) {
  if (seen_.insert(static_cast<uint32_t>(tgid)).second) ++seen_total_;
  exited_.insert(static_cast<uint32_t>(tgid));
}

void Pipeline::process_execed(pid_t tgid) {
  if (seen_.insert(static_cast<uint32_t>(tgid)).second) ++seen_total_;
  execed_.insert(static_cast<uint32_t>(tgid));
  std::string name = names_(tgid);
  if (!name.empty()) names_cache_[tgid] = std::move(name);  // gone already: the old one stays
}

void Pipeline::process_exec_found(pid_t tgid) {
  ++execs_without_event_;
  process_execed(tgid);
}

void Pipeline::reconcile_tracked(const std::vector<pid_t>& tracked) {
  const std::unordered_set<uint32_t> now(tracked.begin(), tracked.end());
  for (uint32_t t : now)
    if (seen_.insert(t).second) ++seen_total_;
  std::unordered_set<uint32_t> in_table, gone_now;
  table_.visit([&](const PageEntry& e) { in_table.insert(e.tgid()); });
  // Untracked without an exit event: gone at the last call too, its event
  // was lost; else one interval of grace, for an exit between the drain and
  // the read of the tracked set, whose event (and last samples) come next.
  auto check = [&](uint32_t t) {
    if (now.count(t) || exited_.count(t) || gone_now.count(t)) return;
    if (!gone_before_.count(t)) gone_now.insert(t);
    else if (exited_.insert(t).second) ++exits_without_event_;
  };
  for (uint32_t t : in_table) check(t);
  for (uint32_t t : seen_) check(t);
  for (const auto& [p, name] : names_cache_) check(static_cast<uint32_t>(p));
  gone_before_ = std::move(gone_now);
}

namespace {

// Growth of sparse cumulative counters: adds (node, now - before) to `out`
// for each counter that grew, and returns the new sparse list.
std::vector<std::pair<int, uint32_t>> counter_growth(const uint32_t (&counts)[MB_MAX_NODES],
                                                     const std::vector<std::pair<int, uint32_t>>& prev,
                                                     std::map<int, uint64_t>& out) {
  std::vector<std::pair<int, uint32_t>> now;
  for (int node = 0; node < MB_MAX_NODES; ++node) {
    uint32_t v = counts[node];
    if (!v) continue;
    now.emplace_back(node, v);
    uint32_t before = 0;
    for (auto& [n, c] : prev)
      if (n == node) before = c;
    if (v > before) out[node] += v - before;
  }
  return now;
}

}  // namespace

void Pipeline::add_tasks(const std::vector<TaskSnapshot>& tasks) {
  cpu_node_acc_.clear();
  growth_.clear();
  threads_ = 0;
  for (const auto& t : tasks) {
    auto& prev = task_prev_[t.tid];
    ThreadGrowth g;
    g.tid = t.tid;
    g.tgid = t.stats.tgid;
    auto cpu_now = counter_growth(t.stats.cpu_node_accesses, prev.cpu, g.cpu_nodes);
    auto mem_now = counter_growth(t.stats.mem_node_accesses, prev.mem, g.mem_nodes);
    for (auto& [node, acc] : g.cpu_nodes) cpu_node_acc_[node] += acc;
    g.exited = t.stats.flags & MB_TASK_EXITED;
    if (g.exited) task_prev_.erase(t.tid);  // read for the last time
    else prev.cpu = std::move(cpu_now), prev.mem = std::move(mem_now), ++threads_;
    growth_.push_back(std::move(g));
  }
}

IntervalReport Pipeline::finish_interval(const std::array<uint64_t, MB_NR_COUNTERS>& delta, uint64_t tracked) {
  IntervalReport r;
  r.interval = interval_;
  table_.end_interval();  // every sample of the interval is in: adaptive forgetting

  resolver_.resolve(unresolved_, [&](size_t i, int status) {
    auto [key, accesses] = unresolved_keys_[i];
    int node = -1;
    if (PageEntry* e = table_.find(key)) {
      if (status >= 0) {
        e->node = static_cast<uint16_t>(status);
        e->node_checked = interval_;
      }
      node = e->node == MB_NODE_UNKNOWN ? -1 : e->node;
    }
    proc_node_acc_[static_cast<uint64_t>(mb_key_tgid(key)) << 32 | static_cast<uint32_t>(node + 1)] += accesses;
    auto& n = node_acc_.try_emplace(node, NodeAccesses{node}).first->second;
    n.accesses += accesses;
    n.pages += 1;
  });

  for (const auto& [k, acc] : proc_node_acc_)
    process_nodes_[static_cast<uint32_t>(k >> 32)][static_cast<int>(k & 0xffffffffu) - 1] += acc;

  // Per-process and per-region views of the table (before exits leave it,
  // so the last interval of a process is still reported).
  std::map<uint32_t, ProcessLine> procs;
  struct RegionAcc {
    Region r;
    std::vector<std::pair<int, double>> node_heat;  // a few nodes: searched in place
  };
  // One walk over every page: a region is found by its first page's key in
  // a flat map (one probe, where a tree lookup per page took a quarter of a
  // replay's time), and the process of the page before is usually this one.
  FlatMap<uint64_t, uint32_t, U64KeyOps> region_at;  // first page's key -> 1 + index in accs
  std::vector<RegionAcc> accs;
  std::vector<uint64_t> recent;  // keys accessed this interval
  const uint64_t region_mask = ~(cfg_.region_bytes - 1);
  ProcessLine* proc = nullptr;
  table_.for_each([&](const PageEntry& e) {
    uint32_t tgid = e.tgid();
    if (!proc || proc->pid != tgid) {
      proc = &procs[tgid];  // std::map: the pointer stays valid
      proc->pid = tgid;
    }
    proc->pages += 1;
    const float heat = table_.heat(e);
    proc->heat += heat;
    const uint64_t start = e.vaddr() & region_mask;
    uint32_t& at = region_at[mb_page_key(tgid, start >> MB_PAGE_SHIFT)];
    if (!at) {
      accs.push_back({});
      accs.back().r.pid = tgid;
      accs.back().r.start = start;
      accs.back().r.bytes = cfg_.region_bytes;
      at = static_cast<uint32_t>(accs.size());
    }
    RegionAcc& ra = accs[at - 1];
    ra.r.pages += 1;
    ra.r.heat += heat;
    const int node = e.node == MB_NODE_UNKNOWN ? -1 : e.node;
    auto it = std::find_if(ra.node_heat.begin(), ra.node_heat.end(), [&](const auto& nh) { return nh.first == node; });
    if (it == ra.node_heat.end()) ra.node_heat.emplace_back(node, heat);
    else it->second += heat;
    if (e.last_seen == interval_ && e.heat > 0) recent.push_back(e.key);
  });
  for (auto& [tgid, p] : procs) {
    p.comm = name_of(static_cast<pid_t>(tgid));
    auto it = process_acc_.find(tgid);
    p.accesses = it == process_acc_.end() ? 0 : it->second;
    r.processes.push_back(p);
  }
  // In (pid, start) order, the heat ranking's ties fall as they always did.
  std::sort(accs.begin(), accs.end(), [](const RegionAcc& a, const RegionAcc& b) {
    return std::tie(a.r.pid, a.r.start) < std::tie(b.r.pid, b.r.start);
  });
  for (auto& ra : accs) {
    ra.r.comm = name_of(static_cast<pid_t>(ra.r.pid));
    double best = -1;
    for (const auto& [node, h] : ra.node_heat)  // the most heat; a tie to the lower node
      if (h > best || (h == best && node < ra.r.node)) best = h, ra.r.node = node;
    r.hottest.push_back(ra.r);
  }
  std::sort(r.hottest.begin(), r.hottest.end(), [](const Region& a, const Region& b) { return a.heat > b.heat; });
  if (r.hottest.size() > static_cast<size_t>(cfg_.top)) r.hottest.resize(cfg_.top);

  std::sort(recent.begin(), recent.end());
  for (uint64_t key : recent) {
    uint32_t tgid = mb_key_tgid(key);
    uint64_t start = mb_key_vpn(key) << MB_PAGE_SHIFT;
    if (!r.ranges.empty() && r.ranges.back().pid == tgid && r.ranges.back().end == start) {
      r.ranges.back().end += 1 << MB_PAGE_SHIFT;
      continue;
    }
    if (r.ranges.size() >= cfg_.max_ranges) {
      r.ranges_truncated = true;
      break;
    }
    r.ranges.push_back({tgid, start, start + (1 << MB_PAGE_SHIFT)});
  }

  for (auto& [node, n] : node_acc_) {
    r.nodes.push_back(n);
    auto& t = node_total_.try_emplace(node, NodeAccesses{node}).first->second;
    t.accesses += n.accesses;
    t.pages += n.pages;
  }
  std::sort(r.nodes.begin(), r.nodes.end(), [](auto& a, auto& b) { return a.node < b.node; });
  for (auto& [node, acc] : cpu_node_acc_) r.cpu_nodes.push_back({node, acc, 0});
  std::sort(r.cpu_nodes.begin(), r.cpu_nodes.end(), [](auto& a, auto& b) { return a.node < b.node; });
  r.threads = threads_;

  table_.remove_processes(exited_);
  for (uint32_t t : exited_) execed_.erase(t);
  table_.remove_processes(execed_, PageTable::Removal::kExec);
  execed_.clear();
  for (uint32_t t : exited_) names_cache_.erase(static_cast<pid_t>(t)), seen_.erase(t);
  r.exited_processes = exited_.size();
  exited_total_ += exited_.size();
  exited_.clear();

  r.counters = delta;
  for (int i = 0; i < MB_NR_COUNTERS; ++i) counters_total_[i] += delta[i];
  r.dropped = dropped_total(delta);
  r.tracked_processes = tracked;
  r.table_pages = table_.size();
  r.table_dropped_full = table_.stats().dropped_full;
  r.pages_this_interval = pages_this_interval_;
  r.accesses_this_interval = accesses_this_interval_;
  return r;
}

Summary Pipeline::summary() const {
  Summary s;
  s.intervals = interval_;
  s.counters = counters_total_;
  s.dropped = dropped_total(counters_total_);
  s.processes_seen = seen_total_;
  s.processes_exited = exited_total_;
  s.exits_without_event = exits_without_event_;
  s.execs_without_event = execs_without_event_;
  s.table_pages = table_.size();
  s.table_dropped_full = table_.stats().dropped_full;
  s.node_queries = resolver_.stats().pages_asked;
  s.node_query_failures = resolver_.stats().pages_asked - resolver_.stats().resolved;
  for (auto& [node, n] : node_total_) s.nodes.push_back(n);
  std::sort(s.nodes.begin(), s.nodes.end(), [](auto& a, auto& b) { return a.node < b.node; });
  return s;
}

}  // namespace mb
