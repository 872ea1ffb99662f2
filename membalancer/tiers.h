// Memory tiers for `membalancer tier`: ordered groups of nodes, fastest
// first. From a spec ("0,1:2:3"), or chosen automatically: the kernel's
// memory tiers when it has more than one, else CPU-less nodes below the nodes
// with CPUs, else nodes grouped by their distance from the nearest CPUs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/topology.h"

namespace mb {

struct Tiers {
  std::vector<std::vector<int>> tiers;  // tiers[0] is the fastest; node ids sorted
  std::string source;                   // how they were chosen, for the report

  int tier_of(int node) const;  // -1 when the node is in no tier
  size_t size() const { return tiers.size(); }
  std::string describe() const;  // "0,1 : 2 : 3"
};

// "0,1:2:3": tier 0 = nodes 0 and 1, tier 1 = node 2, tier 2 = node 3.
// Throws UsageError naming the problem: malformed text, a node the machine
// does not have or that has no memory, a node in two tiers, an empty tier,
// a single tier.
Tiers parse_tier_spec(const std::string& spec, const Topology& topo, const std::string& what = "--tiers");

// The ways tiers can be chosen without a spec. Each returns fewer than two
// tiers when it does not apply here.
Tiers tiers_from_kernel(const Topology& topo);
Tiers tiers_from_cpuless(const Topology& topo);
Tiers tiers_from_distances(const Topology& topo);

// Per node of a tier, the other nodes of its tier, nearest to it first (SLIT
// distance; ties: lower id): where the mover sends pages a full node refused.
std::map<int, std::vector<int>> same_tier_stand_ins(const Tiers& tiers, const Topology& topo);

// "auto" (kernel, then CPU-less, then distances), "kernel", "cpuless" or
// "distance": the first choice giving two tiers or more; none when the
// machine has one (why, if given: what each choice gave).
std::optional<Tiers> automatic_tiers(const std::string& how, const Topology& topo, std::string* why = nullptr);

// `--tiers` value: "auto" (kernel, then CPU-less, then distances), "kernel",
// "cpuless", "distance", or a spec. Throws UsageError for a bad spec and
// SystemError (status 1) when the machine offers fewer than two tiers.
Tiers choose_tiers(const std::string& how, const Topology& topo);

}  // namespace mb
