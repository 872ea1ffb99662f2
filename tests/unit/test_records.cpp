// The shared record helpers (include/membalancer/records.h) that both the
// BPF side and user space rely on.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "membalancer/records.h"

TEST(Records, PageKeyRoundTrips) {
  const uint32_t tgid = (1u << MB_KEY_TGID_BITS) - 1;  // pid_max 4M
  const uint64_t vpn = (1ull << MB_KEY_VPN_BITS) - 1;
  uint64_t key = mb_page_key(tgid, vpn);
  EXPECT_EQ(mb_key_tgid(key), tgid);
  EXPECT_EQ(mb_key_vpn(key), vpn);
  EXPECT_EQ(mb_key_tgid(mb_page_key(1234, 0x7f0000)), 1234u);
  EXPECT_EQ(mb_key_vpn(mb_page_key(1234, 0x7f0000)), 0x7f0000u);
  EXPECT_NE(mb_page_key(1, 0), 0u) << "key 0 means a free slot";
}

TEST(Records, SlotNodeAndHugeFlag) {
  mb_page_slot s{};
  EXPECT_EQ(mb_slot_node(&s), MB_NODE_UNKNOWN) << "a cleared slot is not node 0";
  EXPECT_FALSE(mb_slot_huge(&s));
  s.mem_node1 = 0 + 1;
  EXPECT_EQ(mb_slot_node(&s), 0);
  s.mem_node1 = (7 + 1) | MB_SLOT_HUGE;
  EXPECT_EQ(mb_slot_node(&s), 7);
  EXPECT_TRUE(mb_slot_huge(&s));
  s.mem_node1 = MB_SLOT_HUGE;
  EXPECT_EQ(mb_slot_node(&s), MB_NODE_UNKNOWN);
  EXPECT_TRUE(mb_slot_huge(&s));
}

TEST(Records, GroupsOfARegionTakeConsecutiveSets) {
  const uint32_t bits = 15;  // 32K sets
  const uint64_t base = mb_page_key(42, 0x12345 << 9);  // a 2 MiB-aligned region
  uint32_t first = mb_key_set(base, bits);
  for (uint64_t page = 0; page < 512; ++page) {
    uint32_t want = (first + static_cast<uint32_t>(page >> MB_PAGE_GROUP_SHIFT)) & ((1u << bits) - 1);
    EXPECT_EQ(mb_key_set(base + page, bits), want) << "page " << page;
  }
}

TEST(Records, SpillSetsScatterTheGroupsOfARegion) {
  const uint32_t bits = 15;
  const uint64_t base = mb_page_key(42, 0x12345 << 9);
  std::set<uint32_t> spill;
  for (uint64_t group = 0; group < 64; ++group) spill.insert(mb_key_spill_set(base + (group << 3), 0, bits));
  EXPECT_GE(spill.size(), 60u) << "a colliding region's groups must not spill into one place";
  for (uint32_t s : spill) EXPECT_LT(s, 1u << bits);
}

// Three processes' dense 256 MiB regions into a table at 75% load, placed as
// the BPF side places them: with independent spill tries almost nothing is
// dropped (a fixed stride from one start dropped 8% here).
TEST(Records, DensePlacementAtThreeQuartersLoadDropsAlmostNothing) {
  const uint32_t bits = 15;  // 32K sets, 256K slots
  std::vector<mb_page_set> table(1u << bits);
  auto probe = [&](uint32_t set, uint64_t key) {
    for (uint32_t i = 0; i < MB_PAGE_WAYS; ++i) {
      mb_page_slot& s = table[set].way[(key + i) & (MB_PAGE_WAYS - 1)];
      if (s.key == key) return true;
      if (s.key == 0) return s.key = key, true;
    }
    return false;
  };
  uint64_t drops = 0;
  for (uint32_t p = 0; p < 3; ++p) {
    for (uint64_t v = 0; v < 65536; ++v) {
      uint64_t key = mb_page_key(18000 + p, 0x7f37e5200 + v);
      bool ok = probe(mb_key_set(key, bits), key);
      for (uint32_t i = 0; !ok && i < MB_PAGE_SPILL_SETS; ++i) ok = probe(mb_key_spill_set(key, i, bits), key);
      drops += !ok;
    }
  }
  EXPECT_LT(drops, 3 * 65536 / 1000) << "more than 0.1% of the pages found no slot";
}
