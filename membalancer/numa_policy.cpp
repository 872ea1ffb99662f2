#include "membalancer/numa_policy.h"

#include <algorithm>
#include <limits>

namespace mb {

NumaPolicy::NumaPolicy(const Topology& topo, const NumaPolicyConfig& cfg) : topo_(topo), cfg_(cfg) {
  lane_node_ = topo.cpu_nodes();
  if (lane_node_.size() > MB_CPU_LANES) lane_node_.resize(MB_CPU_LANES);
  mem_nodes_ = memory_nodes(topo);
}

Plan NumaPolicy::plan(const PageTable& table, const MemoryState& mem, const CoolDown& cool,
                      const ProcessCpuFn& process_cpu, const ProcessFilter& include) const {
  Plan plan;
  const uint32_t now = table.interval();
  struct Candidate {
    const PageEntry* e;
    float heat;
  };
  std::vector<Candidate> hot;
  table.for_each([&](const PageEntry& e) {
    if (e.node == MB_NODE_UNKNOWN) return;
    if (include && !include(e.tgid())) return;
    if (e.huge() && (e.vaddr() & (kHugePageBytes - 1))) return;  // planned at its first base page
    const float h = table.heat(e);
    if (h >= cfg_.min_hot_heat) hot.push_back({&e, h});
  });
  plan.stats.candidates = hot.size();
  plan.stats.hot_threshold = cfg_.min_hot_heat;

  // Free bytes above each node's floor, less the arrivals planned so far.
  std::map<int, int64_t> room;
  for (int n : mem_nodes_) {
    auto it = mem.nodes.find(n);
    const uint64_t free = it == mem.nodes.end() ? 0 : it->second.free_bytes;
    room[n] = static_cast<int64_t>(free) - static_cast<int64_t>(cfg_.min_free_bytes);
  }
  uint64_t budget = cfg_.budget_bytes ? cfg_.budget_bytes : std::numeric_limits<uint64_t>::max();

  // dist[l][m]: distance from lane l's CPU node to memory node mem_nodes_[m].
  const size_t nmem = mem_nodes_.size();
  std::vector<double> dist(lane_node_.size() * nmem);
  for (size_t l = 0; l < lane_node_.size(); ++l)
    for (size_t m = 0; m < nmem; ++m) dist[l * nmem + m] = topo_.distance(lane_node_[l], mem_nodes_[m]);
  std::vector<double> cost(nmem);
  std::vector<size_t> order;  // memory nodes cheaper than the page's own, cheapest first
  for_each_ordered(hot, [](const Candidate& a, const Candidate& b) { return a.heat > b.heat; }, [&](const Candidate& c) {
    const PageEntry& e = *c.e;
    std::fill(cost.begin(), cost.end(), 0.0);
    bool known = false;
    for (size_t l = 0; l < lane_node_.size(); ++l) {
      if (!e.lane_heat[l]) continue;
      const double w = table.lane_heat(e, static_cast<int>(l));
      for (size_t m = 0; m < nmem; ++m) cost[m] += w * dist[l * nmem + m];
      known = true;
    }
    if (!known && process_cpu) {
      if (const auto* w = process_cpu(e.tgid())) {
        for (auto& [c_node, share] : *w)
          for (size_t m = 0; m < nmem; ++m) cost[m] += share * topo_.distance(c_node, mem_nodes_[m]);
        known = !w->empty();
      }
    }
    if (!known) return true;  // no idea where its users run
    double current = -1;
    for (size_t m = 0; m < nmem; ++m)
      if (mem_nodes_[m] == e.node) current = cost[m];
    if (current < 0) return true;
    // The nodes that beat the current one by more than the hysteresis,
    // cheapest first (ties: lower id): the page goes to the first with room,
    // so a full (or waiting) best node leaves it to the next best one.
    const double most = current - cfg_.hysteresis * current;
    order.clear();
    for (size_t m = 0; m < nmem; ++m)
      if (mem_nodes_[m] != e.node && cost[m] < most) order.push_back(m);
    if (order.empty()) return true;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] < cost[b]; });
    if (cool.cooling(e.key, now)) {
      ++plan.stats.cooling;
      return true;
    }
    const uint64_t bytes = e.huge() ? kHugePageBytes : kBasePageBytes;
    int target = -1;
    bool refused = false;  // a node with room that the process may not use
    for (size_t m : order)
      if (room[mem_nodes_[m]] >= static_cast<int64_t>(bytes)) {
        if (!mem.may_hold(e.tgid(), mem_nodes_[m])) {
          refused = true;
          continue;
        }
        target = mem_nodes_[m];
        break;
      }
    if (target < 0) {
      ++(refused ? plan.stats.not_allowed : plan.stats.no_room);
      return true;
    }
    if (budget < bytes) {
      ++plan.stats.over_budget;
      return false;
    }
    budget -= bytes;
    room[target] -= static_cast<int64_t>(bytes);
    plan.moves.push_back(
        {e.tgid(), e.vaddr(), e.huge(), e.node, target, MoveDirection::kNuma, MoveReason::kCloser, c.heat});
    plan.stats.planned += bytes / kBasePageBytes;
    plan.stats.planned_bytes += bytes;
    return true;
  });
  return plan;
}

}  // namespace mb
