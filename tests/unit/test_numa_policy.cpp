// The numa policy (membalancer/numa_policy.h): distance-weighted target,
// the per-process CPU fallback, hysteresis, the free-memory floor.
#include <gtest/gtest.h>

#include "membalancer/numa_policy.h"

namespace {

constexpr uint64_t kMiB = 1 << 20;

// Nodes 0, 1 with CPUs (distance 20 apart) and 2 memory-only (30 from both).
mb::Topology topo() {
  mb::Topology t;
  for (int id : {0, 1, 2}) {
    mb::NumaNode n;
    n.id = id;
    if (id < 2) n.cpus = {id};
    n.mem_total_bytes = 1024 * kMiB;
    n.mem_free_bytes = 800 * kMiB;
    for (int to : {0, 1, 2}) n.distance[to] = to == id ? 10 : (id == 2 || to == 2 ? 30 : 20);
    t.nodes.push_back(n);
  }
  return t;
}

mb::MemoryState memory(uint64_t free1 = 800 * kMiB) {
  mb::MemoryState m;
  m.nodes[0] = {1024 * kMiB, 800 * kMiB, 0};
  m.nodes[1] = {1024 * kMiB, free1, 0};
  m.nodes[2] = {1024 * kMiB, 800 * kMiB, 0};
  return m;
}

// A page on `node` with accesses from CPU-node lanes (lane i = node i).
void add(mb::PageTable& t, uint32_t pid, uint64_t vpn, int node, uint16_t lane0, uint16_t lane1) {
  uint16_t lanes[MB_CPU_LANES] = {lane0, lane1};
  t.add(mb_page_key(pid, vpn), lane0 + lane1, lanes, static_cast<uint16_t>(node));
}

TEST(NumaPolicy, MovesPagesToTheNodeOfTheirCpus) {
  mb::Topology tp = topo();
  mb::PageTable t(1024);
  t.begin_interval(1);
  add(t, 9, 100, 0, 0, 8);  // used from node 1 only, on node 0: moves
  add(t, 9, 101, 0, 8, 0);  // used where it is: stays
  add(t, 9, 102, 0, 4, 4);  // shared evenly: no gain, stays
  add(t, 9, 103, 2, 5, 1);  // on the far memory-only node, used mostly from 0: goes to 0
  add(t, 9, 104, 0, 0, 1);  // seen once: not hot
  mb::Plan p = mb::NumaPolicy(tp, {}).plan(t, memory(), mb::CoolDown(10), {});
  ASSERT_EQ(p.moves.size(), 2u);
  for (const auto& m : p.moves) {
    EXPECT_EQ(m.direction, mb::MoveDirection::kNuma);
    EXPECT_EQ(m.reason, mb::MoveReason::kCloser);
    if (m.vaddr == 100u << 12) EXPECT_EQ(m.to, 1);
    else if (m.vaddr == 103u << 12) EXPECT_EQ(m.to, 0);
    else ADD_FAILURE() << "unexpected move of " << m.vaddr;
  }
}

// A process whose cpuset leaves out node 1 (move_pages would refuse the
// page there, EACCES, every interval): its page goes to the next best node
// it may use, or stays, counted; another process's page moves as before.
TEST(NumaPolicy, ANodeOutsideTheProcessCpusetIsNoTarget) {
  mb::PageTable t(1024);
  t.begin_interval(1);
  add(t, 9, 100, 2, 0, 8);  // used from node 1, on the far node 2: 0 is next best
  add(t, 9, 101, 0, 0, 8);  // used from node 1, on node 0: nowhere better it may go
  add(t, 7, 100, 0, 0, 8);  // another process, free to go to node 1
  mb::MemoryState mem = memory();
  mem.allowed = [](uint32_t tgid, int node) { return tgid != 9 || node != 1; };
  mb::Plan p = mb::NumaPolicy(topo(), {}).plan(t, mem, mb::CoolDown(10), {});
  ASSERT_EQ(p.moves.size(), 2u);
  for (const auto& m : p.moves) {
    if (m.tgid == 9) EXPECT_EQ(m.to, 0) << m.vaddr;
    else EXPECT_EQ(m.to, 1);
    EXPECT_FALSE(m.tgid == 9 && m.vaddr == 101u << 12);
  }
  EXPECT_EQ(p.stats.not_allowed, 1u);
  EXPECT_EQ(p.stats.no_room, 0u);
}

TEST(NumaPolicy, HysteresisKeepsSmallGains) {
  mb::PageTable t(1024);
  t.begin_interval(1);
  add(t, 9, 100, 0, 5, 6);  // cost at 0: 50+120=170, at 1: 100+60=160: 6% better
  mb::NumaPolicyConfig cfg;
  EXPECT_TRUE(mb::NumaPolicy(topo(), cfg).plan(t, memory(), mb::CoolDown(10), {}).moves.empty());
  cfg.hysteresis = 0.05;
  EXPECT_EQ(mb::NumaPolicy(topo(), cfg).plan(t, memory(), mb::CoolDown(10), {}).moves.size(), 1u);
}

TEST(NumaPolicy, UsesTheProcessCpusWhenTheSamplerKnowsNone) {
  mb::PageTable t(1024);
  t.begin_interval(1);
  add(t, 9, 100, 0, 0, 0);  // no lanes (accessed-bit sampler)
  t.find(mb_page_key(9, 100))->heat = 10;
  const std::map<int, double> on_node1{{1, 1.0}};
  int asked = 0;
  mb::Plan p = mb::NumaPolicy(topo(), {}).plan(t, memory(), mb::CoolDown(10), [&](uint32_t pid) {
    ++asked;
    EXPECT_EQ(pid, 9u);
    return &on_node1;
  });
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].to, 1);
  // Nothing known about the process either: nothing moves.
  EXPECT_TRUE(mb::NumaPolicy(topo(), {}).plan(t, memory(), mb::CoolDown(10), [](uint32_t) {
    return static_cast<const std::map<int, double>*>(nullptr);
  }).moves.empty());
}

TEST(NumaPolicy, TargetKeepsItsFreeFloor) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  for (uint64_t v = 0; v < 1000; ++v) add(t, 9, 1000 + v, 0, 0, 10);
  mb::NumaPolicyConfig cfg;
  cfg.min_free_bytes = 256 * kMiB;
  // 256 MiB + 100 pages free on node 1: only 100 pages may go.
  mb::Plan p = mb::NumaPolicy(topo(), cfg).plan(t, memory(256 * kMiB + 100 * 4096), mb::CoolDown(10), {});
  EXPECT_EQ(p.moves.size(), 100u);
  EXPECT_EQ(p.stats.no_room, 900u);
}

TEST(NumaPolicy, CoolingPagesStay) {
  mb::PageTable t(1024);
  t.begin_interval(5);
  add(t, 9, 100, 0, 0, 8);
  mb::CoolDown cool(10);
  cool.moved(mb_page_key(9, 100), 1);
  mb::Plan p = mb::NumaPolicy(topo(), {}).plan(t, memory(), cool, {});
  EXPECT_TRUE(p.moves.empty());
  EXPECT_EQ(p.stats.cooling, 1u);
}

// The cheapest node without room (full, or waiting after refusing pages,
// which shows no free memory): the page goes to the next cheapest node that
// still beats its current one by the hysteresis, as docs/cli.md says.
// Nodes 0, 2 and 3 (sparse ids; CPUs on 0 only): a page used from node 0
// sits on node 2 (distance 30); node 0 has no room, node 3 is at 15 from
// node 0: the page goes to node 3.
TEST(NumaPolicy, FullBestNodeFallsBackToTheNextCheapest) {
  mb::Topology tp;
  for (int id : {0, 2, 3}) {
    mb::NumaNode n;
    n.id = id;
    if (id == 0) n.cpus = {0, 1};
    n.mem_total_bytes = 1024 * kMiB;
    tp.nodes.push_back(n);
  }
  auto dist = [](int a, int b) {
    if (a == b) return 10;
    if ((a == 0 && b == 3) || (a == 3 && b == 0)) return 15;
    return 30;
  };
  for (auto& n : tp.nodes)
    for (int to : {0, 2, 3}) n.distance[to] = dist(n.id, to);
  mb::PageTable t(1024);
  t.begin_interval(1);
  add(t, 9, 100, 2, 8, 0);  // lane 0 = node 0
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 0, 0};  // no room (a waiting node shows none)
  mem.nodes[2] = {1024 * kMiB, 800 * kMiB, 0};
  mem.nodes[3] = {1024 * kMiB, 800 * kMiB, 0};
  mb::Plan p = mb::NumaPolicy(tp, {}).plan(t, mem, mb::CoolDown(10), {});
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].to, 3);
  EXPECT_EQ(p.stats.no_room, 0u);
  // No node with room beats the current one by the hysteresis: it stays,
  // counted as no room.
  mem.nodes[3].free_bytes = 0;
  p = mb::NumaPolicy(tp, {}).plan(t, mem, mb::CoolDown(10), {});
  EXPECT_TRUE(p.moves.empty());
  EXPECT_EQ(p.stats.no_room, 1u);
}

}  // namespace
