// The placement model's size changes (membalancer/placement_model.h): base
// pages collapsing into a huge page, a huge page splitting into base pages,
// worked out by hand; and FlatMap::erase, which the collapse uses.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "membalancer/flat_map.h"
#include "membalancer/placement_model.h"

namespace {

using mb::PlacementModel;

constexpr int kFast = 0, kSlow = 1;
constexpr uint64_t kSlowCap = 1ull << 40;

// Page i of the 2 MiB-aligned range at vpn 0x1000 (4242's).
uint64_t key(int page) { return mb_page_key(4242, 0x1000 + page); }

PlacementModel model(uint64_t fast_pages) {
  return PlacementModel({{kFast, fast_pages}, {kSlow, kSlowCap}}, kSlow, PlacementModel::Start::kRecorded);
}

// 512 base pages, 300 recorded on the fast node and 212 on the slow one, then
// their huge page: one entry of 512 pages on the fast node (most of them were
// there), nothing counted twice.
TEST(PlacementModel, CollapseMergesOnTheNodeOfMostBasePages) {
  auto m = model(1000);
  m.keep_resizes(true);
  for (int i = 0; i < 512; ++i) EXPECT_EQ(m.place(key(i), i < 300 ? kFast : kSlow, false), i < 300 ? kFast : kSlow);
  ASSERT_EQ(m.used_pages(kFast), 300u);
  ASSERT_EQ(m.used_pages(kSlow), 212u);
  EXPECT_EQ(m.place(key(0), kSlow, true), kFast);
  EXPECT_EQ(m.used_pages(kFast), 512u);
  EXPECT_EQ(m.used_pages(kSlow), 0u);
  EXPECT_EQ(m.pages(), 1u);
  EXPECT_TRUE(m.huge(key(0)));
  EXPECT_EQ(m.node_of(key(7)), -1) << "no entry of its own";
  EXPECT_EQ(m.holder(key(7)), key(0));
  EXPECT_EQ(m.holder(key(512)), key(512)) << "the next 2 MiB is not held";
  ASSERT_EQ(m.resizes().size(), 1u);
  EXPECT_EQ(m.resizes()[0].key, key(0));
  EXPECT_EQ(m.resizes()[0].node, kFast);
  EXPECT_TRUE(m.resizes()[0].collapsed);
  // Sampled huge again: nothing changes.
  EXPECT_EQ(m.place(key(0), kSlow, true), kFast);
  EXPECT_EQ(m.take_resizes().size(), 1u);
  EXPECT_TRUE(m.resizes().empty());
}

// The node of most base pages without room for the huge page: it goes to
// the slow node, whose memory never runs out. A huge sample finding a few
// base pages (not its first) collapses them too.
TEST(PlacementModel, CollapseWithoutRoomGoesSlow) {
  auto m = model(400);
  for (int i = 0; i < 300; ++i) m.place(key(i), kFast, false);
  for (int i = 300; i < 312; ++i) m.place(key(i), kSlow, false);
  EXPECT_EQ(m.place(key(0), kFast, true), kSlow);
  EXPECT_EQ(m.used_pages(kFast), 0u);
  EXPECT_EQ(m.used_pages(kSlow), 512u);

  auto n = model(1000);
  n.place(key(600), kSlow, false);  // in the next 2 MiB, not its first page
  EXPECT_EQ(n.place(key(512), kFast, true), kSlow) << "all of its base pages were slow";
  EXPECT_EQ(n.used_pages(kSlow), 512u);
  EXPECT_EQ(n.pages(), 1u);
}

// A huge page on the fast node, then one base-page sample inside it: 512 base
// pages, all where the huge page was; each moves alone from then on.
TEST(PlacementModel, SplitKeepsEveryBasePageWhereTheHugePageWas) {
  auto m = model(1000);
  m.keep_resizes(true);
  EXPECT_EQ(m.place(key(0), kFast, true), kFast);
  EXPECT_EQ(m.place(key(7), kSlow, false), kFast);
  EXPECT_EQ(m.used_pages(kFast), 512u);
  EXPECT_EQ(m.used_pages(kSlow), 0u);
  EXPECT_EQ(m.pages(), 512u);
  EXPECT_FALSE(m.huge(key(0)));
  for (int i : {0, 7, 511}) EXPECT_EQ(m.node_of(key(i)), kFast) << i;
  ASSERT_EQ(m.resizes().size(), 1u);
  EXPECT_FALSE(m.resizes()[0].collapsed);
  EXPECT_TRUE(m.move(key(7), kSlow));
  EXPECT_EQ(m.used_pages(kFast), 511u);
  EXPECT_EQ(m.used_pages(kSlow), 1u);
  // A base sample at the huge page's own key splits it too.
  auto n = model(1000);
  n.place(key(0), kFast, true);
  EXPECT_EQ(n.place(key(0), kSlow, false), kFast);
  EXPECT_EQ(n.pages(), 512u);
  EXPECT_EQ(n.used_pages(kFast), 512u);
}

// A plan made for the page at another size moves the entry holding its
// address at its size now, as move_pages does: the whole huge page for a
// base page inside it, one base page of a split one.
TEST(PlacementModel, PlanMovesTheEntryHoldingTheAddress) {
  auto m = model(1000);
  m.place(key(0), kSlow, true);
  mb::Plan plan;
  plan.moves.push_back({4242, (0x1000ull + 3) << MB_PAGE_SHIFT, false, kSlow, kFast, mb::MoveDirection::kPromote,
                        mb::MoveReason::kHot, 5.0f});
  std::map<int, mb::NodeFlow> flows;
  EXPECT_EQ(mb::apply_plan(plan, m, &flows), 0u);
  EXPECT_EQ(flows[kFast].in, 512u);
  EXPECT_EQ(m.used_pages(kFast), 512u);
  m.place(key(9), kFast, false);  // split
  mb::Plan down;
  down.moves.push_back({4242, 0x1000ull << MB_PAGE_SHIFT, true, kFast, kSlow, mb::MoveDirection::kDemote,
                        mb::MoveReason::kWatermark, 0.0f});
  EXPECT_EQ(mb::apply_plan(down, m, &flows), 0u);
  EXPECT_EQ(m.used_pages(kFast), 511u);
  EXPECT_EQ(m.used_pages(kSlow), 1u);
}

struct Ops {
  static uint64_t empty() { return ~0ULL; }
  static uint64_t hash(uint64_t) { return 0; }  // every key in one probe run: erase must shift it
};

TEST(FlatMap, EraseKeepsTheOthersFindable) {
  mb::FlatMap<uint64_t, int, Ops> collide;
  for (uint64_t k = 0; k < 20; ++k) collide[k] = static_cast<int>(k);
  for (uint64_t k = 0; k < 20; k += 3) EXPECT_TRUE(collide.erase(k));
  EXPECT_FALSE(collide.erase(0));
  for (uint64_t k = 0; k < 20; ++k) {
    const int* v = collide.find(k);
    if (k % 3 == 0) EXPECT_EQ(v, nullptr) << k;
    else ASSERT_TRUE(v && *v == static_cast<int>(k)) << k;
  }
  // With the real hash, against std::map.
  mb::FlatMap<uint64_t, uint64_t, mb::U64KeyOps> m;
  std::map<uint64_t, uint64_t> ref;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t k = rng() % 3000;
    if (rng() % 3 == 0) {
      EXPECT_EQ(m.erase(k), ref.erase(k) == 1);
    } else {
      m[k] = i;
      ref[k] = i;
    }
  }
  EXPECT_EQ(m.size(), ref.size());
  for (const auto& [k, v] : ref) ASSERT_TRUE(m.find(k) && *m.find(k) == v) << k;
}

}  // namespace
