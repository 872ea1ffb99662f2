#include "membalancer/maps_follow_up.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

constexpr uint64_t kMs = 1000000;

// A first maps call since the last read: read now, or kMinGapNs after the
// last read when that was sooner; a change the last read took in is not
// read again.
TEST(MapsChangeFollowUp, ReadsSoonButNotMoreOftenThanTheGap) {
  MapsChangeFollowUp f;
  EXPECT_EQ(f.wait_ns(0), UINT64_MAX);
  f.changed(7, 100 * kMs, 101 * kMs);  // never read: at once
  EXPECT_EQ(f.wait_ns(101 * kMs), 0u);
  EXPECT_EQ(f.due(101 * kMs), std::vector<pid_t>{7});
  EXPECT_TRUE(f.due(101 * kMs).empty());
  f.looked(7, 102 * kMs);
  // The next first call right after: not before the gap since that read.
  f.changed(7, 103 * kMs, 103 * kMs);
  EXPECT_EQ(f.wait_ns(103 * kMs), 102 * kMs + MapsChangeFollowUp::kMinGapNs - 103 * kMs);
  EXPECT_TRUE(f.due(121 * kMs).empty());
  EXPECT_EQ(f.due(122 * kMs), std::vector<pid_t>{7});
  // An event that arrives after a read that took its change: nothing due.
  f.looked(7, 200 * kMs);
  f.changed(7, 150 * kMs, 201 * kMs);
  EXPECT_EQ(f.wait_ns(201 * kMs), UINT64_MAX);
  // A read (the periodic one) takes a follow-up due in; an exit forgets.
  f.changed(7, 210 * kMs, 210 * kMs);
  f.looked(7, 215 * kMs);
  EXPECT_TRUE(f.due(1000 * kMs).empty());
  f.changed(8, 300 * kMs, 300 * kMs);
  f.exited(8);
  EXPECT_TRUE(f.due(1000 * kMs).empty());
}

}  // namespace
}  // namespace mb
