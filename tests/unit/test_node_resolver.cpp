// Unit tests for membalancer/node_resolver.h with a fake move_pages(2):
// batching per process and per batch size, per-page statuses, whole-call
// failures, and results delivered to the caller's indexes.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <vector>

#include "membalancer/node_resolver.h"

namespace {

using mb::NodeResolver;

struct Call {
  pid_t pid;
  std::vector<uint64_t> addrs;
};

// The fake kernel: per-page status from the address, whole-call errors by pid.
//   vpn % 5 == 3 -> -ENOENT, vpn % 5 == 4 -> -EFAULT, else node vpn % 3
//   pid 666 -> ESRCH, pid 777 -> EPERM
int page_status(uint64_t addr) {
  uint64_t vpn = addr >> 12;
  if (vpn % 5 == 3) return -ENOENT;
  if (vpn % 5 == 4) return -EFAULT;
  return static_cast<int>(vpn % 3);
}

struct Fake {
  std::vector<Call> calls;
  NodeResolver::QueryFn fn() {
    return [this](pid_t pid, unsigned long count, void** pages, int* status) -> long {
      Call c{pid, {}};
      for (unsigned long i = 0; i < count; ++i) c.addrs.push_back(reinterpret_cast<uint64_t>(pages[i]));
      calls.push_back(c);
      if (pid == 666) {
        errno = ESRCH;
        return -1;
      }
      if (pid == 777) {
        errno = EPERM;
        return -1;
      }
      for (unsigned long i = 0; i < count; ++i) status[i] = page_status(reinterpret_cast<uint64_t>(pages[i]));
      return 0;
    };
  }
};

TEST(NodeResolver, EmptyInputMakesNoCalls) {
  Fake fake;
  NodeResolver r(fake.fn(), 4);
  int outs = 0;
  r.resolve({}, [&](size_t, int) { ++outs; });
  EXPECT_EQ(outs, 0);
  EXPECT_TRUE(fake.calls.empty());
  EXPECT_EQ(r.stats().calls, 0u);
}

TEST(NodeResolver, BatchesPerPidAndBatchSize) {
  Fake fake;
  NodeResolver r(fake.fn(), 2);
  // Unsorted: pid 5 has 5 pages, pid 3 has 1, pid 9 has 2.
  std::vector<NodeResolver::Page> pages = {
      {5, 0x5000}, {9, 0x2000}, {5, 0x1000}, {3, 0x7000}, {5, 0x3000}, {9, 0x1000}, {5, 0x2000}, {5, 0x4000},
  };
  std::map<size_t, int> got;
  r.resolve(pages, [&](size_t i, int s) {
    EXPECT_EQ(got.count(i), 0u) << "index " << i << " delivered twice";
    got[i] = s;
  });
  // pid 3: 1 call; pid 5: 3 calls (2+2+1); pid 9: 1 call.
  ASSERT_EQ(fake.calls.size(), 5u);
  EXPECT_EQ(r.stats().calls, 5u);
  EXPECT_EQ(fake.calls[0].pid, 3);
  EXPECT_EQ(fake.calls[0].addrs, (std::vector<uint64_t>{0x7000}));
  EXPECT_EQ(fake.calls[1].pid, 5);
  EXPECT_EQ(fake.calls[1].addrs, (std::vector<uint64_t>{0x1000, 0x2000}));
  EXPECT_EQ(fake.calls[2].addrs, (std::vector<uint64_t>{0x3000, 0x4000}));
  EXPECT_EQ(fake.calls[3].addrs, (std::vector<uint64_t>{0x5000}));
  EXPECT_EQ(fake.calls[3].pid, 5);
  EXPECT_EQ(fake.calls[4].pid, 9);
  EXPECT_EQ(fake.calls[4].addrs, (std::vector<uint64_t>{0x1000, 0x2000}));
  for (const auto& c : fake.calls) EXPECT_LE(c.addrs.size(), 2u);

  // Every index answered with its own page's status.
  ASSERT_EQ(got.size(), pages.size());
  for (size_t i = 0; i < pages.size(); ++i) EXPECT_EQ(got[i], page_status(pages[i].vaddr)) << "index " << i;
  EXPECT_EQ(r.stats().pages_asked, 8u);
}

TEST(NodeResolver, StatusesAreCounted) {
  Fake fake;
  NodeResolver r(fake.fn(), 1024);
  std::vector<NodeResolver::Page> pages;
  // vpn 0..19 of pid 10: vpn%5==3 -> 4 ENOENT, vpn%5==4 -> 4 EFAULT, 12 nodes.
  for (uint64_t v = 20; v-- > 0;) pages.push_back({10, v << 12});
  std::vector<int> got(pages.size(), 12345);
  r.resolve(pages, [&](size_t i, int s) { got.at(i) = s; });
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].addrs.size(), 20u);
  for (size_t i = 1; i < fake.calls[0].addrs.size(); ++i) EXPECT_LT(fake.calls[0].addrs[i - 1], fake.calls[0].addrs[i]);
  for (size_t i = 0; i < pages.size(); ++i) EXPECT_EQ(got[i], page_status(pages[i].vaddr)) << i;
  EXPECT_EQ(got[0], -EFAULT);  // vpn 19: 19 % 5 == 4
  EXPECT_EQ(got[19], 0);                                    // vpn 0: node 0
  EXPECT_EQ(got[18], 1);                                    // vpn 1: node 1
  const auto& s = r.stats();
  EXPECT_EQ(s.pages_asked, 20u);
  EXPECT_EQ(s.resolved, 12u);
  EXPECT_EQ(s.not_present, 4u);
  EXPECT_EQ(s.not_mapped, 4u);
  EXPECT_EQ(s.process_gone, 0u);
  EXPECT_EQ(s.calls, 1u);
}

TEST(NodeResolver, WholeCallFailures) {
  Fake fake;
  NodeResolver r(fake.fn(), 2);
  std::vector<NodeResolver::Page> pages = {
      {666, 0x1000}, {10, 0x1000}, {666, 0x2000}, {777, 0x9000}, {666, 0x3000},
  };
  std::vector<int> got(pages.size(), 12345);
  r.resolve(pages, [&](size_t i, int s) { got.at(i) = s; });
  EXPECT_EQ(got[0], -ESRCH);
  EXPECT_EQ(got[2], -ESRCH);
  EXPECT_EQ(got[4], -ESRCH);
  EXPECT_EQ(got[3], -EPERM);
  EXPECT_EQ(got[1], 1);  // vpn 1: node 1
  const auto& s = r.stats();
  EXPECT_EQ(s.process_gone, 3u);
  EXPECT_EQ(s.not_mapped, 1u);  // EPERM for the one page of 777
  EXPECT_EQ(s.resolved, 1u);
  EXPECT_EQ(s.pages_asked, 5u);
  EXPECT_EQ(s.calls, 4u);  // 10: 1, 666: 2 (batch of 2), 777: 1
}

TEST(NodeResolver, StatsAccumulateOverCalls) {
  Fake fake;
  NodeResolver r(fake.fn(), 8);
  std::vector<NodeResolver::Page> pages = {{1, 0x0}, {1, 0x1000}};
  r.resolve(pages, [](size_t, int) {});
  r.resolve(pages, [](size_t, int) {});
  EXPECT_EQ(r.stats().calls, 2u);
  EXPECT_EQ(r.stats().pages_asked, 4u);
  EXPECT_EQ(r.stats().resolved, 4u);
}

TEST(NodeResolver, BatchSizeZeroMeansOne) {
  Fake fake;
  NodeResolver r(fake.fn(), 0);
  std::vector<NodeResolver::Page> pages = {{1, 0x0}, {1, 0x1000}, {1, 0x2000}};
  r.resolve(pages, [](size_t, int) {});
  EXPECT_EQ(fake.calls.size(), 3u);
}

// The default query is the real move_pages(2) on this process's own memory.
TEST(NodeResolver, RealMovePagesOnOwnMemory) {
  static volatile char page[4096] __attribute__((aligned(4096)));
  page[0] = 1;  // present
  NodeResolver r;
  std::vector<NodeResolver::Page> pages = {{getpid(), reinterpret_cast<uint64_t>(&page[0])}};
  int got = 12345;
  r.resolve(pages, [&](size_t, int s) { got = s; });
  if (got == -ENOSYS) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL() << "CI=true: kernel without NUMA (move_pages: ENOSYS)";
    GTEST_SKIP() << "kernel without NUMA (move_pages: ENOSYS)";
  }
  EXPECT_GE(got, 0) << "status " << got;
  EXPECT_EQ(r.stats().resolved, 1u);
}

}  // namespace
