// AbitSync against a model of the helper module's write(): lines applied in
// order up to the first failing one, whose error the whole write returns;
// at most `limit` pids per file (ENOSPC); ESRCH for a pid with no process;
// EINTR when a signal comes while it waits for its lock.
#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <sstream>
#include <string>

#include "membalancer/abit_sync.h"

namespace {

struct FakeModule {
  size_t limit = 4096;
  std::set<pid_t> pids;
  std::set<pid_t> alive;  // processes that exist
  int eintr = 0;          // the next N writes fail with EINTR
  size_t writes = 0, max_bytes = 0, adds_written = 0;

  long write(const char* buf, size_t len) {
    ++writes;
    if (len > 4096) return -EINVAL;
    max_bytes = std::max(max_bytes, len);
    if (eintr > 0) return --eintr, -EINTR;
    std::istringstream in(std::string(buf, len));
    std::string verb;
    pid_t pid;
    while (in >> verb >> pid) {
      if (verb == "add") {
        ++adds_written;
        if (pids.count(pid)) continue;
        if (!alive.count(pid)) return -ESRCH;
        if (pids.size() >= limit) return -ENOSPC;
        pids.insert(pid);
      } else if (verb == "del") {
        if (!pids.erase(pid)) return -ESRCH;
      } else {
        return -EINVAL;
      }
    }
    return static_cast<long>(len);
  }
  mb::AbitSync::WriteFn fn() {
    return [this](const char* b, size_t n) { return write(b, n); };
  }
};

std::vector<pid_t> range(pid_t from, pid_t to) {
  std::vector<pid_t> v;
  for (pid_t p = from; p < to; ++p) v.push_back(p);
  return v;
}

}  // namespace

TEST(AbitSync, MoreProcessesThanTheModuleTakesAreCountedNotFatal) {
  FakeModule m;
  m.limit = 100;
  auto want = range(1000, 1250);
  m.alive.insert(want.begin(), want.end());
  mb::AbitSync s(m.fn());
  EXPECT_NO_THROW(s.sync(want));
  EXPECT_EQ(m.pids.size(), 100u);
  EXPECT_EQ(s.scanned().size(), 100u);
  EXPECT_EQ(s.refused(), 150u);
  EXPECT_EQ(s.unscanned(), 150u);
  // Nothing changes: no write at all, nothing counted twice.
  size_t before = m.writes;
  s.sync(want);
  EXPECT_EQ(m.writes, before) << "refused pids wait until the module has room";
  EXPECT_EQ(s.refused(), 150u);
  // Ten leave: ten of the waiting ones take their places.
  std::vector<pid_t> now(want.begin() + 10, want.end());
  for (pid_t p = 1000; p < 1010; ++p) m.alive.erase(p);
  s.sync(now);
  EXPECT_EQ(m.pids.size(), 100u);
  for (pid_t p = 1000; p < 1010; ++p) EXPECT_FALSE(m.pids.count(p));
  EXPECT_EQ(s.unscanned(), 140u);
  EXPECT_EQ(s.refused(), 150u) << "a pid refused again is not counted again";
}

TEST(AbitSync, BatchesLinesIntoWritesOfAtMost4096Bytes) {
  FakeModule m;
  auto want = range(100000, 104000);  // 4000 lines of 11 bytes
  m.alive.insert(want.begin(), want.end());
  mb::AbitSync s(m.fn());
  s.sync(want);
  EXPECT_EQ(m.pids.size(), 4000u);
  EXPECT_LE(m.max_bytes, 4096u);
  EXPECT_LE(m.writes, (4000u * 11 + 4095) / 4096 + 1) << "one write per 4 KiB of lines, not per process";
}

TEST(AbitSync, ReconcilesWithTheTrackedSetWhateverEventsWereSeen) {
  FakeModule m;
  m.alive = {10, 11, 12, 13};
  mb::AbitSync s(m.fn());
  s.sync({10, 11});
  EXPECT_EQ(m.pids, (std::set<pid_t>{10, 11}));
  // A child whose fork event was lost is in the tracked set: added. One
  // that left, exit event lost, is deleted.
  s.sync({10, 12, 13});
  EXPECT_EQ(m.pids, (std::set<pid_t>{10, 12, 13}));
  // The module dropped an exited pid itself: the del's ESRCH is fine.
  m.pids.erase(13);
  m.alive.erase(13);
  EXPECT_NO_THROW(s.sync({10, 12}));
  EXPECT_EQ(s.scanned(), (std::set<pid_t>{10, 12}));
}

TEST(AbitSync, ForkEventsAndLostEventsAddAgain) {
  FakeModule m;
  m.alive = {10, 11};
  mb::AbitSync s(m.fn());
  s.sync({10, 11});
  size_t adds = m.adds_written;
  s.sync({10, 11}, {11});  // pid 11 reused by a new process
  EXPECT_EQ(m.adds_written, adds + 1);
  s.sync({10, 11}, {}, true);  // events lost: everything again
  EXPECT_EQ(m.adds_written, adds + 3);
}

TEST(AbitSync, ProcessGoneBeforeItsAddIsNotARefusal) {
  FakeModule m;
  m.alive = {10, 12};  // 11 already left
  mb::AbitSync s(m.fn());
  EXPECT_NO_THROW(s.sync({10, 11, 12}));
  EXPECT_EQ(m.pids, (std::set<pid_t>{10, 12})) << "the lines after the failing one are applied too";
  EXPECT_EQ(s.refused(), 0u);
}

TEST(AbitSync, RetriesWritesInterruptedBySignals) {
  FakeModule m;
  m.alive = {10, 11};
  m.eintr = 3;
  mb::AbitSync s(m.fn());
  s.sync({10, 11});
  EXPECT_EQ(m.pids, (std::set<pid_t>{10, 11}));
  EXPECT_EQ(s.refused(), 0u);
}

TEST(AbitSync, OtherErrorsAreCountedAndRetried) {
  FakeModule m;
  m.alive = {10};
  mb::AbitSync s([&](const char* b, size_t n) -> long {
    if (std::string(b, n).find("add 11") != std::string::npos) return -ENOMEM;
    return m.write(b, n);
  });
  s.sync({10, 11});
  EXPECT_EQ(m.pids, (std::set<pid_t>{10}));
  EXPECT_EQ(s.refused(), 1u);
  EXPECT_EQ(s.unscanned(), 1u);
  m.alive.insert(12);
  s.sync({10, 11});
  EXPECT_EQ(s.refused(), 1u);
}
