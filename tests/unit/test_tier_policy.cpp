// The tier policy (membalancer/tier_policy.h) and what all policies share
// (policy.h): capacity-derived hot thresholds, promotion, watermark
// demotion of never-sampled pages first, cool-down, no crossing, budgets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "membalancer/policy.h"
#include "membalancer/tier_policy.h"

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint32_t kPid = 42;

uint64_t key(uint64_t page) { return mb_page_key(kPid, 0x1000 + page); }

// Adds `pages` pages from `first` with `accesses` samples each on `node`.
void add(mb::PageTable& t, uint64_t first, uint64_t pages, uint32_t accesses, int node) {
  for (uint64_t p = first; p < first + pages; ++p) t.add(key(p), accesses, nullptr, static_cast<uint16_t>(node));
}

mb::Tiers two_tiers() {
  mb::Tiers t;
  t.tiers = {{0}, {1}};
  t.source = "test";
  return t;
}

// Node 0: 1 GiB, `free0` free; node 1: 4 GiB, plenty free.
mb::MemoryState memory(uint64_t free0, uint64_t tree0 = 0, uint64_t tree1 = 0) {
  mb::MemoryState m;
  m.nodes[0] = {1024 * kMiB, free0, tree0};
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, tree1};
  return m;
}

// The tests' free-memory figures are set against watermarks of 5% and 10%.
mb::TierPolicyConfig watermarks_5_10() {
  mb::TierPolicyConfig c;
  c.low_watermark = 0.05;
  c.high_watermark = 0.10;
  return c;
}

std::map<mb::MoveDirection, uint64_t> pages_by_direction(const mb::Plan& p) {
  std::map<mb::MoveDirection, uint64_t> out;
  for (const auto& m : p.moves) out[m.direction] += m.bytes() / mb::kBasePageBytes;
  return out;
}

TEST(HeatHistogram, ThresholdFitsCapacity) {
  mb::HeatHistogram h;
  h.add(100, 10);  // 10 very hot pages
  h.add(10, 100);  // 100 warm
  h.add(1, 1000);  // 1000 lukewarm
  // Just above the warm bin: only the very hot pages are at or above it.
  EXPECT_GT(h.threshold_for(10), 10.f);
  EXPECT_LE(h.threshold_for(10), 100.f);
  EXPECT_EQ(h.pages_at_or_above(h.threshold_for(10)), 10u);
  EXPECT_GT(h.threshold_for(110), 1.f);
  EXPECT_LE(h.threshold_for(110), 10.f);
  EXPECT_EQ(h.pages_at_or_above(h.threshold_for(110)), 110u);
  EXPECT_LE(h.threshold_for(5000), 1.f);
  EXPECT_GT(h.threshold_for(5), 100.f);  // even the hottest bin does not fit
  EXPECT_EQ(h.pages_at_or_above(h.threshold_for(5)), 0u);
  EXPECT_EQ(mb::HeatHistogram::bin(0), 0);
  EXPECT_LT(mb::HeatHistogram::bin(1), mb::HeatHistogram::bin(1.3f));
}

TEST(CoolDown, ExpiresAfterItsIntervals) {
  mb::CoolDown c(5);
  c.moved(7, 10);
  EXPECT_TRUE(c.cooling(7, 14));
  EXPECT_FALSE(c.cooling(7, 15));
  EXPECT_FALSE(c.cooling(8, 11));
  c.expire(15);
  EXPECT_EQ(c.size(), 0u);
}

TEST(TierPolicy, PromotesHotPagesThatFitThenFillsTheRoomLeft) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 1000, 20, 1);   // hot, on the slow node
  add(t, 5000, 4000, 1, 1); // seen once: not hot, but the fast node has room for them too
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::CoolDown cool(10);
  mb::TierPlanView view;
  mb::Plan p = pol.plan(t, memory(800 * kMiB), cool, &view);
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 5000u);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 0u);
  ASSERT_EQ(p.moves.size(), 5000u);
  for (size_t i = 0; i < p.moves.size(); ++i) {
    const auto& m = p.moves[i];
    EXPECT_EQ(m.to, 0);
    EXPECT_EQ(m.from, 1);
    // Hottest first: the hot pages, then the room's.
    EXPECT_EQ(m.reason, i < 1000 ? mb::MoveReason::kHot : mb::MoveReason::kFreeRoom) << i;
  }
  EXPECT_GE(view.thresholds.at(0), 2.f);  // the noise floor, whatever the capacity
  EXPECT_EQ(p.stats.planned, 5000u);
  EXPECT_EQ(p.stats.no_room, 0u);
}

// A process whose cpuset leaves out the fast node: its pages are neither
// promoted (hot or into free room) nor planned to fail there every interval
// (move_pages: EACCES); they are counted, and another process's page, next
// in heat, takes the room. Nor is a page demoted to a slow node the process
// may not use, while the next process's pages go.
TEST(TierPolicy, ANodeOutsideTheProcessCpusetIsNoTarget) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 100, 20, 1);  // kPid's hot pages on the slow node
  t.add(mb_page_key(kPid + 1, 0x9000), 10, nullptr, 1);
  mb::MemoryState mem = memory(800 * kMiB);
  mem.allowed = [](uint32_t tgid, int node) { return tgid != kPid || node != 0; };
  mb::Plan p = mb::TierPolicy(two_tiers(), watermarks_5_10()).plan(t, mem, mb::CoolDown(10));
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].tgid, kPid + 1);
  EXPECT_EQ(p.moves[0].to, 0);
  EXPECT_EQ(p.stats.not_allowed, 100u);

  // Demotion below the low watermark: kPid may not use node 1.
  mb::PageTable cold(1 << 16);
  cold.begin_interval(1);
  mb::MemoryState low = memory(30 * kMiB, 50000);
  low.resident = [&](int, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
    for (uint32_t pid : {kPid, kPid + 1})
      for (uint64_t v = 0; v < 25000; ++v)
        if (!fn(pid, (0x1000 + v) << MB_PAGE_SHIFT, false)) return;
  };
  low.allowed = [](uint32_t tgid, int node) { return tgid != kPid || node != 1; };
  mb::Plan d = mb::TierPolicy(two_tiers(), watermarks_5_10()).plan(cold, low, mb::CoolDown(10));
  EXPECT_GT(d.moves.size(), 18000u);
  for (const auto& m : d.moves) ASSERT_EQ(m.tgid, kPid + 1);
  EXPECT_EQ(d.stats.not_allowed, 25000u);
}

// Pages below the hot threshold take free room above the high watermark and
// never make it: with room for 512 pages, 512 of the pages seen once on the
// slow node come up, and none of the fast node's colder pages (seen once,
// long ago) goes down for them; the hot pages come first and a page moved
// within the cool-down does not come back to fill room.
TEST(TierPolicy, PagesBelowTheHotThresholdOnlyTakeFreeRoom) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 20000, 2000, 1, 0);  // on the fast node, cold by the time of the plan
  t.end_interval();
  for (uint32_t i = 2; i <= 6; ++i) {
    t.begin_interval(i);
    t.end_interval();
  }
  t.begin_interval(7);
  add(t, 0, 100, 20, 1);      // hot
  add(t, 1000, 4000, 1, 1);   // seen once
  mb::CoolDown cool(10);
  for (uint64_t p = 1000; p < 1100; ++p) cool.moved(key(p), 5, /*up=*/false);
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  // High watermark 102.4 MiB; 2 MiB more free is room for 512 pages.
  const uint64_t free0 = 1024 * kMiB / 10 + 2 * kMiB;
  mb::Plan p = pol.plan(t, memory(free0, 2000), cool);
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 0u);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 512u);
  std::map<mb::MoveReason, uint64_t> reasons;
  for (const auto& m : p.moves) {
    ++reasons[m.reason];
    EXPECT_FALSE(m.vaddr >> 12 >= 0x1000 + 1000 && m.vaddr >> 12 < 0x1000 + 1100) << "a cooling page filled room";
  }
  EXPECT_EQ(reasons[mb::MoveReason::kHot], 100u);
  EXPECT_EQ(reasons[mb::MoveReason::kFreeRoom], 412u);
  EXPECT_EQ(p.stats.no_room, 0u);  // the pages left over were owed no room
}

TEST(TierPolicy, ThresholdComesFromCapacity) {
  mb::PageTable t(1 << 18);
  t.begin_interval(1);
  add(t, 0, 1024, 64, 1);      // 4 MiB very hot
  add(t, 10000, 20480, 8, 1);  // 80 MiB warm
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::CoolDown cool(10);
  // Node 0 has 1 GiB: 10% high watermark = 102.4 MiB; free 110 MiB leaves
  // 7.6 MiB of room (1945 pages): the very hot pages fit, the warm ones do
  // not, and as many of those as fit take the room left.
  mb::TierPlanView view;
  mb::Plan p = pol.plan(t, memory(110 * kMiB), cool, &view);
  EXPECT_EQ(pages_by_direction(p)[mb::MoveDirection::kPromote], 1945u);
  uint64_t hot = 0;
  for (const auto& m : p.moves) hot += m.reason == mb::MoveReason::kHot;
  EXPECT_EQ(hot, 1024u);
  EXPECT_GT(view.thresholds.at(0), 8.f);
  // With room for everything, both go.
  mb::Plan all = pol.plan(t, memory(500 * kMiB), cool);
  EXPECT_EQ(pages_by_direction(all)[mb::MoveDirection::kPromote], 1024u + 20480u);
  // Hottest first.
  EXPECT_GE(all.moves.front().heat, all.moves.back().heat);
}

// A fast node of 1000 tracked pages, full to its high watermark (the
// default 2%), and a slow node holding `slow_pages` tracked pages.
mb::MemoryState full_fast_node(uint64_t slow_pages) {
  mb::MemoryState m;
  const uint64_t fast = 1000 * mb::kBasePageBytes;
  m.nodes[0] = {fast * 100 / 98, fast * 100 / 98 - fast, 1000};
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, slow_pages};
  return m;
}

// Plans one interval against full_fast_node(slow_pages) and checks that
// the hot threshold lies in (lo, hi] and that `pages` base pages are
// exchanged: as many up as down.
mb::Plan expect_threshold_and_exchanges(const mb::PageTable& t, uint64_t slow_pages, float lo, float hi,
                                        uint64_t pages) {
  mb::TierPlanView view;
  mb::Plan p = mb::TierPolicy(two_tiers(), {}).plan(t, full_fast_node(slow_pages), mb::CoolDown(10), &view);
  EXPECT_GT(view.thresholds.at(0), lo);
  EXPECT_LE(view.thresholds.at(0), hi);
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], pages);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], pages);
  return p;
}

// The threshold is the heat of the last page that fits, not the edge of a
// histogram bin: 1500 pages of heat 48 to 55, all in one bin, compete for a
// fast node of 1000 pages held by pages of heat 10. The hottest of them
// that fit come up (936: those of heat 51 and more; the 188 of heat 50
// would not all fit, so none of them go). With the bin's edge (56) as the
// threshold none did, and the fast node stayed with the colder pages, as
// after a change of pattern, where the new hot set shares a bin.
TEST(TierPolicy, ThresholdIsTheHeatOfTheLastPageThatFits) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 1000, 10, 0);  // fast node: warm
  for (uint64_t p = 0; p < 1500; ++p) t.add(key(10000 + p), 48 + p % 8, nullptr, 1);
  ASSERT_EQ(mb::HeatHistogram::bin(48), mb::HeatHistogram::bin(55.9f));
  const mb::Plan p = expect_threshold_and_exchanges(t, 1500, 50.f, 51.f, 936);
  for (const auto& mv : p.moves) {
    if (mv.direction == mb::MoveDirection::kPromote) {
      EXPECT_GE(mv.heat, 51.f);
    } else {
      EXPECT_EQ(mv.heat, 10.f);
    }
  }
}

// Adds a huge page at 2 MiB-aligned `addr` on `node`, `accesses` in this
// interval: 512 base pages flagged huge, each holding them (as the pipeline
// keeps a huge page's samples).
void add_huge(mb::PageTable& t, uint64_t addr, uint32_t accesses, uint16_t node) {
  for (uint64_t i = 0; i < MB_HUGE_BASE_PAGES; ++i) {
    mb::PageEntry* e = t.add(mb_page_key(kPid, (addr >> MB_PAGE_SHIFT) + i), accesses, nullptr, node);
    e->flags |= mb::kPageHuge;
  }
}

// The same with huge pages, which count 512 base pages each: of three in
// one bin (50, 51, 52 accesses per base page: 512 times that in their 2 MiB)
// only the hottest fits the 1000 pages.
TEST(TierPolicy, ThresholdCountsTheLastHugePagesWhole) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 1000, 10, 0);
  for (uint64_t h = 0; h < 3; ++h)
    add_huge(t, 0x40000000 + h * 0x200000, static_cast<uint32_t>((50 + h) * MB_HUGE_BASE_PAGES), 1);
  const mb::Plan p = expect_threshold_and_exchanges(t, 1536, 51.f, 52.f, 512);
  for (const auto& mv : p.moves)
    if (mv.direction == mb::MoveDirection::kPromote) {
      EXPECT_TRUE(mv.huge);
      EXPECT_EQ(mv.vaddr, 0x40000000u + 2 * 0x200000u);
    }
}

// A huge page takes 512 pages of the tier: it ranks by what it serves per
// page. One whose samples are accesses anywhere in its 2 MiB (IBS, PEBS)
// with 2560 of them, 5 per base page, does not displace 512 base pages of
// 10 each (2560 accesses for 5120); ranked by its 2 MiB's heat (2560 against
// 10), it would. One whose samples are a scan's accessed bit for the 2 MiB
// (abit), as a base page's bit is for it, is as hot per page as its heat:
// with 40 it goes up, exchanged for 512 pages of 10.
TEST(TierPolicy, AHugePageRanksByItsHeatPerBasePage) {
  for (mb::CollapseHeat how : {mb::CollapseHeat::kSum, mb::CollapseHeat::kMax}) {
    mb::PageTable t(1 << 16);
    t.set_huge_heat(how);
    t.begin_interval(1);
    add(t, 0, 1000, 10, 0);
    add_huge(t, 0x40000000, how == mb::CollapseHeat::kSum ? 5 * MB_HUGE_BASE_PAGES : 40, 1);
    const mb::Plan p = mb::TierPolicy(two_tiers(), {}).plan(t, full_fast_node(512), mb::CoolDown(10));
    auto dir = pages_by_direction(p);
    if (how == mb::CollapseHeat::kSum) {
      EXPECT_EQ(dir[mb::MoveDirection::kPromote], 0u);
      EXPECT_EQ(dir[mb::MoveDirection::kDemote], 0u);
    } else {
      EXPECT_EQ(dir[mb::MoveDirection::kPromote], 512u);
      EXPECT_EQ(dir[mb::MoveDirection::kDemote], 512u);
    }
  }
}

TEST(TierPolicy, DemotesNeverSampledPagesFirstBelowTheLowWatermark) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 100, 5, 0);  // sampled, warm, on the fast node
  // 30 MiB free of 1 GiB: below the 5% low watermark (51.2 MiB); back to
  // 10% (102.4 MiB) needs 72.4 MiB = 18535 pages down.
  const uint64_t need = (102.4 * kMiB - 30 * kMiB) / 4096 + 1;
  mb::MemoryState mem = memory(30 * kMiB, 50000);
  uint64_t offered = 0;
  mem.resident = [&](int node, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
    EXPECT_EQ(node, 0);
    for (uint64_t p = 0; p < 50000; ++p) {
      ++offered;
      if (!fn(kPid, (0x1000 + p) << MB_PAGE_SHIFT, false)) return;
    }
  };
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::CoolDown cool(10);
  mb::Plan p = pol.plan(t, mem, cool);
  auto dir = pages_by_direction(p);
  EXPECT_GE(dir[mb::MoveDirection::kDemote], need);
  EXPECT_LE(dir[mb::MoveDirection::kDemote], need + 1);
  EXPECT_EQ(p.stats.unsampled_demoted, dir[mb::MoveDirection::kDemote]);  // the sampled ones stay
  std::set<uint64_t> demoted;
  for (const auto& m : p.moves) {
    EXPECT_EQ(m.direction, mb::MoveDirection::kDemote);
    EXPECT_EQ(m.to, 1);
    EXPECT_EQ(m.reason, mb::MoveReason::kWatermark);
    demoted.insert(m.vaddr >> MB_PAGE_SHIFT);
  }
  for (uint64_t p = 0; p < 100; ++p) EXPECT_FALSE(demoted.count(0x1000 + p)) << "sampled page " << p << " demoted";
  EXPECT_LT(offered, 50000u);  // the walk stops when enough was found
}

TEST(TierPolicy, ColdSampledPagesGoDownWhenNothingElseIs) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 30000, 1, 0);  // seen once, on the fast node: cold for tier 0
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::CoolDown cool(10);
  mb::Plan p = pol.plan(t, memory(30 * kMiB, 30000), cool);  // no resident walker
  EXPECT_GT(pages_by_direction(p)[mb::MoveDirection::kDemote], 18000u);
  EXPECT_EQ(p.stats.unsampled_demoted, 0u);
}

TEST(TierPolicy, MakesRoomForHotPagesAndNeverCrosses) {
  mb::PageTable t(1 << 18);
  t.begin_interval(1);
  add(t, 0, 2048, 50, 1);      // 8 MiB hot on the slow node
  add(t, 10000, 40000, 1, 0);  // cold pages filling the fast node
  // Free exactly at the high watermark: no room without demoting.
  mb::Plan p = mb::TierPolicy(two_tiers(), watermarks_5_10()).plan(t, memory(103 * kMiB, 40000), mb::CoolDown(10));
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 2048u);
  EXPECT_GE(dir[mb::MoveDirection::kDemote], 2048u - 256);  // room made (the 0.6 MiB above the watermark helps)
  std::set<uint64_t> up, down;
  for (const auto& m : p.moves) (m.direction == mb::MoveDirection::kPromote ? up : down).insert(m.vaddr);
  for (uint64_t a : up) EXPECT_FALSE(down.count(a));
  // Demotions run first so that the room exists when promotions run.
  EXPECT_EQ(p.moves.front().direction, mb::MoveDirection::kDemote);
}

TEST(TierPolicy, CoolDownStopsPingPong) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 100, 20, 1);
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::CoolDown cool(10);
  mb::Plan first = pol.plan(t, memory(800 * kMiB), cool);
  ASSERT_EQ(first.moves.size(), 100u);
  mb::commit_plan(first, t, cool, 1);
  EXPECT_EQ(t.find(key(0))->node, 0);  // the table believes the move
  // The pages are reported back on the slow node (the moves failed, or
  // someone moved them back): left alone until the cool-down ends.
  t.begin_interval(2);
  add(t, 0, 100, 20, 1);
  mb::Plan again = pol.plan(t, memory(800 * kMiB), cool);
  EXPECT_TRUE(again.moves.empty());
  EXPECT_EQ(again.stats.cooling, 100u);
  t.begin_interval(11);
  add(t, 0, 100, 20, 1);
  EXPECT_EQ(pol.plan(t, memory(800 * kMiB), cool).moves.size(), 100u);
}

TEST(TierPolicy, BudgetBoundsAnInterval) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 1000, 20, 1);
  mb::TierPolicyConfig cfg = watermarks_5_10();
  cfg.budget_bytes = 100 * 4096;
  mb::Plan p = mb::TierPolicy(two_tiers(), cfg).plan(t, memory(800 * kMiB), mb::CoolDown(10));
  EXPECT_EQ(p.moves.size(), 100u);
  EXPECT_EQ(p.stats.over_budget, 1u);
}

TEST(TierPolicy, HugePagesMoveWhole) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  const uint64_t base = 0x200000 >> MB_PAGE_SHIFT;  // 2 MiB aligned
  for (uint64_t i = 0; i < 512; ++i) {
    mb::PageEntry* e = t.add(mb_page_key(kPid, base + i), 20, nullptr, 1);
    e->flags |= mb::kPageHuge;
  }
  mb::Plan p = mb::TierPolicy(two_tiers(), watermarks_5_10()).plan(t, memory(800 * kMiB), mb::CoolDown(10));
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_TRUE(p.moves[0].huge);
  EXPECT_EQ(p.moves[0].vaddr, 0x200000u);
  EXPECT_EQ(p.stats.planned, 512u);
}

TEST(TierPolicy, ThreeTiersPromoteAsFarAsTheHeatEarns) {
  mb::PageTable t(1 << 18);
  t.begin_interval(1);
  add(t, 0, 1000, 100, 2);     // very hot on the slowest
  add(t, 5000, 30000, 10, 2);  // warm on the slowest
  mb::Tiers tiers;
  tiers.tiers = {{0}, {1}, {2}};
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 110 * kMiB, 0};  // 7.6 MiB of room: the very hot fit
  mem.nodes[1] = {4096 * kMiB, 3000 * kMiB, 0};
  mem.nodes[2] = {8192 * kMiB, 8000 * kMiB, 31000};
  mb::Plan p = mb::TierPolicy(tiers, watermarks_5_10()).plan(t, mem, mb::CoolDown(10));
  std::map<int, uint64_t> to;
  for (const auto& m : p.moves) ++to[m.to];
  EXPECT_EQ(to[0], 1000u);
  EXPECT_EQ(to[1], 30000u);
}

// submit_plan: few large requests, demotions first, counted when refused.
TEST(SubmitPlan, GroupsByProcessTargetAndDirection) {
  mb::Plan plan;
  auto mv = [](uint32_t pid, uint64_t page, int to, mb::MoveDirection d) {
    return mb::PlannedMove{pid, page << 12, false, 1 - to, to, d,
                           d == mb::MoveDirection::kDemote ? mb::MoveReason::kWatermark : mb::MoveReason::kHot, 1};
  };
  for (uint64_t i = 0; i < 6; ++i) plan.moves.push_back(mv(i % 2 ? 7 : 8, 100 + i, 0, mb::MoveDirection::kPromote));
  plan.moves.push_back(mv(7, 50, 1, mb::MoveDirection::kDemote));
  std::vector<mb::MoveRequest> seen;
  std::vector<std::pair<pid_t, int>> calls;
  mb::MoverConfig cfg;
  cfg.rate_limit_bytes_per_s = 0;
  {
    mb::Mover mover(cfg, [&](pid_t pid, unsigned long n, void**, const int* nodes, int* status, int) {
      calls.emplace_back(pid, nodes ? nodes[0] : -1);
      for (unsigned long i = 0; i < n; ++i) status[i] = nodes ? nodes[i] : 0;
      return 0L;
    });
    EXPECT_EQ(mb::submit_plan(plan, mover), 0u);
    mover.wait_idle();
    auto s = mover.stats();
    EXPECT_EQ(s.total().moved, 7u);
  }
  ASSERT_EQ(calls.size(), 3u);  // demote pid 7; promote pid 7; promote pid 8
  EXPECT_EQ(calls[0], std::make_pair(pid_t{7}, 1));
  EXPECT_EQ(calls[1], std::make_pair(pid_t{7}, 0));
  EXPECT_EQ(calls[2], std::make_pair(pid_t{8}, 0));
}

// A request the mover's queue refuses (counted there as dropped_queue_full)
// never moves: its pages are not committed, so they do not sit out the
// cool-down recorded on a node they never reached, and are planned again at
// once. The accepted request's pages are committed as before.
TEST(SubmitPlan, PagesTheQueueRefusesAreNotCommitted) {
  mb::PageTable t(1024);
  t.begin_interval(3);
  mb::Plan plan;
  for (uint64_t i = 0; i < 13; ++i) {
    const uint32_t pid = i < 3 ? 7 : 8;  // pid 7: 3 pages, pid 8: 10 pages
    t.add(mb_page_key(pid, 100 + i), 4, nullptr, 1);
    plan.moves.push_back({pid, (100 + i) << 12, false, 1, 0, mb::MoveDirection::kPromote, mb::MoveReason::kHot, 4});
  }
  mb::MoverConfig cfg;
  cfg.rate_limit_bytes_per_s = 0;
  cfg.queue_pages = 4;  // pid 8's request does not fit
  mb::CoolDown cool(30);
  {
    mb::Mover mover(cfg, [](pid_t, unsigned long n, void**, const int* nodes, int* status, int) {
      for (unsigned long i = 0; i < n; ++i) status[i] = nodes ? nodes[i] : 0;
      return 0L;
    });
    EXPECT_EQ(mb::submit_and_commit(plan, mover, t, cool, 3), 10u);
    mover.wait_idle();
    EXPECT_EQ(mover.stats().total().dropped_queue_full, 10u);
  }
  for (uint64_t i = 0; i < 13; ++i) {
    const uint32_t pid = i < 3 ? 7 : 8;
    const uint64_t k = mb_page_key(pid, 100 + i);
    EXPECT_EQ(cool.cooling(k, 3), pid == 7) << "page " << i;
    EXPECT_EQ(t.find(k)->node, pid == 7 ? 0 : 1) << "page " << i;
  }
}

}  // namespace

namespace {

TEST(TierPolicy, PromotionsGiveWayWhenTheColdPagesAreCooling) {
  // Node 0 (1 GiB) is at its high watermark exactly; its 300 MiB of tracked
  // pages are cold but were all moved there within the cool-down, so none can
  // be demoted to make room. 200 hot pages wait on node 1: promoting them
  // would overfill node 0, so none is planned (no_room), and nothing cooling moves.
  mb::PageTable t(1 << 18);
  t.begin_interval(1);
  const uint64_t cold_pages = 300 * kMiB / mb::kBasePageBytes;
  add(t, 100000, cold_pages, 1, 0);
  add(t, 0, 200, 20, 1);
  mb::CoolDown cool(30);
  for (uint64_t p = 100000; p < 100000 + cold_pages; ++p) cool.moved(key(p), 1);
  mb::MemoryState m = memory(103 * kMiB, cold_pages, 200);  // 0.6 MiB (153 pages) above the high watermark
  mb::TierPolicy policy(two_tiers(), watermarks_5_10());
  mb::Plan plan = policy.plan(t, m, cool);
  auto by = pages_by_direction(plan);
  EXPECT_EQ(by[mb::MoveDirection::kPromote], 153u) << "only what fits above the high watermark";
  EXPECT_EQ(by[mb::MoveDirection::kDemote], 0u);
  EXPECT_EQ(plan.stats.no_room, 47u);
  for (const auto& mv : plan.moves) EXPECT_FALSE(cool.cooling(mb_page_key(mv.tgid, mv.vaddr >> 12), 1));
}

}  // namespace

namespace {

TEST(TierPolicy, ADecisiveReversalBeatsTheCoolDown) {
  // Pages demoted at interval 1 (cold then) are hot at interval 3 (a phase
  // change): heat 20 is past twice the threshold, so they go back up within
  // the cool-down; pages only lukewarm again (heat 3) wait.
  mb::PageTable t(1 << 16);
  t.begin_interval(3);
  add(t, 0, 100, 20, 1);
  add(t, 1000, 100, 3, 1);
  mb::CoolDown cool(30);
  for (uint64_t p = 0; p < 100; ++p) cool.moved(key(p), 1, /*up=*/false);
  for (uint64_t p = 1000; p < 1100; ++p) cool.moved(key(p), 1, /*up=*/false);
  mb::TierPolicy pol(two_tiers(), watermarks_5_10());
  mb::Plan plan = pol.plan(t, memory(800 * kMiB), cool);
  std::set<uint64_t> up;
  for (const auto& m : plan.moves)
    if (m.direction == mb::MoveDirection::kPromote) up.insert(m.vaddr >> 12);
  EXPECT_EQ(up.size(), 100u);
  for (uint64_t p = 0; p < 100; ++p) EXPECT_TRUE(up.count(0x1000 + p));
  EXPECT_EQ(plan.stats.cooling, 100u);
}

}  // namespace

namespace {

// A full fast node holds 3000 cold pages (heat 1) on top of a hot set
// (heat 50) that fits; 2000 pages turn hot on the slow node. Room for them
// is made by exchanges, one cold page leaving per hot page arriving: all
// 2000 come up in one plan (room counted once, not once per promotion and
// once per demotion).
TEST(TierPolicy, ExchangesBringAWholeNewHotSetUpInOnePlan) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 1000, 50, 0);      // old hot set, fast node
  add(t, 10000, 3000, 1, 0);   // cold, fast node
  add(t, 20000, 2000, 50, 1);  // new hot set, slow node
  mb::MemoryState m;
  const uint64_t fast = 4000 * mb::kBasePageBytes;
  m.nodes[0] = {static_cast<uint64_t>(fast / 0.98), static_cast<uint64_t>(fast / 0.98) - fast, 4000};  // at HIGH
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, 2000};
  mb::Plan p = mb::TierPolicy(two_tiers(), {}).plan(t, m, mb::CoolDown(10));
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 2000u);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 2000u);
  for (const auto& mv : p.moves) {
    if (mv.direction == mb::MoveDirection::kDemote) {
      EXPECT_LT(mv.heat, 2.0f) << "only cold pages leave";
    }
  }
  EXPECT_EQ(p.stats.no_room, 0u);
  EXPECT_EQ(p.stats.no_gain, 0u);
}

// With the fast node full, a slow page only a little warmer than the fast
// node's coldest (heat 6 against 4: within sampling noise) is not exchanged
// for it, and says so (no_gain); a decisively hotter one (heat 40) is.
TEST(TierPolicy, NoExchangeWithoutADecisiveGain) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 10000, 1000, 4, 0);  // lukewarm, filling the fast node
  add(t, 0, 10, 6, 1);        // a little warmer, slow node
  const mb::MemoryState m = full_fast_node(10);
  mb::TierPolicy pol(two_tiers(), {});
  mb::Plan p = pol.plan(t, m, mb::CoolDown(10));
  EXPECT_TRUE(p.moves.empty());
  EXPECT_GT(p.stats.no_gain, 0u);
  EXPECT_EQ(p.stats.no_gain + p.stats.no_room, 10u);

  add(t, 0, 10, 34, 1);  // now heat 40
  p = pol.plan(t, m, mb::CoolDown(10));
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 10u);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 10u);
  EXPECT_EQ(p.stats.no_gain, 0u);
}

// The noise margin is 1.5 standard deviations of the heats' difference:
// heat 18 against 10 in the steady state of decay 0.5 (9 and 5 accesses an
// interval; a difference of 8, one deviation sqrt(28 / 1.5) = 4.3) is
// exchanged, two populations far enough apart that their estimated rates
// differ by more than a quarter too. A margin of two deviations (8.6) would
// keep every lukewarm page where first touch put it. The same heats as
// plain counts (one interval: noise as large as the count) are within the
// noise of one rate, and nothing moves.
TEST(TierPolicy, ExchangesPastOneAndAHalfDeviationsOfNoise) {
  const mb::MemoryState m = full_fast_node(1000);
  mb::TierPolicy pol(two_tiers(), {});

  mb::PageTable young(1 << 16);
  young.begin_interval(1);
  add(young, 10000, 1000, 10, 0);  // fast node, full
  add(young, 0, 1000, 18, 1);      // slow node, warmer
  mb::Plan p = pol.plan(young, m, mb::CoolDown(10));
  EXPECT_TRUE(p.moves.empty()) << p.moves.size() << " moves";
  EXPECT_GT(p.stats.no_gain, 0u);

  mb::PageTable t(1 << 16);
  for (uint32_t i = 1; i <= 12; ++i) {
    t.begin_interval(i);
    add(t, 10000, 1000, 5, 0);
    add(t, 0, 1000, 9, 1);
  }
  ASSERT_NEAR(t.heat(*t.find(key(10000))), 10.0f, 0.01f);
  ASSERT_NEAR(t.heat(*t.find(key(0))), 18.0f, 0.01f);
  p = pol.plan(t, m, mb::CoolDown(10));
  auto dir = pages_by_direction(p);
  EXPECT_GT(dir[mb::MoveDirection::kPromote], 900u);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], dir[mb::MoveDirection::kDemote]);
}

// Pages promoted within the cool-down that turned cold leave for a
// decisively hotter page (a changed pattern), but not for the watermark
// alone unless they are decisively cold.
TEST(TierPolicy, ACoolingPromotedPageMakesRoomForADecisivelyHotterOne) {
  mb::PageTable t(1 << 16);
  t.begin_interval(5);
  add(t, 10000, 1000, 1, 0);  // promoted at interval 4, cold now
  add(t, 0, 100, 60, 1);      // the new hot pages
  mb::CoolDown cool(30);
  for (uint64_t p = 10000; p < 11000; ++p) cool.moved(key(p), 4, /*up=*/true);
  const mb::MemoryState m = full_fast_node(100);
  mb::Plan p = mb::TierPolicy(two_tiers(), {}).plan(t, m, cool);
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 100u);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 100u);
}

// Adaptive forgetting (PageTable::end_interval): after a steady pattern, an
// interval whose samples land on other pages (a phase change) scales down
// the heat from before it, so the whole new hot set is decisively hotter
// than the old one and comes up in the very next plan. With decay alone the
// two sets would tie (old 100 * 0.5 + 1 against new 50) and nothing would
// move for another interval. A steady interval forgets nothing extra.
TEST(TierPolicy, APhaseChangeIsForgottenAtOnce) {
  mb::PageTable t(1 << 16, 0.5f);
  const mb::MemoryState m = full_fast_node(1000);
  mb::TierPolicy pol(two_tiers(), {});
  for (uint32_t i = 1; i <= 10; ++i) {
    t.begin_interval(i);
    add(t, 0, 1000, 50, 0);    // the hot set, on the fast node
    add(t, 5000, 1000, 1, 1);  // background, on the slow node
    t.end_interval();
    EXPECT_EQ(t.kept_now(), 1.0f) << "interval " << i;
  }
  EXPECT_TRUE(pol.plan(t, m, mb::CoolDown(10)).moves.empty());
  t.begin_interval(11);
  add(t, 0, 1000, 1, 0);      // the old hot set is background now
  add(t, 5000, 1000, 50, 1);  // and the background pages are the hot set
  t.end_interval();
  EXPECT_LT(t.kept_now(), 0.5f);
  EXPECT_LT(t.last_overlap(), 0.5);
  EXPECT_LT(t.heat(*t.find(key(0))), 20.0f);  // 1 + 50 * kept
  EXPECT_GT(t.heat(*t.find(key(5000))), 50.0f);
  mb::Plan p = pol.plan(t, m, mb::CoolDown(10));
  auto dir = pages_by_direction(p);
  EXPECT_EQ(dir[mb::MoveDirection::kPromote], 1000u);
  EXPECT_EQ(dir[mb::MoveDirection::kDemote], 1000u);
  EXPECT_EQ(p.stats.no_gain, 0u);
}

// Right after a change of pattern an exchange needs no noise margin. 1000
// hot pages with 4 samples an interval among 9000 with 0.3 (Poisson); then
// 1000 of the others become the hot set. One interval in, the new hot
// pages' heat is about 4.2 against the old ones' 1.3: most pairs are apart
// by more than their estimated rates ask, but many by less than 1.5
// deviations of noise, and the margin kept a quarter more of the new hot
// set waiting an interval. After a change a page that looks hotter most likely
// is, and waiting costs an interval of the old pattern in the fast tier.
TEST(TierPolicy, ANewHotSetWithFewSamplesComesUpWhenTheChangeIsSeen) {
  mb::PageTable t(1 << 16, 0.875f);
  const mb::MemoryState m = full_fast_node(9000);
  mb::TierPolicy pol(two_tiers(), {});
  std::mt19937 rng(3);
  std::poisson_distribution<uint32_t> hot(4.0), background(0.3);
  auto interval = [&](uint32_t i, uint64_t hot_first) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 10000; ++p) {
      const bool is_hot = p >= hot_first && p < hot_first + 1000;
      const uint32_t n = is_hot ? hot(rng) : background(rng);
      if (n) t.add(key(p), n, nullptr, p < 1000 ? 0 : 1);
    }
    t.end_interval();
  };
  for (uint32_t i = 1; i <= 40; ++i) interval(i, 0);
  interval(41, 5000);
  ASSERT_LT(t.kept_now(), 1.0f);
  const mb::Plan p = pol.plan(t, m, mb::CoolDown(10));
  uint64_t up = 0, new_hot_up = 0;
  for (const auto& mv : p.moves) {
    if (mv.direction != mb::MoveDirection::kPromote) continue;
    ++up;
    const uint64_t page = (mv.vaddr >> MB_PAGE_SHIFT) - 0x1000;
    if (page >= 5000 && page < 6000) ++new_hot_up;
  }
  // Those with 3 samples or more (76%), less the pairs the rate estimate
  // still finds too close: 773 here; with the margin 576.
  EXPECT_GE(new_hot_up, 700u);
  EXPECT_GE(new_hot_up * 10, up * 9) << "promotions are of the new hot set";
}

// A uniformly warm set: every page has the same access rate, and their
// heats differ only by how the samples fell (Poisson). Raw heat would swap
// the luckiest slow pages for the unluckiest fast ones every interval;
// estimated real rates are equal, so nothing moves. A few truly hotter
// pages among them still come up, first.
TEST(TierPolicy, EquallyWarmPagesAreNotExchangedForTheirNoise) {
  mb::PageTable t(1 << 16, 0.5f);
  std::mt19937 rng(1);
  std::poisson_distribution<uint32_t> warm(4.0), hot(16.0);
  const mb::MemoryState m = full_fast_node(3000);
  mb::TierPolicy pol(two_tiers(), {});
  for (uint32_t i = 1; i <= 12; ++i) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 4000; ++p)
      if (uint32_t c = warm(rng)) t.add(key(p), c, nullptr, p < 1000 ? 0 : 1);
    t.end_interval();
    // Young heat (one or two intervals) is noisier than decayed sums: the
    // estimate knows (PageTable::noise_ratio), and nothing moves then either.
    if (i <= 2) {
      EXPECT_TRUE(pol.plan(t, m, mb::CoolDown(10)).moves.empty()) << "interval " << i;
    }
  }
  float min_fast = 1e9f, max_slow = 0;
  t.for_each([&](const mb::PageEntry& e) {
    const float h = t.heat(e);
    if (e.node == 0) min_fast = std::min(min_fast, h);
    else max_slow = std::max(max_slow, h);
  });
  ASSERT_GE(max_slow, 2 * min_fast);  // the noise alone looks like a decisive gain
  mb::Plan p = pol.plan(t, m, mb::CoolDown(10));
  EXPECT_TRUE(p.moves.empty()) << p.moves.size() << " moves";

  // 50 slow pages turn four times as hot: they come up.
  for (uint32_t i = 13; i <= 16; ++i) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 4000; ++p)
      if (uint32_t c = (p >= 2000 && p < 2050) ? hot(rng) : warm(rng)) t.add(key(p), c, nullptr, p < 1000 ? 0 : 1);
    t.end_interval();
  }
  p = pol.plan(t, m, mb::CoolDown(10));
  // They come (nearly) first: hottest first by heat; a mixed set of rates makes the warm
  // pages' spread partly real, so some warm exchanges may follow.
  uint64_t hot_up = 0, rank = 0;
  for (const auto& mv : p.moves) {
    if (mv.direction != mb::MoveDirection::kPromote) continue;
    const uint64_t page = (mv.vaddr >> MB_PAGE_SHIFT) - 0x1000;
    if (page >= 2000 && page < 2050) {
      ++hot_up;
      EXPECT_LT(rank, 60u) << "hot page " << page << " after warm ones";
    }
    ++rank;
  }
  EXPECT_EQ(hot_up, 50u);
}

// The same while heat is young: two intervals in, 50 slow pages turn four
// times as hot. A few pages of a higher rate form their own part of the
// fitted mixture rather than being shrunk towards the many warm ones, so
// most come up in the next plan, and few warm pages come with them; those
// whose one hot interval happened to look no hotter than a lucky warm page
// come up an interval later. Before that the young warm set stays put,
// but for an outlier or two.
TEST(TierPolicy, AHotSetEmergingFromYoungHeatComesUpWithoutNoise) {
  mb::PageTable t(1 << 16, 0.5f);
  std::mt19937 rng(2);
  std::poisson_distribution<uint32_t> warm(4.0), hot(16.0);
  const mb::MemoryState m = full_fast_node(3000);
  mb::TierPolicy pol(two_tiers(), {});
  auto promoted = [&](uint64_t* hot_pages) {
    mb::Plan p = pol.plan(t, m, mb::CoolDown(10));
    uint64_t up = 0;
    *hot_pages = 0;
    for (const auto& mv : p.moves) {
      if (mv.direction != mb::MoveDirection::kPromote) continue;
      const uint64_t page = (mv.vaddr >> MB_PAGE_SHIFT) - 0x1000;
      ++up;
      if (page >= 2000 && page < 2050) ++*hot_pages;
    }
    return up;
  };
  for (uint32_t i = 1; i <= 4; ++i) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 4000; ++p) {
      const bool turned_hot = i >= 3 && p >= 2000 && p < 2050;
      if (uint32_t c = turned_hot ? hot(rng) : warm(rng)) t.add(key(p), c, nullptr, p < 1000 ? 0 : 1);
    }
    t.end_interval();
    uint64_t hot_up = 0;
    const uint64_t up = promoted(&hot_up);
    if (i < 3) {
      EXPECT_LE(up, 1u) << "interval " << i;
    } else if (i == 3) {
      EXPECT_GE(hot_up, 40u);
      EXPECT_GE(hot_up * 4, up * 3) << up << " promoted, " << hot_up << " of them hot";
    } else {
      EXPECT_EQ(hot_up, 50u);  // the plans were not carried out: all 50 are still slow
    }
  }
}

TEST(AllocationReserve, TwiceTheLargestRecentGrowth) {
  mb::AllocationReserve r;
  EXPECT_FALSE(r.bytes());
  r.observe(1000);
  EXPECT_FALSE(r.bytes());  // one observation: no growth known yet
  r.observe(1300);
  EXPECT_EQ(*r.bytes(), 2 * 300 * mb::kBasePageBytes);
  r.observe(1200);  // shrank: no growth, the 300 still counts
  r.observe(1250);
  EXPECT_EQ(*r.bytes(), 2 * 300 * mb::kBasePageBytes);
  r.observe(1250);
  r.observe(1250);  // the 300 is now 4 intervals old: gone
  EXPECT_EQ(*r.bytes(), 2 * 50 * mb::kBasePageBytes);
  r.observe(1250);
  r.observe(1250);
  EXPECT_EQ(*r.bytes(), 0u);
}

// Where the room is of use: per node, the growth that landed there (other
// than by moves) against what could have, while the node had room.
TEST(AllocationReserve, LandingShareIsWhereTheGrowthLandsWhileANodeHasRoom) {
  using Obs = mb::AllocationReserve::NodeObservation;
  mb::AllocationReserve r;
  r.observe({{0, Obs{1000, 0, 500}}, {1, Obs{0, 0, 100000}}});
  EXPECT_FALSE(r.landing_share(0));  // one observation: nothing grew yet
  // 100 new pages, all on node 1, though node 0 had room for 400 more.
  r.observe({{0, Obs{1000, 0, 400}}, {1, Obs{100, 0, 99900}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), 0.0f);
  EXPECT_FLOAT_EQ(*r.landing_share(1), 1.0f);
  // Pages promoted into node 0 are not allocations: 200 moved up, 100 new
  // pages on node 1 again.
  r.observe({{0, Obs{1200, 200, 200}}, {1, Obs{0, -200, 100000}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), 0.0f);
  // Now they land on node 0 (100 new, while 50 were demoted from it): the
  // recent interval weighs twice the one before, and that one twice the first.
  r.observe({{0, Obs{1250, -50, 150}}, {1, Obs{50, 50, 99950}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), 100.0f / (100 + 0.5f * 100 + 0.25f * 100));
  // Node 0 full (no room): the growth on node 1 says nothing about node 0.
  const float before = *r.landing_share(0);
  r.observe({{0, Obs{1250, 0, 0}}, {1, Obs{150, 0, 99850}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), before);
  // Node 0 took what room it had (30) and the rest went lower: all it could.
  r.observe({{0, Obs{1280, 0, 0}}, {1, Obs{250, 0, 99750}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), (30 + 0.5f * 100) / (30 + 0.5f * 175));
  EXPECT_EQ(r.landing_shares().size(), 2u);
  // Node 0 stays full while the growth goes on below: after kForgetAfter
  // intervals without evidence its share is forgotten, node 1's is not.
  uint64_t below = 250;
  for (uint32_t i = 1; i < mb::AllocationReserve::kForgetAfter; ++i) {
    below += 10;
    r.observe({{0, Obs{1280, 0, 0}}, {1, Obs{below, 0, 99000}}});
  }
  EXPECT_TRUE(r.landing_share(0));  // the full interval above was the first without evidence
  r.observe({{0, Obs{1280, 0, 0}}, {1, Obs{below + 10, 0, 99000}}});
  EXPECT_FALSE(r.landing_share(0));
  EXPECT_GT(*r.landing_share(1), 0.999f);  // all of it there, the last 16 intervals
}

// Moves that completed while the pages were counted may or may not be in
// the counts: what landed is taken to be the least it can have been.
TEST(AllocationReserve, MovesOfUncertainTimingCountAgainstLanding) {
  using Obs = mb::AllocationReserve::NodeObservation;
  mb::AllocationReserve r;
  r.observe({{0, Obs{1000, 0, 500}}, {1, Obs{5000, 0, 100000}}});
  // Node 0 grew by 100: 20 certainly moved in, 30 more moved while counting.
  r.observe({{0, Obs{1100, 20, 480, 30}}, {1, Obs{5080, -20, 99920, 30}}});
  EXPECT_FLOAT_EQ(*r.landing_share(0), 50.0f / 180);  // of the 180 grown, 50 surely landed here
}

// What the room is worth: the accesses new pages had on arrival, the
// hottest as many as the footprint grew by, over the same window.
TEST(AllocationReserve, ArrivalHeatOfTheHottestAsManyAsGrew) {
  mb::AllocationReserve r;
  mb::Arrivals a;
  for (int i = 0; i < 10; ++i) a.add(64);  // 10 hot new pages
  for (int i = 0; i < 90; ++i) a.add(1);   // 90 seen once (resident before, say)
  r.observe(1000, a);
  EXPECT_FALSE(r.arrival_heat());  // nothing known before the second observation
  r.observe(1010, a);              // grew by 10: the 10 hottest arrivals
  EXPECT_FLOAT_EQ(*r.arrival_heat(), 64.0f);
  r.observe(1060, a);  // 60 more over the window: 20 hot of the 200, 40 seen once
  EXPECT_FLOAT_EQ(*r.arrival_heat(), (20 * 64.0f + 40) / 60);
  for (int i = 0; i < 4; ++i) r.observe(1060);  // nothing grew in the window
  EXPECT_FALSE(r.arrival_heat());
  EXPECT_EQ(*r.bytes(), 0u);
  r.observe(1100);  // grew, but nothing new was sampled: worth nothing known
  EXPECT_FLOAT_EQ(*r.arrival_heat(), 0.0f);
}

// The room for new pages is made only of pages colder than new pages are on
// arrival. The fast node (3000 pages, full) holds 2900 warm pages (heat 10)
// and 100 never sampled; 50 hot pages (heat 40) wait on the slow node; the
// reserve asked for is 300 pages.
TEST(TierPolicy, AllocationRoomOnlyFromPagesColderThanArrivals) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 2900, 10, 0);   // warm, on the fast node
  add(t, 5000, 50, 40, 1);  // hot, on the slow node
  const uint64_t total = 3000 * mb::kBasePageBytes;
  mb::MemoryState m;
  m.nodes[0] = {total, 0, 3000};
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, 50};
  m.resident = [](int node, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
    if (node != 0) return;
    for (uint64_t p = 3000; p < 3100; ++p)  // the never-sampled ones
      if (!fn(kPid, (0x1000 + p) << MB_PAGE_SHIFT, false)) return;
  };
  mb::TierPolicyConfig c;
  c.high_watermark = c.low_watermark = 0.2;  // 600 pages: not what limits here
  c.follow_allocations = true;
  m.allocation_reserve_bytes = 300 * mb::kBasePageBytes;
  auto plan = [&](std::optional<float> arrival_heat) {
    m.allocation_heat = arrival_heat;
    return mb::TierPolicy(two_tiers(), c).plan(t, m, mb::CoolDown(10));
  };
  // Nothing known about new pages: the whole reserve is asked for.
  mb::Plan p = plan(std::nullopt);
  EXPECT_EQ(p.stats.reserve_bytes, 300 * mb::kBasePageBytes);
  EXPECT_EQ(p.stats.reserve_withheld_bytes, 0u);
  // New pages arrive with 2 accesses. The 3000 hottest pages are the 50 hot
  // ones and the 2900 warm: only 50 places would hold something colder than
  // a new page. So room for 50 is kept (made of never-sampled pages), and
  // the warm pages stay.
  p = plan(2.0f);
  EXPECT_EQ(p.stats.reserve_bytes, 50 * mb::kBasePageBytes);
  EXPECT_EQ(p.stats.reserve_withheld_bytes, 250 * mb::kBasePageBytes);
  auto moved = pages_by_direction(p);
  EXPECT_EQ(moved[mb::MoveDirection::kDemote], 100u);  // never-sampled only: 50 for the room, 50 for the hot
  EXPECT_EQ(moved[mb::MoveDirection::kPromote], 50u);
  EXPECT_EQ(p.stats.unsampled_demoted, 100u);
  // They arrive with 50 accesses, hotter than every page here: the room is
  // worth its cost again.
  p = plan(50.0f);
  EXPECT_EQ(p.stats.reserve_bytes, 300 * mb::kBasePageBytes);
  EXPECT_EQ(p.stats.reserve_withheld_bytes, 0u);
}

// A node keeps only the share of the reserve that new pages are seen to
// land on; the rest is reported, not kept.
TEST(TierPolicy, RoomOnlyWhereNewPagesLand) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 2000, 10, 0);   // warm, on the fast node (3000 pages, 1000 free)
  add(t, 5000, 1000, 20, 1);  // hotter, on the slow node
  mb::MemoryState m;
  m.nodes[0] = {3000 * mb::kBasePageBytes, 1000 * mb::kBasePageBytes, 2000};
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, 1000};
  mb::TierPolicyConfig c;
  c.high_watermark = c.low_watermark = 0.2;  // 600 pages: not what limits here
  c.follow_allocations = true;
  m.allocation_reserve_bytes = 300 * mb::kBasePageBytes;
  m.allocation_heat = 50.0f;  // new pages are worth the room
  mb::TierPlanView view;
  auto plan = [&](std::map<int, float> landing) {
    m.allocation_landing = std::move(landing);
    return mb::TierPolicy(two_tiers(), c).plan(t, m, mb::CoolDown(10), &view);
  };
  // The fast tier's capacity: its pages and the free memory it fills.
  mb::Plan p = plan({});  // nothing known: all of it
  EXPECT_EQ(p.stats.reserve_bytes, 300 * mb::kBasePageBytes);
  EXPECT_EQ(p.stats.reserve_elsewhere_bytes, 0u);
  EXPECT_EQ(view.capacity_pages.at(0), 3000u - 300);
  p = plan({{0, 0.0f}, {1, 1.0f}});  // new pages land on the slow node
  EXPECT_EQ(p.stats.reserve_bytes, 0u);
  EXPECT_EQ(p.stats.reserve_elsewhere_bytes, 300 * mb::kBasePageBytes);
  EXPECT_EQ(view.capacity_pages.at(0), 3000u);  // the room goes to hot pages
  p = plan({{0, 0.5f}});  // half of them here
  EXPECT_EQ(p.stats.reserve_bytes, 150 * mb::kBasePageBytes);
  EXPECT_EQ(p.stats.reserve_elsewhere_bytes, 150 * mb::kBasePageBytes);
  EXPECT_EQ(view.capacity_pages.at(0), 3000u - 150);
}

// --watermark auto: with no allocations, the fast node fills up to the
// kernel's high watermark; fixed 1:2 keeps 2% free; growth widens the room.
TEST(TierPolicy, AutoWatermarkFollowsAllocationsAboveTheKernelWatermark) {
  mb::PageTable t(1 << 16);
  t.begin_interval(1);
  add(t, 0, 2970, 20, 1);  // hot, on the slow node
  add(t, 5000, 100, 10, 1);  // warm
  const uint64_t total = 3000 * mb::kBasePageBytes;
  mb::MemoryState m;
  m.nodes[0] = {total, total, 0};  // empty fast node of 3000 pages
  m.nodes[1] = {4096 * kMiB, 3000 * kMiB, 3000};
  m.nodes[0].kernel_high_bytes = 30 * mb::kBasePageBytes;
  mb::TierPolicyConfig fixed;  // 1:2
  mb::TierPolicyConfig autom = fixed;
  autom.follow_allocations = true;
  // The fast tier's capacity: its free memory above the high watermark.
  auto capacity = [&](const mb::TierPolicyConfig& c, std::optional<uint64_t> reserve,
                      const mb::PageTable& table) {
    m.allocation_reserve_bytes = reserve;
    mb::TierPlanView view;
    mb::TierPolicy(two_tiers(), c).plan(table, m, mb::CoolDown(10), &view);
    return view.capacity_pages.at(0);
  };
  auto capacity_t = [&](const mb::TierPolicyConfig& c, std::optional<uint64_t> reserve) {
    return capacity(c, reserve, t);
  };
  EXPECT_EQ(capacity(fixed, 0, t), 3000u - 60);  // 2% kept
  // No history yet: the most room, made only of free memory that no
  // sampled page would take (and of never-sampled pages). With 100 sampled
  // pages that is the maximum; with 3070 waiting for the 2970 pages above
  // the kernel's watermark, nothing beyond it.
  mb::PageTable few(1 << 16);
  few.begin_interval(1);
  add(few, 0, 100, 20, 1);
  EXPECT_EQ(capacity(autom, std::nullopt, few), 3000u - 60);
  EXPECT_EQ(capacity(autom, std::nullopt, t), 3000u - 30);
  EXPECT_EQ(capacity_t(autom, 0), 3000u - 30);  // only the kernel's watermark
  EXPECT_EQ(capacity_t(autom, 20 * mb::kBasePageBytes), 3000u - 50);
  EXPECT_EQ(capacity_t(autom, 1000 * mb::kBasePageBytes), 3000u - 60);  // at most 2%
  // And the hot pages fill what there is.
  m.allocation_reserve_bytes = 0;
  EXPECT_EQ(pages_by_direction(mb::TierPolicy(two_tiers(), autom).plan(t, m, mb::CoolDown(10)))[mb::MoveDirection::kPromote],
            2970u);
}

}  // namespace
