// The machine's NUMA topology, read from sysfs: nodes (ids may be sparse),
// their CPUs, distances and memory, the CPU -> node map, and the memory-block
// -> node table that turns a physical address into a node.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mb {

struct NumaNode {
  int id = -1;
  std::vector<int> cpus;          // empty for memory-only (CXL-like) nodes
  std::map<int, int> distance;    // node id -> SLIT distance
  uint64_t mem_total_bytes = 0;
  uint64_t mem_free_bytes = 0;
};

// One of the kernel's memory tiers (/sys/devices/virtual/memory_tiering/
// memory_tierN): a lower id is a faster tier.
struct KernelTier {
  int id = 0;
  std::vector<int> nodes;
};

struct Topology {
  std::vector<NumaNode> nodes;          // sorted by id
  std::vector<KernelTier> kernel_tiers; // sorted by id; empty when the kernel has none
  std::vector<int> cpu_node;            // index: cpu, value: node (-1: offline/unknown)
  uint64_t mem_block_bytes = 0;         // 0 when /sys/devices/system/memory is absent
  std::vector<uint16_t> mem_block_node; // index: block number, value: node or 0xffff
  std::string machine = "this machine"; // in errors: "the recorded machine" for a replay's

  const NumaNode* node(int id) const;
  int distance(int from, int to) const;  // 10 for itself when unknown, 20 otherwise
  // Nodes that have CPUs, in id order; lane i of a page slot counts node cpu_nodes()[i].
  std::vector<int> cpu_nodes() const;
  int max_node_id() const;
  // The node of a physical address from the memory-block table, or -1.
  int node_of_phys(uint64_t paddr) const;
};

// Nodes that have memory (total > 0), in id order.
std::vector<int> memory_nodes(const Topology& topo);

// Reads the topology below `sysfs_root` (normally "/sys").
Topology read_topology(const std::string& sysfs_root = "/sys");

// Refreshes free/total memory of each node (node*/meminfo).
void refresh_node_memory(Topology& topo, const std::string& sysfs_root = "/sys");

// The kernel's high free-page watermark of each node, in bytes: the sum of
// the "high" line of its zones in /proc/zoneinfo. Below it kswapd starts
// reclaiming the node (or demoting, with kernel demotion on). Empty when
// the file cannot be read.
std::map<int, uint64_t> kernel_high_watermarks(const std::string& zoneinfo_path = "/proc/zoneinfo");
// The same from the text of a zoneinfo file.
std::map<int, uint64_t> parse_zoneinfo_high(const std::string& text);

// Parses a node's meminfo text ("Node 0 MemTotal:  123 kB" lines) into bytes.
bool parse_node_meminfo(const std::string& text, uint64_t* total, uint64_t* free);

}  // namespace mb
