// Unit tests for membalancer/topology.h against fake sysfs trees built in a
// temporary directory: sparse node ids, a memory-only node, distances,
// meminfo, memory blocks, and the no-NUMA fallback.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "membalancer/error.h"
#include "membalancer/topology.h"
#include "temp_tree.h"

namespace {

using mb_test::TempTree;

std::string meminfo(int node, uint64_t total_kb, uint64_t free_kb) {
  std::string n = std::to_string(node);
  return "Node " + n + " MemTotal:       " + std::to_string(total_kb) + " kB\n" +  //
         "Node " + n + " MemFree:        " + std::to_string(free_kb) + " kB\n" +   //
         "Node " + n + " MemUsed:        " + std::to_string(total_kb - free_kb) + " kB\n" +
         "Node " + n + " HugePages_Total:     0\n";
}

// Nodes 0, 2 and 3: 0 and 3 have CPUs, 2 is memory-only (CXL-like).
void build_numa_tree(const TempTree& t) {
  const std::string nd = "devices/system/node/";
  t.write(nd + "online", "0,2-3\n");
  t.write(nd + "possible", "0-7\n");
  t.write(nd + "has_cpu", "0,3\n");
  t.write(nd + "node0/cpulist", "0-1,4\n");
  t.write(nd + "node0/distance", "10 31 21\n");
  t.write(nd + "node0/meminfo", meminfo(0, 1048576, 524288));
  t.write(nd + "node2/cpulist", "\n");
  t.write(nd + "node2/distance", "32 10 33\n");
  t.write(nd + "node2/meminfo", meminfo(2, 4194304, 4000000));
  t.write(nd + "node3/cpulist", "2-3,6\n");
  t.write(nd + "node3/distance", "21 34 10\n");
  t.write(nd + "node3/meminfo", meminfo(3, 2097152, 1));
  // A node directory that is not online is ignored.
  t.write(nd + "node5/cpulist", "7\n");

  const std::string md = "devices/system/memory/";
  t.write(md + "block_size_bytes", "8000000\n");
  t.write(md + "auto_online_blocks", "online\n");
  t.mkdir(md + "power");
  t.write(md + "memory0/node0", "");  // a plain file is enough
  t.symlink("../../node/node0", md + "memory1/node0");
  t.symlink("../../node/node2", md + "memory5/node2");
  t.symlink("../../node/node3", md + "memory6/node3");
  t.write(md + "memory6/online", "1\n");
  t.write(md + "memory6/state", "online\n");
  t.mkdir(md + "memory3");  // no node link: unknown
  t.mkdir(md + "memoryX");  // not a block
}

TEST(Topology, NodesCpusAndMemory) {
  TempTree t{"mb_topo"};
  build_numa_tree(t);
  mb::Topology topo = mb::read_topology(t.path());

  ASSERT_EQ(topo.nodes.size(), 3u);
  EXPECT_EQ(topo.nodes[0].id, 0);
  EXPECT_EQ(topo.nodes[1].id, 2);
  EXPECT_EQ(topo.nodes[2].id, 3);
  EXPECT_EQ(topo.nodes[0].cpus, (std::vector<int>{0, 1, 4}));
  EXPECT_TRUE(topo.nodes[1].cpus.empty());
  EXPECT_EQ(topo.nodes[2].cpus, (std::vector<int>{2, 3, 6}));

  EXPECT_EQ(topo.nodes[0].mem_total_bytes, 1048576ull * 1024);
  EXPECT_EQ(topo.nodes[0].mem_free_bytes, 524288ull * 1024);
  EXPECT_EQ(topo.nodes[1].mem_total_bytes, 4194304ull * 1024);
  EXPECT_EQ(topo.nodes[1].mem_free_bytes, 4000000ull * 1024);
  EXPECT_EQ(topo.nodes[2].mem_free_bytes, 1024u);

  ASSERT_NE(topo.node(2), nullptr);
  EXPECT_EQ(topo.node(2)->id, 2);
  EXPECT_EQ(topo.node(1), nullptr);
  EXPECT_EQ(topo.node(5), nullptr);
  EXPECT_EQ(topo.max_node_id(), 3);
  EXPECT_EQ(topo.cpu_nodes(), (std::vector<int>{0, 3}));
}

TEST(Topology, CpuNodeMap) {
  TempTree t{"mb_topo"};
  build_numa_tree(t);
  mb::Topology topo = mb::read_topology(t.path());
  // CPUs 0..6; 5 is in no online node.
  EXPECT_EQ(topo.cpu_node, (std::vector<int>{0, 0, 3, 3, 0, -1, 3}));
}

TEST(Topology, Distances) {
  TempTree t{"mb_topo"};
  build_numa_tree(t);
  mb::Topology topo = mb::read_topology(t.path());
  // The distance file's columns follow the online node ids 0, 2, 3.
  EXPECT_EQ(topo.distance(0, 0), 10);
  EXPECT_EQ(topo.distance(0, 2), 31);
  EXPECT_EQ(topo.distance(0, 3), 21);
  EXPECT_EQ(topo.distance(2, 0), 32);
  EXPECT_EQ(topo.distance(2, 2), 10);
  EXPECT_EQ(topo.distance(2, 3), 33);
  EXPECT_EQ(topo.distance(3, 0), 21);
  EXPECT_EQ(topo.distance(3, 2), 34);
  EXPECT_EQ(topo.node(0)->distance.size(), 3u);
  EXPECT_EQ(topo.node(0)->distance.count(1), 0u);
  // Unknown: 10 to itself, 20 otherwise.
  EXPECT_EQ(topo.distance(7, 7), 10);
  EXPECT_EQ(topo.distance(7, 0), 20);
  EXPECT_EQ(topo.distance(0, 7), 20);
}

TEST(Topology, MemoryBlocks) {
  TempTree t{"mb_topo"};
  build_numa_tree(t);
  mb::Topology topo = mb::read_topology(t.path());
  EXPECT_EQ(topo.mem_block_bytes, 0x8000000u);
  const uint16_t U = 0xffff;
  EXPECT_EQ(topo.mem_block_node, (std::vector<uint16_t>{0, 0, U, U, U, 2, 3}));
}

TEST(Topology, RefreshNodeMemory) {
  TempTree t{"mb_topo"};
  build_numa_tree(t);
  mb::Topology topo = mb::read_topology(t.path());
  t.write("devices/system/node/node2/meminfo", meminfo(2, 4194304, 123));
  mb::refresh_node_memory(topo, t.path());
  EXPECT_EQ(topo.node(2)->mem_free_bytes, 123u * 1024);
  EXPECT_EQ(topo.node(2)->mem_total_bytes, 4194304ull * 1024);
  EXPECT_EQ(topo.node(0)->mem_free_bytes, 524288ull * 1024);
}

TEST(Topology, NoNumaFallback) {
  TempTree t{"mb_topo"};
  t.write("devices/system/cpu/online", "0-5\n");
  t.write("devices/system/cpu/possible", "0-63\n");
  mb::Topology topo = mb::read_topology(t.path());
  ASSERT_EQ(topo.nodes.size(), 1u);
  EXPECT_EQ(topo.nodes[0].id, 0);
  EXPECT_EQ(topo.nodes[0].cpus, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(topo.cpu_node, (std::vector<int>{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(topo.cpu_nodes(), (std::vector<int>{0}));
  EXPECT_EQ(topo.distance(0, 0), 10);
  EXPECT_EQ(topo.max_node_id(), 0);
  EXPECT_EQ(topo.mem_block_bytes, 0u);
  EXPECT_TRUE(topo.mem_block_node.empty());
}

TEST(Topology, BadOnlineListIsAUsageErrorNamingTheFile) {
  TempTree t{"mb_topo"};
  t.write("devices/system/node/online", "0-x\n");
  try {
    mb::read_topology(t.path());
    ADD_FAILURE() << "no error";
  } catch (const mb::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("devices/system/node/online"), std::string::npos) << e.what();
  }
}

TEST(ParseNodeMeminfo, TotalAndFree) {
  uint64_t total = 0, free = 0;
  EXPECT_TRUE(mb::parse_node_meminfo(meminfo(1, 2048, 1024), &total, &free));
  EXPECT_EQ(total, 2048u * 1024);
  EXPECT_EQ(free, 1024u * 1024);
}

TEST(ParseNodeMeminfo, MissingFieldsFail) {
  uint64_t total = 7, free = 7;
  EXPECT_FALSE(mb::parse_node_meminfo("Node 0 MemTotal:  100 kB\n", &total, &free));
  EXPECT_EQ(total, 102400u);
  EXPECT_EQ(free, 7u);
  EXPECT_FALSE(mb::parse_node_meminfo("", &total, &free));
  EXPECT_FALSE(mb::parse_node_meminfo("garbage\nmore garbage here\n", &total, &free));
}

// /proc/zoneinfo: the "high" watermark of each zone (pages), summed by
// node; the per-CPU pagesets' "high:" lines are not watermarks.
TEST(Topology, KernelHighWatermarksFromZoneinfo) {
  const std::string text =
      "Node 0, zone      DMA\n  per-node stats\n      nr_free_pages 3840\n  pages free     3840\n"
      "        min      10\n        low      13\n        high     16\n        spanned  4095\n"
      "  pagesets\n    cpu: 0\n              count: 0\n              high:  0\n"
      "Node 0, zone    DMA32\n  pages free     100\n        min      2115\n        low      2887\n"
      "        high     3659\n    cpu: 0\n              high:     1443\n"
      "Node 1, zone   Normal\n  pages free     100\n        min      50\n        low      60\n"
      "        high     70\n";
  const auto high = mb::parse_zoneinfo_high(text);
  ASSERT_EQ(high.size(), 2u);
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(high.at(0), (16u + 3659u) * page);
  EXPECT_EQ(high.at(1), 70u * page);
  EXPECT_TRUE(mb::parse_zoneinfo_high("").empty());
  // This machine's own file parses, with a watermark for node 0.
  EXPECT_GT(mb::kernel_high_watermarks().count(0), 0u);
}

}  // namespace
