// `membalancer numa`: each hot page goes to the node that minimises the
// distance-weighted cost of the accesses to it.
//
// cost(n) = sum over CPU nodes c of  w(c) * distance(c, n), where w(c) is the
// page's heat from CPUs of node c: its per-CPU-node lanes when the sampler
// knows the accessing CPU (IBS, PEBS, faults), else the page's process's CPU
// time by node, from the scheduler (the accessed-bit sampler knows no CPU).
// A page moves to the cheapest node whose cost is lower than its current
// node's by more than the hysteresis share and that keeps its free-memory
// floor (min_free) after every move planned so far: when the cheapest node
// has no room (full, or waiting after the kernel refused pages there), the
// next cheapest that still beats the current node. Hottest pages go first;
// pages moved within the cool-down are left alone.
#pragma once

#include <functional>
#include <map>

#include "membalancer/policy.h"
#include "membalancer/topology.h"

namespace mb {

struct NumaPolicyConfig {
  float min_hot_heat = 2.0f;  // a page must have been seen about twice to count as hot
  double hysteresis = 0.15;   // required cost reduction, as a share of the current cost
  uint64_t min_free_bytes = 256ull << 20;
  uint64_t budget_bytes = 0;  // per interval; 0 = unlimited
};

class NumaPolicy {
 public:
  // CPU-node weights of a process (node -> share), for pages without lanes.
  using ProcessCpuFn = std::function<const std::map<int, double>*(uint32_t tgid)>;
  // Which processes' pages may be planned (empty function: all).
  using ProcessFilter = std::function<bool(uint32_t tgid)>;

  NumaPolicy(const Topology& topo, const NumaPolicyConfig& cfg);
  Plan plan(const PageTable& table, const MemoryState& mem, const CoolDown& cool, const ProcessCpuFn& process_cpu,
            const ProcessFilter& include = {}) const;
  // The next plans' budget (the backend's IntervalBudget sets it each interval).
  void set_budget_bytes(uint64_t bytes) { cfg_.budget_bytes = bytes; }

 private:
  const Topology& topo_;
  NumaPolicyConfig cfg_;
  std::vector<int> lane_node_;  // lane -> CPU node
  std::vector<int> mem_nodes_;
};

}  // namespace mb
