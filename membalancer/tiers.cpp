#include "membalancer/tiers.h"

#include <algorithm>
#include <map>
#include <set>

#include "membalancer/error.h"
#include "membalancer/sysfs.h"

namespace mb {

int Tiers::tier_of(int node) const {
  for (size_t t = 0; t < tiers.size(); ++t)
    if (std::find(tiers[t].begin(), tiers[t].end(), node) != tiers[t].end()) return static_cast<int>(t);
  return -1;
}

std::string Tiers::describe() const {
  std::string s;
  for (size_t t = 0; t < tiers.size(); ++t) {
    if (t) s += " : ";
    for (size_t i = 0; i < tiers[t].size(); ++i) s += (i ? "," : "") + std::to_string(tiers[t][i]);
  }
  return s;
}

Tiers parse_tier_spec(const std::string& spec, const Topology& topo, const std::string& what) {
  Tiers out;
  out.source = what;
  const std::string text = trim(spec);
  if (text.empty()) throw UsageError(what + ": empty tier spec (example: \"0,1:2\")");
  std::map<int, int> used;  // node -> its tier
  size_t start = 0;
  for (;;) {
    size_t colon = text.find(':', start);
    std::string part = trim(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    const int index = static_cast<int>(out.tiers.size());
    if (part.empty()) throw UsageError(what + ": tier " + std::to_string(index) + " is empty in '" + text + "'");
    std::vector<int> nodes = parse_int_list(part, what + " tier " + std::to_string(index));
    for (int n : nodes) {
      const NumaNode* node = topo.node(n);
      if (!node) throw UsageError(what + ": node " + std::to_string(n) + " does not exist on " + topo.machine);
      if (node->mem_total_bytes == 0)
        throw UsageError(what + ": node " + std::to_string(n) + " has no memory, it cannot be a tier");
      if (auto [it, fresh] = used.emplace(n, index); !fresh)
        throw UsageError(what + ": node " + std::to_string(n) +
                         (it->second == index ? " is named twice in tier " + std::to_string(index)
                                              : " is in more than one tier (" + std::to_string(it->second) + " and " +
                                                    std::to_string(index) + ")"));
    }
    std::sort(nodes.begin(), nodes.end());
    out.tiers.push_back(std::move(nodes));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (out.tiers.size() < 2)
    throw UsageError(what + ": '" + text + "' names one tier only; tiering needs at least two (example: \"0:1\")");
  return out;
}

Tiers tiers_from_kernel(const Topology& topo) {
  Tiers out;
  out.source = "kernel memory tiers";
  for (const auto& kt : topo.kernel_tiers) {
    std::vector<int> nodes;
    for (int n : kt.nodes)
      if (const NumaNode* node = topo.node(n); node && node->mem_total_bytes > 0) nodes.push_back(n);
    if (!nodes.empty()) out.tiers.push_back(std::move(nodes));
  }
  return out;
}

Tiers tiers_from_cpuless(const Topology& topo) {
  Tiers out;
  out.source = "CPU-less nodes as the lower tier";
  std::vector<int> upper, lower;
  for (const auto& n : topo.nodes) {
    if (n.mem_total_bytes == 0) continue;
    (n.cpus.empty() ? lower : upper).push_back(n.id);
  }
  if (!upper.empty()) out.tiers.push_back(upper);
  if (!lower.empty()) out.tiers.push_back(lower);
  return out;
}

// A memory node's tier rank is its distance from the nearest node with CPUs:
// local memory (10) first, then each farther distance.
Tiers tiers_from_distances(const Topology& topo) {
  Tiers out;
  out.source = "distances from the nearest CPUs";
  std::map<int, std::vector<int>> by_distance;
  const auto cpu_nodes = topo.cpu_nodes();
  for (const auto& n : topo.nodes) {
    if (n.mem_total_bytes == 0) continue;
    int best = -1;
    for (int c : cpu_nodes) {
      int d = topo.distance(c, n.id);
      if (best < 0 || d < best) best = d;
    }
    by_distance[best].push_back(n.id);
  }
  for (auto& [d, nodes] : by_distance) out.tiers.push_back(nodes);
  return out;
}

std::map<int, std::vector<int>> same_tier_stand_ins(const Tiers& tiers, const Topology& topo) {
  std::map<int, std::vector<int>> out;
  for (const auto& tier : tiers.tiers) {
    for (int n : tier) {
      std::vector<int> others;
      for (int m : tier)
        if (m != n) others.push_back(m);
      std::stable_sort(others.begin(), others.end(),
                       [&](int a, int b) { return topo.distance(n, a) < topo.distance(n, b); });
      if (!others.empty()) out[n] = std::move(others);
    }
  }
  return out;
}

std::optional<Tiers> automatic_tiers(const std::string& how, const Topology& topo, std::string* why) {
  std::vector<Tiers> tried;
  if (how == "auto" || how == "kernel") tried.push_back(tiers_from_kernel(topo));
  if (how == "auto" || how == "cpuless") tried.push_back(tiers_from_cpuless(topo));
  if (how == "auto" || how == "distance") tried.push_back(tiers_from_distances(topo));
  for (auto& t : tried)
    if (t.size() >= 2) return t;
  if (why)
    for (auto& t : tried) *why += (why->empty() ? "" : "; ") + t.source + " give " + std::to_string(t.size()) + " tier(s)";
  return std::nullopt;
}

Tiers choose_tiers(const std::string& how, const Topology& topo) {
  if (how != "auto" && how != "kernel" && how != "cpuless" && how != "distance")
    return parse_tier_spec(how, topo);
  std::string why;
  if (auto t = automatic_tiers(how, topo, &why)) return *t;
  throw SystemError("tier mode needs at least two memory tiers, and this machine has one (" + why + ")",
                    "give them with --tiers \"FAST:SLOW\" (node lists), or use 'membalancer numa'");
}

}  // namespace mb
