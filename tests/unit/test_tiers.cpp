// Tier specs and automatic tiers (membalancer/tiers.h) on made-up topologies.
#include <gtest/gtest.h>

#include "membalancer/error.h"
#include "membalancer/tiers.h"

namespace {

// Nodes 0 and 2 with CPUs, 3 memory-only, 5 memory-only and far, 7 with
// neither memory nor... CPUs only (no memory).
mb::Topology topo() {
  mb::Topology t;
  auto node = [](int id, std::vector<int> cpus, uint64_t mem) {
    mb::NumaNode n;
    n.id = id;
    n.cpus = std::move(cpus);
    n.mem_total_bytes = mem;
    n.mem_free_bytes = mem / 2;
    return n;
  };
  t.nodes = {node(0, {0, 1}, 1 << 30), node(2, {2, 3}, 1 << 30), node(3, {}, 4ull << 30), node(5, {}, 8ull << 30),
             node(7, {4}, 0)};
  const int ids[] = {0, 2, 3, 5, 7};
  const int d[5][5] = {{10, 21, 14, 30, 21}, {21, 10, 24, 30, 21}, {14, 24, 10, 40, 24},
                       {30, 30, 40, 10, 30}, {21, 21, 24, 30, 10}};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) t.nodes[i].distance[ids[j]] = d[i][j];
  return t;
}

std::vector<std::vector<int>> spec(const std::string& s) { return mb::parse_tier_spec(s, topo()).tiers; }

void expect_bad(const std::string& s, const std::string& words) {
  try {
    mb::parse_tier_spec(s, topo());
    ADD_FAILURE() << "'" << s << "' was accepted";
  } catch (const mb::UsageError& e) {
    EXPECT_EQ(e.status(), 2);
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--tiers"), std::string::npos) << e.what();
  }
}

TEST(Tiers, ParsesSpecs) {
  EXPECT_EQ(spec("0,2:3:5"), (std::vector<std::vector<int>>{{0, 2}, {3}, {5}}));
  EXPECT_EQ(spec(" 2,0 : 3,5 "), (std::vector<std::vector<int>>{{0, 2}, {3, 5}}));
  EXPECT_EQ(spec("0:2-3"), (std::vector<std::vector<int>>{{0}, {2, 3}}));
  mb::Tiers t = mb::parse_tier_spec("0,2:3:5", topo());
  EXPECT_EQ(t.tier_of(3), 1);
  EXPECT_EQ(t.tier_of(7), -1);
  EXPECT_EQ(t.describe(), "0,2 : 3 : 5");
}

TEST(Tiers, RejectsBadSpecsNamingTheProblem) {
  expect_bad("0:4", "node 4 does not exist");
  expect_bad("0:7", "node 7 has no memory");
  expect_bad("0,3:3", "node 3 is in more than one tier (0 and 1)");
  // Named twice in one tier: said so, not "in more than one tier".
  expect_bad("0,0:3", "node 0 is named twice in tier 0");
  expect_bad("0:3,2-3", "node 3 is named twice in tier 1");
  expect_bad("0::3", "tier 1 is empty");
  expect_bad("0:3:", "tier 2 is empty");
  expect_bad("0,2", "one tier only");
  expect_bad("", "empty");
  expect_bad("0:x", "--tiers tier 1");
}

TEST(Tiers, AutoPrefersKernelTiers) {
  mb::Topology t = topo();
  t.kernel_tiers = {{1, {0, 2, 3}}, {4, {5}}, {6, {7}}};  // node 7 has no memory: left out
  mb::Tiers k = mb::choose_tiers("auto", t);
  EXPECT_EQ(k.source, "kernel memory tiers");
  EXPECT_EQ(k.tiers, (std::vector<std::vector<int>>{{0, 2, 3}, {5}}));
}

TEST(Tiers, AutoFallsBackToCpulessNodes) {
  mb::Topology t = topo();
  t.kernel_tiers = {{4, {0, 2, 3, 5}}};  // one kernel tier: not enough
  mb::Tiers c = mb::choose_tiers("auto", t);
  EXPECT_EQ(c.source, "CPU-less nodes as the lower tier");
  EXPECT_EQ(c.tiers, (std::vector<std::vector<int>>{{0, 2}, {3, 5}}));
}

TEST(Tiers, FromDistances) {
  mb::Tiers d = mb::choose_tiers("distance", topo());
  // Local (10): 0, 2; nearest CPUs at 14: node 3; at 30: node 5.
  EXPECT_EQ(d.tiers, (std::vector<std::vector<int>>{{0, 2}, {3}, {5}}));
}

// Where the mover sends the pages a full node refuses: the other nodes of its
// tier, nearest first; a node alone in its tier has none.
TEST(Tiers, SameTierStandInsNearestFirst) {
  const mb::Topology t = topo();
  auto s = mb::same_tier_stand_ins(mb::parse_tier_spec("0:2,3,5", t), t);
  EXPECT_EQ(s.count(0), 0u);
  EXPECT_EQ(s[3], (std::vector<int>{2, 5}));  // 24, 40
  EXPECT_EQ(s[2], (std::vector<int>{3, 5}));  // 24, 30
  EXPECT_EQ(s[5], (std::vector<int>{2, 3}));  // 30, 40
  // Equal distances keep id order.
  s = mb::same_tier_stand_ins(mb::parse_tier_spec("3:0,2,5", t), t);
  EXPECT_EQ(s[5], (std::vector<int>{0, 2}));  // 30, 30
}

TEST(Tiers, OneTierMachineIsAMissingFeature) {
  mb::Topology t;
  mb::NumaNode n;
  n.id = 0;
  n.cpus = {0};
  n.mem_total_bytes = 1 << 30;
  t.nodes = {n};
  try {
    mb::choose_tiers("auto", t);
    ADD_FAILURE() << "one node gave tiers";
  } catch (const mb::SystemError& e) {
    EXPECT_EQ(e.status(), 1);
    EXPECT_NE(std::string(e.what()).find("at least two memory tiers"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mb::choose_tiers("0:1", t), mb::UsageError);
}

}  // namespace
