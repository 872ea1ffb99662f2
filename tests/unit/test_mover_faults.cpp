// Fault injection for the mover against the real move_pages(2): a child
// process whose pages are being moved exits (zombie, then reaped), execs, or
// loses its memory (munmap, MADV_DONTNEED) between two batches of one
// request. Each page is counted once, under the errno the kernel gave, the
// mover goes on with the next request, and nothing throws. The fault is
// injected through the mover's MoveFn: the real call, preceded by the fault
// before the call it is due at. On a one-node machine the target is node 0
// (where the pages are: status 0 counts as moved); the VM suite runs the same
// faults through membalancer on two nodes (tests/integration/test_faults.cpp).

#include <gtest/gtest.h>

#include <numa.h>
#include <numaif.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "membalancer/mover.h"

namespace {

using mb::MoveCounts;
using mb::Mover;
using mb::MoverConfig;
using mb::MoveRequest;

constexpr size_t kPages = 256;
constexpr size_t kBatch = 64;  // four move_pages calls per request
// A fixed address far from where the kernel places mappings, so that an
// exec'd image cannot have anything there. 1 GiB: below 2 GiB, where ASan
// leaves application memory (16 TiB lies in its shadow), and in TSan's low
// application range, so the sanitized builds can map it too.
constexpr uintptr_t kRegion = 0x40000000ull;

// A child with kPages written pages at kRegion that obeys one-byte commands:
// 'u' unmaps the second half, 'd' MADV_DONTNEEDs it, 'x' exits, 'e' execs
// sleep; it answers 'k' after 'u' and 'd'.
struct Victim {
  pid_t pid = -1;
  int cmd = -1, ack = -1;

  void start() {
    int c[2], a[2];
    ASSERT_EQ(pipe(c), 0);
    ASSERT_EQ(pipe(a), 0);
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(c[1]);
      close(a[0]);
      void* m = mmap(reinterpret_cast<void*>(kRegion), kPages * 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (m != reinterpret_cast<void*>(kRegion)) _exit(3);
      for (size_t i = 0; i < kPages; ++i) static_cast<volatile char*>(m)[i * 4096] = 1;
      char b = 'k';
      if (write(a[1], &b, 1) != 1) _exit(4);
      while (read(c[0], &b, 1) == 1) {
        void* half = static_cast<char*>(m) + kPages / 2 * 4096;
        if (b == 'x') _exit(0);
        if (b == 'e') {
          execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
          _exit(5);
        }
        if (b == 'u') munmap(half, kPages / 2 * 4096);
        if (b == 'd') madvise(half, kPages / 2 * 4096, MADV_DONTNEED);
        b = 'k';
        if (write(a[1], &b, 1) != 1) _exit(4);
      }
      _exit(0);
    }
    close(c[0]);
    close(a[1]);
    cmd = c[1];
    ack = a[0];
    char b = 0;
    ASSERT_EQ(read(ack, &b, 1), 1) << "the child did not map its pages";
  }
  void send(char b) { ASSERT_EQ(write(cmd, &b, 1), 1); }
  void wait_ack() {
    char b = 0;
    ASSERT_EQ(read(ack, &b, 1), 1);
  }
  // Third field of /proc/PID/stat ('Z' for a zombie), or 0.
  char state() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(f, s);
    auto r = s.rfind(')');
    return r == std::string::npos || r + 2 >= s.size() ? 0 : s[r + 2];
  }
  std::string exe() const {
    char buf[256];
    ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  void reap() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~Victim() {
    reap();
    if (cmd >= 0) close(cmd);
    if (ack >= 0) close(ack);
  }
};

bool wait_until(const std::function<bool()>& cond) {
  for (int i = 0; i < 500 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return cond();
}

MoveRequest victim_request(pid_t pid) {
  MoveRequest q;
  q.pid = pid;
  q.target_node = 0;
  for (size_t i = 0; i < kPages; ++i) q.pages.push_back(kRegion + i * 4096);
  return q;
}

std::string describe(const MoveCounts& c) {
  std::string s = "moved " + std::to_string(c.moved) + ", failed:";
  for (const auto& [err, pages] : c.failed_by_errno) s += " " + mb::move_failure_name(err) + "=" + std::to_string(pages);
  return s + ", abandoned " + std::to_string(c.abandoned);
}

struct Outcome {
  MoveCounts victim, after;  // the victim's request, and a request of this process submitted after it
  uint64_t calls = 0;
};

// Moves the victim's pages in kBatch-page calls; `fault` runs before the
// second call (after the first batch moved). Then moves 8 pages of this
// process: the mover goes on.
Outcome run_with_fault(Victim& v, const std::function<void()>& fault) {
  const pid_t victim = v.pid;  // the fault may reap it
  int calls = 0;
  Mover::MoveFn fn = [&](pid_t pid, unsigned long n, void** pages, const int* nodes, int* status, int flags) -> long {
    if (pid == victim && ++calls == 2) fault();
    return numa_move_pages(pid, n, pages, nodes, status, flags);
  };
  void* own = mmap(nullptr, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < 8; ++i) static_cast<volatile char*>(own)[i * 4096] = 1;
  MoveRequest mine;
  mine.pid = getpid();
  mine.target_node = 0;
  mine.direction = mb::MoveDirection::kDemote;
  for (size_t i = 0; i < 8; ++i) mine.pages.push_back(reinterpret_cast<uint64_t>(own) + i * 4096);
  MoverConfig cfg;
  cfg.rate_limit_bytes_per_s = 0;
  cfg.batch_pages = kBatch;
  Outcome o;
  {
    Mover m(cfg, fn);
    EXPECT_TRUE(m.submit(victim_request(victim)));
    EXPECT_TRUE(m.submit(mine));
    m.wait_idle();
    auto s = m.stats();
    o.victim = s.by_key[{victim, mb::MoveDirection::kNuma, mb::MoveReason::kCloser}];
    o.after = s.by_key[{getpid(), mb::MoveDirection::kDemote, mb::MoveReason::kCloser}];
    o.calls = s.calls;
  }
  munmap(own, 8 * 4096);
  return o;
}

// Without NUMA support in the kernel nothing can be said: skip (fail in CI).
bool numa_missing(const Outcome& o) { return o.after.moved == 0 && o.after.failed_by_errno.count(ENOSYS); }

#define SKIP_WITHOUT_NUMA(o)                                                              \
  do {                                                                                    \
    if (numa_missing(o)) {                                                                \
      const char* ci = std::getenv("CI");                                                 \
      if (ci && std::string(ci) == "true") FAIL() << "CI=true: kernel without NUMA";      \
      GTEST_SKIP() << "kernel without NUMA (move_pages: ENOSYS)";                         \
    }                                                                                     \
  } while (0)

// The first batch moved, the rest failed under `err`, every page counted
// once, and this process's request after it moved whole.
void expect_rest_failed(const Outcome& o, int err) {
  EXPECT_EQ(o.victim.requested, kPages);
  EXPECT_EQ(o.victim.moved, kBatch) << describe(o.victim);
  EXPECT_EQ(o.victim.failed_by_errno, (std::map<int, uint64_t>{{err, kPages - kBatch}})) << describe(o.victim);
  EXPECT_EQ(o.victim.requested, o.victim.moved + o.victim.failed() + o.victim.abandoned);
  EXPECT_EQ(o.after.moved, 8u) << "the mover stopped after the fault: " << describe(o.after);
}

}  // namespace

// Exited, not yet reaped: the pid exists but has no memory (EINVAL from
// move_pages for a task without an mm).
TEST(MoverFaults, ProcessExitsMidRequestZombie) {
  Victim v;
  ASSERT_NO_FATAL_FAILURE(v.start());
  Outcome o = run_with_fault(v, [&] {
    v.send('x');
    ASSERT_TRUE(wait_until([&] { return v.state() == 'Z'; }));
  });
  SKIP_WITHOUT_NUMA(o);
  expect_rest_failed(o, EINVAL);
}

// Exited and reaped: the pid is gone (ESRCH for the whole call).
TEST(MoverFaults, ProcessExitsMidRequestReaped) {
  Victim v;
  ASSERT_NO_FATAL_FAILURE(v.start());
  Outcome o = run_with_fault(v, [&] {
    v.send('x');
    int st = 0;
    ASSERT_EQ(waitpid(v.pid, &st, 0), v.pid);
    v.pid = -1;
  });
  SKIP_WITHOUT_NUMA(o);
  expect_rest_failed(o, ESRCH);
  EXPECT_EQ(o.calls, 4u + 1u) << "one call per batch";
}

// Exec: same pid, new address space without the pages (EFAULT: no mapping).
TEST(MoverFaults, ProcessExecsMidRequest) {
  Victim v;
  ASSERT_NO_FATAL_FAILURE(v.start());
  Outcome o = run_with_fault(v, [&] {
    v.send('e');
    ASSERT_TRUE(wait_until([&] { return v.exe() == "/usr/bin/sleep" || v.exe() == "/bin/sleep"; })) << v.exe();
  });
  SKIP_WITHOUT_NUMA(o);
  expect_rest_failed(o, EFAULT);
}

// munmap of the second half: those pages fail with EFAULT, the others move.
TEST(MoverFaults, MemoryUnmappedMidRequest) {
  Victim v;
  ASSERT_NO_FATAL_FAILURE(v.start());
  Outcome o = run_with_fault(v, [&] {
    v.send('u');
    v.wait_ack();
  });
  SKIP_WITHOUT_NUMA(o);
  EXPECT_EQ(o.victim.moved, kPages / 2) << describe(o.victim);
  EXPECT_EQ(o.victim.failed_by_errno, (std::map<int, uint64_t>{{EFAULT, kPages / 2}})) << describe(o.victim);
  EXPECT_EQ(o.victim.requested, o.victim.moved + o.victim.failed());
  EXPECT_EQ(o.after.moved, 8u);
}

// MADV_DONTNEED of the second half: mapped but not present (ENOENT).
TEST(MoverFaults, PagesDroppedMidRequest) {
  Victim v;
  ASSERT_NO_FATAL_FAILURE(v.start());
  Outcome o = run_with_fault(v, [&] {
    v.send('d');
    v.wait_ack();
  });
  SKIP_WITHOUT_NUMA(o);
  EXPECT_EQ(o.victim.moved, kPages / 2) << describe(o.victim);
  EXPECT_EQ(o.victim.failed_by_errno, (std::map<int, uint64_t>{{ENOENT, kPages / 2}})) << describe(o.victim);
  EXPECT_EQ(o.victim.requested, o.victim.moved + o.victim.failed());
  EXPECT_EQ(o.after.moved, 8u);
}
