// Unit tests for membalancer/rate_limiter.h with a fake clock: the achieved
// rate, delays rather than drops, the burst bound, interrupted waits, and the
// rate option parser.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "membalancer/error.h"
#include "membalancer/rate_limiter.h"

namespace {

using mb::RateLimiter;

// Simulated time: sleeping advances the clock by exactly the time asked.
struct FakeTime {
  double now = 1000.0;
  std::vector<double> sleeps;
  bool interrupt = false;
  RateLimiter make(uint64_t rate, uint64_t burst) {
    return RateLimiter(
        rate, burst, [this] { return now; },
        [this](double s) {
          sleeps.push_back(s);
          if (interrupt) return false;
          now += s;
          return true;
        });
  }
};

constexpr uint64_t MiB = 1ull << 20;

TEST(RateLimiter, AchievedRateWithinOnePercentOverTenSeconds) {
  FakeTime t;
  const uint64_t rate = 64 * MiB;
  RateLimiter rl = t.make(rate, 2 * MiB);
  const double start = t.now;
  uint64_t bytes = 0, calls = 0;
  // Batches of 2 MiB, each "moved" in 1 ms after its tokens are granted.
  while (t.now - start < 10.0) {
    double waited = -1;
    ASSERT_TRUE(rl.acquire(2 * MiB, &waited));  // delayed, never refused
    EXPECT_GE(waited, 0);
    bytes += 2 * MiB;
    ++calls;
    t.now += 0.001;
  }
  double achieved = static_cast<double>(bytes) / (t.now - start);
  EXPECT_NEAR(achieved / static_cast<double>(rate), 1.0, 0.01) << achieved << " B/s over " << (t.now - start) << " s";
  EXPECT_GT(t.sleeps.size(), calls / 2);  // the limit was reached: callers waited
}

TEST(RateLimiter, UnevenChargesKeepTheRate) {
  FakeTime t;
  const uint64_t rate = 64 * MiB;
  RateLimiter rl = t.make(rate, 2 * MiB);
  const double start = t.now;
  uint64_t bytes = 0;
  // A mix of base-page batches and huge pages, some larger than the bucket.
  const uint64_t sizes[] = {4096, 2 * MiB, 512 * 4096, 6 * MiB, 100 * 4096};
  for (int i = 0; t.now - start < 10.0; ++i) {
    uint64_t n = sizes[i % 5];
    ASSERT_TRUE(rl.acquire(n));
    bytes += n;
  }
  double elapsed = t.now - start;
  double achieved = static_cast<double>(bytes) / elapsed;
  EXPECT_NEAR(achieved / static_cast<double>(rate), 1.0, 0.01) << achieved;
  // Never more than the bucket plus the refill.
  EXPECT_LE(static_cast<double>(bytes), 2.0 * MiB + elapsed * static_cast<double>(rate) + 1);
}

TEST(RateLimiter, BurstIsBoundedByTheBucket) {
  FakeTime t;
  RateLimiter rl = t.make(MiB, 256 * 1024);
  t.now += 3600;  // idle for an hour: the bucket is full, not fuller
  uint64_t free_bytes = 0;
  for (;;) {
    double waited = 0;
    ASSERT_TRUE(rl.acquire(4096, &waited));
    if (waited > 0) {
      EXPECT_NEAR(waited, 4096.0 / MiB, 1e-9);  // only this page's debt
      break;
    }
    free_bytes += 4096;
  }
  EXPECT_EQ(free_bytes, 256u * 1024);
}

TEST(RateLimiter, ChargeLargerThanBucketWaitsThenPasses) {
  FakeTime t;
  RateLimiter rl = t.make(MiB, MiB);
  double waited = 0;
  EXPECT_TRUE(rl.acquire(5 * MiB, &waited));
  EXPECT_NEAR(waited, 4.0, 1e-9);  // the bucket covered 1 MiB of 5
  ASSERT_EQ(t.sleeps.size(), 1u);
  EXPECT_TRUE(rl.acquire(MiB, &waited));
  EXPECT_NEAR(waited, 1.0, 1e-9);
}

TEST(RateLimiter, CallersWithoutTimePassingQueueUp) {
  // Three callers reserving at the same instant (as concurrent workers do)
  // wait 0, 1 and 2 s: each after the one before.
  FakeTime t;
  RateLimiter rl(MiB, MiB, [&] { return t.now; }, [&](double s) { t.sleeps.push_back(s); return true; });
  double w0, w1, w2;
  rl.acquire(MiB, &w0);
  rl.acquire(MiB, &w1);
  rl.acquire(MiB, &w2);
  EXPECT_DOUBLE_EQ(w0, 0);
  EXPECT_NEAR(w1, 1.0, 1e-9);
  EXPECT_NEAR(w2, 2.0, 1e-9);
}

TEST(RateLimiter, InterruptedWaitIsNotCharged) {
  FakeTime t;
  RateLimiter rl = t.make(MiB, MiB);
  ASSERT_TRUE(rl.acquire(MiB));
  t.interrupt = true;
  EXPECT_FALSE(rl.acquire(3 * MiB));
  t.interrupt = false;
  double waited = 0;
  EXPECT_TRUE(rl.acquire(MiB, &waited));
  EXPECT_NEAR(waited, 1.0, 1e-9);  // not 4 s: the interrupted 3 MiB were returned
}

TEST(RateLimiter, ZeroRateIsUnlimited) {
  FakeTime t;
  RateLimiter rl = t.make(0, MiB);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.acquire(1ull << 30));
  EXPECT_TRUE(t.sleeps.empty());
}

TEST(RateLimiter, ParseRate) {
  EXPECT_EQ(mb::parse_rate("200M", "--rate-limit"), 200ull << 20);
  EXPECT_EQ(mb::parse_rate("1G", "--rate-limit"), 1ull << 30);
  EXPECT_EQ(mb::parse_rate("0", "--rate-limit"), 0u);
  EXPECT_EQ(mb::parse_rate("64MiB/s", "--rate-limit"), 64ull << 20);
  EXPECT_EQ(mb::parse_rate(" 4096 ", "--rate-limit"), 4096u);
  for (const char* bad : {"", "fast", "-5M", "10X", "M", "/s"}) {
    try {
      mb::parse_rate(bad, "--rate-limit");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const mb::UsageError& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind("--rate-limit: ", 0), 0u) << m;
      EXPECT_NE(m.find("bytes per second"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

// A plan that moves a base page whenever its budget covers one, over
// `intervals`: the pages moved in each.
std::vector<int> pages_moved(mb::IntervalBudget& b, int intervals) {
  std::vector<int> moved;
  for (int i = 0; i < intervals; ++i) {
    const uint64_t bytes = b.next();
    const int pages = static_cast<int>(bytes / 4096);
    b.spend(static_cast<uint64_t>(pages) * 4096);
    moved.push_back(pages);
  }
  return moved;
}

// 2 KiB/s with 1 s intervals, by hand: the credit goes 2048, 4096 (a page
// moves: 0), 2048, 4096, ...: a page every second interval, 5 pages (20 KiB
// = rate x 10 s) in 10. It used to be a page every interval (10 pages).
TEST(IntervalBudget, UnderAPagePerIntervalCarriesTheCredit) {
  mb::IntervalBudget b(2048, 1000);
  EXPECT_TRUE(b.limited());
  EXPECT_EQ(pages_moved(b, 10), (std::vector<int>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}));
  // 1 B/s with 10 ms intervals earns 0.01 B an interval, none of it lost to
  // rounding: the first page after 409600 intervals (4096 s), not before;
  // meanwhile the budget is never 0, which the policies read as no limit.
  mb::IntervalBudget slow(1, 10);
  for (int i = 1; i < 409600; ++i) {
    const uint64_t bytes = slow.next();
    ASSERT_GE(bytes, 1u) << i;
    ASSERT_LT(bytes, 4096u) << i;
  }
  EXPECT_EQ(slow.next(), 4096u);
}

// The credit is capped at one interval's earning or a 2 MiB page, whichever
// is larger: idle intervals do not buy a burst.
TEST(IntervalBudget, CreditIsCappedAtAnIntervalOrAHugePage) {
  mb::IntervalBudget fast(200ull << 20, 1000);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fast.next(), 200ull << 20) << "nothing spent, interval " << i;
  fast.spend(150ull << 20);
  EXPECT_EQ(fast.next(), 200ull << 20) << "50 MiB left + 200 MiB earned, capped";
  fast.spend(200ull << 20);
  EXPECT_EQ(fast.next(), 200ull << 20);
  // 1 MiB/s: the credit grows to a 2 MiB page (which can then move), no further.
  mb::IntervalBudget slow(1ull << 20, 1000);
  EXPECT_EQ(slow.next(), 1ull << 20);
  EXPECT_EQ(slow.next(), 2ull << 20);
  EXPECT_EQ(slow.next(), 2ull << 20);
  slow.spend(2ull << 20);
  EXPECT_EQ(slow.next(), 1ull << 20);
  // 250 ms intervals: a quarter of the rate each.
  mb::IntervalBudget quarter(200ull << 20, 250);
  EXPECT_EQ(quarter.next(), 50ull << 20);
}

TEST(IntervalBudget, ZeroIsUnlimitedAndHugeRatesDoNotWrap) {
  mb::IntervalBudget none(0, 1000);
  EXPECT_FALSE(none.limited());
  EXPECT_EQ(none.next(), 0u);
  none.spend(1ull << 40);
  EXPECT_EQ(none.next(), 0u);
  // 2^60 B/s x 60 s would wrap in 64 bits: it saturates instead.
  EXPECT_EQ(mb::IntervalBudget(1ull << 60, 60000).next(), UINT64_MAX / 2);
  EXPECT_EQ(mb::IntervalBudget(UINT64_MAX, 60000).next(), UINT64_MAX / 2);
}

}  // namespace

