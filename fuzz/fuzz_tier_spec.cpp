// libFuzzer target: mb::parse_tier_spec (membalancer/tiers.h) and
// mb::choose_tiers on arbitrary text, against a few fixed topologies.
//
// Allowed outcomes: a valid Tiers, or mb::UsageError (choose_tiers may also
// throw mb::SystemError for the keywords, when the topology has one tier).
// Anything else is a finding: another exception type, a crash, a sanitizer
// report, or a spec that parses but breaks an invariant:
//   at least two tiers; no empty tier; every node exists and has memory;
//   no node in two tiers; each tier sorted; tier_of() agrees; describe()
//   parses back to the same tiers.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "membalancer/error.h"
#include "membalancer/tiers.h"
#include "membalancer/topology.h"

namespace {

mb::NumaNode node(int id, std::vector<int> cpus, uint64_t mem) {
  mb::NumaNode n;
  n.id = id;
  n.cpus = std::move(cpus);
  n.mem_total_bytes = mem;
  n.mem_free_bytes = mem / 2;
  return n;
}

std::vector<mb::Topology> topologies() {
  std::vector<mb::Topology> out;
  const uint64_t G = 1ull << 30;
  {  // two nodes with CPUs and memory
    mb::Topology t;
    t.nodes = {node(0, {0, 1}, 4 * G), node(1, {2, 3}, 4 * G)};
    t.nodes[0].distance = {{0, 10}, {1, 20}};
    t.nodes[1].distance = {{0, 20}, {1, 10}};
    t.cpu_node = {0, 0, 1, 1};
    out.push_back(t);
  }
  {  // sparse ids, a CPU-less (CXL-like) node and a node without memory
    mb::Topology t;
    t.nodes = {node(0, {0, 1}, 8 * G), node(2, {2}, 8 * G), node(5, {}, 16 * G), node(7, {3}, 0)};
    t.cpu_node = {0, 0, 2, 7};
    t.kernel_tiers = {{4, {0, 2, 7}}, {5, {5}}};
    out.push_back(t);
  }
  {  // one node
    mb::Topology t;
    t.nodes = {node(0, {0}, G)};
    t.cpu_node = {0};
    out.push_back(t);
  }
  {  // no nodes at all
    out.push_back(mb::Topology{});
  }
  {  // eight nodes, ids 0..7, all with memory
    mb::Topology t;
    for (int i = 0; i < 8; ++i) t.nodes.push_back(node(i, i < 4 ? std::vector<int>{i} : std::vector<int>{}, G));
    t.cpu_node = {0, 1, 2, 3};
    out.push_back(t);
  }
  return out;
}

void check_tiers(const mb::Tiers& t, const mb::Topology& topo, const std::string& spec, bool from_spec) {
  const std::string ctx = " (spec '" + spec + "', tiers '" + t.describe() + "')";
  FUZZ_CHECK(t.size() >= 2, "fewer than two tiers" + ctx);
  std::set<int> seen;
  for (size_t i = 0; i < t.tiers.size(); ++i) {
    const auto& tier = t.tiers[i];
    FUZZ_CHECK(!tier.empty(), "empty tier" + ctx);
    for (size_t k = 0; k < tier.size(); ++k) {
      int n = tier[k];
      if (k) FUZZ_CHECK(tier[k - 1] < n, "tier not sorted" + ctx);
      FUZZ_CHECK(seen.insert(n).second, "node " + std::to_string(n) + " in two tiers" + ctx);
      const mb::NumaNode* nn = topo.node(n);
      FUZZ_CHECK(nn != nullptr, "node " + std::to_string(n) + " does not exist" + ctx);
      FUZZ_CHECK(nn->mem_total_bytes > 0, "node " + std::to_string(n) + " has no memory" + ctx);
      FUZZ_CHECK(t.tier_of(n) == static_cast<int>(i), "tier_of disagrees" + ctx);
    }
  }
  if (!from_spec) return;
  // describe() ("0,1 : 2") is itself a spec: it must give the same tiers.
  mb::Tiers again;
  try {
    again = mb::parse_tier_spec(t.describe(), topo);
  } catch (const std::exception& e) {
    mb_fuzz::fail("describe() does not parse back: " + std::string(e.what()) + ctx);
  }
  FUZZ_CHECK(again.tiers == t.tiers, "describe() parses back to other tiers" + ctx);
}

bool is_keyword(const std::string& s) { return s == "auto" || s == "kernel" || s == "cpuless" || s == "distance"; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<mb::Topology> topos = topologies();
  const std::string spec(reinterpret_cast<const char*>(data), size);
  for (const auto& topo : topos) {
    try {
      mb::Tiers t = mb::parse_tier_spec(spec, topo);
      check_tiers(t, topo, spec, true);
    } catch (const mb::UsageError&) {
      // bad spec: fine
    } catch (const std::exception& e) {
      mb_fuzz::unexpected_exception("parse_tier_spec", e);
    }
    try {
      mb::Tiers t = mb::choose_tiers(spec, topo);
      check_tiers(t, topo, spec, !is_keyword(spec));
    } catch (const mb::UsageError&) {
    } catch (const mb::SystemError&) {
      if (!is_keyword(spec)) mb_fuzz::fail("choose_tiers threw SystemError for a spec: '" + spec + "'");
    } catch (const std::exception& e) {
      mb_fuzz::unexpected_exception("choose_tiers", e);
    }
  }
  return 0;
}
