// Unit tests for membalancer/page_table.h: the user-space page table (open
// addressing, linear probing, backward-shift deletion, growth on demand, lazy
// heat decay, periodic forgetting, bounded capacity).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <unordered_set>
#include <vector>

#include "membalancer/page_table.h"

namespace {

using mb::PageEntry;
using mb::PageTable;

uint64_t key(uint32_t tgid, uint64_t vpn) { return mb_page_key(tgid, vpn); }

// The table's home slot function, replicated so that tests can build probe
// runs that wrap around the end of the slot array on purpose.
size_t home_of(uint64_t k, size_t slots) {
  uint64_t h = k * 0x9E3779B97F4A7C15ULL;
  return static_cast<size_t>((static_cast<unsigned __int128>(h) * slots) >> 64);
}

std::vector<uint64_t> keys_in_slot_order(const PageTable& t) {
  std::vector<uint64_t> out;
  t.for_each([&](const PageEntry& e) { out.push_back(e.key); });
  return out;
}

TEST(PageTable, EmptyTable) {
  PageTable t(16);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), 16u);
  EXPECT_EQ(t.find(key(1, 1)), nullptr);
  EXPECT_EQ(t.find(0), nullptr);
  int n = 0;
  t.for_each([&](const PageEntry&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST(PageTable, InsertAndFind) {
  PageTable t(64);
  t.begin_interval(1);
  PageEntry* e = t.add(key(42, 0x1234), 3, nullptr, MB_NODE_UNKNOWN);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->key, key(42, 0x1234));
  EXPECT_EQ(e->tgid(), 42u);
  EXPECT_EQ(e->vaddr(), 0x1234ull << MB_PAGE_SHIFT);
  EXPECT_FLOAT_EQ(e->heat, 3.0f);
  EXPECT_EQ(e->last_seen, 1u);
  EXPECT_EQ(e->node, MB_NODE_UNKNOWN);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.stats().inserted, 1u);
  EXPECT_EQ(t.find(key(42, 0x1234)), e);
  const PageTable& ct = t;
  EXPECT_EQ(ct.find(key(42, 0x1234)), e);
  EXPECT_EQ(t.find(key(42, 0x1235)), nullptr);
  EXPECT_EQ(t.find(key(43, 0x1234)), nullptr);
}

TEST(PageTable, KeyZeroIsNeverStored) {
  PageTable t(8);
  EXPECT_EQ(t.add(0, 5, nullptr, 1), nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().inserted, 0u);
  EXPECT_EQ(t.stats().dropped_full, 0u);
}

TEST(PageTable, HeatAccumulatesWithinAnInterval) {
  PageTable t(64);
  t.begin_interval(1);
  t.add(key(1, 7), 2, nullptr, MB_NODE_UNKNOWN);
  t.add(key(1, 7), 5, nullptr, MB_NODE_UNKNOWN);
  PageEntry* e = t.add(key(1, 7), 1, nullptr, MB_NODE_UNKNOWN);
  ASSERT_NE(e, nullptr);
  EXPECT_FLOAT_EQ(e->heat, 8.0f);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.stats().inserted, 1u);
}

// Adaptive forgetting: an interval whose samples fall on other pages than
// the heat predicted scales the heat from before it (lazily, by interval),
// not the samples of the interval itself, and the decay carries on after.
TEST(PageTable, APatternChangeScalesTheHeatBeforeIt) {
  PageTable t(64, 0.5f);
  const uint64_t a = key(1, 1), b = key(1, 2), c = key(1, 3);
  for (uint32_t i = 1; i <= 6; ++i) {
    t.begin_interval(i);
    t.add(a, 40, nullptr, 0);
    t.add(b, 40, nullptr, 0);
    t.end_interval();
    EXPECT_FLOAT_EQ(t.kept_now(), 1.0f);
  }
  EXPECT_NEAR(t.last_overlap(), 1.0, 1e-3);
  const float before = t.heat(*t.find(a)) * 0.5f;  // what decay alone leaves
  t.begin_interval(7);
  t.add(b, 2, nullptr, 0);  // b: nearly cold
  t.add(b, 2, nullptr, 0);  // (twice in one interval)
  t.add(c, 80, nullptr, 0); // c: new and hot; a: unseen
  t.end_interval();
  t.end_interval();  // idempotent
  const float k = t.kept_now();
  EXPECT_LT(k, 0.5f);
  EXPECT_GT(k, 0.0f);
  EXPECT_NEAR(t.heat(*t.find(a)), before * k, 1e-3f * before);
  EXPECT_NEAR(t.heat(*t.find(b)), before * k + 4, 1e-3f * before);
  EXPECT_NEAR(t.heat(*t.find(c)), 80.0f, 1e-3f);
  t.begin_interval(8);  // the next interval decays as usual
  EXPECT_NEAR(t.heat(*t.find(a)), before * k * 0.5f, 1e-3f * before);
  t.add(c, 80, nullptr, 0);
  EXPECT_NEAR(t.heat(*t.find(c)), 120.0f, 1e-2f);
  t.end_interval();
  EXPECT_FLOAT_EQ(t.kept_now(), 1.0f);  // c again: no change
}

// After a change of pattern the new hot set ranks above the old one at
// once, even while the old one is still sampled now and then. 100 pages
// have 20 accesses an interval until decay (0.875) has built their heat up
// to about 8 intervals' worth (160); then 100 other pages take 20 and the
// old ones 5. The heat before keeps at most the share of this interval's
// samples that it explains (about rel^2 of 2500 samples), not rel^2 of
// itself: that left the old pages at 0.2 x 140 + 5 = 33, above the new 20.
TEST(PageTable, AChangedPatternKeepsNoMoreOldHeatThanItExplains) {
  PageTable t(1024, 0.875f);
  for (uint32_t i = 1; i <= 60; ++i) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 100; ++p) t.add(key(1, p), 20, nullptr, 0);
    t.end_interval();
  }
  const float old_before = t.heat(*t.find(key(1, 0)));
  ASSERT_NEAR(old_before, 160.0f, 1.0f);
  t.begin_interval(61);
  for (uint64_t p = 0; p < 100; ++p) t.add(key(1, p), 5, nullptr, 0);
  for (uint64_t p = 0; p < 100; ++p) t.add(key(1, 1000 + p), 20, nullptr, 0);
  t.end_interval();
  const double rel = t.last_overlap();  // the usual overlap was 1
  ASSERT_LT(rel, PageTable::kChangedOverlap);
  const double decayed = old_before * 0.875, samples = 2500;
  EXPECT_NEAR(t.kept_now(), rel * rel * samples / (100 * decayed), 1e-3);
  for (uint64_t p = 0; p < 100; ++p) {
    EXPECT_LT(t.heat(*t.find(key(1, p))), t.heat(*t.find(key(1, 1000 + p))));
  }
}

// A change of pattern under a steady background is seen too. 100 hot pages
// take 20 accesses an interval and 400 background pages 2; then 100 of the
// background pages become the hot set and the old hot pages background.
// The background samples, which the old heat still predicts, keep the
// overlap at about 0.71 of its usual level: above half of it (the old
// test), so the old hot set kept heat 142 against the new one's 34 until
// decay caught up, intervals later.
TEST(PageTable, AChangeUnderASteadyBackgroundIsSeen) {
  PageTable t(1024, 0.875f);
  auto interval = [&](uint32_t i, uint64_t hot_first) {
    t.begin_interval(i);
    for (uint64_t p = 0; p < 500; ++p) {
      const bool hot = p >= hot_first && p < hot_first + 100;
      t.add(key(1, p), hot ? 20 : 2, nullptr, 0);
    }
    t.end_interval();
  };
  for (uint32_t i = 1; i <= 60; ++i) {
    interval(i, 0);
    EXPECT_FLOAT_EQ(t.kept_now(), 1.0f) << "interval " << i;
  }
  interval(61, 100);
  EXPECT_LT(t.kept_now(), 1.0f);
  EXPECT_GT(t.last_overlap(), 0.5);
  for (uint64_t p = 0; p < 100; ++p) {
    EXPECT_LT(t.heat(*t.find(key(1, p))), t.heat(*t.find(key(1, 100 + p))));
  }
}

// The noise of heat against its mean (Poisson accesses): sum w^2 / sum w
// over the weights heat gives each interval's accesses since the table's
// first interval. A plain count at first, 1 / (1 + d) in the steady state,
// a count again without decay, and nearer one after a change of pattern.
TEST(PageTable, NoiseRatioFollowsTheWeightsOfTheHeat) {
  PageTable t(64, 0.5f);
  EXPECT_FLOAT_EQ(t.noise_ratio(), 1.0f);
  t.begin_interval(1);
  EXPECT_FLOAT_EQ(t.noise_ratio(), 1.0f);
  t.begin_interval(2);
  EXPECT_FLOAT_EQ(t.noise_ratio(), (1 + 0.25f) / (1 + 0.5f));
  t.begin_interval(60);
  EXPECT_NEAR(t.noise_ratio(), 1 / 1.5f, 1e-5f);

  PageTable keep(64, 1.0f);
  keep.begin_interval(1);
  keep.begin_interval(50);
  EXPECT_FLOAT_EQ(keep.noise_ratio(), 1.0f);

  PageTable changed(64, 0.5f);
  const uint64_t a = key(1, 1), b = key(1, 2);
  for (uint32_t i = 1; i <= 6; ++i) {
    changed.begin_interval(i);
    changed.add(a, 40, nullptr, 0);
    changed.end_interval();
  }
  const float steady = changed.noise_ratio();
  changed.begin_interval(7);
  changed.add(b, 80, nullptr, 0);  // the samples fall elsewhere
  changed.end_interval();
  const float k = changed.kept_now();
  ASSERT_LT(k, 0.5f);
  double sum = 0, squares = 0;
  for (int age = 0; age <= 6; ++age) {
    const double w = age == 0 ? 1.0 : k * std::pow(0.5, age);
    sum += w;
    squares += w * w;
  }
  EXPECT_NEAR(changed.noise_ratio(), squares / sum, 1e-5);
  EXPECT_GT(changed.noise_ratio(), steady);
}

TEST(PageTable, DecayHalvesHeatAndLanes) {
  PageTable t(64, 0.5f);
  t.begin_interval(1);
  uint16_t lanes[MB_CPU_LANES] = {100, 7, 0, 1, 2, 3, 1000, 65535};
  t.add(key(1, 1), 64, lanes, MB_NODE_UNKNOWN);
  t.begin_interval(2);
  const PageEntry* e = t.find(key(1, 1));
  ASSERT_NE(e, nullptr);
  // Lazy: the stored heat is as of the last access, heat() is as of now.
  EXPECT_FLOAT_EQ(e->heat, 64.0f);
  EXPECT_FLOAT_EQ(t.heat(*e), 32.0f);
  for (int l = 0; l < MB_CPU_LANES; ++l) EXPECT_FLOAT_EQ(t.lane_heat(*e, l), lanes[l] * 0.5f) << "lane " << l;
  // Accesses of the new interval add to the decayed heat.
  e = t.add(key(1, 1), 4, lanes, MB_NODE_UNKNOWN);
  EXPECT_FLOAT_EQ(t.heat(*e), 36.0f);
  EXPECT_FLOAT_EQ(e->heat, 36.0f);
  EXPECT_EQ(e->lane_heat[0], 150);
  EXPECT_EQ(e->lane_heat[1], 10);  // 3.5 + 7, stored as an integer
  EXPECT_EQ(e->lane_heat[7], 65535);  // 32767.5 + 65535 saturates
  EXPECT_EQ(e->last_seen, 2u);
  t.begin_interval(3);
  EXPECT_FLOAT_EQ(t.heat(*e), 18.0f);
  EXPECT_FLOAT_EQ(t.lane_heat(*e, 0), 75.0f);
  t.begin_interval(5);
  EXPECT_FLOAT_EQ(t.heat(*e), 4.5f);
  EXPECT_EQ(t.interval(), 5u);
  // Far in the future the heat is 0 (10001 is not a sweep interval, so the
  // entry is still there), and the next sweep forgets it.
  t.begin_interval(10001);
  ASSERT_NE(t.find(key(1, 1)), nullptr);
  EXPECT_EQ(t.heat(*t.find(key(1, 1))), 0.0f);
  EXPECT_EQ(t.lane_heat(*t.find(key(1, 1)), 7), 0.0f);
  t.begin_interval(10008);
  EXPECT_EQ(t.find(key(1, 1)), nullptr);
}

namespace {

// Two base pages of the 2 MiB at vpn 0x400, returned, sampled at different
// times (decay 0.5): page 0 took 8 accesses (lane 0) in interval 1, page 5
// took 4 (lane 1) in interval 3; the table is at interval 4.
uint64_t two_base_pages_of_a_range(PageTable& t) {
  const uint64_t first = key(1, 0x400);
  const uint16_t lanes_a[MB_CPU_LANES] = {8};
  const uint16_t lanes_b[MB_CPU_LANES] = {0, 4};
  t.begin_interval(1);
  t.add(first, 8, lanes_a, 1);
  t.begin_interval(3);
  t.add(first + 5, 4, lanes_b, 1);
  t.begin_interval(4);
  return first;
}

}  // namespace

// A collapse: the base pages of a 2 MiB range, sampled at different times,
// become one huge page whose heat is the sum of theirs, each decayed to now
// (lazily: their stored heats are as of different intervals). By hand, decay
// 0.5: page 0 took 8 accesses in interval 1, page 5 took 4 in interval 3;
// at interval 4 they weigh 8 x 0.5^3 = 1 and 4 x 0.5 = 2, so every base page
// of the huge page holds 3, and the huge page's 2 accesses make it 5 (each
// base page, as a huge page's samples add to each). Lanes sum alike. Before,
// the huge page had its first base page's own heat: 1 + 2 = 3, and the rest
// 2 each (page 5: 4).
TEST(PageTable, ACollapseSumsItsBasePagesHeatDecayedToNow) {
  PageTable t(1024, 0.5f);
  const uint64_t first = two_base_pages_of_a_range(t);
  EXPECT_FALSE(t.collapse(key(1, 0x800))) << "no base page there: not a collapse";
  EXPECT_EQ(t.size(), 2u);
  ASSERT_TRUE(t.collapse(first));
  EXPECT_EQ(t.size(), 512u) << "every base page of the huge page is held";
  for (uint64_t k : {first, first + 5, first + 511}) {
    const PageEntry* e = t.find(k);
    ASSERT_NE(e, nullptr) << k - first;
    EXPECT_TRUE(e->huge()) << k - first;
    EXPECT_FLOAT_EQ(t.heat(*e), 3.0f) << k - first;
    EXPECT_FLOAT_EQ(t.lane_heat(*e, 0), 1.0f) << k - first;
    EXPECT_FLOAT_EQ(t.lane_heat(*e, 1), 2.0f) << k - first;
  }
  for (uint64_t k = first; k < first + 512; ++k) t.add(k, 2, nullptr, 1);
  for (uint64_t k : {first, first + 5, first + 511}) EXPECT_FLOAT_EQ(t.heat(*t.find(k)), 5.0f) << k - first;
  EXPECT_FALSE(t.collapse(first)) << "a huge page already: nothing to merge";
  EXPECT_FLOAT_EQ(t.heat(*t.find(first)), 5.0f);
  // A later interval decays it as one page.
  t.begin_interval(5);
  EXPECT_FLOAT_EQ(t.heat(*t.find(first + 300)), 2.5f);
}

// The same collapse where a huge sample is one accessed bit a scan for the
// whole 2 MiB (abit), as a base page's is for it: the huge page is as hot as
// its hottest base page, page 5's 2 (with its lanes), not the sum 3.
TEST(PageTable, ACollapseOfScannedPagesTakesTheHottestBasePage) {
  PageTable t(1024, 0.5f);
  const uint64_t first = two_base_pages_of_a_range(t);
  ASSERT_TRUE(t.collapse(first, mb::CollapseHeat::kMax));
  for (uint64_t k : {first, first + 5, first + 511}) {
    const PageEntry* e = t.find(k);
    ASSERT_NE(e, nullptr) << k - first;
    EXPECT_TRUE(e->huge());
    EXPECT_FLOAT_EQ(t.heat(*e), 2.0f) << k - first;
    EXPECT_FLOAT_EQ(t.lane_heat(*e, 0), 0.0f) << k - first;
    EXPECT_FLOAT_EQ(t.lane_heat(*e, 1), 2.0f) << k - first;
  }
}

TEST(PageTable, OtherDecayFactors) {
  PageTable keep(8, 1.0f);
  keep.begin_interval(1);
  keep.add(key(1, 1), 10, nullptr, MB_NODE_UNKNOWN);
  keep.begin_interval(9);
  EXPECT_FLOAT_EQ(keep.heat(*keep.find(key(1, 1))), 10.0f);
  // Decay 1 keeps heat however long a page goes unseen.
  keep.begin_interval(100000);
  ASSERT_NE(keep.find(key(1, 1)), nullptr);
  EXPECT_FLOAT_EQ(keep.heat(*keep.find(key(1, 1))), 10.0f);

  PageTable quarter(8, 0.25f, 1000);
  quarter.begin_interval(1);
  quarter.add(key(1, 1), 64, nullptr, MB_NODE_UNKNOWN);
  quarter.begin_interval(2);
  EXPECT_FLOAT_EQ(quarter.heat(*quarter.find(key(1, 1))), 16.0f);
  quarter.begin_interval(3);
  EXPECT_FLOAT_EQ(quarter.heat(*quarter.find(key(1, 1))), 4.0f);
}

TEST(PageTable, LanesSaturateAt16Bits) {
  PageTable t(8);
  uint16_t lanes[MB_CPU_LANES] = {40000, 1, 0, 0, 0, 0, 0, 0};
  t.add(key(1, 1), 1, lanes, MB_NODE_UNKNOWN);
  t.add(key(1, 1), 1, lanes, MB_NODE_UNKNOWN);
  const PageEntry* e = t.find(key(1, 1));
  EXPECT_EQ(e->lane_heat[0], 0xffff);
  EXPECT_EQ(e->lane_heat[1], 2);
}

TEST(PageTable, ForgetsColdUnseenPagesOnly) {
  // forget_after 3 intervals, forget_heat 0.5, swept every interval.
  PageTable t(64, 0.5f, 3, 0.5f, 1);
  t.begin_interval(1);
  t.add(key(1, 1), 1, nullptr, MB_NODE_UNKNOWN);     // cold, seen once
  t.add(key(1, 2), 1000, nullptr, MB_NODE_UNKNOWN);  // hot, seen once
  t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);     // cold, seen every interval
  t.begin_interval(2);  // cold: 0.5
  t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);
  t.begin_interval(3);  // cold: 0.25, but seen 2 intervals ago
  t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);
  EXPECT_NE(t.find(key(1, 1)), nullptr);
  EXPECT_EQ(t.stats().forgotten, 0u);
  t.begin_interval(4);  // cold: 0.125 and unseen for 3 intervals: gone
  t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);
  EXPECT_EQ(t.find(key(1, 1)), nullptr);
  EXPECT_NE(t.find(key(1, 2)), nullptr);
  EXPECT_NE(t.find(key(1, 3)), nullptr);
  EXPECT_EQ(t.stats().forgotten, 1u);
  EXPECT_EQ(t.size(), 2u);

  // The hot page stays as long as its heat is at least forget_heat:
  // 1000 * 2^-10 = 0.98 at interval 11, 1000 * 2^-11 = 0.49 at interval 12.
  for (uint32_t i = 5; i <= 11; ++i) {
    t.begin_interval(i);
    t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);
  }
  ASSERT_NE(t.find(key(1, 2)), nullptr);
  EXPECT_NEAR(t.heat(*t.find(key(1, 2))), 1000.0 / 1024, 1e-4);
  t.begin_interval(12);
  t.add(key(1, 3), 1, nullptr, MB_NODE_UNKNOWN);
  EXPECT_EQ(t.find(key(1, 2)), nullptr);
  EXPECT_NE(t.find(key(1, 3)), nullptr);  // seen every interval: never forgotten
  EXPECT_EQ(t.stats().forgotten, 2u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(PageTable, ZeroAccessPageIsForgottenOnlyAfterForgetAfter) {
  PageTable t(8, 0.5f, 2, 0.5f, 1);
  t.begin_interval(10);
  t.add(key(5, 5), 0, nullptr, MB_NODE_UNKNOWN);
  t.begin_interval(11);
  EXPECT_NE(t.find(key(5, 5)), nullptr);
  t.begin_interval(12);
  EXPECT_EQ(t.find(key(5, 5)), nullptr);
}

TEST(PageTable, ForgettingManyPagesKeepsTheRestFindable) {
  // Half the pages go cold; deleting them shifts the others around.
  PageTable t(2000, 0.5f, 1, 0.5f, 1);
  t.begin_interval(1);
  for (uint64_t v = 1; v <= 2000; ++v) t.add(key(9, v), v % 2 ? 1 : 100, nullptr, MB_NODE_UNKNOWN);
  t.begin_interval(2);  // odd pages: heat 0.5, kept (not below forget_heat)
  EXPECT_EQ(t.size(), 2000u);
  t.begin_interval(3);  // odd pages: 0.25 -> forgotten
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.stats().forgotten, 1000u);
  for (uint64_t v = 1; v <= 2000; ++v) {
    const PageEntry* e = t.find(key(9, v));
    if (v % 2) {
      EXPECT_EQ(e, nullptr) << v;
    } else {
      ASSERT_NE(e, nullptr) << v;
      EXPECT_FLOAT_EQ(t.heat(*e), 25.0f) << v;  // decayed exactly twice, never more
    }
  }
}

TEST(PageTable, SweepsEverySweepEveryIntervals) {
  // forget_after 1, swept every 4 intervals (at intervals divisible by 4).
  PageTable t(64, 0.5f, 1, 0.5f, 4);
  t.begin_interval(1);
  t.add(key(1, 1), 0, nullptr, MB_NODE_UNKNOWN);
  t.add(key(1, 2), 100, nullptr, MB_NODE_UNKNOWN);
  t.begin_interval(2);
  t.begin_interval(3);
  EXPECT_NE(t.find(key(1, 1)), nullptr) << "forgettable, but no sweep yet";
  EXPECT_EQ(t.stats().forgotten, 0u);
  t.begin_interval(4);
  EXPECT_EQ(t.find(key(1, 1)), nullptr);
  EXPECT_NE(t.find(key(1, 2)), nullptr);  // 100 / 8 = 12.5: still warm
  EXPECT_EQ(t.stats().forgotten, 1u);
  // forget_cold() sweeps on demand and says how many went.
  t.begin_interval(9);  // 100 / 256 < 0.5; 9 is not a sweep interval
  EXPECT_NE(t.find(key(1, 2)), nullptr);
  EXPECT_EQ(t.forget_cold(), 1u);
  EXPECT_EQ(t.find(key(1, 2)), nullptr);
  EXPECT_EQ(t.forget_cold(), 0u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(PageTable, FullTableSweepsEveryInterval) {
  PageTable t(4, 0.5f, 1, 0.5f, 1000);
  t.begin_interval(1);
  for (uint64_t v = 1; v <= 4; ++v) t.add(key(1, v), v == 4 ? 100 : 0, nullptr, MB_NODE_UNKNOWN);
  EXPECT_EQ(t.add(key(1, 5), 1, nullptr, MB_NODE_UNKNOWN), nullptr);
  t.begin_interval(2);  // not a sweep interval, but the table is full
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.stats().forgotten, 3u);
  EXPECT_NE(t.find(key(1, 4)), nullptr);
  EXPECT_NE(t.add(key(1, 5), 1, nullptr, MB_NODE_UNKNOWN), nullptr);
}

TEST(PageTable, CapacityBound) {
  PageTable t(4);
  t.begin_interval(1);
  for (uint64_t v = 1; v <= 4; ++v) ASSERT_NE(t.add(key(1, v), 1, nullptr, MB_NODE_UNKNOWN), nullptr);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.add(key(1, 5), 7, nullptr, MB_NODE_UNKNOWN), nullptr);
  EXPECT_EQ(t.add(key(2, 1), 3, nullptr, 1), nullptr);
  EXPECT_EQ(t.stats().dropped_full, 10u);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.stats().inserted, 4u);
  EXPECT_EQ(t.find(key(1, 5)), nullptr);
  // Existing keys still update when full.
  PageEntry* e = t.add(key(1, 2), 9, nullptr, 3);
  ASSERT_NE(e, nullptr);
  EXPECT_FLOAT_EQ(e->heat, 10.0f);
  EXPECT_EQ(e->node, 3);
  EXPECT_EQ(t.stats().dropped_full, 10u);
  // Room again after a removal.
  t.remove_processes({1});
  EXPECT_EQ(t.size(), 0u);
  EXPECT_NE(t.add(key(1, 5), 1, nullptr, MB_NODE_UNKNOWN), nullptr);
  EXPECT_EQ(t.stats().dropped_full, 10u);
}

TEST(PageTable, TinyCapacitiesTerminate) {
  for (size_t cap : {0, 1, 2, 3}) {
    PageTable t(cap);
    size_t expect_cap = std::max<size_t>(cap, 1);
    EXPECT_EQ(t.capacity(), expect_cap);
    for (uint64_t v = 1; v <= 6; ++v) t.add(key(1, v), 1, nullptr, MB_NODE_UNKNOWN);
    EXPECT_EQ(t.size(), expect_cap);
    EXPECT_EQ(t.stats().dropped_full, 6 - expect_cap);
    EXPECT_EQ(t.find(key(1, 100)), nullptr);  // a miss on a full table ends
    EXPECT_GT(t.slot_count(), t.capacity());
  }
}

TEST(PageTable, MemoryPerPageIsBounded) {
  for (size_t cap : {4, 100, 1000, 1001, 4096, 10000, 65536, 1 << 20}) {
    PageTable t(cap);
    EXPECT_EQ(t.capacity(), cap);
    // Small until pages arrive.
    EXPECT_LE(t.memory_bytes(), std::max<size_t>(50 * cap, 4096 * sizeof(PageEntry))) << cap;
    for (uint64_t v = 1; v <= cap; ++v) ASSERT_NE(t.add(key(3, v), 1, nullptr, MB_NODE_UNKNOWN), nullptr) << v;
    EXPECT_EQ(t.size(), cap);
    EXPECT_GE(t.slot_count(), cap + 1) << cap;  // always an empty slot
    EXPECT_LE(t.memory_bytes(), 50 * cap) << "capacity " << cap << ": " << t.memory_bytes() << " bytes";
    EXPECT_EQ(t.add(key(3, cap + 1), 1, nullptr, MB_NODE_UNKNOWN), nullptr);
    EXPECT_NE(t.find(key(3, cap)), nullptr);
    EXPECT_NE(t.find(key(3, 1)), nullptr);
  }
  EXPECT_EQ(sizeof(PageEntry), 40u);
}

TEST(PageTable, GrowthKeepsEveryEntry) {
  PageTable t(100000, 0.5f);
  const size_t initial_slots = t.slot_count();
  EXPECT_LE(initial_slots, 4096u);
  t.begin_interval(1);
  uint16_t lanes[MB_CPU_LANES] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (uint64_t v = 1; v <= 30000; ++v)
    ASSERT_NE(t.add(key(static_cast<uint32_t>(v % 7 + 1), v), static_cast<uint32_t>(v % 100 + 1), lanes,
                    v % 3 ? static_cast<uint16_t>(v % 4) : static_cast<uint16_t>(MB_NODE_UNKNOWN)),
              nullptr);
  EXPECT_GT(t.slot_count(), initial_slots);
  EXPECT_GE(t.slot_count() * 4, t.size() * 5) << "load stays at most 0.8";
  EXPECT_EQ(t.size(), 30000u);
  EXPECT_EQ(t.stats().inserted, 30000u);
  for (uint64_t v = 1; v <= 30000; ++v) {
    const PageEntry* e = t.find(key(static_cast<uint32_t>(v % 7 + 1), v));
    ASSERT_NE(e, nullptr) << v;
    ASSERT_FLOAT_EQ(e->heat, static_cast<float>(v % 100 + 1));
    ASSERT_EQ(e->node, v % 3 ? v % 4 : static_cast<uint64_t>(MB_NODE_UNKNOWN));
    ASSERT_EQ(e->lane_heat[7], 8);
  }
  EXPECT_LE(t.memory_bytes(), 50u * 100000);
}

TEST(PageTable, NodeFromMemNodeAndNodeChecked) {
  PageTable t(16);
  t.begin_interval(5);
  PageEntry* e = t.add(key(1, 1), 1, nullptr, 3);
  EXPECT_EQ(e->node, 3);
  EXPECT_EQ(e->node_checked, 5u);
  t.begin_interval(6);
  e = t.add(key(1, 1), 1, nullptr, MB_NODE_UNKNOWN);  // unknown does not erase a known node
  EXPECT_EQ(e->node, 3);
  EXPECT_EQ(e->node_checked, 5u);
  t.begin_interval(7);
  e = t.add(key(1, 1), 1, nullptr, 0);  // node 0 is a node
  EXPECT_EQ(e->node, 0);
  EXPECT_EQ(e->node_checked, 7u);
  PageEntry* f = t.add(key(1, 2), 1, nullptr, MB_NODE_UNKNOWN);
  EXPECT_EQ(f->node, MB_NODE_UNKNOWN);
  EXPECT_EQ(f->node_checked, 0u);
}

TEST(PageTable, RemoveProcessesKeepsOthers) {
  PageTable t(4096);
  t.begin_interval(1);
  for (uint32_t tgid = 1; tgid <= 10; ++tgid)
    for (uint64_t v = 0; v < 300; ++v) ASSERT_NE(t.add(key(tgid, v), tgid, nullptr, MB_NODE_UNKNOWN), nullptr);
  EXPECT_EQ(t.size(), 3000u);
  t.remove_processes({});
  EXPECT_EQ(t.size(), 3000u);
  t.remove_processes({2, 5, 7, 99});
  EXPECT_EQ(t.size(), 2100u);
  EXPECT_EQ(t.stats().removed_exited, 900u);
  for (uint32_t tgid = 1; tgid <= 10; ++tgid) {
    bool gone = tgid == 2 || tgid == 5 || tgid == 7;
    for (uint64_t v = 0; v < 300; ++v) {
      const PageEntry* e = t.find(key(tgid, v));
      if (gone) {
        EXPECT_EQ(e, nullptr) << tgid << ":" << v;
      } else {
        ASSERT_NE(e, nullptr) << tgid << ":" << v;
        EXPECT_FLOAT_EQ(e->heat, static_cast<float>(tgid));
      }
    }
  }
  size_t n = 0;
  t.for_each([&](const PageEntry& e) {
    ++n;
    EXPECT_TRUE(e.tgid() != 2 && e.tgid() != 5 && e.tgid() != 7);
  });
  EXPECT_EQ(n, 2100u);
}

// Builds a probe run that wraps from the last slot to slot 0 and deletes from
// it: entries must be shifted back across the wrap, and only into slots
// cyclically at or after their home.
TEST(PageTable, BackwardShiftAcrossTheWrap) {
  PageTable t(8);  // 11 slots
  const size_t n = t.slot_count();
  ASSERT_GE(n, 9u);
  std::vector<uint64_t> home_last, home_zero, home_one;
  for (uint64_t v = 1; home_last.size() < 3 || home_zero.size() < 2 || home_one.size() < 1; ++v) {
    for (uint32_t tgid : {1u, 2u, 3u}) {
      uint64_t k = key(tgid, v);
      size_t h = home_of(k, n);
      // Distinct tgids per role so remove_processes can pick them.
      if (tgid == 1 && h == n - 1 && home_last.size() < 3) home_last.push_back(k);
      if (tgid == 2 && h == 0 && home_zero.size() < 2) home_zero.push_back(k);
      if (tgid == 3 && h == 1 && home_one.size() < 1) home_one.push_back(k);
    }
  }
  // Slots: [n-1] L0, [0] L1, [1] L2, [2] Z0, [3] Z1, [4] O0.
  std::vector<uint64_t> all = {home_last[0], home_last[1], home_last[2], home_zero[0], home_zero[1], home_one[0]};
  for (uint64_t k : all) ASSERT_NE(t.add(k, 1, nullptr, MB_NODE_UNKNOWN), nullptr);
  std::vector<uint64_t> order = keys_in_slot_order(t);
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order.back(), home_last[0]) << "the first key sits in the last slot";
  EXPECT_EQ(order.front(), home_last[1]) << "the second one wrapped to slot 0";

  // Remove the three keys homed at the last slot (tgid 1): the others move
  // back to their homes.
  t.remove_processes({1});
  EXPECT_EQ(t.size(), 3u);
  for (uint64_t k : {home_zero[0], home_zero[1], home_one[0]}) EXPECT_NE(t.find(k), nullptr);
  for (uint64_t k : {home_last[0], home_last[1], home_last[2]}) EXPECT_EQ(t.find(k), nullptr);
  order = keys_in_slot_order(t);
  EXPECT_EQ(order, (std::vector<uint64_t>{home_zero[0], home_zero[1], home_one[0]}));

  // Again, now removing only the wrapped-to entries' neighbours (tgid 2):
  // the tgid 1 keys stay, wrapped, and stay findable.
  PageTable u(8);
  for (uint64_t k : all) ASSERT_NE(u.add(k, 1, nullptr, MB_NODE_UNKNOWN), nullptr);
  u.remove_processes({2});
  EXPECT_EQ(u.size(), 4u);
  for (uint64_t k : {home_last[0], home_last[1], home_last[2], home_one[0]}) EXPECT_NE(u.find(k), nullptr);
  for (uint64_t k : home_zero) EXPECT_EQ(u.find(k), nullptr);
}

TEST(PageTable, ForgettingAcrossTheWrap) {
  PageTable t(8, 0.5f, 1, 0.5f, 1);
  const size_t n = t.slot_count();
  std::vector<uint64_t> home_last;
  for (uint64_t v = 1; home_last.size() < 4; ++v)
    if (home_of(key(1, v), n) == n - 1) home_last.push_back(key(1, v));
  t.begin_interval(1);
  t.add(home_last[0], 0, nullptr, MB_NODE_UNKNOWN);  // the one in the last slot: cold
  for (size_t i = 1; i < 4; ++i) t.add(home_last[i], 100, nullptr, MB_NODE_UNKNOWN);
  t.begin_interval(2);
  EXPECT_EQ(t.find(home_last[0]), nullptr);
  EXPECT_EQ(t.size(), 3u);
  for (size_t i = 1; i < 4; ++i) {
    ASSERT_NE(t.find(home_last[i]), nullptr) << i;
    EXPECT_FLOAT_EQ(t.heat(*t.find(home_last[i])), 50.0f) << "decayed once, not twice";
  }
  // home_last[1] moved back from slot 0 into its home, the last slot.
  EXPECT_EQ(keys_in_slot_order(t).back(), home_last[1]);
}

// A randomized comparison against std::map with a fixed seed: inserts,
// updates, drops when full, and removals of whole processes, with the table
// near its load limit so that runs are long and wrap around.
// Arrivals: the pages new to the table in this interval, by their accesses
// in it; a page already there (or added again) is not one.
TEST(PageTable, CountsTheIntervalsArrivals) {
  mb::PageTable t(1024);
  t.begin_interval(1);
  t.add(key(42, 1), 40, nullptr, 0);
  t.add(key(42, 2), 3, nullptr, 0);
  t.add(key(42, 3), 1, nullptr, 0);
  t.add(key(42, 1), 5, nullptr, 0);  // again: not a second arrival
  EXPECT_EQ(t.arrivals().total_pages(), 3u);
  EXPECT_DOUBLE_EQ(t.arrivals().mean_of_hottest(1), 40.0);
  EXPECT_DOUBLE_EQ(t.arrivals().mean_of_hottest(3), 44.0 / 3);
  EXPECT_DOUBLE_EQ(t.arrivals().mean_of_hottest(10), 44.0 / 3);  // more asked than arrived: all of them
  t.end_interval();
  t.begin_interval(2);
  EXPECT_EQ(t.arrivals().total_pages(), 0u);
  EXPECT_DOUBLE_EQ(t.arrivals().mean_of_hottest(5), 0.0);
  t.add(key(42, 1), 7, nullptr, 0);  // known
  t.add(key(42, 4), 2, nullptr, 0);
  EXPECT_EQ(t.arrivals().total_pages(), 1u);
  EXPECT_DOUBLE_EQ(t.arrivals().mean_of_hottest(1), 2.0);
}

// Within the bin where the n-th hottest falls (here [2, 4): 2 and 3), the
// bin's mean stands for the pages taken from it.
TEST(PageTable, ArrivalsMeanOfHottestSplitsABin) {
  mb::Arrivals a;
  a.add(100);
  a.add(3);
  a.add(2);
  a.add(0);
  EXPECT_EQ(a.total_pages(), 4u);
  EXPECT_DOUBLE_EQ(a.mean_of_hottest(2), (100 + 2.5) / 2);
  mb::Arrivals b = a;
  b += a;
  EXPECT_EQ(b.total_pages(), 8u);
  EXPECT_DOUBLE_EQ(b.mean_of_hottest(2), 100.0);
}

TEST(PageTable, RandomizedAgainstModel) {
  const size_t cap = 6000;  // starts at 4096 slots, grows to 7500
  PageTable t(cap, 1.0f, UINT32_MAX, 0.5f);
  const size_t initial_slots = t.slot_count();
  std::map<uint64_t, float> model;
  std::mt19937_64 rng(12345);
  uint64_t dropped = 0, removed = 0;
  bool saw_full = false;
  auto check = [&](int round) {
    ASSERT_EQ(t.size(), model.size()) << "round " << round;
    for (const auto& [k, heat] : model) {
      const PageEntry* e = t.find(k);
      ASSERT_NE(e, nullptr) << "round " << round << " key " << std::hex << k;
      ASSERT_FLOAT_EQ(e->heat, heat);
    }
    size_t n = 0;
    t.for_each([&](const PageEntry& e) {
      ++n;
      ASSERT_TRUE(model.count(e.key)) << std::hex << e.key;
    });
    ASSERT_EQ(n, model.size());
  };
  for (int round = 0; round < 60; ++round) {
    t.begin_interval(round + 1);
    int inserts = 200 + static_cast<int>(rng() % 600);
    for (int i = 0; i < inserts; ++i) {
      uint32_t tgid = 1 + static_cast<uint32_t>(rng() % 40);
      uint64_t vpn = rng() % 400;
      uint64_t k = key(tgid, vpn);
      uint32_t acc = 1 + static_cast<uint32_t>(rng() % 16);
      bool present = model.count(k) != 0;
      PageEntry* e = t.add(k, acc, nullptr, MB_NODE_UNKNOWN);
      if (!present && model.size() >= cap) {
        ASSERT_EQ(e, nullptr);
        dropped += acc;
        saw_full = true;
      } else {
        ASSERT_NE(e, nullptr);
        model[k] += static_cast<float>(acc);
      }
    }
    ASSERT_NO_FATAL_FAILURE(check(round));
    std::unordered_set<uint32_t> gone;
    int nr = round % 4 == 3 ? static_cast<int>(rng() % 12) : 0;
    for (int i = 0; i < nr; ++i) gone.insert(1 + static_cast<uint32_t>(rng() % 40));
    t.remove_processes(gone);
    for (auto it = model.begin(); it != model.end();) {
      if (gone.count(mb_key_tgid(it->first))) {
        it = model.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    ASSERT_NO_FATAL_FAILURE(check(round));
    for (uint32_t g : gone)
      for (uint64_t v = 0; v < 400; ++v) ASSERT_EQ(t.find(key(g, v)), nullptr);
  }
  EXPECT_TRUE(saw_full) << "the test should reach the capacity bound";
  EXPECT_GT(t.slot_count(), initial_slots) << "the test should make the table grow";
  EXPECT_EQ(t.stats().dropped_full, dropped);
  EXPECT_EQ(t.stats().removed_exited, removed);
  EXPECT_GT(removed, 1000u);
}

}  // namespace
