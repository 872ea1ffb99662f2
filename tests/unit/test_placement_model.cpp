// FlatMap::erase.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "membalancer/flat_map.h"

namespace {

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
