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
  EXPECT_EQ(c.requested, c.moved + c.failed() + c.dropped_queue_full + c.abandoned);
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
  cfg.on_failed = [&](pid_t pid, int target, const std::vector<std::pair<uint64_t, int>>& failed) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(pid, 10);
    EXPECT_EQ(target, 1);
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

TEST(Mover, AbandonInterruptsARateLimitWait) {
  Fake fake;
  MoverConfig cfg = unlimited(512);
  cfg.rate_limit_bytes_per_s = 1024;  // after the first batch, the next waits ~34 min
  Mover m(cfg, fake.fn());
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
