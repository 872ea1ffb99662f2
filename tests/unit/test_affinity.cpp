// Unit tests for membalancer/affinity.h: CpuSet, the user-pinned rule,
// AffinityKeeper bookkeeping against fake sched_{get,set}affinity, and the
// real calls on a thread of this test process.

#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "membalancer/affinity.h"
#include "temp_tree.h"

namespace {

using mb::CpuSet;

// Nodes 0 = cpus 0-3, 1 = cpus 4-7, 2 = no CPUs.
mb::Topology topo8() {
  mb::Topology t;
  t.nodes.resize(3);
  t.nodes[0].id = 0;
  t.nodes[0].cpus = {0, 1, 2, 3};
  t.nodes[1].id = 1;
  t.nodes[1].cpus = {4, 5, 6, 7};
  t.nodes[2].id = 2;
  t.cpu_node = {0, 0, 0, 0, 1, 1, 1, 1};
  return t;
}

// Threads and their affinities; tids absent are gone (ESRCH). Records calls.
struct FakeSched {
  std::map<pid_t, CpuSet> aff;
  std::map<pid_t, int> set_error;  // errno for set on that tid
  std::map<pid_t, uint64_t> start;  // thread start times (clock ticks)
  uint64_t clock = 0;
  int gets = 0, sets = 0;

  mb::AffinityOps ops() {
    mb::AffinityOps o;
    o.get = [this](pid_t tid, CpuSet* out) {
      ++gets;
      auto it = aff.find(tid);
      if (it == aff.end()) return ESRCH;
      *out = it->second;
      return 0;
    };
    o.set = [this](pid_t tid, const CpuSet& cpus) {
      ++sets;
      auto it = aff.find(tid);
      if (it == aff.end()) return ESRCH;
      if (auto e = set_error.find(tid); e != set_error.end()) return e->second;
      it->second = cpus;
      return 0;
    };
    o.started = [this](pid_t tid) -> std::optional<uint64_t> {
      auto it = start.find(tid);
      if (it == start.end()) return std::nullopt;
      return it->second;
    };
    o.now = [this] { return clock; };
    return o;
  }
};

const CpuSet kAll({0, 1, 2, 3, 4, 5, 6, 7});
const CpuSet kNode0({0, 1, 2, 3});
const CpuSet kNode1({4, 5, 6, 7});

TEST(Affinity, CpuSetBasics) {
  CpuSet s({5, 1, 3, 2, 1, -4, 1030});
  EXPECT_EQ(s.cpus(), (std::vector<int>{1, 2, 3, 5, 1030}));
  EXPECT_EQ(s.to_string(), "1-3,5,1030");
  EXPECT_TRUE(s.has(1030));
  EXPECT_FALSE(s.has(4));
  s.add(4);
  s.add(4);
  EXPECT_EQ(s.to_string(), "1-5,1030");
  EXPECT_TRUE(s.contains_all(CpuSet({2, 3})));
  EXPECT_FALSE(s.contains_all(CpuSet({0, 2})));
  EXPECT_EQ(s.intersect(CpuSet({0, 2, 1030})).to_string(), "2,1030");
  EXPECT_EQ(CpuSet().to_string(), "");
  EXPECT_EQ(mb::node_cpu_set(topo8(), 1), kNode1);
  EXPECT_TRUE(mb::node_cpu_set(topo8(), 2).empty());
  EXPECT_TRUE(mb::node_cpu_set(topo8(), 9).empty());
}

TEST(Affinity, PossibleCpuCount) {
  mb_test::TempTree tree("mb_aff");
  tree.write("devices/system/cpu/possible", "0-1023,2048-2049\n");
  EXPECT_EQ(mb::possible_cpu_count(tree.path()), 2050);
  tree.write("devices/system/cpu/possible", "0\n");
  EXPECT_EQ(mb::possible_cpu_count(tree.path()), 1);
  EXPECT_EQ(mb::possible_cpu_count(tree.path("missing")), 0);
  EXPECT_GE(mb::possible_cpu_count(), 1);
}

TEST(Affinity, NarrowerThanNodeRule) {
  EXPECT_FALSE(mb::narrower_than_node(kAll, kNode0));                   // everywhere
  EXPECT_FALSE(mb::narrower_than_node(kNode0, kNode0));                 // a whole node
  EXPECT_FALSE(mb::narrower_than_node(CpuSet({0, 1, 2, 3, 4}), kNode0));  // more than a node
  EXPECT_TRUE(mb::narrower_than_node(CpuSet({3}), kNode0));             // taskset -c 3
  EXPECT_TRUE(mb::narrower_than_node(CpuSet({0, 1}), kNode0));
  EXPECT_TRUE(mb::narrower_than_node(kNode1, kNode0));                  // another node entirely
  EXPECT_FALSE(mb::narrower_than_node(CpuSet({3}), CpuSet()));          // node without CPUs
  // A cpuset cgroup allows 0,1,4,5: a thread allowed there is not pinned.
  CpuSet usable({0, 1, 4, 5});
  EXPECT_FALSE(mb::narrower_than_node(usable, kNode0, &usable));
  EXPECT_TRUE(mb::narrower_than_node(CpuSet({0}), kNode0, &usable));
}

TEST(Affinity, UserPinnedQuery) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, CpuSet({5})}, {12, kNode1}, {13, CpuSet({1, 2})}};
  mb::AffinityKeeper k(f.ops());
  auto topo = topo8();
  EXPECT_EQ(k.user_pinned(10, 2, topo), std::optional<bool>(false));
  EXPECT_EQ(k.user_pinned(11, 5, topo), std::optional<bool>(true));
  EXPECT_EQ(k.user_pinned(12, 6, topo), std::optional<bool>(false));
  EXPECT_EQ(k.user_pinned(13, 1, topo), std::optional<bool>(true));
  EXPECT_FALSE(k.user_pinned(99, 1, topo).has_value());  // gone
  EXPECT_FALSE(k.user_pinned(10, 42, topo).has_value());  // CPU without node
  // Once the keeper has moved a thread it is not "user" pinned any more.
  EXPECT_EQ(k.set(13, kNode1), 0);
  EXPECT_EQ(k.user_pinned(13, 4, topo), std::optional<bool>(false));
}

TEST(Affinity, RemembersOnlyTheFirstOriginal) {
  FakeSched f;
  f.aff = {{10, kAll}};
  mb::AffinityKeeper k(f.ops());
  EXPECT_EQ(k.set(10, kNode0), 0);
  EXPECT_EQ(f.aff[10], kNode0);
  EXPECT_EQ(k.set(10, kNode1), 0);
  EXPECT_EQ(f.aff[10], kNode1);
  ASSERT_TRUE(k.original(10).has_value());
  EXPECT_EQ(*k.original(10), kAll);
  EXPECT_EQ(f.gets, 3);  // the original once, and each set read back
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 1u);
  EXPECT_EQ(f.aff[10], kAll);
  EXPECT_EQ(k.size(), 0u);
}

TEST(Affinity, RestoresAliveCountsGoneForgetsExited) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, kAll}, {12, CpuSet({0, 1, 2, 3, 4, 5})}, {13, kAll}};
  mb::AffinityKeeper k(f.ops());
  for (pid_t t : {10, 11, 12, 13}) ASSERT_EQ(k.set(t, kNode1), 0);
  EXPECT_EQ(k.size(), 4u);
  // 11 exits and membalancer saw it; 13 exits unseen (ESRCH at restore).
  f.aff.erase(11);
  k.forget(11);
  f.aff.erase(13);
  int sets_before = f.sets;
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 2u);
  EXPECT_EQ(c.gone, 1u);
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(f.sets - sets_before, 2);  // 11 was not tried, 13 was found gone
  EXPECT_EQ(f.aff[10], kAll);
  EXPECT_EQ(f.aff[12], CpuSet({0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(k.size(), 0u);
  // Nothing left: a second restore does nothing.
  auto again = k.restore_all();
  EXPECT_EQ(again.restored + again.gone + again.failed, 0u);
}

TEST(Affinity, AnAffinitySetByOthersSinceIsLetGoNotRestored) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, kAll}, {12, kAll}};
  mb::AffinityKeeper k(f.ops());
  for (pid_t t : {10, 11, 12}) ASSERT_EQ(k.set(t, kNode1), 0);
  // Thread 10 pins itself to CPU 3 (or its user does, with taskset).
  f.aff[10] = CpuSet({3});
  EXPECT_EQ(k.forget_overridden(), (std::vector<pid_t>{10}));
  EXPECT_FALSE(k.remembers(10));
  EXPECT_TRUE(k.forget_overridden().empty());
  // Thread 11 widens its own affinity after that: found at the stop.
  f.aff[11] = kAll;
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 1u);
  EXPECT_EQ(c.overridden, 1u);
  EXPECT_EQ(f.aff[10], CpuSet({3})) << "the thread's own choice stays";
  EXPECT_EQ(f.aff[11], kAll);
  EXPECT_EQ(f.aff[12], kAll);
}

TEST(Affinity, WhatTheKernelKeptIsTheAffinitySet) {
  // The kernel keeps a set within the thread's cpuset (CPUs 4-5 here): that
  // is not someone else's change.
  FakeSched f;
  f.aff = {{10, kAll}};
  mb::AffinityOps ops = f.ops();
  auto set = ops.set;
  ops.set = [set](pid_t tid, const CpuSet& cpus) {
    return set(tid, cpus == kNode1 ? cpus.intersect(CpuSet({4, 5})) : cpus);
  };
  mb::AffinityKeeper k(ops);
  ASSERT_EQ(k.set(10, kNode1), 0);
  EXPECT_TRUE(k.forget_overridden().empty());
  EXPECT_EQ(k.restore_all().restored, 1u);
  EXPECT_EQ(f.aff[10], kAll);
}

TEST(Affinity, RestoreFailureCounted) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, kAll}};
  mb::AffinityKeeper k(f.ops());
  ASSERT_EQ(k.set(10, kNode0), 0);
  ASSERT_EQ(k.set(11, kNode0), 0);
  f.set_error[11] = EPERM;
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 1u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.first_error, EPERM);
}

TEST(Affinity, FailedSetsLeaveNothingBehind) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, kAll}};
  mb::AffinityKeeper k(f.ops());
  // Gone before the first set.
  EXPECT_EQ(k.set(99, kNode0), ESRCH);
  EXPECT_FALSE(k.remembers(99));
  // The kernel refuses the first set: the affinity is unchanged, not remembered.
  f.set_error[10] = EINVAL;
  EXPECT_EQ(k.set(10, kNode0), EINVAL);
  EXPECT_FALSE(k.remembers(10));
  EXPECT_EQ(f.aff[10], kAll);
  // A later set failing keeps the original of the earlier one.
  ASSERT_EQ(k.set(11, kNode0), 0);
  f.set_error[11] = EINVAL;
  EXPECT_EQ(k.set(11, kNode1), EINVAL);
  EXPECT_TRUE(k.remembers(11));
  // The thread exits between two sets: ESRCH forgets it.
  f.set_error.erase(11);
  f.aff.erase(11);
  EXPECT_EQ(k.set(11, kNode1), ESRCH);
  EXPECT_FALSE(k.remembers(11));
}

TEST(Affinity, DestructorRestoresWhatIsLeft) {
  FakeSched f;
  f.aff = {{10, kAll}};
  {
    mb::AffinityKeeper k(f.ops());
    ASSERT_EQ(k.set(10, kNode1), 0);
    EXPECT_EQ(f.aff[10], kNode1);
  }  // e.g. an exception unwinding through the owner
  EXPECT_EQ(f.aff[10], kAll);
}

TEST(Affinity, ThreadsThatInheritedAChangedAffinityAreRestoredToo) {
  FakeSched f;
  f.aff = {{10, kAll}, {12, kNode1}};
  f.start = {{10, 5}, {12, 50}};
  f.clock = 100;
  mb::AffinityKeeper k(f.ops());
  ASSERT_EQ(k.set(10, kNode1), 0);
  // Started by thread 10 after the set (clone copies the affinity): 11 and
  // a forked child 20; 13 started later but set its own CPUs; 12 had node 1
  // from its user before membalancer changed anything.
  f.aff[11] = kNode1, f.start[11] = 100;
  f.aff[20] = kNode1, f.start[20] = 130;
  f.aff[13] = kNode0, f.start[13] = 110;
  EXPECT_EQ(k.adopt_inherited({10, 11, 12, 13, 20, 99}), (std::vector<pid_t>{11, 20}));
  EXPECT_EQ(*k.original(11), kAll);
  EXPECT_FALSE(k.remembers(12));
  EXPECT_FALSE(k.remembers(13));
  EXPECT_TRUE(k.adopt_inherited({11, 20}).empty()) << "taken on once";
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 3u);
  for (pid_t t : {10, 11, 20}) EXPECT_EQ(f.aff[t], kAll) << t;
  EXPECT_EQ(f.aff[12], kNode1);
  EXPECT_EQ(f.aff[13], kNode0);
}

// Thread 10, started at tick 5 and allowed every CPU, moved to node 1.
class AffinityMoved : public ::testing::Test {
 protected:
  void SetUp() override {
    f.aff = {{10, kAll}};
    f.start = {{10, 5}};
    keeper.emplace(f.ops());
    ASSERT_EQ(keeper->set(10, kNode1), 0);
  }
  FakeSched f;
  std::optional<mb::AffinityKeeper> keeper;
};

TEST_F(AffinityMoved, AReusedThreadIdIsNotRestored) {
  mb::AffinityKeeper& k = *keeper;
  // Thread 10 exited and the id went to a thread of another process.
  f.start[10] = 900;
  f.aff[10] = kNode0;
  auto c = k.restore_all();
  EXPECT_EQ(c.gone, 1u);
  EXPECT_EQ(c.restored, 0u);
  EXPECT_EQ(f.aff[10], kNode0) << "not ours: left alone";
}

TEST_F(AffinityMoved, AReusedThreadIdMovedAgainKeepsTheNewThreadsOriginal) {
  mb::AffinityKeeper& k = *keeper;
  // Thread 10 exited; a new thread 10, pinned by its user to CPU 3, is moved.
  f.start[10] = 900;
  f.aff[10] = CpuSet({3});
  ASSERT_EQ(k.set(10, kNode1), 0);
  EXPECT_EQ(k.original(10), CpuSet({3})) << "the new thread's own affinity, not the exited one's";
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 1u);
  EXPECT_EQ(f.aff[10], CpuSet({3})) << "what we changed is set back";
}

TEST(Affinity, ForgetReusedDropsIdsTakenByLaterThreads) {
  FakeSched f;
  f.aff = {{10, kAll}, {11, kAll}};
  f.start = {{10, 5}, {11, 5}};
  mb::AffinityKeeper k(f.ops());
  ASSERT_EQ(k.set(10, kNode1), 0);
  ASSERT_EQ(k.set(11, kNode1), 0);
  f.start[10] = 900;
  EXPECT_EQ(k.forget_reused(), (std::vector<pid_t>{10}));
  EXPECT_FALSE(k.remembers(10));
  EXPECT_TRUE(k.remembers(11));
}

// A thread of this process that waits until told to exit.
class Sleeper {
 public:
  Sleeper() : th_([this] {
      std::unique_lock<std::mutex> l(m_);
      tid_ = static_cast<pid_t>(syscall(SYS_gettid));
      cv_.notify_all();
      cv_.wait(l, [this] { return stop_; });
    }) {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [this] { return tid_ != 0; });
  }
  ~Sleeper() { join(); }
  pid_t tid() const { return tid_; }
  void join() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (th_.joinable()) th_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  pid_t tid_ = 0;
  bool stop_ = false;
  std::thread th_;
};

TEST(Affinity, RealSyscallsOnOwnThread) {
  mb::AffinityOps ops = mb::real_affinity_ops();
  Sleeper s;
  CpuSet orig;
  ASSERT_EQ(ops.get(s.tid(), &orig), 0);
  ASSERT_FALSE(orig.empty());
  // One CPU of the ones allowed (both when the machine has only one).
  CpuSet one({orig.cpus().back()});
  {
    mb::AffinityKeeper k(ops);
    ASSERT_EQ(k.set(s.tid(), one), 0);
    CpuSet now;
    ASSERT_EQ(k.get(s.tid(), &now), 0);
    EXPECT_EQ(now, one);
    EXPECT_EQ(*k.original(s.tid()), orig);
    auto c = k.restore_all();
    EXPECT_EQ(c.restored, 1u);
    EXPECT_EQ(c.failed, 0u);
    ASSERT_EQ(ops.get(s.tid(), &now), 0);
    EXPECT_EQ(now, orig);
  }
  // A thread that exits before the restore counts as gone.
  mb::AffinityKeeper k(ops);
  Sleeper t;
  pid_t tid = t.tid();
  ASSERT_EQ(k.set(tid, one), 0);
  t.join();
  // The kernel reaps the thread after join returns; wait until it is gone.
  CpuSet tmp;
  while (ops.get(tid, &tmp) == 0) std::this_thread::yield();
  auto c = k.restore_all();
  EXPECT_EQ(c.gone, 1u);
  EXPECT_EQ(c.restored, 0u);
}

TEST(Affinity, RealThreadStartedByAMovedThreadIsRestored) {
  mb::AffinityOps ops = mb::real_affinity_ops();
  CpuSet orig;
  ASSERT_EQ(ops.get(static_cast<pid_t>(syscall(SYS_gettid)), &orig), 0);
  CpuSet one({orig.cpus().back()});
  // A thread that, once told, starts a thread of its own (a Sleeper).
  std::mutex m;
  std::condition_variable cv;
  pid_t parent = 0, child = 0;
  bool go = false, done = false;
  std::unique_ptr<Sleeper> grandchild;
  std::thread th([&] {
    std::unique_lock<std::mutex> l(m);
    parent = static_cast<pid_t>(syscall(SYS_gettid));
    cv.notify_all();
    cv.wait(l, [&] { return go; });
    grandchild = std::make_unique<Sleeper>();
    child = grandchild->tid();
    cv.notify_all();
    cv.wait(l, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return parent != 0; });
  }
  mb::AffinityKeeper k(ops);
  ASSERT_EQ(k.set(parent, one), 0);
  {
    std::unique_lock<std::mutex> l(m);
    go = true;
    cv.notify_all();
    cv.wait(l, [&] { return child != 0; });
  }
  CpuSet now;
  ASSERT_EQ(ops.get(child, &now), 0);
  EXPECT_EQ(now, one) << "the kernel copies the creator's affinity";
  EXPECT_EQ(k.adopt_inherited({parent, child}), std::vector<pid_t>{child});
  auto c = k.restore_all();
  EXPECT_EQ(c.restored, 2u);
  ASSERT_EQ(ops.get(child, &now), 0);
  EXPECT_EQ(now, orig);
  {
    std::lock_guard<std::mutex> l(m);
    done = true;
  }
  cv.notify_all();
  th.join();
  grandchild.reset();
}

TEST(Affinity, RealOpsLargeMask) {
  // Sized as if the machine had 4096 possible CPUs: the kernel accepts the
  // larger mask for both calls.
  mb::AffinityOps ops = mb::real_affinity_ops(4096);
  Sleeper s;
  CpuSet orig;
  ASSERT_EQ(ops.get(s.tid(), &orig), 0);
  EXPECT_EQ(ops.set(s.tid(), orig), 0);
  // A set naming only a CPU that does not exist is refused, not crashed on.
  EXPECT_EQ(ops.set(s.tid(), CpuSet({4000})), EINVAL);
}

}  // namespace

// The cpuset limit of a thread, from its /proc/TID/cgroup line: cgroup v1's
// cpuset hierarchy when it is there, else v2's file in its cgroup or the
// nearest ancestor with the controller enabled.
TEST(CpusetCpus, ReadsV1V2AndTheNearestV2AncestorWithTheController) {
  mb_test::TempTree t("mb_cpuset");
  const std::string proc = t.path("proc"), cg = t.path("cgroup");
  t.write("proc/10/cgroup", "4:memory:/a\n3:cpuset:/jail\n0::/user.slice\n");
  t.write("cgroup/cpuset/jail/cpuset.effective_cpus", "0-1,4\n");
  EXPECT_EQ(mb::read_cpuset_cpus(10, proc, cg), CpuSet({0, 1, 4}));
  t.write("proc/11/cgroup", "3:cpuset:/\n0::/\n");
  t.write("cgroup/cpuset/cpuset.effective_cpus", "0-7\n");
  EXPECT_EQ(mb::read_cpuset_cpus(11, proc, cg), CpuSet({0, 1, 2, 3, 4, 5, 6, 7}));
  // v2 only: a.slice/b has no cpuset file (controller not enabled there).
  t.write("proc/12/cgroup", "0::/a.slice/b\n");
  t.write("cgroup/a.slice/cpuset.cpus.effective", "2-3\n");
  t.mkdir("cgroup/a.slice/b");
  EXPECT_EQ(mb::read_cpuset_cpus(12, proc, cg), CpuSet({2, 3}));
  t.write("cgroup/a.slice/b/cpuset.cpus.effective", "3\n");
  EXPECT_EQ(mb::read_cpuset_cpus(12, proc, cg), CpuSet({3}));
  // Unknown: no file anywhere, a thread gone, a path that climbs out.
  t.write("proc/13/cgroup", "0::/c\n");
  EXPECT_EQ(mb::read_cpuset_cpus(13, proc, cg), std::nullopt);
  EXPECT_EQ(mb::read_cpuset_cpus(14, proc, cg), std::nullopt);
  t.write("proc/15/cgroup", "0::/../../etc\n");
  EXPECT_EQ(mb::read_cpuset_cpus(15, proc, cg), std::nullopt);
}

// On this machine: with a cpuset controller mounted (v1, or v2 at the root),
// the calling thread's limit holds the CPU it runs on; without, it is unknown.
TEST(CpusetCpus, TheCallingThreadsCpusetHoldsItsCpu) {
  const bool mounted = access("/sys/fs/cgroup/cpuset/cpuset.effective_cpus", R_OK) == 0 ||
                       access("/sys/fs/cgroup/cpuset.cpus.effective", R_OK) == 0;
  auto cpus = mb::read_cpuset_cpus(static_cast<pid_t>(syscall(SYS_gettid)));
  ASSERT_EQ(cpus.has_value(), mounted);
  if (cpus) {
    EXPECT_TRUE(cpus->has(sched_getcpu())) << cpus->to_string();
  }
}
