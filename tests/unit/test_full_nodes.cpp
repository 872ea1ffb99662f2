// Waiting on nodes the kernel found full (membalancer/full_nodes.h): how long
// a wait lasts, what ends it, and what the tier and numa policies see of a
// waiting node.
#include <gtest/gtest.h>

#include "membalancer/full_nodes.h"
#include "membalancer/tier_policy.h"

namespace {

constexpr uint64_t kMiB = 1 << 20;
using Wait = mb::FullNodeWait;

// The free-memory figures below are set against watermarks of 5% and 10%.
mb::TierPolicyConfig watermarks_5_10() {
  mb::TierPolicyConfig c;
  c.low_watermark = 0.05;
  c.high_watermark = 0.10;
  return c;
}

// Tiers as a spec would give them: tier 0 first.
mb::Tiers test_tiers(std::vector<std::vector<int>> nodes) {
  mb::Tiers t;
  t.tiers = std::move(nodes);
  t.source = "test";
  return t;
}

std::map<int, uint64_t> free_mib(std::initializer_list<std::pair<const int, uint64_t>> l) {
  std::map<int, uint64_t> m(l);
  for (auto& [n, v] : m) v *= kMiB;
  return m;
}

TEST(FullNodeWait, BackoffEndsAWaitAndDoublesUpToTheMax) {
  Wait w;
  const std::map<int, uint64_t> marked{{1, 4 * kMiB}};
  const auto free = free_mib({{1, 10}});
  uint32_t now = 100;
  uint32_t expect = Wait::kFirstWait;
  for (int round = 0; round < 7; ++round) {
    EXPECT_TRUE(w.update(now, marked, free).empty());  // marked: the wait starts
    EXPECT_TRUE(w.waiting(1));
    EXPECT_EQ(w.wait_length(1), expect);
    for (uint32_t i = 1; i < expect; ++i) EXPECT_TRUE(w.update(now + i, marked, free).empty()) << i;
    EXPECT_EQ(w.update(now + expect, marked, free), std::vector<int>{1});
    EXPECT_FALSE(w.waiting(1));
    now += expect + 1;
    expect = std::min(2 * expect, Wait::kMaxWait);  // refused again: twice as long
  }
  EXPECT_EQ(expect, Wait::kMaxWait);
}

TEST(FullNodeWait, RoomForWhatWasRefusedEndsItEarlyAndResetsTheBackoff) {
  Wait w;
  const std::map<int, uint64_t> marked{{1, 4 * kMiB}};
  w.update(1, marked, free_mib({{1, 10}}));
  EXPECT_TRUE(w.update(1 + Wait::kFirstWait, marked, free_mib({{1, 10}})).size() == 1);  // backoff: next is 8
  w.update(10, marked, free_mib({{1, 10}}));
  EXPECT_EQ(w.wait_length(1), 2 * Wait::kFirstWait);
  EXPECT_TRUE(w.update(11, marked, free_mib({{1, 13}})).empty());  // 3 MiB more: not enough
  EXPECT_EQ(w.update(12, marked, free_mib({{1, 14}})), std::vector<int>{1});  // 4 MiB more: room
  w.update(13, marked, free_mib({{1, 14}}));
  EXPECT_EQ(w.wait_length(1), Wait::kFirstWait);
}

TEST(FullNodeWait, NodesWaitApartAndAClearedMarkEndsTheWait) {
  Wait w;
  w.update(1, {{1, kMiB}, {2, kMiB}}, free_mib({{1, 0}, {2, 0}}));
  EXPECT_TRUE(w.waiting(1));
  EXPECT_TRUE(w.waiting(2));
  EXPECT_FALSE(w.waiting(3));
  // Node 2's mark is gone (cleared elsewhere): no wait left for it.
  EXPECT_TRUE(w.update(2, {{1, kMiB}}, free_mib({{1, 0}, {2, 0}})).empty());
  EXPECT_TRUE(w.waiting(1));
  EXPECT_FALSE(w.waiting(2));
}

// Tiers {0} and {1, 2}: node 0 below its low watermark sends its pages down.
// Node 1 has the most room, so the policy picks it, until it waits: then
// every demotion goes to node 2, as many as before.
TEST(FullNodeWait, TierPolicySendsNothingIntoAWaitingNode) {
  const mb::Tiers tiers = test_tiers({{0}, {1, 2}});
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  for (uint64_t p = 0; p < 20000; ++p) t.add(mb_page_key(42, 0x1000 + p), 1, nullptr, 0);  // cold, node 0
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 30 * kMiB, 20000};
  mem.nodes[1] = {2048 * kMiB, 1500 * kMiB, 0};
  mem.nodes[2] = {1024 * kMiB, 700 * kMiB, 0};
  const mb::TierPolicyConfig cfg = watermarks_5_10();
  const mb::TierPolicy pol(tiers, cfg);
  auto demoted_to = [&](const mb::MemoryState& m) {
    std::map<int, uint64_t> to;
    for (const auto& mv : pol.plan(t, m, mb::CoolDown(10)).moves) {
      EXPECT_EQ(mv.direction, mb::MoveDirection::kDemote);
      EXPECT_EQ(mv.from, 0);
      to[mv.to] += mv.bytes() / mb::kBasePageBytes;
    }
    return to;
  };
  const auto before = demoted_to(mem);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before.count(1), 1u);
  Wait w;
  w.update(1, {{1, kMiB}}, {{1, 1500 * kMiB}});
  mb::MemoryState hidden = mem;
  w.hide_room(hidden, cfg.low_watermark);
  EXPECT_EQ(hidden.nodes[1].free_bytes, static_cast<uint64_t>(2048 * kMiB * cfg.low_watermark));
  EXPECT_EQ(hidden.nodes[2].free_bytes, mem.nodes[2].free_bytes);
  const auto after = demoted_to(hidden);
  EXPECT_EQ(after, (std::map<int, uint64_t>{{2, before.at(1)}}));
}

// An upper-tier node that waits is not pushed into demotions by the wait
// (its free memory is shown at the low watermark, not below), and a node
// whose free memory is already lower shows what it has.
TEST(FullNodeWait, AWaitingUpperNodeIsNotDrainedByTheWait) {
  const mb::Tiers tiers = test_tiers({{0}, {1}});
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  for (uint64_t p = 0; p < 20000; ++p) t.add(mb_page_key(42, 0x1000 + p), 1, nullptr, 0);
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 500 * kMiB, 20000};
  mem.nodes[1] = {4096 * kMiB, 3000 * kMiB, 0};
  const mb::TierPolicyConfig cfg = watermarks_5_10();
  Wait w;
  w.update(1, {{0, kMiB}}, {{0, 500 * kMiB}});
  w.hide_room(mem, cfg.low_watermark);
  EXPECT_TRUE(mb::TierPolicy(tiers, cfg).plan(t, mem, mb::CoolDown(10)).moves.empty());
  mem.nodes[0].free_bytes = 10 * kMiB;
  w.hide_room(mem, cfg.low_watermark);
  EXPECT_EQ(mem.nodes[0].free_bytes, 10 * kMiB);
}

// numa: a waiting node shows no free memory, so no page goes there.
TEST(FullNodeWait, NumaShowsAWaitingNodeNoFreeMemory) {
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 500 * kMiB, 0};
  mem.nodes[1] = {1024 * kMiB, 900 * kMiB, 0};
  Wait w;
  w.update(1, {{1, kMiB}}, {{1, 900 * kMiB}});
  w.hide_room(mem, 0);
  EXPECT_EQ(mem.nodes[1].free_bytes, 0u);
  EXPECT_EQ(mem.nodes[0].free_bytes, 500 * kMiB);
}


// --watermark auto (the default): a footprint that stopped growing keeps no
// reserve, so the policy's watermarks on the fast node come down to the
// kernel's own high watermark, far below the 1% the wait shows the node
// at. The waiting node must still show no room: it refused pages, and
// promotions planned into it would be refused again (with one fast node
// there is no stand-in, so they fail) every interval of the wait.
TEST(FullNodeWait, AutoWatermarksShowAWaitingFastNodeNoRoom) {
  const mb::Tiers tiers = test_tiers({{0}, {1}});
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  for (uint64_t p = 0; p < 200; ++p) t.add(mb_page_key(42, 0x1000 + p), 8, nullptr, 1);  // hot, slow node
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 500 * kMiB, 1000, 2 * kMiB};  // kernel high watermark 2 MiB
  mem.nodes[1] = {4096 * kMiB, 3000 * kMiB, 200};
  mem.allocation_reserve_bytes = 0;  // nothing allocated lately
  mem.allocation_heat = 0.0f;
  mb::TierPolicyConfig cfg;  // 1% : 2%, as options.cpp sets them for auto
  cfg.follow_allocations = true;
  const mb::TierPolicy pol(tiers, cfg);
  ASSERT_FALSE(pol.plan(t, mem, mb::CoolDown(10)).moves.empty());  // not waiting: they go up
  Wait w;
  w.update(1, {{0, kMiB}}, {{0, 500 * kMiB}});
  w.hide_room(mem, cfg.low_watermark);
  const mb::Plan p = pol.plan(t, mem, mb::CoolDown(10));
  EXPECT_TRUE(p.moves.empty()) << p.moves.size() << " pages planned into the waiting node";
}

}  // namespace
