// Unit tests for membalancer/process_backend.h: per-thread samples (the
// sampler's own per-thread nodes, or the per-process fallback from page
// locations split by CPU time), the process backend end to end on a fake
// /proc with fake affinity calls (moves, pinned threads, report-only, exited
// threads forgotten, restore on stop and on destruction), autotune's
// restriction to the processes it chose, and the numa policy's process filter.

#include <atomic>
#include <chrono>
#include <thread>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "membalancer/numa_policy.h"
#include "membalancer/pipeline.h"
#include "membalancer/process_backend.h"
#include "tests/unit/temp_tree.h"

namespace {

using mb::CpuSet;

mb::Topology two_nodes() {
  mb::Topology t;
  t.nodes.resize(2);
  for (int i = 0; i < 2; ++i) {
    t.nodes[i].id = i;
    t.nodes[i].cpus = {2 * i, 2 * i + 1};
    t.nodes[i].distance = {{i, 10}, {1 - i, 20}};
    t.nodes[i].mem_total_bytes = 1ull << 30;
    t.nodes[i].mem_free_bytes = 1ull << 29;
  }
  t.cpu_node = {0, 0, 1, 1};
  return t;
}

std::string task_stat(pid_t tid, uint64_t ticks, int cpu) {
  std::string s = std::to_string(tid) + " (mx worker)";
  for (int field = 3; field <= 52; ++field) {
    s += ' ';
    if (field == 3) s += 'R';
    else if (field == 14) s += std::to_string(ticks);
    else if (field == 39) s += std::to_string(cpu);
    else s += (field == 4 ? "1" : "0");
  }
  return s + "\n";
}

// busy ticks per CPU (idle = 100 - busy per interval), cumulative over `round`.
std::string proc_stat(const std::vector<uint64_t>& busy, int round) {
  std::string s = "cpu  1 2 3 4 5 6 7 8 0 0\n";
  for (size_t c = 0; c < busy.size(); ++c)
    s += "cpu" + std::to_string(c) + " " + std::to_string(busy[c] * round) + " 0 0 " +
         std::to_string((100 - busy[c]) * round) + " 0 0 0 0 0 0\n";
  return s;
}

mb_page_slot slot(uint32_t tgid, uint64_t vpn, uint32_t accesses, int node) {
  mb_page_slot s{};
  s.key = mb_page_key(tgid, vpn);
  s.accesses = accesses;
  s.mem_node1 = static_cast<uint16_t>(node + 1);
  return s;
}

struct FakeAffinity {
  std::map<pid_t, CpuSet> aff;
  std::map<pid_t, CpuSet> cpusets;  // threads in a cpuset cgroup; the others have no limit
  std::vector<std::pair<pid_t, CpuSet>> sets;
  mb::AffinityOps ops() {
    return {[this](pid_t tid, CpuSet* out) {
              auto it = aff.find(tid);
              if (it == aff.end()) return ESRCH;
              *out = it->second;
              return 0;
            },
            [this](pid_t tid, const CpuSet& cpus) {
              auto it = aff.find(tid);
              if (it == aff.end()) return ESRCH;
              it->second = cpus;
              sets.emplace_back(tid, cpus);
              return 0;
            },
            {},   // no start times: inherited affinities are not adopted here
            {},
            [this](pid_t tid) -> std::optional<CpuSet> {
              auto it = cpusets.find(tid);
              return it == cpusets.end() ? std::nullopt : std::optional<CpuSet>(it->second);
            }};
  }
  // The same, with the threads' start times (tid -> start; gone when absent)
  // at a clock that reads 1.
  mb::AffinityOps ops_with_starts(const std::map<pid_t, uint64_t>& start) {
    mb::AffinityOps o = ops();
    o.started = [&start](pid_t tid) -> std::optional<uint64_t> {
      auto it = start.find(tid);
      if (it == start.end()) return std::nullopt;
      return it->second;
    };
    o.now = [] { return uint64_t{1}; };
    return o;
  }
};

// A fake machine: /proc under a temp dir, threads (tgid, tid, cpu, ticks per
// interval), pages per process on a node.
struct Machine {
  mb_test::TempTree tree{"mb_process_backend"};
  mb::Topology topo = two_nodes();
  FakeAffinity fa;
  struct Thread {
    pid_t tgid, tid;
    int cpu;
    uint64_t ticks_per_interval;
    uint64_t ticks = 0;
  };
  std::vector<Thread> threads;
  std::map<pid_t, std::pair<int, uint32_t>> pages;  // tgid -> (node, accesses per interval)
  int access_lane = -1;  // >= 0: the pages' accesses come from CPUs of this lane's node
  mb::Pipeline pipeline{mb::PipelineConfig{}, [](pid_t, unsigned long, void**, int*) -> long { return -1; },
                        [](pid_t) { return std::string("mx"); }};
  int round = 0;

  void add_thread(pid_t tgid, pid_t tid, int cpu, uint64_t ticks, CpuSet affinity) {
    threads.push_back({tgid, tid, cpu, ticks});
    fa.aff[tid] = affinity;
  }
  void remove_thread(pid_t tid) {
    std::erase_if(threads, [tid](const Thread& t) { return t.tid == tid; });
    std::filesystem::remove_all(tree.path(std::to_string(tid / 100 * 100) + "/task/" + std::to_string(tid)));
    fa.aff.erase(tid);
  }
  // Writes /proc for the next interval and runs the pipeline up to the report.
  mb::IntervalReport next() {
    ++round;
    tree.write("stat", proc_stat({90, 90, 5, 5}, round));
    for (auto& t : threads) {
      t.ticks += round > 1 ? t.ticks_per_interval : 0;
      tree.write(std::to_string(t.tgid) + "/task/" + std::to_string(t.tid) + "/stat", task_stat(t.tid, t.ticks, t.cpu));
    }
    pipeline.begin_interval(static_cast<uint32_t>(round));
    for (auto& [tgid, p] : pages)
      for (uint64_t v = 0; v < 4; ++v) {
        mb_page_slot s = slot(static_cast<uint32_t>(tgid), 0x1000 + v, p.second / 4, p.first);
        if (access_lane >= 0) s.lanes[access_lane >> 2] = uint64_t{p.second / 4} << ((access_lane & 3) * 16);
        pipeline.add_slot(s);
      }
    pipeline.add_tasks({});
    return pipeline.finish_interval({}, pages.size());
  }
  std::vector<pid_t> tracked() const {
    std::set<pid_t> s;
    for (auto& t : threads) s.insert(t.tgid);
    return {s.begin(), s.end()};
  }
};

mb::Options process_opts(bool migrate) {
  mb::Options o;
  o.command = "process";
  o.migrate = migrate;
  o.max_move_share = 1.0;
  return o;
}

TEST(ProcessBackend, SampleFallsBackToProcessPageNodesSplitByCpuTime) {
  std::vector<mb::ThreadCpu> cpu = {{11, 10, 30, 0, 0}, {12, 10, 10, 1, 0}, {13, 10, 0, 0, 0}};
  std::vector<mb::ThreadGrowth> growth = {{11, 10, {{0, 5}}, {}, false}};  // CPU known, memory node not
  std::map<uint32_t, std::map<int, uint64_t>> by_page = {{10, {{1, 400}, {-1, 50}}}};
  mb::ThreadSample s = mb::build_thread_sample(cpu, growth, by_page);
  EXPECT_FALSE(s.per_thread);
  ASSERT_EQ(s.threads.size(), 3u);
  EXPECT_EQ(s.threads[0].mem_accesses, (std::map<int, uint64_t>{{1, 300}}));  // 30 of 40 ticks
  EXPECT_EQ(s.threads[1].mem_accesses, (std::map<int, uint64_t>{{1, 100}}));
  EXPECT_TRUE(s.threads[2].mem_accesses.empty());  // no CPU time: no share
  EXPECT_FALSE(s.threads[0].per_thread);
  EXPECT_EQ(s.threads[0].cpu_weight, (std::map<int, uint64_t>{{0, 30}}));  // CPU time, not sampler lanes
  EXPECT_EQ(s.mem_by_node, (std::map<int, uint64_t>{{1, 400}}));        // unknown node left out
  EXPECT_EQ(s.cpu_ticks_by_node, (std::map<int, uint64_t>{{0, 40}}));
}

TEST(ProcessBackend, SampleUsesThreadsOwnNodesWhenTheSamplerHasThem) {
  std::vector<mb::ThreadCpu> cpu = {{11, 10, 30, 0, 0}, {12, 10, 10, 2, 1}};
  std::vector<mb::ThreadGrowth> growth = {{11, 10, {{0, 70}}, {{1, 60}, {0, 10}}, false},
                                          {12, 10, {}, {}, false}};
  mb::ThreadSample s = mb::build_thread_sample(cpu, growth, {{10, {{1, 999}}}});
  EXPECT_TRUE(s.per_thread);
  EXPECT_EQ(s.threads[0].mem_accesses, (std::map<int, uint64_t>{{0, 10}, {1, 60}}));
  EXPECT_EQ(s.threads[0].cpu_weight, (std::map<int, uint64_t>{{0, 70}}));  // accesses made on node 0's CPUs
  EXPECT_TRUE(s.threads[1].mem_accesses.empty());                         // no samples: not judged
  EXPECT_EQ(s.threads[1].cpu_weight, (std::map<int, uint64_t>{{1, 10}}));
  EXPECT_EQ(s.mem_by_node, (std::map<int, uint64_t>{{0, 10}, {1, 60}}));
  EXPECT_EQ(s.own_mem.at(10).at(11), (std::map<int, uint64_t>{{0, 10}, {1, 60}}));
}

TEST(ProcessBackend, PipelineExposesThreadGrowthAndProcessNodes) {
  mb::Pipeline p(mb::PipelineConfig{}, [](pid_t, unsigned long, void**, int*) -> long { return -1; },
                 [](pid_t) { return std::string("x"); });
  mb::TaskSnapshot t{};
  t.tid = 11;
  t.stats.tgid = 10;
  t.stats.cpu_node_accesses[0] = 5;
  t.stats.mem_node_accesses[1] = 7;
  p.begin_interval(1);
  p.add_slot(slot(10, 1, 3, 1));
  p.add_slot(slot(10, 2, 4, 0));
  p.add_tasks({t});
  p.finish_interval({}, 1);
  ASSERT_EQ(p.thread_growth().size(), 1u);
  EXPECT_EQ(p.thread_growth()[0].cpu_nodes, (std::map<int, uint64_t>{{0, 5}}));
  EXPECT_EQ(p.thread_growth()[0].mem_nodes, (std::map<int, uint64_t>{{1, 7}}));
  EXPECT_EQ(p.process_node_accesses().at(10), (std::map<int, uint64_t>{{0, 4}, {1, 3}}));
  t.stats.mem_node_accesses[1] = 10;
  p.begin_interval(2);
  p.add_tasks({t});
  p.finish_interval({}, 1);
  EXPECT_TRUE(p.thread_growth()[0].cpu_nodes.empty());
  EXPECT_EQ(p.thread_growth()[0].mem_nodes, (std::map<int, uint64_t>{{1, 3}}));
  EXPECT_TRUE(p.process_node_accesses().empty());
}

TEST(ProcessBackend, MovesThreadsToTheirMemoryLeavesPinnedAndRestores) {
  Machine m;
  m.add_thread(100, 100, 0, 0, CpuSet({0, 1}));   // main thread, idle
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));  // workers on node 0 (--cpu-node 0)
  m.add_thread(100, 102, 1, 50, CpuSet({0, 1}));
  m.add_thread(200, 201, 0, 50, CpuSet({0}));     // pinned by its user to CPU 0
  m.pages = {{100, {1, 4000}}, {200, {1, 4000}}};  // memory on node 1
  mb::Summary summary;
  {
    mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
    auto r1 = m.next();
    b.interval(m.pipeline, m.tracked(), 1, r1);
    ASSERT_TRUE(r1.thread_balance);
    EXPECT_TRUE(r1.thread_balance->moves.empty()) << "the first interval is a CPU-time baseline";

    auto r2 = m.next();
    b.interval(m.pipeline, m.tracked(), 2, r2);
    const mb::ThreadReport& t = *r2.thread_balance;
    ASSERT_EQ(t.moves.size(), 2u);
    std::set<pid_t> moved;
    for (const auto& mv : t.moves) {
      moved.insert(mv.tid);
      EXPECT_EQ(mv.from, 0);
      EXPECT_EQ(mv.to, 1);
      EXPECT_EQ(mv.cpus, "2-3");
    }
    EXPECT_EQ(moved, (std::set<pid_t>{101, 102}));
    EXPECT_EQ(t.skipped.at("pinned"), 1u);
    EXPECT_EQ(t.threads_moved, 2u);
    EXPECT_EQ(m.fa.aff[101], CpuSet({2, 3}));
    EXPECT_EQ(m.fa.aff[201], CpuSet({0}));
    // Shares: the CPU time all on node 0, the accesses all on node 1.
    ASSERT_EQ(t.shares.size(), 2u);
    EXPECT_DOUBLE_EQ(t.shares[0].cpu_share, 1.0);
    EXPECT_DOUBLE_EQ(t.shares[1].mem_share, 1.0);

    // Thread 102 exits: forgotten (once the next interval's events showed
    // no exec renumbering it), not restored.
    m.remove_thread(102);
    for (auto& th : m.threads) {
      if (th.tid == 101) th.cpu = 2;
    }
    auto r3 = m.next();
    b.interval(m.pipeline, m.tracked(), 3, r3);
    EXPECT_TRUE(r3.thread_balance->moves.empty());
    EXPECT_EQ(r3.thread_balance->moved_exited, 0u) << "kept an interval for an exec's late event";
    auto r4 = m.next();
    b.interval(m.pipeline, m.tracked(), 4, r4);
    EXPECT_EQ(r4.thread_balance->affinities_held, 1u);
    EXPECT_EQ(r4.thread_balance->moved_exited, 1u) << "102 left while moved: counted, not lost";
    b.stop(summary);
  }
  ASSERT_TRUE(summary.thread_balance);
  EXPECT_EQ(summary.thread_balance->moved_exited, 1u);
  EXPECT_EQ(summary.thread_balance->restored, 1u);
  EXPECT_EQ(summary.thread_balance->restore_gone, 0u);
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1}));
  EXPECT_EQ(m.fa.sets.size(), 3u);  // two moves, one restore; the destructor had nothing left
}

TEST(ProcessBackend, AThreadIdReusedByAPinnedThreadIsNotMovedNorLeftChanged) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  std::map<pid_t, uint64_t> start = {{101, 5}};
  const mb::AffinityOps ops = m.fa.ops_with_starts(start);
  mb::Options o = process_opts(true);
  o.thread_cooldown_intervals = 1;
  mb::Summary summary;
  {
    mb::ProcessBackend b(o, m.topo, ops, m.tree.path());
    for (uint32_t i = 1; i <= 2; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
    }
    ASSERT_EQ(m.fa.aff[101], CpuSet({2, 3}));
    // Thread 101 exits; the id goes to a new thread its user pinned to CPU 0.
    start[101] = 900;
    m.fa.aff[101] = CpuSet({0});
    auto r3 = m.next();
    b.interval(m.pipeline, m.tracked(), 3, r3);
    EXPECT_TRUE(r3.thread_balance->moves.empty());
    EXPECT_EQ(r3.thread_balance->skipped["pinned"], 1u);
    EXPECT_EQ(r3.thread_balance->affinities_held, 0u);
    b.stop(summary);
  }
  EXPECT_EQ(m.fa.aff[101], CpuSet({0})) << "the new thread keeps its user's pin";
}

// Leader 100 (busy, not allowed CPU 2) and worker 101, both on node 0 with
// their memory on node 1; moved() runs the first two intervals (both are
// moved), exec() has 101 exec: the kernel gives it the leader's id (and
// start time), and it keeps the affinity we set, on node 1.
struct NonLeaderExec {
  Machine m;
  std::map<pid_t, uint64_t> start = {{100, 5}, {101, 7}};
  mb::AffinityOps ops;
  NonLeaderExec() {
    m.add_thread(100, 100, 0, 50, CpuSet({0, 1, 3}));
    m.add_thread(100, 101, 1, 50, CpuSet({0, 1, 2, 3}));
    m.pages = {{100, {1, 4000}}};
    ops = m.fa.ops_with_starts(start);
  }
  mb::IntervalReport interval(mb::ProcessBackend& b, uint32_t i) {
    auto r = m.next();
    b.interval(m.pipeline, m.tracked(), i, r);
    return r;
  }
  void moved(mb::ProcessBackend& b) {
    interval(b, 1);
    interval(b, 2);
    ASSERT_EQ(m.fa.aff[100], CpuSet({3}));
    ASSERT_EQ(m.fa.aff[101], CpuSet({2, 3}));
  }
  void exec() {
    const CpuSet kept = m.fa.aff[101];
    m.remove_thread(101);
    start.erase(101);
    m.fa.aff[100] = kept;
    for (auto& th : m.threads) th.cpu = 2;
  }
};

// What we hold for the worker follows it to the leader's id and is
// restored there when we stop; the leader, moved too, died in the exec:
// forgotten (moved_exited), and its original is not put on the thread that
// has its id now. The exec's event comes before the interval's /proc read,
// or (the exec landing between the loop's peek at the events and that
// read) only at the next interval's poll, or at the loop's last look at the
// events before a stop: the interval in between finds 101 gone and 100 with
// its affinity. (101 used to be forgotten as exited then, its affinity left.)
TEST(ProcessBackend, ANonLeaderExecKeepsTheThreadsAffinityRestoredUnderItsNewId) {
  enum When { kBeforeTheProcRead, kAtTheNextPoll, kBeforeTheStop };
  for (const When when : {kBeforeTheProcRead, kAtTheNextPoll, kBeforeTheStop}) {
    SCOPED_TRACE(when == kBeforeTheProcRead ? "before the /proc read"
                 : when == kAtTheNextPoll   ? "at the next interval's poll"
                                            : "just before the stop");
    NonLeaderExec x;
    mb::Summary summary;
    {
      mb::ProcessBackend b(process_opts(true), x.m.topo, x.ops, x.m.tree.path());
      x.moved(b);
      x.exec();
      if (when == kBeforeTheProcRead) b.process_execed(100, 101);
      auto r = x.interval(b, 3);
      if (when != kBeforeTheProcRead) b.process_execed(100, 101);
      if (when == kAtTheNextPoll) r = x.interval(b, 4);
      if (when != kBeforeTheStop) {
        EXPECT_EQ(r.thread_balance->affinities_held, 1u);
        EXPECT_EQ(r.thread_balance->moved_exited, 1u) << "the leader left while moved";
      }
      b.stop(summary);
    }
    ASSERT_TRUE(summary.thread_balance);
    EXPECT_EQ(summary.thread_balance->restored, 1u);
    EXPECT_EQ(summary.thread_balance->moved_exited, 1u);
    EXPECT_EQ(x.m.fa.aff[100].to_string(), "0-3") << "101's own original, on the thread it became";
  }
}

// A held thread missing at the stop (no exec told for it) exited: counted
// as such, not as an affinity the restore found gone.
TEST(ProcessBackend, AMovedThreadMissingAtTheStopCountsAsExited) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  mb::Summary summary;
  {
    mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
    for (uint32_t i = 1; i <= 2; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
    }
    ASSERT_EQ(m.fa.aff[101], CpuSet({2, 3}));
    m.remove_thread(101);
    m.add_thread(100, 102, 2, 50, CpuSet({2, 3}));  // the process lives on, on node 1
    auto r3 = m.next();
    b.interval(m.pipeline, m.tracked(), 3, r3);
    b.stop(summary);
  }
  EXPECT_EQ(summary.thread_balance->moved_exited, 1u);
  EXPECT_EQ(summary.thread_balance->restore_gone, 0u);
  EXPECT_EQ(summary.thread_balance->affinities_held, 0u);
}

TEST(ProcessBackend, AThreadThatSetsItsOwnAffinityAfterAMoveIsLetGo) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));  // workers on node 0, memory on node 1
  m.add_thread(100, 102, 1, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  mb::Options o = process_opts(true);
  o.thread_cooldown_intervals = 1;
  mb::Summary summary;
  mb::IntervalReport last;
  {
    mb::ProcessBackend b(o, m.topo, m.fa.ops(), m.tree.path());
    for (uint32_t i = 1; i <= 2; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
    }
    ASSERT_EQ(m.fa.aff[101], CpuSet({2, 3}));
    ASSERT_EQ(m.fa.aff[102], CpuSet({2, 3}));
    // Worker 101 pins itself to CPU 0 (its memory stays on node 1): its
    // choice, not to be undone by a move back nor by the restore.
    m.fa.aff[101] = CpuSet({0});
    for (auto& th : m.threads) th.cpu = th.tid == 101 ? 0 : 2;
    for (uint32_t i = 3; i <= 6; ++i) {
      last = m.next();
      b.interval(m.pipeline, m.tracked(), i, last);
      EXPECT_EQ(m.fa.aff[101], CpuSet({0})) << "interval " << i;
    }
    EXPECT_EQ(last.thread_balance->overridden, 1u);
    EXPECT_EQ(last.thread_balance->affinities_held, 1u);
    EXPECT_EQ(last.thread_balance->skipped.count("pinned"), 1u) << "judged afresh: pinned by its own hand";
    // Worker 102 widens its own affinity just before the stop.
    m.fa.aff[102] = CpuSet({0, 1, 2, 3});
    b.stop(summary);
  }
  const mb::ThreadReport& t = *summary.thread_balance;
  EXPECT_EQ(t.overridden, 1u);
  EXPECT_EQ(t.restore_overridden, 1u);
  EXPECT_EQ(t.restored, 0u);
  EXPECT_EQ(t.affinities_held, 1u);
  EXPECT_EQ(m.fa.aff[101], CpuSet({0}));
  EXPECT_EQ(m.fa.aff[102], CpuSet({0, 1, 2, 3}));
}

TEST(ProcessBackend, AMoveNeverWidensWhatTheThreadWasAllowed) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1, 2}));  // taskset -c 0-2: CPU 3 not allowed
  m.pages = {{100, {1, 4000}}};
  mb::Summary summary;
  {
    mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
    for (uint32_t i = 1; i <= 2; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
    }
    EXPECT_EQ(m.fa.aff[101], CpuSet({2}));
    b.stop(summary);
  }
  EXPECT_EQ(summary.thread_balance->restored, 1u);
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1, 2}));
}

TEST(ProcessBackend, ARefusedMoveIsNotRetriedEveryIntervalAheadOfOthers) {
  Machine m;
  m.add_thread(100, 101, 0, 80, CpuSet({0, 1}));  // its cpuset has no node-1 CPU: refused
  m.add_thread(100, 102, 0, 40, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  mb::AffinityOps ops = m.fa.ops();
  auto set = ops.set;
  ops.set = [set](pid_t tid, const CpuSet& cpus) { return tid == 101 ? EINVAL : set(tid, cpus); };
  mb::Options o = process_opts(true);
  o.max_move_share = 0.25;  // one move per interval, largest gain (101) first
  mb::ProcessBackend b(o, m.topo, ops, m.tree.path());
  std::vector<mb::IntervalReport> rs;
  for (uint32_t i = 1; i <= 4; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  ASSERT_EQ(rs[1].thread_balance->moves.size(), 1u);
  EXPECT_EQ(rs[1].thread_balance->moves[0].tid, 101);
  EXPECT_EQ(rs[1].thread_balance->moves[0].error, EINVAL);
  ASSERT_EQ(rs[2].thread_balance->moves.size(), 1u);
  EXPECT_EQ(rs[2].thread_balance->moves[0].tid, 102) << "the refused thread does not hold the budget";
  EXPECT_EQ(rs[2].thread_balance->skipped["cool-down"], 1u);
  EXPECT_EQ(m.fa.aff[102], CpuSet({2, 3}));
  EXPECT_EQ(rs[3].thread_balance->move_failures, 1u);
  EXPECT_EQ(rs[3].thread_balance->threads_moved, 1u);
}

// A cpuset is the cgroup's limit: a thread whose cpuset has no CPU of the
// target is skipped as "cpuset" (it was tried, refused with EINVAL and counted
// as a failure before), one allowed part of the target gets only that part,
// and one whose affinity is all its cpuset allows of its node is not pinned.
TEST(ProcessBackend, ThreadsStayWithinTheirCpuset) {
  Machine m;
  m.add_thread(100, 101, 0, 80, CpuSet({0, 1}));  // cpuset 0-1: no node-1 CPU
  m.fa.cpusets[101] = CpuSet({0, 1});
  m.add_thread(100, 102, 0, 60, CpuSet({0, 1, 2, 3}));  // cpuset 0-2: CPU 2 of node 1
  m.fa.cpusets[102] = CpuSet({0, 1, 2});
  m.add_thread(100, 103, 0, 40, CpuSet({0, 3}));  // all its cpuset 0,3 allows: not the user's pin
  m.fa.cpusets[103] = CpuSet({0, 3});
  m.pages = {{100, {1, 6000}}};
  mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
  std::vector<mb::IntervalReport> rs;
  for (uint32_t i = 1; i <= 2; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  const auto& t = *rs[1].thread_balance;
  EXPECT_EQ(t.skipped.at("cpuset"), 1u);
  EXPECT_EQ(t.skipped.count("pinned"), 0u);
  ASSERT_EQ(t.moves.size(), 2u);
  for (const auto& mv : t.moves) EXPECT_EQ(mv.error, 0) << mv.tid;
  EXPECT_EQ(t.move_failures, 0u);
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1}));  // never tried
  EXPECT_EQ(m.fa.aff[102], CpuSet({2}));
  EXPECT_EQ(m.fa.aff[103], CpuSet({3}));
  for (const auto& [tid, cpus] : m.fa.sets) EXPECT_NE(tid, 101);
}

TEST(ProcessBackend, SummaryHeldCountsTheThreadsStartedJustBeforeStop) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  std::map<pid_t, uint64_t> start = {{101, 5}};
  uint64_t clock = 10;
  mb::AffinityOps ops = m.fa.ops();
  ops.started = [&start](pid_t tid) -> std::optional<uint64_t> {
    auto it = start.find(tid);
    if (it == start.end()) return std::nullopt;
    return it->second;
  };
  ops.now = [&clock] { return clock; };
  mb::ProcessBackend b(process_opts(true), m.topo, ops, m.tree.path());
  for (uint32_t i = 1; i <= 2; ++i) {
    auto r = m.next();
    b.interval(m.pipeline, m.tracked(), i, r);
  }
  ASSERT_EQ(m.fa.aff[101], CpuSet({2, 3}));
  // After the last interval the moved thread starts thread 102: it inherits CPUs 2-3.
  m.add_thread(100, 102, 2, 0, CpuSet({2, 3}));
  m.tree.write("100/task/102/stat", task_stat(102, 0, 2));
  m.tree.write("100/stat", task_stat(100, 0, 0));  // the process, found by the stop's /proc walk
  start[102] = 20;
  mb::Summary summary;
  b.stop(summary);
  const mb::ThreadReport& t = *summary.thread_balance;
  EXPECT_EQ(t.restored, 2u);
  EXPECT_EQ(m.fa.aff[102], CpuSet({0, 1}));
  EXPECT_EQ(t.affinities_held, t.restored + t.restore_gone + t.restore_failed) << "the summary adds up";
}

TEST(ProcessBackend, APinnedThreadOnACpuOfUnknownNodeIsStillPinned) {
  // The sampler saw thread 101's accesses made on node 0, but the CPU it last
  // ran on has no node in the topology (onlined after the start): still
  // judged, so its user's pin (CPU 0) must be seen.
  mb::Topology topo = two_nodes();
  FakeAffinity fa;
  fa.aff[101] = CpuSet({0});
  mb_test::TempTree tree{"mb_unknown_node"};
  tree.write("stat", proc_stat({90, 90, 5, 5}, 1));
  mb::ThreadBalancer bal(topo, mb::thread_policy_config(process_opts(true)), true, false, fa.ops(), tree.path());
  tree.write("stat", proc_stat({90, 90, 5, 5}, 2));  // node 1 idle: a target
  mb::ThreadSample s;
  s.per_thread = true;
  mb::ThreadInfo t;
  t.tid = 101;
  t.tgid = 100;
  t.current_node = -1;
  t.cpu_weight = {{0, 500}};
  t.mem_accesses = {{1, 1000}};
  s.threads = {t};
  bal.update_loads();
  mb::ThreadReport r;
  bal.balance(s, 2, {}, r);
  EXPECT_EQ(r.judged, 1u);
  EXPECT_TRUE(r.moves.empty());
  EXPECT_EQ(r.skipped["pinned"], 1u);
  EXPECT_EQ(fa.aff[101], CpuSet({0}));
}

TEST(ProcessBackend, AThreadGoneBeforeItsMoveIsSkippedNotAFailure) {
  Machine m;
  m.add_thread(100, 101, 0, 80, CpuSet({0, 1}));
  m.add_thread(100, 102, 0, 40, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  mb::Options o = process_opts(true);
  o.max_move_share = 0.25;  // one move per interval, largest gain (101) first
  mb::ProcessBackend b(o, m.topo, m.fa.ops(), m.tree.path());
  auto r1 = m.next();
  b.interval(m.pipeline, m.tracked(), 1, r1);
  auto r2 = m.next();
  m.fa.aff.erase(101);  // exits after /proc was read, before the move
  b.interval(m.pipeline, m.tracked(), 2, r2);
  const mb::ThreadReport& t = *r2.thread_balance;
  EXPECT_EQ(t.skipped.at("gone"), 1u);
  EXPECT_EQ(t.move_failures, 0u);
  ASSERT_EQ(t.moves.size(), 1u) << "the move slot goes to a live thread";
  EXPECT_EQ(t.moves[0].tid, 102);
  EXPECT_EQ(t.moves[0].error, 0);
  uint64_t skipped = 0;
  for (const auto& [why, n] : t.skipped) skipped += n;
  EXPECT_EQ(t.candidates, t.moves.size() + skipped) << "every candidate moved or skipped";
}

TEST(ProcessBackend, AfterAStopSignalTheLastIntervalMovesNoThread) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));  // on node 0, memory on node 1: would move
  m.pages = {{100, {1, 4000}}};
  mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
  auto r1 = m.next();
  b.interval(m.pipeline, m.tracked(), 1, r1);
  b.hold();
  auto r2 = m.next();
  b.interval(m.pipeline, m.tracked(), 2, r2);
  ASSERT_TRUE(r2.thread_balance) << "the interval is still reported";
  EXPECT_TRUE(r2.thread_balance->moves.empty());
  EXPECT_EQ(r2.thread_balance->shares.size(), 2u);
  EXPECT_TRUE(m.fa.sets.empty());
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1}));
}

TEST(ProcessBackend, AutotuneHeldDecidesNothing) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  mb::Options o = process_opts(true);
  o.command = "autotune";
  o.observe_intervals = 1;
  mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path());
  auto r1 = m.next();
  b.interval(m.pipeline, m.tracked(), 1, r1);
  b.hold();
  for (uint32_t i = 2; i <= 4; ++i) {
    auto r = m.next();
    b.interval(m.pipeline, m.tracked(), i, r);
    ASSERT_TRUE(r.thread_balance);
    EXPECT_FALSE(r.thread_balance->decided_now);
    EXPECT_TRUE(r.thread_balance->moves.empty());
  }
  EXPECT_TRUE(m.fa.sets.empty());
}

TEST(ProcessBackend, ReportOnlyChangesNothingAndDestructorRestores) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1, 2, 3}));
  m.pages = {{100, {1, 4000}}};
  {
    mb::ProcessBackend b(process_opts(false), m.topo, m.fa.ops(), m.tree.path());
    for (int i = 0; i < 3; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
      if (i > 0) {
        EXPECT_EQ(r.thread_balance->moves.size(), 1u) << "planned and reported each interval";
      }
    }
  }
  EXPECT_TRUE(m.fa.sets.empty());
  {
    mb::ProcessBackend b(process_opts(true), m.topo, m.fa.ops(), m.tree.path());
    for (int i = 0; i < 2; ++i) {
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
    }
    EXPECT_EQ(m.fa.aff[101], CpuSet({2, 3}));
    // No stop(): an error unwinds past the backend.
  }
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1, 2, 3}));
}

TEST(ProcessBackend, AutotuneMovesOnlyTheThreadsOfProcessesItChoseThreadsFor) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));  // memory on node 1, threads on node 0: threads
  m.add_thread(300, 301, 0, 50, CpuSet({0, 1}));  // memory on node 0 mostly: already local
  m.pages = {{100, {1, 4000}}, {300, {0, 4000}}};
  mb::Options o = process_opts(true);
  o.command = "autotune";
  o.observe_intervals = 2;
  o.reevaluate_intervals = 4;
  mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path());
  std::vector<mb::IntervalReport> rs;
  for (int i = 1; i <= 3; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  EXPECT_FALSE(rs[1].thread_balance->decided_now);
  EXPECT_NE(rs[1].thread_balance->autotune_state.find("observing"), std::string::npos);
  const mb::ThreadReport& t = *rs[2].thread_balance;
  ASSERT_TRUE(t.decided_now);
  ASSERT_EQ(t.decisions.size(), 2u);
  EXPECT_EQ(t.decisions[0].pid, 100);
  EXPECT_EQ(t.decisions[0].choice, "threads") << t.decisions[0].why;
  EXPECT_EQ(t.decisions[1].choice, "none") << t.decisions[1].why;
  ASSERT_EQ(t.moves.size(), 1u);
  EXPECT_EQ(t.moves[0].tid, 101);
  EXPECT_EQ(m.fa.aff[301], CpuSet({0, 1}));
  EXPECT_FALSE(rs[2].migration) << "no process chose memory: no memory backend";
  // Re-evaluated 4 intervals later, from the last 2.
  for (int i = 4; i <= 7; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  EXPECT_FALSE(rs[5].thread_balance->decided_now);
  EXPECT_TRUE(rs[6].thread_balance->decided_now);
  mb::Summary s;
  b.stop(s);
  EXPECT_EQ(s.thread_balance->restored, 1u);
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1}));
}

TEST(ProcessBackend, AutotuneObservesOnlyItsWindows) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));
  m.pages = {{100, {1, 4000}}};
  for (int reevaluate : {0, 4}) {
    mb::Options o = process_opts(false);
    o.command = "autotune";
    o.observe_intervals = 2;
    o.reevaluate_intervals = static_cast<uint32_t>(reevaluate);
    mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path());
    pid_t next_tid = 110;
    for (uint32_t i = 1; i <= 12; ++i) {
      // A thread pool: a new short-lived thread each interval.
      if (i > 1) m.remove_thread(next_tid - 1);
      m.add_thread(100, next_tid++, 0, 50, CpuSet({0, 1}));
      auto r = m.next();
      b.interval(m.pipeline, m.tracked(), i, r);
      if (i == 3) {
        ASSERT_TRUE(r.thread_balance->decided_now);
      }
      // A window of 2 intervals holds thread 101 and at most 2 pool threads;
      // between windows (forever with --reevaluate 0) nothing is added.
      EXPECT_LE(b.observed_threads(), 3u) << "interval " << i << " reevaluate " << reevaluate;
    }
    m.remove_thread(next_tid - 1);
  }
}

TEST(ProcessBackend, AutotuneDryRunMovesNoThread) {
  Machine m;
  m.add_thread(100, 101, 0, 50, CpuSet({0, 1}));  // memory on node 1, threads on node 0: threads
  m.pages = {{100, {1, 4000}}};
  mb::Options o = process_opts(true);
  o.command = "autotune";
  o.dry_run = true;
  o.observe_intervals = 2;
  mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path());
  std::vector<mb::IntervalReport> rs;
  for (int i = 1; i <= 4; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  const mb::ThreadReport& t = *rs[2].thread_balance;
  ASSERT_TRUE(t.decided_now);
  EXPECT_EQ(t.decisions[0].choice, "threads") << t.decisions[0].why;
  EXPECT_FALSE(t.migrate);
  ASSERT_EQ(t.moves.size(), 1u) << "the move is planned and reported";
  EXPECT_TRUE(m.fa.sets.empty()) << "but no affinity is set";
  EXPECT_EQ(m.fa.aff[101], CpuSet({0, 1}));
}

TEST(ProcessBackend, AutotuneOnOneMemoryNodeDecidesNoneInsteadOfMemory) {
  Machine m;
  m.topo.nodes[1].mem_total_bytes = 0;  // node 1: CPUs, no memory
  m.topo.nodes[1].mem_free_bytes = 0;
  // Three busy threads on node 1's two CPUs, memory on node 0 (two CPUs):
  // memory would move, and there is no other node to move it to.
  for (pid_t tid = 101; tid <= 103; ++tid) m.add_thread(100, tid, 2, 50, CpuSet({0, 1, 2, 3}));
  m.pages = {{100, {0, 4000}}};
  mb::Options o = process_opts(true);
  o.command = "autotune";
  o.observe_intervals = 2;
  mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path());
  std::vector<mb::IntervalReport> rs;
  for (int i = 1; i <= 4; ++i) {
    rs.push_back(m.next());
    ASSERT_NO_THROW(b.interval(m.pipeline, m.tracked(), i, rs.back()));
  }
  const mb::ThreadReport& t = *rs[2].thread_balance;
  ASSERT_TRUE(t.decided_now);
  EXPECT_EQ(t.decisions[0].choice, "none") << t.decisions[0].why;
  EXPECT_NE(t.decisions[0].why.find("one node with memory"), std::string::npos) << t.decisions[0].why;
  EXPECT_FALSE(rs[2].migration);
}

TEST(ProcessBackend, AutotunePlanSplitsDecisions) {
  std::vector<mb::TuneDecision> d(3);
  d[0].tgid = 1, d[0].choice = mb::TuneChoice::kThreads;
  d[1].tgid = 2, d[1].choice = mb::TuneChoice::kMemory;
  d[2].tgid = 3, d[2].choice = mb::TuneChoice::kNone;
  auto p = mb::autotune_plan(d);
  EXPECT_EQ(p.threads, (std::set<pid_t>{1}));
  EXPECT_EQ(p.memory, (std::set<pid_t>{2}));
}

TEST(ProcessBackend, NumaPolicyPlansOnlyTheProcessesTheFilterAccepts) {
  mb::Topology topo = two_nodes();
  mb::NumaPolicyConfig cfg;
  cfg.min_free_bytes = 0;
  mb::NumaPolicy policy(topo, cfg);
  mb::PageTable table(1024);
  table.begin_interval(1);
  uint16_t lanes[MB_CPU_LANES] = {0};
  lanes[0] = 8;  // accessed from node 0's CPUs, on node 1
  for (uint32_t tgid : {10u, 20u})
    for (uint64_t v = 0; v < 3; ++v) table.add(mb_page_key(tgid, 0x100 + v), 8, lanes, 1);
  mb::MemoryState mem;
  for (const auto& n : topo.nodes) mem.nodes[n.id] = {n.mem_total_bytes, n.mem_free_bytes, 0};
  mb::CoolDown cool(30);
  auto all = policy.plan(table, mem, cool, {});
  EXPECT_EQ(all.moves.size(), 6u);
  auto only = policy.plan(table, mem, cool, {}, [](uint32_t tgid) { return tgid == 20; });
  ASSERT_EQ(only.moves.size(), 3u);
  for (const auto& mv : only.moves) EXPECT_EQ(mv.tgid, 20u);
}

}  // namespace

// autotune's memory half hands its mover the process's exec count, as numa
// and tier do: a process that exec'd since its moves were planned has the
// old image's batches cancelled, not tried on the new one. The tgid is near
// the top of the 22 bits of a page key, far above the pids a machine hands
// out, so a move_pages that went ahead (the old code) found no process.
TEST(ProcessBackend, AutotunesMemoryMovesAreCancelledByTheExecCount) {
  const pid_t tgid = 4194200;
  Machine m;
  for (pid_t t = 1; t <= 3; ++t) m.add_thread(tgid, tgid + t, 0, 90, CpuSet({0, 1}));  // 3 busy threads > 2 CPUs
  m.pages = {{tgid, {1, 4000}}};
  m.access_lane = 0;  // from node 0's CPUs: numa moves the pages there
  mb::Options o = process_opts(true);
  o.command = "autotune";
  o.observe_intervals = 1;
  // The process execs once its moves are queued: the submit reads 0, the
  // worker's check before move_pages 1.
  std::atomic<int> asked{0};
  mb::ExecCountFn count = [&](pid_t p) -> std::optional<uint32_t> {
    if (p != tgid) return std::nullopt;
    return asked++ == 0 ? 0u : 1u;
  };
  mb::AutotuneBackend b(o, m.topo, m.fa.ops(), m.tree.path(), count);
  std::vector<mb::IntervalReport> rs;
  for (int i = 1; i <= 2; ++i) {
    rs.push_back(m.next());
    b.interval(m.pipeline, m.tracked(), i, rs.back());
  }
  // The stop abandons what the worker has not taken: wait for its check (at
  // most 10 s: without the count passed on, it never comes).
  for (int i = 0; i < 10000 && asked < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  mb::Summary s;
  b.stop(s);
  ASSERT_TRUE(rs[1].thread_balance && rs[1].thread_balance->decided_now);
  ASSERT_EQ(rs[1].thread_balance->decisions.size(), 1u);
  EXPECT_EQ(rs[1].thread_balance->decisions[0].choice, "memory") << rs[1].thread_balance->decisions[0].why;
  ASSERT_TRUE(s.migration);
  const mb::MoveCounts total = s.migration->mover.total();
  EXPECT_EQ(total.requested, 4u);
  EXPECT_EQ(total.cancelled_exec, 4u) << "tried on the new image: " << total.failed() << " failed";
  EXPECT_EQ(total.failed(), 0u);
}
