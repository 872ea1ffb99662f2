// Unit tests for membalancer/mover.h with a fake move_pages(2): accounting
// per (pid, direction, reason) and per errno, whole-call failures mid-stream,
// huge pages, batching, the bounded queue, abandon(), several workers; and
// one test of the real move_pages(2) on this process's own pages.

#include <gtest/gtest.h>

#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "membalancer/mover.h"

namespace {

using mb::MoveCounts;
using mb::MoveDirection;
using mb::MoveReason;
using mb::Mover;
using mb::MoverConfig;
using mb::MoveRequest;

struct Call {
  pid_t pid;
  std::vector<uint64_t> addrs;
  std::vector<int> nodes;  // empty for a where-is query
  int flags;
};

// The fake kernel. Per page (vpn = addr >> 12), by page_rule:
//   kAllMoved:  every page reaches its target
//   kMixed:     vpn % 5: 0 moved, 1 -ENOENT, 2 -EFAULT, 3 -EBUSY, 4 -ENOMEM
// Whole calls: pids in esrch_pids fail with ESRCH; pid `exits_after` fails
// with ESRCH after its first call (the process exited mid-move). Calls of
// pid kGatePid wait until open() (lets tests hold a worker in move_pages).
constexpr pid_t kGatePid = 99;

struct Fake {
  enum Rule { kAllMoved, kMixed } rule = kAllMoved;
  std::set<pid_t> esrch_pids;
  pid_t exits_after = -1;
  std::mutex mu;
  std::condition_variable cv;
  bool gate_open = false;
  bool gate_entered = false;
  std::vector<Call> calls;

  static int mixed_status(uint64_t addr, int target) {
    switch ((addr >> 12) % 5) {
      case 0: return target;
      case 1: return -ENOENT;
      case 2: return -EFAULT;
      case 3: return -EBUSY;
      default: return -ENOMEM;
    }
  }

  // Waits until a worker is inside the call for kGatePid.
  void wait_gate_entered() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [this] { return gate_entered; });
  }
  void open() {
    std::lock_guard<std::mutex> l(mu);
    gate_open = true;
    cv.notify_all();
  }

  Mover::MoveFn fn() {
    return [this](pid_t pid, unsigned long count, void** pages, const int* nodes, int* status, int flags) -> long {
      std::unique_lock<std::mutex> l(mu);
      if (pid == kGatePid) {
        gate_entered = true;
        cv.notify_all();
        cv.wait(l, [this] { return gate_open; });
      }
      Call c{pid, {}, {}, flags};
      for (unsigned long i = 0; i < count; ++i) {
        c.addrs.push_back(reinterpret_cast<uint64_t>(pages[i]));
        if (nodes) c.nodes.push_back(nodes[i]);
      }
      bool seen_before = false;
      for (const auto& old : calls) seen_before |= old.pid == pid;
      calls.push_back(c);
      if (esrch_pids.count(pid) || (pid == exits_after && seen_before)) {
        errno = ESRCH;
        return -1;
      }
      for (unsigned long i = 0; i < count; ++i) {
        int target = nodes ? nodes[i] : 0;
        status[i] = rule == kMixed ? mixed_status(c.addrs[i], target) : target;
      }
      return 0;
    };
  }
  std::vector<Call> calls_copy() {
    std::lock_guard<std::mutex> l(mu);
    return calls;
  }
};

MoverConfig unlimited(size_t batch = 512, int workers = 1) {
  MoverConfig c;
  c.rate_limit_bytes_per_s = 0;
  c.batch_pages = batch;
  c.workers = workers;
  return c;
}

// Batches of 512 pages at 1 KiB/s: after the first batch, the next waits ~34 min.
MoverConfig one_batch_then_a_long_wait() {
  MoverConfig c = unlimited(512);
  c.rate_limit_bytes_per_s = 1024;
  return c;
}

MoveRequest req(pid_t pid, uint64_t first_vpn, size_t n, int node = 1,
                MoveDirection d = MoveDirection::kPromote, MoveReason r = MoveReason::kHot) {
  MoveRequest q;
  q.pid = pid;
  q.target_node = node;
  q.direction = d;
  q.reason = r;
  for (size_t i = 0; i < n; ++i) q.pages.push_back((first_vpn + i) << 12);
  return q;
}

MoveCounts counts(const mb::MoverStats& s, pid_t pid, MoveDirection d = MoveDirection::kPromote,
                  MoveReason r = MoveReason::kHot) {
  auto it = s.by_key.find({pid, d, r});
  return it == s.by_key.end() ? MoveCounts{} : it->second;
}

// Every page submitted ends in exactly one outcome.
void expect_settled(const MoveCounts& c) {
  EXPECT_EQ(c.requested, c.moved + c.failed() + c.dropped_queue_full + c.abandoned + c.cancelled_exec);
}

TEST(Mover, AllMovedInBatches) {
  Fake fake;
  mb::MoverStats s;
  {
    Mover m(unlimited(512), fake.fn());
    EXPECT_TRUE(m.submit(req(10, 0x100, 1000, 1)));
    m.wait_idle();
    s = m.stats();
    EXPECT_EQ(m.queued_pages(), 0u);
  }
  auto calls = fake.calls_copy();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].addrs.size(), 512u);
  EXPECT_EQ(calls[1].addrs.size(), 488u);
  EXPECT_EQ(calls[0].flags, MPOL_MF_MOVE);
  EXPECT_EQ(calls[0].addrs[0], 0x100000u);
  EXPECT_EQ(calls[1].addrs.back(), (0x100u + 999) << 12);
  for (const auto& c : calls)
    for (int n : c.nodes) EXPECT_EQ(n, 1);
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.requested, 1000u);
  EXPECT_EQ(c.moved, 1000u);
  EXPECT_EQ(c.bytes_moved, 1000u * 4096);
  EXPECT_EQ(c.failed(), 0u);
  EXPECT_GE(c.busy_s, 0);
  EXPECT_EQ(s.calls, 2u);
  EXPECT_EQ(s.queue_overflows, 0u);
  expect_settled(c);
  EXPECT_EQ(s.total().moved, 1000u);
  EXPECT_EQ(s.for_direction(MoveDirection::kPromote).moved, 1000u);
  EXPECT_EQ(s.for_direction(MoveDirection::kDemote).requested, 0u);
}

TEST(Mover, PerPageErrnosAreCountedEach) {
  Fake fake;
  fake.rule = Fake::kMixed;
  Mover m(unlimited(64), fake.fn());
  m.submit(req(10, 0, 100, 1));  // vpn 0..99: 20 of each outcome
  m.wait_idle();
  MoveCounts c = counts(m.stats(), 10);
  EXPECT_EQ(c.requested, 100u);
  EXPECT_EQ(c.moved, 20u);
  EXPECT_EQ(c.bytes_moved, 20u * 4096);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{ENOENT, 20}, {EFAULT, 20}, {EBUSY, 20}, {ENOMEM, 20}}));
  EXPECT_EQ(c.failed(), 80u);
  expect_settled(c);
  EXPECT_EQ(mb::move_failure_name(ENOENT), "ENOENT");
  EXPECT_EQ(mb::move_failure_name(EBUSY), "EBUSY");
}

// The pages that did not move reach on_failed with the kernel's status, so a
// policy can plan them again; moved pages do not.
TEST(Mover, FailedPagesAreReported) {
  Fake fake;
  fake.rule = Fake::kMixed;
  mb::MoverConfig cfg = unlimited(64);
  std::mutex mu;
  std::map<int, int> by_status;  // status -> pages
  cfg.on_failed = [&](pid_t pid, const std::vector<std::pair<uint64_t, int>>& failed) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(pid, 10);
    for (auto& [addr, status] : failed) {
      EXPECT_EQ(addr % 4096, 0u);
      ++by_status[status];
    }
  };
  Mover m(cfg, fake.fn());
  m.submit(req(10, 0, 100, 1));
  m.wait_idle();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(by_status, (std::map<int, int>{{-ENOENT, 20}, {-EFAULT, 20}, {-EBUSY, 20}, {-ENOMEM, 20}}));
}

TEST(Mover, PageOnAnotherNodeCountsAsElsewhere) {
  // The kernel reports page i on node 2 when i is odd (not the target 1).
  auto fn = [](pid_t, unsigned long n, void**, const int* nodes, int* status, int) -> long {
    for (unsigned long i = 0; i < n; ++i) status[i] = (i % 2) ? 2 : nodes[i];
    return 0;
  };
  Mover m(unlimited(), fn);
  m.submit(req(10, 0, 10, 1));
  m.wait_idle();
  MoveCounts c = counts(m.stats(), 10);
  EXPECT_EQ(c.moved, 5u);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{mb::kElsewhere, 5}}));
  EXPECT_EQ(mb::move_failure_name(mb::kElsewhere), "elsewhere");
  expect_settled(c);
}

// Per node, the pages that moved in and out: only pages that moved, only
// those whose source is known, and none that were on the target already.
TEST(Mover, FlowsCountWhatLeftAndEnteredEachNode) {
  // Odd pages of each call stay on node 2 (elsewhere).
  auto fn = [](pid_t, unsigned long n, void**, const int* nodes, int* status, int) -> long {
    for (unsigned long i = 0; i < n; ++i) status[i] = (i % 2) ? 2 : nodes[i];
    return 0;
  };
  Mover m(unlimited(), fn);
  MoveRequest q = req(10, 0, 10, 1);
  q.from.assign(10, 0);
  m.submit(q);
  MoveRequest huge = req(11, 512, 2, 1);
  huge.huge = {true, false};
  huge.from = {3, 1};  // the huge page moves; the other, in a batch of its own, was on node 1
  m.submit(huge);
  MoveRequest there = req(14, 0, 1, 1);
  there.from = {1};  // on the target already: moved, but nothing flowed
  m.submit(there);
  m.submit(req(12, 0, 4, 1));  // sources unknown: moved, not in the flows
  MoveRequest bad = req(13, 0, 3, 1);
  bad.from = {0};
  EXPECT_THROW(m.submit(bad), std::invalid_argument);
  m.wait_idle();
  const mb::MoverStats s = m.stats();
  EXPECT_EQ(counts(s, 12).moved, 2u);
  EXPECT_EQ(counts(s, 14).moved, 1u);
  ASSERT_EQ(s.flows.size(), 3u);
  EXPECT_EQ(s.flows.at(1).in, 5u + 512);
  EXPECT_EQ(s.flows.at(1).out, 0u);
  EXPECT_EQ(s.flows.at(0).out, 5u);
  EXPECT_EQ(s.flows.at(3).out, 512u);
}

// The tier view counts what arrived by promotion and by demotion: pages
// that failed are not in it, pages of unknown origin are.
TEST(Mover, ArrivalsByDirectionCountOnlyWhatMoved) {
  auto fn = [](pid_t, unsigned long n, void**, const int* nodes, int* status, int) -> long {
    for (unsigned long i = 0; i < n; ++i) status[i] = (i % 2) ? -EBUSY : nodes[i];
    return 0;
  };
  Mover m(unlimited(), fn);
  MoveRequest up = req(20, 0, 4, 1);
  up.from.assign(4, 0);
  m.submit(up);
  m.submit(req(21, 0, 3, 0, MoveDirection::kDemote, MoveReason::kWatermark));  // origin unknown
  m.submit(req(22, 0, 2, 1, MoveDirection::kNuma, MoveReason::kCloser));
  m.wait_idle();
  const mb::MoverStats s = m.stats();
  EXPECT_EQ(counts(s, 20).moved, 2u);
  EXPECT_EQ(s.flows.at(1).promoted_in, 2u);
  EXPECT_EQ(s.flows.at(1).demoted_in, 0u);
  EXPECT_EQ(s.flows.at(0).demoted_in, 2u);
  EXPECT_EQ(s.flows.at(0).promoted_in, 0u);
  EXPECT_EQ(s.flows.at(0).in, 0u) << "origin unknown: not in the node flows";
}

// A batch under way is in the flows of the nodes it moves between until it
// is done (the kernel may have moved part of it already).
TEST(Mover, FlowsShowTheBatchUnderWay) {
  Fake fake;
  Mover m(unlimited(), fake.fn());
  MoveRequest q = req(kGatePid, 0, 8, 1);
  q.from.assign(8, 0);
  m.submit(q);
  fake.wait_gate_entered();  // the worker is in move_pages
  auto f = m.flows();
  EXPECT_EQ(f[1].in_flight, 8u);
  EXPECT_EQ(f[0].in_flight, 8u);
  EXPECT_EQ(f[1].in, 0u);
  fake.open();
  m.wait_idle();
  f = m.flows();
  EXPECT_EQ(f[1].in_flight, 0u);
  EXPECT_EQ(f[0].in_flight, 0u);
  EXPECT_EQ(f[1].in, 8u);
  EXPECT_EQ(f[0].out, 8u);
}

TEST(Mover, UnwrittenStatusesAreAskedAgain) {
  // Like a kernel that stopped after a failed migration: returns the number
  // of pages not moved and leaves the last 4 statuses unwritten; asked
  // again, 2 of them turn out to be on the target, 1 elsewhere, 1 gone.
  std::vector<Call> calls;
  auto fn = [&](pid_t pid, unsigned long n, void** pages, const int* nodes, int* status, int flags) -> long {
    calls.push_back({pid, {}, {}, flags});
    if (nodes) {
      for (unsigned long i = 0; i + 4 < n; ++i) status[i] = nodes[i];
      return 4;
    }
    const int where[] = {1, 1, 0, -ENOENT};
    for (unsigned long i = 0; i < n; ++i) {
      calls.back().addrs.push_back(reinterpret_cast<uint64_t>(pages[i]));
      status[i] = where[i];
    }
    return 0;
  };
  Mover m(unlimited(), fn);
  m.submit(req(10, 0, 10, 1));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.moved, 8u);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{mb::kElsewhere, 1}, {ENOENT, 1}}));
  expect_settled(c);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].flags, 0);
  EXPECT_EQ(calls[1].addrs, (std::vector<uint64_t>{6 << 12, 7 << 12, 8 << 12, 9 << 12}));
  EXPECT_EQ(s.calls, 2u);
}

TEST(Mover, WholeCallEsrchMidStreamOthersStillMove) {
  Fake fake;
  fake.esrch_pids = {666};
  fake.exits_after = 30;  // pid 30 exits after its first batch
  Mover m(unlimited(512), fake.fn());
  m.submit(req(10, 0, 600));
  m.submit(req(666, 0, 700));
  m.submit(req(30, 0, 1000));
  m.submit(req(20, 0, 300));
  m.submit(req(30, 5000, 10));  // after the exit: ESRCH too
  m.wait_idle();
  auto s = m.stats();
  EXPECT_EQ(counts(s, 10).moved, 600u);
  EXPECT_EQ(counts(s, 666).moved, 0u);
  EXPECT_EQ(counts(s, 666).failed_by_errno, (std::map<int, uint64_t>{{ESRCH, 700}}));
  MoveCounts c30 = counts(s, 30);
  EXPECT_EQ(c30.requested, 1010u);
  EXPECT_EQ(c30.moved, 512u);
  EXPECT_EQ(c30.failed_by_errno, (std::map<int, uint64_t>{{ESRCH, 498}}));
  EXPECT_EQ(counts(s, 20).moved, 300u);
  for (pid_t p : {10, 666, 30, 20}) expect_settled(counts(s, p));
  EXPECT_EQ(s.calls, 2u + 2u + 2u + 1u + 1u);
}

TEST(Mover, WholeCallEpermCountsEveryPage) {
  auto fn = [](pid_t, unsigned long, void**, const int*, int*, int) -> long {
    errno = EPERM;
    return -1;
  };
  Mover m(unlimited(8), fn);
  m.submit(req(10, 0, 20));
  m.wait_idle();
  MoveCounts c = counts(m.stats(), 10);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{EPERM, 20}}));
  EXPECT_EQ(m.stats().calls, 3u);
}

TEST(Mover, HugePagesCountAs512) {
  Fake fake;
  fake.rule = Fake::kMixed;
  Mover m(unlimited(2048), fake.fn());
  MoveRequest q;
  q.pid = 10;
  q.target_node = 1;
  q.direction = MoveDirection::kPromote;
  q.reason = MoveReason::kHot;
  // 4 huge pages at 2 MiB boundaries (vpn % 5: 0 moved, 512 % 5 = 2 EFAULT,
  // 1024 % 5 = 4 ENOMEM, 1536 % 5 = 1 ENOENT), then 10 base pages vpn 5..14.
  for (uint64_t i = 0; i < 4; ++i) {
    q.pages.push_back(i << 21);
    q.huge.push_back(true);
  }
  for (uint64_t v = 5; v < 15; ++v) {
    q.pages.push_back(v << 12);
    q.huge.push_back(false);
  }
  EXPECT_TRUE(m.submit(q));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.requested, 4u * 512 + 10);
  EXPECT_EQ(c.moved, 512u + 2);
  EXPECT_EQ(c.bytes_moved, (2u << 20) + 2 * 4096);
  EXPECT_EQ(c.failed_by_errno,
            (std::map<int, uint64_t>{{EFAULT, 512 + 2}, {ENOMEM, 512 + 2}, {ENOENT, 512 + 2}, {EBUSY, 2}}));
  expect_settled(c);
  // 2048 base pages per call: the 4 huge pages fill the first call; one
  // address each, passed as given.
  auto calls = fake.calls_copy();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].addrs, (std::vector<uint64_t>{0, 1 << 21, 2 << 21, 3 << 21}));
  EXPECT_EQ(calls[1].addrs.size(), 10u);
}

TEST(Mover, HugePageGoesAloneWhenLargerThanABatch) {
  Fake fake;
  Mover m(unlimited(16), fake.fn());
  MoveRequest q = req(10, 0, 20);
  q.huge.assign(20, false);
  q.pages[5] = 1ull << 21;
  q.huge[5] = true;
  m.submit(q);
  m.wait_idle();
  auto calls = fake.calls_copy();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].addrs.size(), 5u);
  EXPECT_EQ(calls[1].addrs, (std::vector<uint64_t>{1ull << 21}));
  EXPECT_EQ(calls[2].addrs.size(), 14u);
  EXPECT_EQ(counts(m.stats(), 10).moved, 19u + 512);
}

TEST(Mover, BatchesSplitAtBatchPagesAndNeverMixPids) {
  Fake fake;
  Mover m(unlimited(256), fake.fn());
  m.submit(req(kGatePid, 0, 1));  // holds the worker until everything is queued
  m.submit(req(1, 0, 300));
  m.submit(req(2, 0, 300));
  m.submit(req(2, 1000, 100, 0));  // same key, other target: joins pid 2's batch
  m.submit(req(1, 1000, 300));
  m.submit(req(1, 2000, 100, 1, MoveDirection::kDemote, MoveReason::kWatermark));  // other key
  fake.open();
  m.wait_idle();
  auto calls = fake.calls_copy();
  std::vector<std::pair<pid_t, size_t>> got;
  for (const auto& c : calls) {
    got.push_back({c.pid, c.addrs.size()});
    EXPECT_LE(c.addrs.size(), 256u);
    EXPECT_EQ(c.addrs.size(), c.nodes.size());
  }
  std::vector<std::pair<pid_t, size_t>> want = {{kGatePid, 1}, {1, 256}, {1, 44}, {2, 256}, {2, 144},
                                                {1, 256},      {1, 44},  {1, 100}};
  EXPECT_EQ(got, want);
  // pid 2's second call: 44 pages to node 1, then 100 to node 0.
  EXPECT_EQ(calls[4].nodes[43], 1);
  EXPECT_EQ(calls[4].nodes[44], 0);
  auto s = m.stats();
  EXPECT_EQ(counts(s, 1).moved, 600u);
  EXPECT_EQ(counts(s, 2).moved, 400u);
  EXPECT_EQ(counts(s, 1, MoveDirection::kDemote, MoveReason::kWatermark).moved, 100u);
  EXPECT_EQ(s.for_direction(MoveDirection::kDemote).moved, 100u);
}

TEST(Mover, QueueOverflowIsCounted) {
  Fake fake;
  MoverConfig cfg = unlimited();
  cfg.queue_pages = 1000;
  Mover m(cfg, fake.fn());
  m.submit(req(kGatePid, 0, 1));
  fake.wait_gate_entered();  // the worker is in move_pages; the queue is empty
  EXPECT_EQ(m.queued_pages(), 0u);
  EXPECT_TRUE(m.submit(req(1, 0, 600)));
  EXPECT_FALSE(m.submit(req(2, 0, 500)));
  EXPECT_TRUE(m.submit(req(2, 1000, 400)));
  EXPECT_EQ(m.queued_pages(), 1000u);
  EXPECT_FALSE(m.submit(req(3, 0, 1)));
  MoveRequest huge = req(4, 0, 2);
  huge.huge = {true, true};
  EXPECT_FALSE(m.submit(huge));
  fake.open();
  m.wait_idle();
  auto s = m.stats();
  EXPECT_EQ(s.queue_overflows, 3u);
  MoveCounts c2 = counts(s, 2);
  EXPECT_EQ(c2.requested, 900u);
  EXPECT_EQ(c2.dropped_queue_full, 500u);
  EXPECT_EQ(c2.moved, 400u);
  expect_settled(c2);
  EXPECT_EQ(counts(s, 1).moved, 600u);
  EXPECT_EQ(counts(s, 3).dropped_queue_full, 1u);
  EXPECT_EQ(counts(s, 4).dropped_queue_full, 1024u);
  EXPECT_EQ(s.total().dropped_queue_full, 1525u);
}

TEST(Mover, AbandonCountsTheRestAndLetsTheCallInFlightFinish) {
  Fake fake;
  Mover m(unlimited(512), fake.fn());
  m.submit(req(kGatePid, 0, 1));
  fake.wait_gate_entered();
  m.submit(req(1, 0, 5000));
  MoveRequest huge = req(2, 0, 3);
  huge.huge = {false, true, false};
  m.submit(huge);
  std::thread t([&] { m.abandon(); });
  while (m.queued_pages() != 0) std::this_thread::yield();  // abandon() has emptied the queue
  fake.open();                                             // the call in flight finishes
  t.join();
  auto s = m.stats();
  EXPECT_EQ(counts(s, kGatePid).moved, 1u);
  EXPECT_EQ(counts(s, 1).abandoned, 5000u);
  EXPECT_EQ(counts(s, 1).moved, 0u);
  EXPECT_EQ(counts(s, 2).abandoned, 514u);
  EXPECT_EQ(fake.calls_copy().size(), 1u);
  EXPECT_FALSE(m.submit(req(1, 9000, 7)));  // stopped for good
  EXPECT_EQ(m.stats().by_key.at({1, MoveDirection::kPromote, MoveReason::kHot}).abandoned, 5007u);
  for (pid_t p : {kGatePid, 1, 2}) expect_settled(counts(m.stats(), p));
  m.wait_idle();
}

// An exec: the process's requests not started are dropped (their addresses
// are the old image's), counted as cancelled_exec; other processes' and the
// call already inside move_pages run; a request submitted after the cancel
// (planned on the new image) runs too.
TEST(Mover, CancelProcessDropsItsRequestsNotStarted) {
  Fake fake;
  Mover m(unlimited(512), fake.fn());
  m.submit(req(kGatePid, 0, 600));  // 512 in move_pages, 88 queued
  fake.wait_gate_entered();
  m.submit(req(1, 0, 1000));
  MoveRequest huge = req(kGatePid, 5000, 2);
  huge.huge = {true, false};
  m.submit(huge);
  m.cancel_process(kGatePid);
  EXPECT_EQ(m.queued_pages(), 1000u);
  m.submit(req(kGatePid, 9000, 5));  // the new image's
  fake.open();
  m.wait_idle();
  auto s = m.stats();
  const MoveCounts c = counts(s, kGatePid);
  EXPECT_EQ(c.moved, 512u + 5u) << "the call in flight cannot be recalled; the later request runs";
  EXPECT_EQ(c.cancelled_exec, 88u + 513u);
  EXPECT_EQ(counts(s, 1).moved, 1000u);
  EXPECT_EQ(counts(s, 1).cancelled_exec, 0u);
  for (const Call& call : fake.calls_copy()) {
    if (call.pid != kGatePid) continue;
    for (uint64_t a : call.addrs) EXPECT_TRUE(a < (512u << 12) || a >= (9000u << 12)) << std::hex << a;
  }
  for (pid_t p : {kGatePid, 1}) expect_settled(counts(s, p));
}

// The process execs during the first call of a request (the kernel's exec
// count goes up): the mover sees it before its next call, without waiting
// for the loop's cancel_process, and the old image's batches are cancelled
// (they used to be moved at addresses of the new image: EFAULT, or its
// pages). A request submitted after the exec runs.
TEST(Mover, AnExecSeenByTheCountCancelsTheOldImagesBatchesAtOnce) {
  Fake fake;
  std::mutex mu;
  uint32_t execs = 0;
  MoverConfig cfg = unlimited(256);
  cfg.exec_count = [&](pid_t pid) -> std::optional<uint32_t> {
    std::lock_guard<std::mutex> l(mu);
    if (pid != 1) return std::nullopt;  // no count known: never cancelled so
    return execs;
  };
  const Mover::MoveFn kernel = fake.fn();
  Mover m(cfg, [&](pid_t pid, unsigned long n, void** pages, const int* nodes, int* status, int flags) {
    const long r = kernel(pid, n, pages, nodes, status, flags);
    std::lock_guard<std::mutex> l(mu);
    if (pid == 1) ++execs;  // each call of pid 1 ends with an exec
    return r;
  });
  m.submit(req(1, 0, 1000));  // 4 batches
  m.submit(req(2, 0, 600));
  m.wait_idle();
  m.submit(req(1, 9000, 5));  // the new image's
  m.wait_idle();
  auto s = m.stats();
  const MoveCounts c = counts(s, 1);
  EXPECT_EQ(c.moved, 256u + 5u) << "only the call made before the exec, and the new image's";
  EXPECT_EQ(c.cancelled_exec, 1000u - 256u);
  expect_settled(c);
  EXPECT_EQ(counts(s, 2).moved, 600u);
  EXPECT_EQ(s.calls, 2u + 3u);
}

// A batch taken before the exec and waiting for rate-limit tokens is not
// started either: the cancel ends its wait.
TEST(Mover, CancelProcessEndsARateLimitWait) {
  Fake fake;
  Mover m(one_batch_then_a_long_wait(), fake.fn());
  m.submit(req(1, 0, 1024));
  while (m.queued_pages() != 0) std::this_thread::yield();  // the second batch is taken, waiting
  m.cancel_process(1);
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 1);
  EXPECT_EQ(c.moved, 512u);
  EXPECT_EQ(c.cancelled_exec, 512u);
  EXPECT_EQ(c.abandoned, 0u);
  expect_settled(c);
  EXPECT_EQ(s.calls, 1u);
}

TEST(Mover, AbandonInterruptsARateLimitWait) {
  Fake fake;
  Mover m(one_batch_then_a_long_wait(), fake.fn());
  m.submit(req(1, 0, 5120));
  while (m.stats().calls == 0) std::this_thread::yield();
  m.abandon();
  auto s = m.stats();
  MoveCounts c = counts(s, 1);
  EXPECT_EQ(c.moved, 512u);
  EXPECT_EQ(c.abandoned, 4608u);
  expect_settled(c);
  EXPECT_EQ(s.calls, 1u);
  EXPECT_GT(s.throttled_s, 0);
}

TEST(Mover, RateLimitedMoverMovesEverything) {
  // The rate's accuracy is RateLimiter's test (fake clock); here: with a
  // limit, every page is still moved, in the same batches.
  Fake fake;
  MoverConfig cfg = unlimited(64);
  cfg.rate_limit_bytes_per_s = 1ull << 30;  // 1 GiB/s: 4 MiB take a few ms at most
  Mover m(cfg, fake.fn());
  m.submit(req(1, 0, 1024));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 1);
  EXPECT_EQ(c.moved, 1024u);
  EXPECT_EQ(c.abandoned + c.dropped_queue_full + c.failed(), 0u);
  EXPECT_EQ(s.calls, 16u);
}

TEST(Mover, DestructorDrainsTheQueue) {
  Fake fake;
  {
    Mover m(unlimited(100), fake.fn());
    for (pid_t p = 1; p <= 5; ++p) m.submit(req(p, 0, 250));
  }
  size_t pages = 0;
  for (const auto& c : fake.calls_copy()) pages += c.addrs.size();
  EXPECT_EQ(pages, 1250u);
}

TEST(Mover, MultipleWorkersGiveTheSameTotals) {
  auto run = [](int workers) {
    Fake fake;
    fake.rule = Fake::kMixed;
    fake.esrch_pids = {13};
    Mover m(unlimited(100, workers), fake.fn());
    for (int round = 0; round < 20; ++round)
      for (pid_t p = 10; p < 16; ++p) {
        MoveRequest q = req(p, static_cast<uint64_t>(round) * 10000, 333, p % 2,
                            p % 3 ? MoveDirection::kPromote : MoveDirection::kDemote);
        q.huge.assign(q.pages.size(), false);
        q.huge[7] = true;
        m.submit(std::move(q));
        (void)m.stats();  // read while the workers run
      }
    m.wait_idle();
    auto s = m.stats();
    size_t max_batch = 0;
    for (const auto& c : fake.calls_copy()) {
      max_batch = std::max(max_batch, c.addrs.size());
    }
    EXPECT_LE(max_batch, 100u);
    return s;
  };
  auto one = run(1);
  auto four = run(4);
  ASSERT_EQ(one.by_key.size(), four.by_key.size());
  for (const auto& [key, c1] : one.by_key) {
    const MoveCounts& c4 = four.by_key.at(key);
    EXPECT_EQ(c1.requested, c4.requested);
    EXPECT_EQ(c1.moved, c4.moved);
    EXPECT_EQ(c1.bytes_moved, c4.bytes_moved);
    EXPECT_EQ(c1.failed_by_errno, c4.failed_by_errno);
    expect_settled(c4);
  }
  EXPECT_EQ(one.calls, four.calls);
  EXPECT_EQ(one.total().requested, 20u * 6 * (333 + 511));
  EXPECT_EQ(counts(one, 13, MoveDirection::kPromote).failed_by_errno.at(ESRCH), 20u * (333 + 511));
}

// ---- full targets -----------------------------------------------------------------
// A kernel whose nodes have room for a given number of base pages (nodes not
// listed: unlimited). Like 6.1's move_pages: pages go in runs of one target
// node; a run that finds no room fails the whole call with ENOMEM, leaving
// its statuses and every later one unwritten (per_page: instead, each page
// without room gets status -per_page and the call goes on). A where-is query
// answers where each page is (node 0, its source, until moved). Calls of
// pid kGatePid wait until open(), as in Fake.
struct RoomFake {
  std::map<int, uint64_t> room;
  int per_page = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool gate_open = false;
  std::map<uint64_t, int> where;
  std::vector<Call> calls;

  void open() {
    std::lock_guard<std::mutex> l(mu);
    gate_open = true;
    cv.notify_all();
  }
  void set_room(int node, uint64_t pages, bool limited = true) {
    std::lock_guard<std::mutex> l(mu);
    if (limited) room[node] = pages;
    else room.erase(node);
  }
  Mover::MoveFn fn() {
    return [this](pid_t pid, unsigned long count, void** pages, const int* nodes, int* status, int flags) -> long {
      std::unique_lock<std::mutex> l(mu);
      if (pid == kGatePid) cv.wait(l, [this] { return gate_open; });
      Call c{pid, {}, {}, flags};
      for (unsigned long i = 0; i < count; ++i) {
        c.addrs.push_back(reinterpret_cast<uint64_t>(pages[i]));
        if (nodes) c.nodes.push_back(nodes[i]);
      }
      calls.push_back(c);
      if (!nodes) {
        for (unsigned long i = 0; i < count; ++i) status[i] = where.count(c.addrs[i]) ? where[c.addrs[i]] : 0;
        return 0;
      }
      unsigned long run = 0;  // first page of the current run
      std::vector<int> st(count);
      for (unsigned long i = 0; i < count; ++i) {
        if (i && nodes[i] != nodes[i - 1]) {
          for (unsigned long k = run; k < i; ++k) status[k] = st[k];
          run = i;
        }
        auto r = room.find(nodes[i]);
        if (r != room.end() && r->second == 0) {
          if (per_page) {
            st[i] = -per_page;
            continue;
          }
          errno = ENOMEM;
          return -1;
        }
        if (r != room.end()) --r->second;
        where[c.addrs[i]] = nodes[i];
        st[i] = nodes[i];
      }
      for (unsigned long k = run; k < count; ++k) status[k] = st[k];
      return 0;
    };
  }
  std::vector<Call> calls_copy() {
    std::lock_guard<std::mutex> l(mu);
    return calls;
  }
  int node_of(uint64_t addr) {
    std::lock_guard<std::mutex> l(mu);
    return where.count(addr) ? where[addr] : 0;
  }
};

// Nodes 1, 2 and 3 form one tier.
MoverConfig tiered(size_t batch) {
  MoverConfig c = unlimited(batch);
  c.same_tier = {{1, {2, 3}}, {2, {1, 3}}, {3, {2, 1}}};
  return c;
}

mb::TargetFullCounts full_counts(const mb::MoverStats& s, int node) {
  auto it = s.target_full.find(node);
  return it == s.target_full.end() ? mb::TargetFullCounts{} : it->second;
}

// Node 1 has no room: the whole call fails with ENOMEM, the mover asks where
// the pages are, and sends them to node 2 in the same batch; the next batch
// goes to node 2 without asking node 1, which is marked full.
TEST(Mover, AFullTargetsPagesGoToAStandInOfItsTier) {
  RoomFake fake;
  fake.room = {{1, 0}};
  MoverConfig cfg = tiered(64);
  std::mutex mu;
  std::map<int, int> redirected;  // node -> pages
  cfg.on_redirected = [&](pid_t pid, const std::vector<std::pair<uint64_t, int>>& moved) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(pid, 10);
    for (auto& [addr, node] : moved) ++redirected[node];
  };
  cfg.on_failed = [&](pid_t, const std::vector<std::pair<uint64_t, int>>& failed) {
    ADD_FAILURE() << failed.size() << " pages reported failed";
  };
  Mover m(cfg, fake.fn());
  MoveRequest q = req(10, 0, 100, 1, MoveDirection::kDemote, MoveReason::kWatermark);
  q.from.assign(100, 0);
  m.submit(q);
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10, MoveDirection::kDemote, MoveReason::kWatermark);
  EXPECT_EQ(c.moved, 100u);
  EXPECT_EQ(c.redirected, 100u);
  // What moved, by node: into the stand-in, none into the full target.
  EXPECT_EQ(s.flows[2].in, 100u);
  EXPECT_EQ(s.flows[0].out, 100u);
  EXPECT_EQ(s.flows[1].in, 0u);
  for (const auto& [n, f] : s.flows) EXPECT_EQ(f.in_flight, 0u) << "node " << n;
  EXPECT_EQ(c.failed(), 0u);
  expect_settled(c);
  const mb::TargetFullCounts n1 = full_counts(s, 1), n2 = full_counts(s, 2);
  EXPECT_EQ(n1.refused, 64u);
  EXPECT_EQ(n1.skipped, 36u);
  EXPECT_EQ(n1.marks, 1u);
  EXPECT_TRUE(n1.full);
  EXPECT_EQ(n1.refused_since_mark, 64u);
  EXPECT_EQ(n2.taken, 100u);
  EXPECT_FALSE(n2.full);
  EXPECT_EQ(s.target_full.count(3), 0u);
  // Batch 1: refused, where-is, stand-in; batch 2: the stand-in at once.
  auto calls = fake.calls_copy();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].nodes, std::vector<int>(64, 1));
  EXPECT_TRUE(calls[1].nodes.empty());
  EXPECT_EQ(calls[2].nodes, std::vector<int>(64, 2));
  EXPECT_EQ(calls[3].nodes, std::vector<int>(36, 2));
  EXPECT_EQ(s.calls, 4u);
  for (uint64_t v = 0; v < 100; ++v) EXPECT_EQ(fake.node_of(v << 12), 2);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(redirected, (std::map<int, int>{{2, 100}}));
}

// Room for 10 pages: the kernel moves them, then stops with ENOMEM; the rest
// go to the stand-in. A huge page refused counts 512.
TEST(Mover, ATargetThatFillsMidCallKeepsWhatItTook) {
  RoomFake fake;
  fake.room = {{1, 10}};
  Mover m(tiered(2048), fake.fn());
  MoveRequest q = req(10, 0, 30, 1);
  q.huge.assign(30, false);
  q.pages.push_back(1ull << 21);
  q.huge.push_back(true);
  m.submit(q);
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.moved, 30u + 512);
  EXPECT_EQ(c.redirected, 20u + 512);
  expect_settled(c);
  EXPECT_EQ(full_counts(s, 1).refused, 20u + 512);
  EXPECT_EQ(full_counts(s, 2).taken, 20u + 512);
  for (uint64_t v = 0; v < 10; ++v) EXPECT_EQ(fake.node_of(v << 12), 1);
  for (uint64_t v = 10; v < 30; ++v) EXPECT_EQ(fake.node_of(v << 12), 2);
}

// Per-page refusals (status -ENOSPC, the call goes on) are the same thing.
TEST(Mover, PerPageNoSpaceStatusesGoToAStandIn) {
  RoomFake fake;
  fake.room = {{1, 5}};
  fake.per_page = ENOSPC;
  Mover m(tiered(512), fake.fn());
  m.submit(req(10, 0, 20, 1));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.moved, 20u);
  EXPECT_EQ(c.redirected, 15u);
  EXPECT_EQ(full_counts(s, 1).refused, 15u);
  EXPECT_EQ(s.calls, 2u);  // no where-is query: every status was written
}

// The kernel stops at the run that found no room; later pages for another
// node were never tried: they are tried again, on their own node, and that
// node is not marked full.
TEST(Mover, PagesTheKernelDidNotGetToAreTriedOnTheirOwnNode) {
  RoomFake fake;
  fake.room = {{1, 0}};
  Mover m(tiered(512), fake.fn());
  m.submit(req(kGatePid, 0, 1, 0));  // holds the worker until both are queued
  m.submit(req(10, 0, 10, 1));
  m.submit(req(10, 100, 10, 3));  // joins the batch: same pid, direction, reason
  fake.open();
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.moved, 20u);
  EXPECT_EQ(c.redirected, 10u);
  EXPECT_EQ(full_counts(s, 1).refused, 10u);
  EXPECT_EQ(full_counts(s, 3).refused, 0u);
  EXPECT_FALSE(full_counts(s, 3).full);
  for (uint64_t v = 100; v < 110; ++v) EXPECT_EQ(fake.node_of(v << 12), 3);
  for (uint64_t v = 0; v < 10; ++v) EXPECT_EQ(fake.node_of(v << 12), 2);
}

// A fake kernel that stops as 6.1's do_pages_move does when a migration
// fails for some pages (a pinned page, say): pages go in runs of one target
// node, a run ends at a change of node or at a page whose status is written
// at once (not present, already there); a run whose migration leaves pages
// behind makes the call return the number not moved plus every page after
// the run, leaving the run's statuses and all later ones unwritten. A
// where-is query answers where each page is (node 0 until moved).
struct RunFake {
  std::set<uint64_t> pinned;  // never migrate
  std::set<uint64_t> absent;  // status -ENOENT
  std::map<uint64_t, int> where;
  std::mutex mu;
  bool gate_open = false;
  std::condition_variable cv;
  void open() {
    std::lock_guard<std::mutex> l(mu);
    gate_open = true;
    cv.notify_all();
  }
  Mover::MoveFn fn() {
    return [this](pid_t pid, unsigned long count, void** pages, const int* nodes, int* status, int) -> long {
      std::unique_lock<std::mutex> l(mu);
      if (pid == kGatePid) cv.wait(l, [this] { return gate_open; });
      auto addr = [&](unsigned long i) { return reinterpret_cast<uint64_t>(pages[i]); };
      if (!nodes) {
        for (unsigned long i = 0; i < count; ++i)
          status[i] = absent.count(addr(i)) ? -ENOENT : (where.count(addr(i)) ? where[addr(i)] : 0);
        return 0;
      }
      unsigned long start = 0;
      std::vector<unsigned long> run;
      // Migrates the run; returns the pages left behind plus those after it.
      auto flush = [&](unsigned long next) -> long {
        long left = 0;
        for (unsigned long k : run) {
          if (pinned.count(addr(k))) ++left;
          else where[addr(k)] = nodes[k];
        }
        if (left) return left + static_cast<long>(count - next);
        for (unsigned long k : run) status[k] = nodes[k];
        run.clear();
        return 0;
      };
      for (unsigned long i = 0; i < count; ++i) {
        if (!run.empty() && nodes[i] != nodes[start])
          if (long r = flush(i)) return r;
        if (run.empty()) start = i;
        const int now = where.count(addr(i)) ? where[addr(i)] : 0;
        if (absent.count(addr(i)) || now == nodes[i]) {
          status[i] = absent.count(addr(i)) ? -ENOENT : now;
          if (long r = flush(i + 1)) return r - 1;  // page i is accounted for
          continue;
        }
        run.push_back(i);
      }
      return flush(count);
    };
  }
};

// The kernel stops at a run that left a pinned page behind: the pages of
// the later runs (another node's, and the same node's after a page that was
// not present) were never tried. They are tried again, not counted as
// failed; the pinned page fails as elsewhere, the absent one as ENOENT.
TEST(Mover, PagesAfterARunThatLeftPagesBehindAreTriedAgain) {
  RunFake fake;
  fake.pinned = {3 << 12};
  fake.absent = {5 << 12};
  std::mutex mu;
  std::map<int, int> failed;  // status -> pages
  MoverConfig cfg = unlimited(512);
  cfg.on_failed = [&](pid_t, const std::vector<std::pair<uint64_t, int>>& f) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [addr, st] : f) ++failed[st];
  };
  Mover m(cfg, fake.fn());
  m.submit(req(kGatePid, 0x9000, 1, 0));  // holds the worker until both are queued
  m.submit(req(10, 0, 10, 1));     // pages 0-9 to node 1: 3 pinned, 5 absent
  m.submit(req(10, 100, 10, 2));   // joins the batch: pages 100-109 to node 2
  fake.open();
  m.wait_idle();
  MoveCounts c = counts(m.stats(), 10);
  EXPECT_EQ(c.moved, 18u);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{mb::kElsewhere, 1}, {ENOENT, 1}}));
  expect_settled(c);
  for (uint64_t v : {0, 1, 2, 4, 6, 7, 8, 9}) EXPECT_EQ(fake.where[v << 12], 1) << v;
  for (uint64_t v = 100; v < 110; ++v) EXPECT_EQ(fake.where[v << 12], 2) << v;
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(failed, (std::map<int, int>{{0, 1}, {-ENOENT, 1}}));
}

// No stand-in with room: the pages fail as ENOMEM (reported to on_failed),
// every node that refused is marked; a later page meant for a marked node
// with every stand-in marked too is tried on its own node (it may have room
// again), not failed unasked.
TEST(Mover, NoStandInLeftFailsAsFull) {
  RoomFake fake;
  fake.room = {{1, 0}, {2, 0}, {3, 0}};
  MoverConfig cfg = tiered(512);
  std::mutex mu;
  std::map<int, int> by_status;
  cfg.on_failed = [&](pid_t, const std::vector<std::pair<uint64_t, int>>& failed) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [addr, st] : failed) ++by_status[st];
  };
  Mover m(cfg, fake.fn());
  m.submit(req(10, 0, 10, 1));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.moved, 0u);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{ENOMEM, 10}}));
  expect_settled(c);
  for (int n : {1, 2, 3}) {
    EXPECT_EQ(full_counts(s, n).refused, 10u) << n;
    EXPECT_TRUE(full_counts(s, n).full) << n;
  }
  EXPECT_EQ(s.calls, 6u);   // each node: the move, then where-is
  fake.set_room(1, 0, false);  // node 1 has room again
  m.submit(req(10, 100, 5, 1));
  m.wait_idle();
  s = m.stats();
  EXPECT_EQ(counts(s, 10).moved, 5u);
  EXPECT_EQ(counts(s, 10).redirected, 0u);
  EXPECT_EQ(full_counts(s, 1).skipped, 0u);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(by_status, (std::map<int, int>{{-ENOMEM, 10}}));
}

// clear_full: the owner saw room again; pages go to the node first again.
TEST(Mover, ClearFullSendsPagesToTheNodeAgain) {
  RoomFake fake;
  fake.room = {{1, 0}};
  Mover m(tiered(512), fake.fn());
  m.submit(req(10, 0, 10, 1));
  m.wait_idle();
  fake.set_room(1, 0, false);
  m.submit(req(10, 100, 10, 1));  // still marked: straight to node 2
  m.wait_idle();
  EXPECT_EQ(full_counts(m.stats(), 1).skipped, 10u);
  m.clear_full(1);
  EXPECT_FALSE(full_counts(m.stats(), 1).full);
  EXPECT_EQ(full_counts(m.stats(), 1).refused_since_mark, 0u);
  m.submit(req(10, 200, 10, 1));
  m.wait_idle();
  auto s = m.stats();
  EXPECT_EQ(counts(s, 10).moved, 30u);
  EXPECT_EQ(counts(s, 10).redirected, 20u);
  EXPECT_EQ(full_counts(s, 1).marks, 1u);
  for (uint64_t v = 200; v < 210; ++v) EXPECT_EQ(fake.node_of(v << 12), 1);
}

// Without stand-ins (numa mode) a full node's pages fail as ENOMEM, counted
// per node and marked all the same.
TEST(Mover, WithoutStandInsRefusedPagesFail) {
  RoomFake fake;
  fake.room = {{1, 0}};
  Mover m(unlimited(512), fake.fn());
  m.submit(req(10, 0, 10, 1, MoveDirection::kNuma, MoveReason::kCloser));
  m.wait_idle();
  auto s = m.stats();
  MoveCounts c = counts(s, 10, MoveDirection::kNuma, MoveReason::kCloser);
  EXPECT_EQ(c.failed_by_errno, (std::map<int, uint64_t>{{ENOMEM, 10}}));
  EXPECT_EQ(full_counts(s, 1).refused, 10u);
  EXPECT_TRUE(full_counts(s, 1).full);
  EXPECT_EQ(s.calls, 2u);
}

// A stand-in pays rate-limit tokens like any call; abandon() while it waits
// counts its pages as abandoned.
TEST(Mover, AStandInWaitsForTokensAndAbandonCountsIt) {
  RoomFake fake;
  fake.room = {{1, 0}};
  MoverConfig cfg = tiered(512);
  cfg.rate_limit_bytes_per_s = 1024;  // the batch takes the bucket; the stand-in waits ~34 min
  Mover m(cfg, fake.fn());
  m.submit(req(10, 0, 512, 1));
  while (fake.calls_copy().size() < 2) std::this_thread::yield();  // refused, where-is
  m.abandon();
  auto s = m.stats();
  MoveCounts c = counts(s, 10);
  EXPECT_EQ(c.abandoned, 512u);
  EXPECT_EQ(c.moved, 0u);
  expect_settled(c);
  EXPECT_EQ(full_counts(s, 1).refused, 512u);
  EXPECT_EQ(s.calls, 2u);
}

TEST(Mover, BadHugeFlagsAreRefused) {
  Fake fake;
  Mover m(unlimited(), fake.fn());
  MoveRequest q = req(1, 0, 3);
  q.huge = {true};
  EXPECT_THROW(m.submit(q), std::invalid_argument);
  EXPECT_TRUE(m.submit(req(1, 0, 0)));  // empty: nothing to do
  m.wait_idle();
  EXPECT_TRUE(m.stats().by_key.empty());
}

// The default fn is the real move_pages(2): move 8 of this test's own pages
// to node 0 (the node every machine has).
TEST(Mover, RealMovePagesOnOwnMemory) {
  const long psz = sysconf(_SC_PAGESIZE);
  ASSERT_EQ(psz, 4096);
  const size_t n = 8;
  void* mem = mmap(nullptr, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* bytes = static_cast<volatile char*>(mem);
  for (size_t i = 0; i < n; ++i) bytes[i * 4096] = 1;  // present
  MoverConfig cfg;
  cfg.rate_limit_bytes_per_s = 0;
  mb::MoverStats s;
  {
    Mover m(cfg);
    MoveRequest q;
    q.pid = getpid();
    q.target_node = 0;
    for (size_t i = 0; i < n; ++i) q.pages.push_back(reinterpret_cast<uint64_t>(mem) + i * 4096);
    ASSERT_TRUE(m.submit(q));
    m.wait_idle();
    s = m.stats();
  }
  munmap(mem, n * 4096);
  MoveCounts c = s.total();
  std::string failures;
  for (const auto& [err, pages] : c.failed_by_errno)
    failures += " " + mb::move_failure_name(err) + "=" + std::to_string(pages);
  if (c.moved == 0 && c.failed_by_errno.count(ENOSYS)) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL() << "CI=true: kernel without NUMA (move_pages: ENOSYS)";
    GTEST_SKIP() << "kernel without NUMA (move_pages: ENOSYS)";
  }
  EXPECT_EQ(c.moved, n) << "failed:" << failures;
  EXPECT_EQ(c.bytes_moved, n * 4096);
  EXPECT_EQ(c.failed(), 0u) << failures;
  EXPECT_EQ(s.calls, 1u);
}

}  // namespace
