// The comparison policies and the oracle of `profiler whatif`
// (profiler/sim_policies.h): small traces whose decisions are worked out by
// hand, budgets, and properties over random traces (order independence,
// capacity, budget, counters).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "membalancer/placement_model.h"
#include "profiler/sim_policies.h"

namespace {

using mb::PageCount;
using mb::PlacementModel;

constexpr int kFast = 0, kSlow = 1;
constexpr uint64_t kSlowCap = 1ull << 40;  // the slow node: unbounded in practice

uint64_t key(int page) { return mb_page_key(4242, 0x1000 + page); }

PageCount pc(int page, uint32_t accesses, bool huge = false) { return {key(page), accesses, huge}; }

// Keeping its size changes for the policy, as whatif's engine does.
PlacementModel model(uint64_t fast_pages, PlacementModel::Start start = PlacementModel::Start::kSlow) {
  PlacementModel m({{kFast, fast_pages}, {kSlow, kSlowCap}}, kSlow, start);
  m.keep_resizes(true);
  return m;
}

// budget: base pages (0 = unlimited).
mb::SimContext ctx(uint32_t interval, uint64_t budget = 0, double interval_s = 1.0) {
  return {interval, interval_s, kFast, kSlow, budget * 4096};
}

// Places the interval's pages as the engine does (recorded on `recorded`,
// -1 = unknown), then runs the policy.
void step(mb::SimPolicy& p, PlacementModel& m, uint32_t t, const std::vector<PageCount>& counts, uint64_t budget = 0,
          int recorded = -1, double interval_s = 1.0) {
  for (const auto& c : counts) m.place(c.key, recorded, c.huge);
  p.interval(ctx(t, budget, interval_s), counts, m);
  m.take_resizes();
}

// Pages 0..n-1: F (fast), S (slow), - (never placed).
std::string layout(const PlacementModel& m, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int node = m.node_of(key(i));
    s += node == kFast ? 'F' : node == kSlow ? 'S' : '-';
  }
  return s;
}

// ---- oracle ---------------------------------------------------------------------

TEST(OracleHits, HottestPagesThatFit) {
  const std::vector<PageCount> c = {pc(0, 5), pc(1, 3), pc(2, 9), pc(3, 1)};
  EXPECT_EQ(mb::oracle_hits(c, 0), 0u);
  EXPECT_EQ(mb::oracle_hits(c, 1), 9u);
  EXPECT_EQ(mb::oracle_hits(c, 2), 14u);  // 9 + 5
  EXPECT_EQ(mb::oracle_hits(c, 3), 17u);  // 9 + 5 + 3
  EXPECT_EQ(mb::oracle_hits({}, 10), 0u);
}

TEST(OracleHits, Ties) {
  // Three pages tie at 5: any two of them give the same 10.
  const std::vector<PageCount> c = {pc(0, 5), pc(1, 1), pc(2, 5), pc(3, 5)};
  EXPECT_EQ(mb::oracle_hits(c, 2), 10u);
  EXPECT_EQ(mb::oracle_hits(c, 3), 15u);
}

TEST(OracleHits, CapacityBeyondThePages) {
  const std::vector<PageCount> c = {pc(0, 5), pc(1, 3)};
  EXPECT_EQ(mb::oracle_hits(c, 10), 8u);  // every access hits
  EXPECT_EQ(mb::oracle_hits({pc(0, 100, true), pc(1, 1)}, 4096), 101u);
}

TEST(OracleHits, HugePagesTake512) {
  // A huge page with 100 accesses and base pages with 60 and 50.
  const std::vector<PageCount> c = {pc(0, 100, true), pc(1, 60), pc(2, 50)};
  EXPECT_EQ(mb::oracle_hits(c, 511), 110u);  // the huge page does not fit
  EXPECT_EQ(mb::oracle_hits(c, 512), 110u);  // it fits alone: 100 < 60 + 50
  EXPECT_EQ(mb::oracle_hits(c, 513), 160u);  // huge + the 60
  EXPECT_EQ(mb::oracle_hits(c, 514), 210u);  // everything
}

TEST(OracleHits, ExactWhereGreedyByDensityIsNot) {
  // 100 base pages of 5 accesses (density 5) and a huge page of 1000
  // (density ~2), in 600 base pages. Greedy by density takes the 100 base
  // pages (500) and then has no room for the huge page (500 left < 512);
  // the best is the huge page plus the 88 base pages that still fit.
  std::vector<PageCount> c = {pc(1000, 1000, true)};
  for (int i = 0; i < 100; ++i) c.push_back(pc(i, 5));
  EXPECT_EQ(mb::oracle_hits(c, 600), 1000u + 88 * 5);
  // Two huge pages (300, 200) and 100 base pages of 40 in 1030 pages:
  // h = 0 gives 4000, h = 1 gives 300 + 100 x 40 = 4300, h = 2 gives 500 +
  // 6 x 40 = 740. With base pages of 1 access h = 2 wins: 500 + 6 = 506.
  std::vector<PageCount> d = {pc(2000, 300, true), pc(2001, 200, true)};
  for (int i = 0; i < 100; ++i) d.push_back(pc(i, 40));
  EXPECT_EQ(mb::oracle_hits(d, 1030), 300u + 4000);
  for (auto& e : d)
    if (!e.huge) e.accesses = 1;
  EXPECT_EQ(mb::oracle_hits(d, 1030), 300u + 200 + 6);
}

// ---- names ----------------------------------------------------------------------

// The oracle's moves (oracle_step): to each interval's best placement,
// keeping what it can where it is.
TEST(OracleStep, FewestMovesToTheBest) {
  PlacementModel m = model(2, PlacementModel::Start::kRecorded);
  uint64_t up = 0, down = 0;
  auto step = [&](const std::vector<PageCount>& counts) {
    for (const auto& c : counts) m.place(c.key, c.key == key(0) || c.key == key(1) ? kFast : kSlow, c.huge);
    return mb::oracle_step(counts, m, {kFast, kSlow}, &up, &down)[0];
  };
  EXPECT_EQ(step({pc(0, 1), pc(1, 1), pc(2, 1)}), 2u);  // a tie: the fast pages stay
  EXPECT_EQ(layout(m, 3), "FFS");
  EXPECT_EQ(up + down, 0u);
  EXPECT_EQ(step({pc(0, 5), pc(2, 9), pc(3, 1)}), 14u);  // 2 up; room: 1, not sampled
  EXPECT_EQ(layout(m, 4), "FSFS");
  EXPECT_EQ(up, 1u);
  EXPECT_EQ(down, 1u);
  EXPECT_EQ(step({pc(0, 3), pc(3, 3), pc(2, 9)}), 12u);  // 0 and 3 alike: 0 stays
  EXPECT_EQ(layout(m, 4), "FSFS");
  EXPECT_EQ(up + down, 2u);
}

// Against oracle_hits and the model on random intervals with both sizes: the
// fast node serves the best, never holds more than its capacity, and the
// pages counted as moved are the pages whose node changed.
TEST(OracleStep, ServesTheBestAndCountsWhatMoved) {
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    const uint64_t cap = rng() % 3 ? rng() % 8 + 1 : 512 + rng() % 600;
    PlacementModel m = model(cap, PlacementModel::Start::kRecorded);
    uint64_t up = 0, down = 0;
    // Each page in a 2 MiB range of its own: a huge page holds no other's key.
    auto key = [](int p) { return ::key(p * 512); };
    for (uint32_t t = 1; t <= 4; ++t) {
      std::vector<PageCount> counts;
      for (int p = 0; p < 12; ++p)
        if (rng() % 2) counts.push_back({key(p), static_cast<uint32_t>(rng() % 5 + 1), p % 4 == 0});
      std::map<uint64_t, int> before;
      for (const auto& c : counts) m.place(c.key, rng() % 2 ? kFast : kSlow, c.huge);
      for (int p = 0; p < 12; ++p) before[key(p)] = m.node_of(key(p));
      const uint64_t up0 = up, down0 = down;
      EXPECT_EQ(mb::oracle_step(counts, m, {kFast, kSlow}, &up, &down)[0], mb::oracle_hits(counts, cap));
      EXPECT_LE(m.used_pages(kFast), cap);
      uint64_t moved_up = 0, moved_down = 0;
      for (int p = 0; p < 12; ++p) {
        const uint64_t n = p % 4 == 0 ? 512 : 1;
        if (before[key(p)] == kSlow && m.node_of(key(p)) == kFast) moved_up += n;
        if (before[key(p)] == kFast && m.node_of(key(p)) == kSlow) moved_down += n;
      }
      EXPECT_EQ(up - up0, moved_up);
      EXPECT_EQ(down - down0, moved_down);
    }
  }
}

TEST(SimPolicies, Names) {
  const auto names = mb::sim_policy_names();
  EXPECT_EQ(names, (std::vector<std::string>{"amd-topk", "linux-tiering", "memtierd-age", "memtis", "tpp"}));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const auto& n : names) {
    auto p = mb::make_sim_policy(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_EQ(p->name(), n);
    EXPECT_EQ(p->describe().rfind("our re-implementation of ", 0), 0u) << p->describe();
    EXPECT_EQ(p->describe().find('\n'), std::string::npos);
    EXPECT_EQ(p->promoted(), 0u);
    EXPECT_EQ(p->demoted(), 0u);
  }
  EXPECT_EQ(mb::make_sim_policy("memtis2"), nullptr);
  EXPECT_EQ(mb::make_sim_policy(""), nullptr);
  EXPECT_EQ(mb::make_sim_policy("oracle"), nullptr);
  EXPECT_EQ(mb::make_sim_policy("TPP"), nullptr);
}

// ---- amd-topk -------------------------------------------------------------------

// The rule page by page: each page moves alone (-U 4096). With the
// prototype's 1 MiB regions: AmdTopk.PagesMoveWithTheirRegion.
TEST(AmdTopk, TopShareOfThisIntervalAndRatioDemotion) {
  // promote 50%, demote 50% (ratio 100: d = planned), -F 50: with 4 fast
  // pages, promotions need 2 free at the interval's start. Pages 0-7 start slow.
  auto p = mb::make_amd_topk({.promote_pct = 50, .demote_pct = 50, .min_free_pct = 50, .region_bytes = 4096});
  auto m = model(4);
  // 1: slow sampled {0:5, 1:4, 2:3, 3:2}, k = 4 x 50% = 2 -> 0 and 1 up.
  //    No fast page was sampled: no demotion (kd = 0).
  step(*p, m, 1, {pc(0, 5), pc(1, 4), pc(2, 3), pc(3, 2)});
  EXPECT_EQ(layout(m, 8), "FFSS----");
  EXPECT_EQ(p->promoted(), 2u);
  EXPECT_EQ(p->demoted(), 0u);
  // 2: slow sampled {2:9, 3:8, 4:7, 5:6, 6:5, 7:1}, k = 3: 2, 3, 4 planned
  //    (2 free >= 50%); 2 and 3 fill the node, 4 is refused. d = 3 planned;
  //    fast sampled {0:1, 1:6}: kd = 2 x 50% = 1 -> the coldest, 0, down.
  //    History plays no part: page 0 was the hottest in interval 1.
  step(*p, m, 2, {pc(2, 9), pc(3, 8), pc(4, 7), pc(5, 6), pc(6, 5), pc(7, 1), pc(0, 1), pc(1, 6)});
  EXPECT_EQ(layout(m, 8), "SFFFSSSS");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 1u);
  // 3: 1 free < 50%: nothing is planned, so nothing is demoted either,
  //    though page 1 is now cold. The node stays as it is.
  step(*p, m, 3, {pc(4, 9), pc(5, 8), pc(0, 7), pc(1, 1)});
  EXPECT_EQ(layout(m, 8), "SFFFSSSS");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 1u);
}

TEST(AmdTopk, PublishedDefaults) {
  // 10% of the sampled slow pages, -F 10, demotion 1% of the sampled fast
  // pages: with fewer than 100 fast pages sampled nothing is ever demoted.
  // Each page 256 apart: a 1 MiB region of its own, which it moves alone.
  auto p = mb::make_sim_policy("amd-topk");
  auto m = model(4);
  auto far = [](int i) { return i * 256; };
  auto fast = [&] {
    std::string s;
    for (int i = 0; i < 4; ++i) s += m.node_of(key(far(i))) == kFast ? 'F' : 'S';
    return s;
  };
  std::vector<PageCount> c;
  for (int i = 0; i < 20; ++i) c.push_back(pc(far(i), 100 - i));  // page 0 hottest
  step(*p, m, 1, c);                                               // k = 2: pages 0 and 1
  EXPECT_EQ(fast(), "FFSS");
  // 2: slow pages 2-20 sampled, page 19 the hottest: k = 19 x 10% = 1, and
  //    2 free >= 10%: page 19 up. One fast page sampled: kd = 1% of 1 = 0.
  c.clear();
  for (int i = 2; i <= 20; ++i) c.push_back(pc(far(i), i == 19 ? 50 : 1));
  c.push_back(pc(far(0), 1));
  step(*p, m, 2, c);
  EXPECT_EQ(m.node_of(key(far(19))), kFast);
  EXPECT_EQ(m.used_pages(kFast), 3u);
  EXPECT_EQ(p->promoted(), 3u);
  EXPECT_EQ(p->demoted(), 0u);
}

// The prototype's mover expands each page it moves to its 1 MiB-aligned
// region (-U 1048576 in runt.sh; -D is ignored, so demotions too). Pages
// 0-3 (region A: pages 0-255) start fast, 256-259 (region B) slow; promote
// and demote 50% of the sampled pages, no free-memory floor.
TEST(AmdTopk, PagesMoveWithTheirRegion) {
  auto p = mb::make_amd_topk({.promote_pct = 50, .demote_pct = 50, .min_free_pct = 0});
  auto m = model(8, PlacementModel::Start::kRecorded);
  for (int i = 0; i < 4; ++i) m.place(key(i), kFast, false);
  for (int i = 256; i < 260; ++i) m.place(key(i), kSlow, false);
  auto where = [&] {
    std::string s;
    for (int i : {0, 1, 2, 3, 256, 257, 258, 259}) s += m.node_of(key(i)) == kFast ? 'F' : 'S';
    return s;
  };
  // Slow sampled {256:5, 257:1, 258:1, 259:1}: k = 2, 256 then 257 (ties
  // by key): both in region B, which goes up once, all four pages.
  // d = 2 planned; fast sampled {0:1, 1:9, 2:1, 3:1}: kd = 2, the coldest,
  // 0 and 2 (by key): both in region A, which goes down, all four pages,
  // page 1 with its 9 accesses too. Page by page: 256 and 257 up, 0 and 2
  // down.
  step(*p, m, 1, {pc(0, 1), pc(1, 9), pc(2, 1), pc(3, 1), pc(256, 5), pc(257, 1), pc(258, 1), pc(259, 1)});
  EXPECT_EQ(where(), "SSSSFFFF");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 4u);
  // Page 100, of region A too, first sampled now (slow): it came to the
  // model only now, so it did not go down with its region. The hottest slow
  // page (k = 1), it takes its region up in address order: pages 0-3 fill
  // the 4 free pages, and page 100 itself is refused. Region B's pages were
  // not sampled: nothing goes down (kd = 0).
  step(*p, m, 2, {pc(100, 7), pc(0, 1)});
  EXPECT_EQ(where(), "FFFFFFFF");
  EXPECT_EQ(m.node_of(key(100)), kSlow);
  EXPECT_EQ(p->promoted(), 8u);
  EXPECT_EQ(p->demoted(), 4u);
}

TEST(AmdTopk, DemotionsAreAShareOfPromotions) {
  // promote 50%, demote 25%: ratio 25 x 100 / 50 = 50, d = planned / 2.
  // Pages 0-7 recorded on the fast node (16 pages, 8 free: >= 10%).
  auto p = mb::make_amd_topk({.promote_pct = 50, .demote_pct = 25, .region_bytes = 4096});
  auto m = model(16, PlacementModel::Start::kRecorded);
  for (int i = 0; i < 8; ++i) m.place(key(i), kFast, false);
  // Fast sampled {0:1 .. 7:8}: kd = 8 x 25% = 2; slow sampled {8:9 .. 11:12}:
  // k = 2 -> 11 and 10 up; d = 2 x 50% = 1 < kd: only the coldest, 0, down.
  std::vector<PageCount> c;
  for (int i = 0; i < 12; ++i) c.push_back(pc(i, i + 1));
  step(*p, m, 1, c);
  EXPECT_EQ(layout(m, 12), "SFFFFFFFSSFF");
  EXPECT_EQ(p->promoted(), 2u);
  EXPECT_EQ(p->demoted(), 1u);
}

TEST(AmdTopk, ShareFilterOfClassicMode) {
  // k = 2 of {0:10, 1:5, 2:3, 3:2} (20 samples); with a 30% share floor
  // page 1 (25%) is skipped, and it still uses up its slot of k.
  auto p = mb::make_amd_topk(
      {.promote_pct = 50, .demote_pct = 1, .min_free_pct = 10, .min_share_pct = 30, .region_bytes = 4096});
  auto m = model(4);
  step(*p, m, 1, {pc(0, 10), pc(1, 5), pc(2, 3), pc(3, 2)});
  EXPECT_EQ(layout(m, 4), "FSSS");
  EXPECT_EQ(p->promoted(), 1u);
}

TEST(AmdTopk, Budget) {
  // As the first interval above with 1 page of budget: only the hottest moves.
  auto p = mb::make_amd_topk({.promote_pct = 50, .demote_pct = 50, .min_free_pct = 50, .region_bytes = 4096});
  auto m = model(4);
  step(*p, m, 1, {pc(0, 5), pc(1, 4), pc(2, 3), pc(3, 2)}, /*budget=*/1);
  EXPECT_EQ(layout(m, 4), "FSSS");
  EXPECT_EQ(p->promoted(), 1u);
}

// The prototype's mover takes a region in batches of 32 consecutive pages
// (PAGES_PER_CALL), asks the rate limiter for 32 tokens per batch, and
// drops a batch it refuses. Pages 0, 10, ..., 250 (26 pages of one 1 MiB
// region) start slow, all sampled; promote 100% of them, 100 pages of
// budget. The region goes up once: batches 0-31, 32-63, 64-95 take 96 of
// the budget and move pages 0..90 (10 pages); batch 96-127 needs 32 of the
// 4 left: dropped, as are the four after it. Interval 2: the 16 pages left
// slow plan the same region again, and its first three batches take the
// budget again though they hold nothing left to move: nothing moves.
TEST(AmdTopk, RegionsMoveInBatchesOf32AndARefusedBatchIsDropped) {
  auto p = mb::make_amd_topk({.promote_pct = 100, .demote_pct = 1, .min_free_pct = 0});
  auto m = model(64);
  std::vector<PageCount> c;
  for (int i = 0; i < 256; i += 10) c.push_back(pc(i, 5));
  step(*p, m, 1, c, /*budget=*/100);
  EXPECT_EQ(p->promoted(), 10u);
  for (int i = 0; i < 256; i += 10) EXPECT_EQ(m.node_of(key(i)), i < 96 ? kFast : kSlow) << i;
  c.clear();
  for (int i = 100; i < 256; i += 10) c.push_back(pc(i, 5));
  step(*p, m, 2, c, /*budget=*/100);
  EXPECT_EQ(p->promoted(), 10u);
  // A budget of 256: the whole region, every batch granted.
  step(*p, m, 3, c, /*budget=*/256);
  EXPECT_EQ(p->promoted(), 26u);
}

// ---- memtis ---------------------------------------------------------------------

// Bins: floor(log2(count + 1)): 1-2 -> 1, 3-6 -> 2, 7-14 -> 3, 15-30 -> 4, 31-62 -> 5.
TEST(Memtis, ThresholdFitsCapacityColdMakeRoomCooling) {
  // 4 fast pages; threshold re-fitted every interval, cooling every 3.
  auto p = mb::make_memtis({.cooling_intervals = 3});
  auto m = model(4);
  // 1: counts 0:15 (bin 4), 1:7 (3), 2:3 (2), 3:1 (1), 4:1 (1). Bins 4..2
  //    hold 3 pages <= 4, bin 1 would make 5: threshold bin 2. Hot set 3
  //    >= 75% of 4: no warm bin. Pages 0, 1, 2 up.
  step(*p, m, 1, {pc(0, 15), pc(1, 7), pc(2, 3), pc(3, 1), pc(4, 1)});
  EXPECT_EQ(layout(m, 6), "FFFSS-");
  EXPECT_EQ(p->promoted(), 3u);
  EXPECT_EQ(p->demoted(), 0u);
  // 2: 5:31 (new, bin 5), 3:+14 = 15 (bin 4). Bins 5, 4, 3 hold 1 + 2 + 1
  //    = 4 pages, bin 2 would make 5: threshold bin 3. Hot off the fast node,
  //    hottest first: 5 (31) takes the free page; 3 (15) needs room: the cold
  //    fast page (below bin 3) is 2 (count 3), demoted; 3 up. 0 and 1 stay.
  step(*p, m, 2, {pc(5, 31), pc(3, 14)});
  EXPECT_EQ(layout(m, 6), "FFSFSF");
  EXPECT_EQ(p->promoted(), 5u);
  EXPECT_EQ(p->demoted(), 1u);
  // 3: 4:+30 = 31, then the cooling halves every count: 0:7 (3), 1:3 (2),
  //    2:1 (1), 3:7 (3), 4:15 (4), 5:15 (4).
  //    Threshold still bin 3 (bins 4, 3 hold 4). Page 4 is hot on the slow
  //    node; the cold fast page is now 1 (3 < 7): 1 down, 4 up.
  step(*p, m, 3, {pc(4, 30)});
  EXPECT_EQ(layout(m, 6), "FSSFFF");
  EXPECT_EQ(p->promoted(), 6u);
  EXPECT_EQ(p->demoted(), 2u);
  // 4: 2:+1 = 2 (bin 1): nothing is hot off the fast node; nothing moves.
  step(*p, m, 4, {pc(2, 1)});
  EXPECT_EQ(layout(m, 6), "FSSFFF");
  EXPECT_EQ(p->promoted(), 6u);
  EXPECT_EQ(p->demoted(), 2u);
}

TEST(Memtis, WarmPagesStay) {
  // Pages 0-3 recorded on the fast node (full) with count 3 (bin 2), page 4
  // on the slow node with 7 (bin 3). Bin 3 holds 1 page, bins 3 and 2 hold
  // 5 > 4: threshold bin 3. The hot set (1 page) fills < 75% of the node, so
  // bin 2 is warm: no fast page is cold and page 4 waits on the slow node.
  const std::vector<PageCount> one = {pc(0, 3), pc(1, 3), pc(2, 3), pc(3, 3), pc(4, 7)};
  auto p = mb::make_sim_policy("memtis");
  auto m = model(4, PlacementModel::Start::kRecorded);
  for (int i = 0; i < 4; ++i) m.place(key(i), kFast, false);
  step(*p, m, 1, one);  // page 4: recorded node unknown, placed slow
  EXPECT_EQ(layout(m, 5), "FFFFS");
  EXPECT_EQ(p->promoted(), 0u);
  EXPECT_EQ(p->demoted(), 0u);
  // 2: page 4 +8 = 15 (bin 4), threshold stays bin 3, bin 2 still warm.
  step(*p, m, 2, {pc(4, 8)});
  EXPECT_EQ(layout(m, 5), "FFFFS");

  // Without the warm bin (htmm_nowarm) bin 2 is cold: the coldest, ties
  // broken by last sample then key, is page 0; it goes down, page 4 up.
  auto q = mb::make_memtis({.warm = false});
  auto n = model(4, PlacementModel::Start::kRecorded);
  for (int i = 0; i < 4; ++i) n.place(key(i), kFast, false);
  step(*q, n, 1, one);
  EXPECT_EQ(layout(n, 5), "SFFFF");
  EXPECT_EQ(q->promoted(), 1u);
  EXPECT_EQ(q->demoted(), 1u);
}

TEST(Memtis, ColdestFirstThenLeastRecentlySampled) {
  // 2 fast pages. 1: 6:3 (bin 2), 5:1 (bin 1): everything fits, threshold
  //    bin 1 (thres_hot): both up.
  auto p = mb::make_sim_policy("memtis");
  auto m = model(2);
  step(*p, m, 1, {pc(6, 3), pc(5, 1)});
  EXPECT_EQ(layout(m, 8), "-----FF-");
  // 2: 5:+2 = 3 (bin 2), 7:15 (bin 4). Bin 4 fits, bin 2 would make 3:
  //    threshold bin 3; hot set 1 page, not < 75% of 2 (1): no warm bin.
  //    5 and 6 are both cold with 3 accesses; 6 was last sampled in 1, 5
  //    in 2: 6 goes down (though 5 has the smaller key), 7 up.
  step(*p, m, 2, {pc(5, 2), pc(7, 15)});
  EXPECT_EQ(layout(m, 8), "-----FSF");
  EXPECT_EQ(p->promoted(), 3u);
  EXPECT_EQ(p->demoted(), 1u);
}

TEST(Memtis, ACoolingOnlyLowersTheThreshold) {
  // Cooling every 2 intervals, 2 fast pages.
  auto p = mb::make_memtis({.cooling_intervals = 2});
  auto m = model(2);
  // 1: 0:3 fits: threshold stays bin 1; 0 up.
  step(*p, m, 1, {pc(0, 3)});
  EXPECT_EQ(layout(m, 4), "F---");
  // 2: 1, 2, 3 with 200 each, then the cooling: 100 each (bin 6), 0:1. Bin 6
  //    alone (3 pages) does not fit: a re-fit would say bin 7 and nothing
  //    would be hot. But at a cooling Memtis only lowers the threshold: it
  //    stays bin 1, so 1, 2 and 3 are hot (tied: by key) and 1 takes the free
  //    page. The hot set (0 pages at or above bin 7) is under 75%: bin 0 is
  //    warm, nothing is cold, so 2 and 3 wait.
  step(*p, m, 2, {pc(1, 200), pc(2, 200), pc(3, 200)});
  EXPECT_EQ(layout(m, 4), "FFSS");
  EXPECT_EQ(p->promoted(), 2u);
  EXPECT_EQ(p->demoted(), 0u);
}

TEST(Memtis, BudgetCoversTheDemotionAndThePromotion) {
  auto p = mb::make_memtis({.cooling_intervals = 3});
  auto m = model(4);
  step(*p, m, 1, {pc(0, 15), pc(1, 7), pc(2, 3), pc(3, 1), pc(4, 1)});
  // As interval 2 above with 2 pages of budget: 5 takes the free page
  // (1 left); 3 would need a demotion and a promotion (2): not done.
  step(*p, m, 2, {pc(5, 31), pc(3, 14)}, /*budget=*/2);
  EXPECT_EQ(layout(m, 6), "FFFSSF");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 0u);
  // With 1 page of budget in the first interval, only the hottest goes up.
  auto q = mb::make_sim_policy("memtis");
  auto n = model(4);
  step(*q, n, 1, {pc(0, 15), pc(1, 7), pc(2, 3), pc(3, 1), pc(4, 1)}, /*budget=*/1);
  EXPECT_EQ(layout(n, 5), "FSSSS");
}

TEST(Memtis, PeriodsInSamples) {
  // Counting the trace's samples as Memtis does, with its 100,000-sample
  // adaptation period: below that the threshold stays at bin 1, so every
  // sampled page is hot, up to the capacity, hottest first.
  auto p = mb::make_memtis({.adaptation_samples = 100'000, .cooling_samples = 2'000'000});
  auto m = model(2);
  step(*p, m, 1, {pc(0, 1), pc(1, 5), pc(2, 3)});
  EXPECT_EQ(layout(m, 3), "SFF");
  // The same with the default (every interval): bins 2 (pages 1, 2) fit,
  // bin 1 would not: threshold bin 2; page 0 is not hot.
  auto q = mb::make_sim_policy("memtis");
  auto n = model(2);
  step(*q, n, 1, {pc(0, 1), pc(1, 5), pc(2, 3)});
  EXPECT_EQ(layout(n, 3), "SFF");
  // Where they differ: 3 slots and {0:1 (bin 1), 1:5 (2), 2:3 (2), 3:7 (3),
  // 4:9 (3)}. In sample mode all are hot at bin 1: 4, 3, 1 go up, hottest
  // first, then there is no room and no cold page. Fitted every interval,
  // bins 3 (2 pages) fit and bin 2 would make 4: threshold bin 3, only 4 and
  // 3 are hot.
  const std::vector<PageCount> five = {pc(0, 1), pc(1, 5), pc(2, 3), pc(3, 7), pc(4, 9)};
  auto r = mb::make_memtis({.adaptation_samples = 100'000, .cooling_samples = 2'000'000});
  auto o = model(3);
  step(*r, o, 1, five);
  EXPECT_EQ(layout(o, 5), "SFSFF");
  auto r2 = mb::make_sim_policy("memtis");
  auto o2 = model(3);
  step(*r2, o2, 1, five);
  EXPECT_EQ(layout(o2, 5), "SSSFF");
  // The main trace above counted in samples: adaptation every sample,
  // cooling at 100 samples (27 + 45 + 30 = 102 in interval 3): same moves.
  auto s = mb::make_memtis({.adaptation_samples = 1, .cooling_samples = 100});
  auto k = model(4);
  step(*s, k, 1, {pc(0, 15), pc(1, 7), pc(2, 3), pc(3, 1), pc(4, 1)});
  step(*s, k, 2, {pc(5, 31), pc(3, 14)});
  step(*s, k, 3, {pc(4, 30)});
  EXPECT_EQ(layout(k, 6), "FSSFFF");
  EXPECT_EQ(s->promoted(), 6u);
  EXPECT_EQ(s->demoted(), 2u);
}

// ---- tpp ------------------------------------------------------------------------

// A scan of the whole (small) address space at the start of every 1 s
// interval, never slower: one hint fault per page per second, as the tests
// below work it out.
const mb::NumaScanConfig kEveryInterval{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 1, .scan_delay_s = 0};

// The first hint fault on an inactive slow page marks it referenced, the
// second activates it, the third (while active) promotes it.
std::vector<std::vector<PageCount>> tpp_trace() {
  return {
      {pc(0, 5), pc(1, 1), pc(2, 1)},                    // 1
      {pc(0, 1), pc(1, 3), pc(3, 2)},                    // 2
      {pc(2, 4), pc(3, 1), pc(4, 9), pc(0, 1)},          // 3
      {pc(1, 1), pc(2, 2), pc(3, 1), pc(4, 1), pc(0, 1)},  // 4
      {pc(3, 1), pc(4, 7)},                              // 5
  };
}

TEST(Tpp, ThirdFaultPromotesLruMakesRoom) {
  // Defaults, 1 s intervals: one hint fault per interval at most. 3 fast
  // pages; every page starts slow.
  auto p = mb::make_tpp({.scan = kEveryInterval});
  auto m = model(3);
  const auto tr = tpp_trace();
  // 1: 0, 1, 2 referenced. 2: 0 and 1 active, 3 referenced: none goes up
  //    on its second fault (TPP's patch: a fault on an inactive page only
  //    marks it accessed).
  step(*p, m, 1, tr[0]);
  step(*p, m, 2, tr[1]);
  EXPECT_EQ(layout(m, 5), "SSSS-");
  EXPECT_EQ(p->promoted(), 0u);
  // 3: 0 faults while active: up. 2 (referenced in 1, nothing in 2) and 3
  //    active now, 4 referenced.
  step(*p, m, 3, tr[2]);
  EXPECT_EQ(layout(m, 5), "FSSSS");
  EXPECT_EQ(p->promoted(), 1u);
  // 4: 1 (active since 2), 2 and 3 fault while active: 2 first (2
  //    accesses), then 1 and 3 by key: 2 and 1 fill the node; 3 finds no
  //    victim (0 was referenced now, 1 and 2 just came): it waits, active.
  step(*p, m, 4, tr[3]);
  EXPECT_EQ(layout(m, 5), "FFFSS");
  EXPECT_EQ(p->promoted(), 3u);
  // 5: 4 (active since 4, 7 accesses) and 3 go up; LRU victims: 0, 1, 2
  //    all last sampled in 4: by key, 0 and 1 down.
  step(*p, m, 5, tr[4]);
  EXPECT_EQ(layout(m, 5), "SSFFF");
  EXPECT_EQ(p->promoted(), 5u);
  EXPECT_EQ(p->demoted(), 2u);
  // 1 was active on the slow node before it went up; demoted, it starts
  // over (reclaim took it inactive): referenced in 6, active in 7, up in 8,
  // in place of the least recently sampled page, 2 (last sampled in 4).
  step(*p, m, 6, {pc(1, 1)});
  step(*p, m, 7, {pc(1, 1)});
  EXPECT_EQ(layout(m, 5), "SSFFF");
  step(*p, m, 8, {pc(1, 1)});
  EXPECT_EQ(layout(m, 5), "SFSFF");
  EXPECT_EQ(p->promoted(), 6u);
  EXPECT_EQ(p->demoted(), 3u);
}

// TPP has no time window: nothing ages the slow node's LRU lists without
// memory pressure there, so three faults any time apart promote. The old
// model (two faults within 2 s) never promoted page 0, and promoted page 1
// at its second fault.
TEST(Tpp, FaultsAnyTimeApartPromote) {
  auto p = mb::make_tpp({.scan = kEveryInterval});
  auto m = model(4);
  for (uint32_t t = 1; t <= 10; ++t) {
    std::vector<PageCount> c;
    if (t == 1 || t == 5 || t == 10) c.push_back(pc(0, 1));
    if (t == 8 || t == 9) c.push_back(pc(1, 1));
    step(*p, m, t, c);
    if (t == 9) {
      EXPECT_EQ(layout(m, 2), "SS") << "two faults are not enough";
    }
  }
  EXPECT_EQ(layout(m, 2), "FS");
  EXPECT_EQ(p->promoted(), 1u);
}

TEST(Tpp, DemotionWatermark) {
  // A 50% watermark on 4 pages: kswapd keeps 2 free. Pages 0-3 recorded
  // on the fast node fill it.
  auto p = mb::make_tpp({.scan = kEveryInterval, .demote_watermark = 0.5});
  auto m = model(4, PlacementModel::Start::kRecorded);
  // 1: all four referenced now: none is an LRU victim yet.
  step(*p, m, 1, {pc(0, 1), pc(1, 1), pc(2, 1), pc(3, 1)}, 0, kFast);
  EXPECT_EQ(layout(m, 4), "FFFF");
  // 2: only 0 referenced; 1, 2, 3 tie on their last sample: by key, 1 and 2 go.
  step(*p, m, 2, {pc(0, 1)}, 0, kFast);
  EXPECT_EQ(layout(m, 4), "FSSF");
  EXPECT_EQ(p->promoted(), 0u);
  EXPECT_EQ(p->demoted(), 2u);
}

TEST(Tpp, LongIntervalsHoldSeveralFaults) {
  // 3 s intervals hold three 1 s scan periods: three samples of a page in
  // one interval are three hint faults, and it goes up at once; two
  // leave it active on the slow node.
  auto p = mb::make_tpp({.scan = kEveryInterval});
  auto m = model(4);
  step(*p, m, 1, {pc(0, 3), pc(1, 2)}, 0, -1, /*interval_s=*/3.0);
  EXPECT_EQ(layout(m, 2), "FS");
  // 1 s intervals: the same samples are one fault each.
  auto q = mb::make_tpp({.scan = kEveryInterval});
  auto n = model(4);
  step(*q, n, 1, {pc(0, 3), pc(1, 2)}, 0, -1, 1.0);
  EXPECT_EQ(layout(n, 2), "SS");
}

TEST(Tpp, Budget) {
  // The trace above with 3 pages of budget in interval 5: 0 down and 4 up
  // (2 pages), then 1 down + 3 up would need 2 more: stop.
  auto p = mb::make_tpp({.scan = kEveryInterval});
  auto m = model(3);
  const auto tr = tpp_trace();
  for (uint32_t t = 1; t <= 4; ++t) step(*p, m, t, tr[t - 1]);
  step(*p, m, 5, tr[4], /*budget=*/3);
  EXPECT_EQ(layout(m, 5), "SFFSF");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 1u);
}

// NUMA balancing's scan, worked by hand. Windows of 1 MB (256 pages) over
// pages 0..1023 (4 windows), a pass every 4 s at least and at most (the
// delay between windows 4 s / 4 = 1 s), from t = 0: window k at t = k, k+4,
// k+8, ... Every page sampled twice an interval (at .25 and .75 of it), all
// slow. A page faults only once the scanner has reached it and once per
// pass: pages 0-255 in intervals 1, 5, 9 (TPP: up at the third), pages
// 768-1023 in 4, 8, 12. The old model (a fault each interval a page was
// sampled) had every page up in interval 3.
TEST(Tpp, HintFaultsFollowTheScanWindow) {
  const mb::NumaScanConfig scan{.scan_size_mb = 1, .period_min_s = 4, .period_max_s = 4, .scan_delay_s = 0};
  auto p = mb::make_tpp({.scan = scan});
  auto m = model(2000);
  std::vector<PageCount> all;
  for (int i = 0; i < 1024; ++i) all.push_back(pc(i, 2));
  for (uint32_t t = 1; t <= 12; ++t) {
    step(*p, m, t, all);
    const uint64_t up = t < 9 ? 0 : (t - 8) * 256;  // window k's pages up in interval 9 + k
    EXPECT_EQ(p->promoted(), up) << "interval " << t;
  }
  EXPECT_EQ(m.node_of(key(0)), kFast);
  EXPECT_EQ(m.node_of(key(1023)), kFast);
  // The faults behind it: 256 an interval, the window's pages.
  const auto tr = mb::numa_scan_faults(scan, 1.0, std::vector<std::vector<PageCount>>(6, all), model(2000), kFast);
  EXPECT_EQ(tr.remote, (std::vector<uint64_t>{256, 256, 256, 256, 256, 256}));
}

// The scan window is address space: 4 MiB windows (1024 base pages), a 2 s
// pass, and four slow 2 MiB pages sampled twice an interval make two windows
// a second apart, each unmapping two of them: 2 faults every interval.
// Counting a huge page as one page of the window, one window took all four
// and the pass was one window long: {4, 0, 4, 0}.
TEST(Tpp, AHugePageIsTwoMegabytesOfTheScanWindow) {
  const mb::NumaScanConfig scan{.scan_size_mb = 4, .period_min_s = 2, .period_max_s = 2, .scan_delay_s = 0};
  std::vector<PageCount> huge;
  for (int i = 0; i < 4; ++i) huge.push_back(pc(i * 512, 2, true));
  const auto tr = mb::numa_scan_faults(scan, 1.0, std::vector<std::vector<PageCount>>(4, huge), model(2000), kFast);
  EXPECT_EQ(tr.remote, (std::vector<uint64_t>{2, 2, 2, 2}));
  EXPECT_EQ(tr.delay_s.front(), 1.0);
}

// No fault before the first window (numa_balancing_scan_delay_ms, 1 s by
// default): the defaults, one page sampled 5 times an interval, slow. The
// first window (t = 1) unmaps it: one fault in interval 2, then one a pass.
TEST(Tpp, NoHintFaultBeforeTheScanDelay) {
  auto m = model(10);
  const std::vector<std::vector<PageCount>> tr(3, {pc(0, 5)});
  const auto f = mb::numa_scan_faults({}, 1.0, tr, m, kFast);
  EXPECT_EQ(f.remote, (std::vector<uint64_t>{0, 1, 1}));
}

// The adaptive period, by hand (one window: the pass is the delay). Ten
// pages on the fast node, sampled at .25 and .75 of every interval; faults
// there are local: each pass end lengthens the delay by 3 tenths (share 10
// of 10: 10 - 7), with the faults counted before it. Windows: 0 (no faults
// yet: 1 s kept), 1 (-> 1.3 s), 2.3 (-> 1.69), 3.99 (-> 2.197), 6.187
// (-> 2.8561), 9.0431 (-> 3.71293). Faults: at .25, 1.25, 2.75, then
// nothing in interval 4 (both accesses before 3.99), 4.25, nothing, 6.25,
// nothing twice, 9.25. Ten slow pages instead: remote faults shorten it,
// never under the minimum: a fault every interval.
TEST(Tpp, ScanPeriodAdaptsToWherePagesFault) {
  PlacementModel fast = model(100, PlacementModel::Start::kRecorded);
  std::vector<PageCount> ten;
  for (int i = 0; i < 10; ++i) {
    ten.push_back(pc(i, 2));
    fast.place(key(i), kFast, false);
  }
  const mb::NumaScanConfig cfg{.scan_delay_s = 0};
  const std::vector<std::vector<PageCount>> tr(10, ten);
  const auto f = mb::numa_scan_faults(cfg, 1.0, tr, fast, kFast);
  EXPECT_EQ(f.local, (std::vector<uint64_t>{10, 10, 10, 0, 10, 0, 10, 0, 0, 10}));
  const std::vector<double> delay{1.0, 1.3, 1.69, 2.197, 2.197, 2.197, 2.8561, 2.8561, 2.8561, 3.71293};
  ASSERT_EQ(f.delay_s.size(), delay.size());
  for (size_t i = 0; i < delay.size(); ++i) EXPECT_NEAR(f.delay_s[i], delay[i], 1e-9) << i;
  const auto g = mb::numa_scan_faults(cfg, 1.0, tr, model(100), kFast);
  EXPECT_EQ(g.remote, std::vector<uint64_t>(10, 10));
  EXPECT_EQ(g.delay_s.back(), 1.0);
}

// ---- linux-tiering -----------------------------------------------------------------

// Linux's tiering mode by hand: 2 s intervals, a window over everything at
// the start of each second (one window, a 1 s pass; 12 s in all). A fast node of 10
// pages (watermarks a page apart: min_free_kbytes 1 makes min 0, a
// watermark_scale_factor of 10% steps of a page: low 1, high 2, promo 3). Interval 1: F0-F7 (keys
// 0-7) recorded fast and sampled once; A0-A2 (8-10) slow, 4 samples (at
// .25, .75, 1.25, 1.75 s); C (11) slow, one sample (at 1 s). The window at
// 0 unmaps the slow pages only. A0-A2 fault at .25 s, 0.25 s after the
// scan: hot (under 1000 ms), but 2 free is not above high + 1: refused;
// kswapd finds no victim (every fast page was just referenced). C faults
// at 1 s, 1000 ms after the scan: not hot, ever. Interval 2: A0-A2 fault
// at 2.25; A0 is refused again and wakes kswapd, which demotes F0-F7 (the
// LRU, a batch of 32 or as many as there are); A1 and A2 go up; A0 faults
// again at 3.25 (the window at 3 unmapped it) and goes up.
TEST(LinuxTiering, HotByFaultLatencyPromotedAboveTheWatermarkKswapdDemotes) {
  // Remote faults keep the pass at its minimum, 1 s; the hot threshold is
  // not adjusted before 60 s (the maximum period).
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 60, .scan_delay_s = 0};
  auto p = mb::make_linux_tiering({.scan = scan, .watermark_scale_factor = 1000, .min_free_kbytes = 1});
  auto m = model(10, PlacementModel::Start::kRecorded);
  std::vector<PageCount> one;
  for (int i = 0; i < 8; ++i) {
    m.place(key(i), kFast, false);
    one.push_back(pc(i, 1));
  }
  for (int i = 8; i < 11; ++i) one.push_back(pc(i, 4));
  one.push_back(pc(11, 1));
  step(*p, m, 1, one, 0, kSlow, /*interval_s=*/2.0);
  EXPECT_EQ(layout(m, 12), "FFFFFFFFSSSS");
  EXPECT_EQ(p->promoted(), 0u);
  step(*p, m, 2, {pc(8, 4), pc(9, 4), pc(10, 4), pc(11, 1)}, 0, kSlow, 2.0);
  EXPECT_EQ(layout(m, 12), "SSSSSSSSFFFS");
  EXPECT_EQ(p->promoted(), 3u);
  EXPECT_EQ(p->demoted(), 8u);
  for (uint32_t t = 3; t <= 6; ++t) step(*p, m, t, {pc(11, 1)}, 0, kSlow, 2.0);
  EXPECT_EQ(m.node_of(key(11)), kSlow) << "1000 ms after the scan is not under the hot threshold";
}

// The hot threshold steps toward the promote rate limit every
// scan_period_max (here 4 s): with no candidates at all (under 90% of what
// 65536 MB/s lets through) it rises by an eighth of twice the default, to
// 1125 ms. C (slow, one sample an interval at 1 s into its 2 s interval,
// the window at its start) faults 1000 ms after the scan: not hot at 1 s
// and 3 s; at 5 s, the first fault more than 4 s after the start, the
// threshold rises first and C goes up. (A fast node of 100 pages: high 45.)
TEST(LinuxTiering, HotThresholdRisesWhileCandidatesAreUnderTheRateLimit) {
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 4, .scan_delay_s = 0};
  auto p = mb::make_linux_tiering({.scan = scan});
  auto m = model(100);
  step(*p, m, 1, {pc(0, 1)}, 0, kSlow, /*interval_s=*/2.0);
  step(*p, m, 2, {pc(0, 1)}, 0, kSlow, 2.0);
  EXPECT_EQ(m.node_of(key(0)), kSlow);
  step(*p, m, 3, {pc(0, 1)}, 0, kSlow, 2.0);
  EXPECT_EQ(m.node_of(key(0)), kFast);
  EXPECT_EQ(p->promoted(), 1u);
}

// With plenty free on the fast node (more than 1 GiB, or a sixteenth of
// it, above the promo watermark: pgdat_free_space_enough) any faulting page
// goes up, however long after the scan: C, 1000 ms after it, not hot, goes
// up at its first fault when the fast node holds 300000 pages (free 300000 >
// 262144 + promo 1994: min_free_kbytes 4381 for 300001 pages, min 1094,
// steps of 300), not when it holds 200000.
TEST(LinuxTiering, PlentyFreeTakesAnyFaultingPage) {
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 60, .scan_delay_s = 0};
  for (const uint64_t cap : {300000u, 200000u}) {
    auto p = mb::make_linux_tiering({.scan = scan});
    auto m = model(cap);
    step(*p, m, 1, {pc(0, 1)}, 0, kSlow, /*interval_s=*/2.0);
    EXPECT_EQ(m.node_of(key(0)), cap == 300000 ? kFast : kSlow) << cap;
  }
}

// The promote rate limit as numa_promotion_rate_limit counts it: a window
// restarted by the first candidate more than a second after its start, not
// the calendar second. A limit of 2 pages a second (2/256 MB/s); four slow
// pages P0-P3, 4 samples each per 2 s interval, the window at each second
// unmapping them: they fault at .25 and 1.25 (then 2.25, 3.25), 0.25 s
// after the scan: hot. At .25 P0 opens the window (0 counted before it:
// up), P1 (1: up), P2 and P3 (2, 3: the limit is reached) stay; at 1.25 the
// window (started at .25) is still open: P2 and P3 stay again. At 2.25 P2
// opens a new window and goes up, P3 (1) too. (Per calendar second P2 and
// P3 went up at 1.25.) The fast node of 100 pages is far above its
// watermarks (high 44).
TEST(LinuxTiering, PromoteRateLimitWindowStartsAtACandidate) {
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 60, .scan_delay_s = 0};
  auto p = mb::make_linux_tiering({.scan = scan, .promote_rate_limit_mbps = 2.0 / 256});
  auto m = model(100);
  const std::vector<PageCount> four = {pc(0, 4), pc(1, 4), pc(2, 4), pc(3, 4)};
  step(*p, m, 1, four, 0, kSlow, /*interval_s=*/2.0);
  EXPECT_EQ(layout(m, 4), "FFSS");
  step(*p, m, 2, {pc(2, 4), pc(3, 4)}, 0, kSlow, 2.0);
  EXPECT_EQ(layout(m, 4), "FFFF");
  EXPECT_EQ(p->promoted(), 4u);
}

// The hot threshold is adjusted only where the fast node is short of free
// memory, as should_numa_migrate_memory does after pgdat_free_space_enough:
// a spell of plenty neither counts candidates nor restarts the period (4 s).
// Pages 1-3 fault at 1, 3 and 5 s with the fast node plenty free (300000
// pages) and go up whatever their latency. Then 40000 pages land there (free
// 259997, under 262144 + promo): page 4 faults at 7 s, 1000 ms after its
// scan. No adjustment since 0 and no candidates: the threshold rises to
// 1125 ms first and page 4 goes up. (Adjusting in the plenty spell too, at
// 5 s, left the period starting at 5 s and the threshold at 1000 ms: page 4
// stayed.)
TEST(LinuxTiering, PlentyFreeDoesNotAdjustTheHotThreshold) {
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 4, .scan_delay_s = 0};
  auto p = mb::make_linux_tiering({.scan = scan});
  auto m = model(300000, PlacementModel::Start::kRecorded);
  for (uint32_t t = 1; t <= 3; ++t) step(*p, m, t, {pc(t, 1)}, 0, kSlow, /*interval_s=*/2.0);
  EXPECT_EQ(layout(m, 4), "-FFF");
  for (int i = 0; i < 40000; ++i) m.place(key(1000 + i), kFast, false);
  step(*p, m, 4, {pc(4, 1)}, 0, kSlow, 2.0);
  EXPECT_EQ(m.node_of(key(4)), kFast);
  EXPECT_EQ(p->promoted(), 4u);
}

// A fast node of 100 pages (of 100 + fast_pages + 1: 128 KiB of
// min_free_kbytes) holding fast_pages, each sampled once, and slow page 90
// sampled 4 times in 2 s intervals: in interval 1 page 90 is refused for
// want of free memory (`why`) and kswapd, woken, finds no victim (every
// fast page was just sampled); in interval 2 it demotes the LRU, a batch of
// 32, past promo, and page 90 goes up.
void hot_page_waits_for_kswapd(int fast_pages, const char* why) {
  const mb::NumaScanConfig scan{.scan_size_mb = 256, .period_min_s = 1, .period_max_s = 60, .scan_delay_s = 0};
  auto p = mb::make_linux_tiering({.scan = scan});
  auto m = model(100, PlacementModel::Start::kRecorded);
  std::vector<PageCount> one;
  for (int i = 0; i < fast_pages; ++i) {
    m.place(key(i), kFast, false);
    one.push_back(pc(i, 1));
  }
  one.push_back(pc(90, 4));
  step(*p, m, 1, one, 0, kSlow, /*interval_s=*/2.0);
  EXPECT_EQ(m.node_of(key(90)), kSlow) << why;
  EXPECT_EQ(p->promoted(), 0u);
  EXPECT_EQ(p->demoted(), 0u);
  step(*p, m, 2, {pc(90, 4)}, 0, kSlow, 2.0);
  EXPECT_EQ(m.node_of(key(90)), kFast);
  EXPECT_EQ(p->promoted(), 1u);
  EXPECT_EQ(p->demoted(), 32u);
  EXPECT_EQ(layout(m, 33), std::string(32, 'S') + "F");
}

// A promotion needs free memory strictly above high + its pages
// (migrate_balanced_pgdat through zone_watermark_ok). A fast node of 100
// pages holding 73 (and the slow node 74 pages: min_free_kbytes 128, the
// fast node's share 18 pages, steps of 4, high 26): free 27 is not above
// 26 + 1, so hot page 90 stays.
TEST(LinuxTiering, PromotionNeedsFreeStrictlyAboveHighPlusItsPages) {
  hot_page_waits_for_kswapd(73, "free 27 is not above high 26 + 1");
}

// vm.min_free_kbytes by the kernel's boot formula: sqrt(16 x KiB), within
// [128, 262144].
TEST(LinuxTiering, DefaultMinFreeKbytes) {
  EXPECT_EQ(mb::default_min_free_kbytes(262144), 4096u);  // 1 GiB: sqrt(16 x 1048576)
  EXPECT_EQ(mb::default_min_free_kbytes(1000), 252u);     // sqrt(64000) = 252.98
  EXPECT_EQ(mb::default_min_free_kbytes(100), 128u);      // sqrt(6400) = 80, raised to 128
  EXPECT_EQ(mb::default_min_free_kbytes(1ull << 32), 262144u);  // 16 TiB: 524288, lowered
}

// A node's watermarks by hand. 64 MiB (16384 pages) of 1 GiB: min_free_kbytes
// 4096 = 1024 pages, the node's share 64; steps of max(64 / 4, 16384 x 10 /
// 10000 = 16) = 16. 1 GiB of 4 GiB: min_free_kbytes 8192 = 2048 pages, the
// node's 512; steps of max(128, 262) = 262.
TEST(LinuxTiering, KernelWatermarks) {
  auto wm = mb::kernel_watermarks(16384, 262144, 4096, 10);
  EXPECT_EQ(wm.min, 64u);
  EXPECT_EQ(wm.low, 80u);
  EXPECT_EQ(wm.high, 96u);
  EXPECT_EQ(wm.promo, 112u);
  wm = mb::kernel_watermarks(262144, 1048576, mb::default_min_free_kbytes(1048576), 10);
  EXPECT_EQ(wm.min, 512u);
  EXPECT_EQ(wm.low, 774u);
  EXPECT_EQ(wm.high, 1036u);
  EXPECT_EQ(wm.promo, 1298u);
}

// min_free_kbytes in the policy: a fast node of 100 pages, 90 of them
// taken (F0-F89, recorded fast, sampled in interval 1), one hot slow page
// A (key 90: 4 samples per 2 s interval, faults 0.25 s after each scan).
// The memory: 100 + 91 pages, min_free_kbytes 128 (sqrt(12224) = 110,
// raised), 32 pages, the node's share 16; steps of max(4, 0): low 20, high
// 24, promo 28. Free 10 < high 24 + 1: A stays in interval 1 (with
// min_free_kbytes left out, high was 2 and A went up), and kswapd finds no
// victim (every fast page was just sampled). Interval 2: A's fault at 2.25
// is refused again; kswapd demotes the LRU, a batch of 32 (F0-F31), past
// promo 28; A goes up at its fault at 3.25.
TEST(LinuxTiering, WatermarksIncludeMinFreeKbytes) {
  hot_page_waits_for_kswapd(90, "free 10 is under high 24 + 1");
}

// ---- memtierd-age ---------------------------------------------------------------

// Defaults: one interval = one 5 s round; active = sampled in the last 3
// intervals (10 s / 5 s = 2 earlier rounds + this one), idle = not sampled
// in the last 3 (15 s).
std::vector<std::vector<PageCount>> memtierd_trace() {
  return {
      {pc(0, 1), pc(1, 1), pc(2, 1)},  // 1
      {pc(0, 1), pc(1, 1)},            // 2: 2 skips a round
      {pc(0, 5), pc(1, 1), pc(2, 3)},  // 3
      {pc(2, 1), pc(3, 1)},            // 4
      {pc(2, 1), pc(3, 1)},            // 5
      {pc(2, 1), pc(3, 1)},            // 6
  };
}

TEST(MemtierdAge, ActiveUpIdleDown) {
  auto p = mb::make_sim_policy("memtierd-age");
  auto m = model(2);
  const auto tr = memtierd_trace();
  // 1, 2: nobody has been active for 3 rounds yet.
  step(*p, m, 1, tr[0]);
  step(*p, m, 2, tr[1]);
  EXPECT_EQ(layout(m, 4), "SSS-");
  // 3: 0 and 1 sampled in 1, 2, 3: active, up (0 first: more accesses).
  //    2 skipped round 2: its run starts again at 3.
  step(*p, m, 3, tr[2]);
  EXPECT_EQ(layout(m, 4), "FFS-");
  EXPECT_EQ(p->promoted(), 2u);
  // 4, 5: 2 becomes active in 5 (3, 4, 5) but the node is full and 0, 1
  //    were last sampled in 3: not idle yet. No capacity-driven demotion.
  step(*p, m, 4, tr[3]);
  step(*p, m, 5, tr[4]);
  EXPECT_EQ(layout(m, 4), "FFSS");
  EXPECT_EQ(p->promoted(), 2u);
  EXPECT_EQ(p->demoted(), 0u);
  // 6: 0 and 1 unsampled in 4, 5, 6: idle, down (tie on age, by key);
  //    then 2 (active since 3) and 3 (sampled in 4, 5, 6) up.
  step(*p, m, 6, tr[5]);
  EXPECT_EQ(layout(m, 4), "SSFF");
  EXPECT_EQ(p->promoted(), 4u);
  EXPECT_EQ(p->demoted(), 2u);
}

TEST(MemtierdAge, BudgetDemotionsFirst) {
  auto p = mb::make_sim_policy("memtierd-age");
  auto m = model(2);
  const auto tr = memtierd_trace();
  for (uint32_t t = 1; t <= 5; ++t) step(*p, m, t, tr[t - 1]);
  // 6 with 3 pages: both demotions, then one promotion (2 before 3: same
  // accesses, by key).
  step(*p, m, 6, tr[5], /*budget=*/3);
  EXPECT_EQ(layout(m, 4), "SSFS");
  EXPECT_EQ(p->promoted(), 3u);
  EXPECT_EQ(p->demoted(), 2u);
}

TEST(MemtierdAge, HugePagesCost512) {
  // Active at first sight (ActiveDurationMs < IntervalMs: 0 earlier rounds).
  auto p = mb::make_memtierd_age({.interval_ms = 5000, .active_duration_ms = 1000, .idle_duration_ms = 15000});
  auto m = model(1024);
  // 511 pages of budget: the huge page (more accesses) does not fit the
  // budget, the base page behind it does.
  step(*p, m, 1, {pc(0, 9, true), pc(512, 1)}, /*budget=*/511);
  EXPECT_EQ(m.node_of(key(0)), kSlow);
  EXPECT_EQ(m.node_of(key(512)), kFast);
  EXPECT_EQ(p->promoted(), 1u);
  step(*p, m, 2, {pc(0, 9, true)});
  EXPECT_EQ(m.node_of(key(0)), kFast);
  EXPECT_EQ(p->promoted(), 513u);
  EXPECT_EQ(m.used_pages(kFast), 513u);
}

// ---- properties over random traces ---------------------------------------------

struct Trace {
  std::vector<std::vector<PageCount>> intervals;
};

// 400 pages (every 10th huge), a hot set that moves every 8 intervals.
Trace random_trace(uint32_t seed, int intervals) {
  std::mt19937 rng(seed);
  Trace tr;
  for (int t = 0; t < intervals; ++t) {
    std::vector<PageCount> c;
    const int hot_base = (t / 8) * 37 % 400;
    for (int i = 0; i < 400; ++i) {
      const bool hot = (i - hot_base + 400) % 400 < 40;
      const uint32_t roll = rng() % 100;
      if (roll >= (hot ? 90u : 15u)) continue;
      const uint32_t accesses = 1 + rng() % (hot ? 40 : 3);
      // A huge page in a 2 MiB range of its own (above the base pages').
      c.push_back(i % 10 == 0 ? PageCount{key(512 * (1 + i / 10)), accesses, true} : pc(i, accesses));
    }
    tr.intervals.push_back(std::move(c));
  }
  return tr;
}

TEST(SimPolicies, OrderOfCountsDoesNotMatter) {
  const Trace tr = random_trace(7, 40);
  for (const auto& name : mb::sim_policy_names()) {
    auto a = mb::make_sim_policy(name), b = mb::make_sim_policy(name);
    auto ma = model(3000), mb_ = model(3000);
    std::mt19937 rng(11);
    for (uint32_t t = 1; t <= tr.intervals.size(); ++t) {
      auto c = tr.intervals[t - 1];
      step(*a, ma, t, c, 2000);
      std::shuffle(c.begin(), c.end(), rng);
      step(*b, mb_, t, c, 2000);
      ASSERT_EQ(layout(ma, 400), layout(mb_, 400)) << name << " interval " << t;
    }
    EXPECT_EQ(a->promoted(), b->promoted()) << name;
    EXPECT_EQ(a->demoted(), b->demoted()) << name;
  }
}

TEST(SimPolicies, CapacityBudgetAndCounters) {
  const Trace tr = random_trace(3, 60);
  for (const auto& name : mb::sim_policy_names()) {
    for (uint64_t budget : {0u, 600u, 1500u}) {
      auto p = mb::make_sim_policy(name);
      auto m = model(2500);
      uint64_t moved_before = 0;
      for (uint32_t t = 1; t <= tr.intervals.size(); ++t) {
        step(*p, m, t, tr.intervals[t - 1], budget);
        const uint64_t moved = p->promoted() + p->demoted();
        if (budget) {
          EXPECT_LE(moved - moved_before, budget) << name << " interval " << t;
        }
        moved_before = moved;
        EXPECT_LE(m.used_pages(kFast), 2500u) << name;
        // Every page started slow: the fast node holds what went up minus what came down.
        EXPECT_EQ(m.used_pages(kFast), p->promoted() - p->demoted()) << name << " interval " << t;
      }
      EXPECT_GT(p->promoted(), 0u) << name << " budget " << budget;
    }
  }
}

TEST(SimPolicies, OracleBoundsThePolicies) {
  // The engine's accounting, roughly: hits of an interval = accesses of its
  // pages on the fast node before the policy runs; never above the oracle.
  const Trace tr = random_trace(5, 40);
  for (const auto& name : mb::sim_policy_names()) {
    auto p = mb::make_sim_policy(name);
    auto m = model(2500);
    for (uint32_t t = 1; t <= tr.intervals.size(); ++t) {
      const auto& c = tr.intervals[t - 1];
      uint64_t hits = 0;
      for (const auto& x : c) {
        m.place(x.key, -1, x.huge);
        if (m.node_of(x.key) == kFast) hits += x.accesses;
      }
      EXPECT_LE(hits, mb::oracle_hits(c, 2500)) << name << " interval " << t;
      p->interval(ctx(t), c, m);
    }
  }
}

}  // namespace

namespace {

// Applying a plan to the model counts what moved into and out of each node,
// as the mover's stats do: not what was refused for want of room.
// ---- size changes ------------------------------------------------------------------

// Base pages 0..511 (one 2 MiB range) sampled, 1 access each, in interval 1.
std::vector<PageCount> base_range(uint32_t accesses = 1) {
  std::vector<PageCount> c;
  for (int i = 0; i < 512; ++i) c.push_back(pc(i, accesses));
  return c;
}

// memtis, fast tier of 512 pages. Interval 1: the 512 base pages of a range
// (count 1: bin 1) and page Z = 1000 (40 accesses: bin 5); the hot
// threshold fits 513 pages in 512 at bin 2, so Z alone goes up. Interval 2:
// the range's huge page, 1 access: khugepaged collapsed it. Its count is
// its base pages' summed, 512 + 1 = 513 (bin 9), 512 pages there; bin 9
// fits, bin 5 with it does not: the threshold rises to 6 (count 63), the
// huge page is hot and Z (40) is now cold: Z goes down to make room and the
// huge page up. The fast tier then holds the huge page alone: 512 pages.
TEST(SizeChange, MemtisCollapseSumsTheCounts) {
  auto m = model(512);
  auto p = mb::make_memtis();
  auto c1 = base_range();
  c1.push_back(pc(1000, 40));
  step(*p, m, 1, c1);
  ASSERT_EQ(m.node_of(key(1000)), kFast);
  ASSERT_EQ(p->promoted(), 1u);
  step(*p, m, 2, {pc(0, 1, true)});
  EXPECT_TRUE(m.huge(key(0)));
  EXPECT_EQ(m.node_of(key(0)), kFast);
  EXPECT_EQ(m.node_of(key(1000)), kSlow);
  EXPECT_EQ(m.used_pages(kFast), 512u);
  EXPECT_EQ(m.used_pages(kSlow), 1u);
  EXPECT_EQ(p->promoted(), 1u + 512);
  EXPECT_EQ(p->demoted(), 1u);
}

// memtierd-age (active: sampled 3 intervals in a row). The 512 base pages of
// a range are sampled in intervals 1 and 2, their huge page in 3: it was
// sampled whenever any of them was, so it is active in 3 and goes up whole,
// 512 pages, when the budget covers them; a budget of 511 pages does not.
TEST(SizeChange, MemtierdAgeCollapsedPageKeepsItsRunAndMovesWhole) {
  for (const uint64_t budget : {0ull, 511ull}) {
    auto m = model(1000);
    auto p = mb::make_memtierd_age();
    step(*p, m, 1, base_range(), budget);
    step(*p, m, 2, base_range(), budget);
    ASSERT_EQ(p->promoted(), 0u);
    step(*p, m, 3, {pc(0, 5, true)}, budget);
    EXPECT_EQ(m.pages(), 1u);
    EXPECT_EQ(p->promoted(), budget ? 0u : 512u) << budget;
    EXPECT_EQ(m.used_pages(kFast), budget ? 0u : 512u) << budget;
    EXPECT_EQ(m.used_pages(kFast) + m.used_pages(kSlow), 512u);
  }
}

// memtierd-age: a huge page sampled in intervals 1 and 2, then a base page
// inside it in 3 (split). The base pages inherit the huge page's run, so
// the one sampled in 3 has been sampled 3 intervals in a row: active, it
// goes up, one page; its 511 siblings, not sampled in 3, stay. Capacity
// stays 512 pages in all.
TEST(SizeChange, MemtierdAgeSplitPagesInheritTheRun) {
  auto m = model(1000);
  auto p = mb::make_memtierd_age();
  step(*p, m, 1, {pc(0, 5, true)});
  step(*p, m, 2, {pc(0, 5, true)});
  step(*p, m, 3, {pc(1, 5)});
  EXPECT_EQ(m.pages(), 512u);
  EXPECT_EQ(p->promoted(), 1u);
  EXPECT_EQ(m.node_of(key(1)), kFast);
  EXPECT_EQ(m.node_of(key(2)), kSlow);
  EXPECT_EQ(m.used_pages(kFast), 1u);
  EXPECT_EQ(m.used_pages(kSlow), 511u);
}

// tpp: the split base pages keep the huge page's LRU state. A huge page
// takes hint faults on the slow node (referenced, then active) and is then
// split; a base page of it taking the next fault is promoted at once (its
// third), as the THP would have been, not after two more.
TEST(SizeChange, TppSplitPagesKeepTheLruState) {
  auto m = model(1000);
  mb::TppConfig cfg;
  cfg.scan.scan_delay_s = 0;
  cfg.scan.period_min_s = cfg.scan.period_max_s = 1;  // every page unmapped once a second
  auto p = mb::make_tpp(cfg);
  for (uint32_t t = 1; t <= 2; ++t) step(*p, m, t, {pc(0, 1, true)});
  ASSERT_EQ(p->promoted(), 0u);
  step(*p, m, 3, {pc(5, 1)});
  EXPECT_EQ(p->promoted(), 1u);
  EXPECT_EQ(m.node_of(key(5)), kFast);
  EXPECT_EQ(m.used_pages(kFast) + m.used_pages(kSlow), 512u);
}

TEST(ApplyPlan, CountsWhatMovedPerNode) {
  auto m = model(1);
  m.place(key(0), -1, false);
  m.place(key(1), -1, false);
  mb::Plan plan;
  for (int page : {0, 1})
    plan.moves.push_back({4242, (0x1000ull + page) << MB_PAGE_SHIFT, false, kSlow, kFast, mb::MoveDirection::kPromote,
                          mb::MoveReason::kHot, 5.0f});
  std::map<int, mb::NodeFlow> flows;
  EXPECT_EQ(mb::apply_plan(plan, m, &flows), 1u);  // room for one
  EXPECT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[kFast].in, 1u);
  EXPECT_EQ(flows[kFast].out, 0u);
  EXPECT_EQ(flows[kSlow].out, 1u);
  EXPECT_EQ(flows[kFast].promoted_in, 1u) << "the refused one did not arrive";
  EXPECT_EQ(flows[kSlow].demoted_in, 0u);
  EXPECT_EQ(m.node_of(key(0)), kFast);
}

}  // namespace
