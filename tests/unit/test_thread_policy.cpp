// Unit tests for membalancer/thread_policy.h: candidate selection, target
// choice with load gating, throttle, cool-down, pinned threads, the
// per-process fallback, the access-pattern report, and autotune.

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "membalancer/thread_policy.h"

namespace {

using mb::CpuSet;
using mb::NodeState;
using mb::SkipReason;
using mb::ThreadInfo;
using mb::ThreadPolicyConfig;

// Four nodes in a line 0 - 1 - 2 - 3 (distances 10/12/14/16 ... as below),
// two CPUs each except node 3 (memory only).
std::vector<NodeState> line_nodes() {
  std::vector<NodeState> n(4);
  const int d[4][4] = {{10, 12, 14, 16}, {12, 10, 12, 14}, {14, 12, 10, 12}, {16, 14, 12, 10}};
  for (int i = 0; i < 4; ++i) {
    n[i].id = i;
    if (i < 3) n[i].cpus = CpuSet({2 * i, 2 * i + 1});
    n[i].load = 0.1;
    n[i].idle_cpus = i < 3 ? 2 : 0;
    for (int j = 0; j < 4; ++j) n[i].distance[j] = d[i][j];
  }
  return n;
}

ThreadInfo thread(pid_t tid, int runs_on, std::map<int, uint64_t> mem) {
  ThreadInfo t;
  t.tid = tid;
  t.tgid = 1000;
  t.current_node = runs_on;
  t.cpu_weight = {{runs_on, 100}};
  t.mem_accesses = std::move(mem);
  t.affinity = CpuSet({0, 1, 2, 3, 4, 5});
  return t;
}

ThreadPolicyConfig all_moves() {
  ThreadPolicyConfig c;
  c.max_move_share = 1.0;
  return c;
}

TEST(ThreadPolicy, CandidateNeedsRemoteMajority) {
  std::vector<ThreadInfo> ts = {
      thread(1, 0, {{0, 900}, {1, 100}}),           // local
      thread(2, 0, {{0, 450}, {1, 550}}),           // 55% on node 1: candidate
      thread(3, 0, {{0, 300}, {1, 400}, {2, 300}}), // 40% at most elsewhere: not
      thread(4, 0, {{1, 10}}),                       // too few accesses
      thread(5, 0, {{0, 500}, {1, 500}}),           // tie: stays
  };
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves(ts, line_nodes(), all_moves(), cool, 1);
  EXPECT_EQ(plan.judged, 4u);
  EXPECT_EQ(plan.candidates, 1u);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].tid, 2);
  EXPECT_EQ(plan.moves[0].from, 0);
  EXPECT_EQ(plan.moves[0].to, 1);
  EXPECT_EQ(plan.moves[0].cpus, CpuSet({2, 3}));
  EXPECT_DOUBLE_EQ(plan.moves[0].gain, (550 - 450) * 2 / 10.0 + 0);  // distance 12: 2 per access
  EXPECT_TRUE(plan.skipped.empty());
  // A higher majority threshold drops it.
  auto strict = all_moves();
  strict.majority = 0.6;
  EXPECT_TRUE(mb::plan_thread_moves(ts, line_nodes(), strict, cool, 1).moves.empty());
}

TEST(ThreadPolicy, RunsOnNodeFromCpuWeightElseCurrentNode) {
  // Ran mostly on node 1 (the scheduler has it on node 0 just now): memory on
  // node 1 is local, nothing to do.
  ThreadInfo t = thread(1, 0, {{1, 1000}});
  t.cpu_weight = {{0, 10}, {1, 90}};
  mb::ThreadCoolDown cool;
  EXPECT_EQ(mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1).candidates, 0u);
  // No CPU weight: the current node decides.
  t.cpu_weight.clear();
  auto plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].from, 0);
}

TEST(ThreadPolicy, ChooseTargetLoadGating) {
  auto nodes = line_nodes();
  ThreadPolicyConfig cfg;
  EXPECT_EQ(mb::choose_target(2, nodes, cfg), 2);
  // Node 2 busy: the nearest qualifying node to 2 is 1 (12), not 0 (14).
  nodes[2].load = 0.95;
  EXPECT_EQ(mb::choose_target(2, nodes, cfg), 1);
  // Node 2 under the load limit but without idle CPUs: same.
  nodes[2].load = 0.5;
  nodes[2].idle_cpus = 0;
  EXPECT_EQ(mb::choose_target(2, nodes, cfg), 1);
  // Node 1 busy too: node 0.
  nodes[1].load = 0.9;
  EXPECT_EQ(mb::choose_target(2, nodes, cfg), 0);
  nodes[0].idle_cpus = 0;
  EXPECT_FALSE(mb::choose_target(2, nodes, cfg).has_value());
  // Node 3 has no CPUs: the nearest node with CPUs (2).
  EXPECT_EQ(mb::choose_target(3, line_nodes(), cfg), 2);
  EXPECT_FALSE(mb::node_qualifies(line_nodes()[3], cfg));
  // Equal distances: the less loaded node, then the lower id.
  auto eq = line_nodes();
  eq[0].distance[2] = 12;
  eq[2].distance[0] = 12;
  eq[0].load = 0.05;
  eq[2].load = 0.9;
  EXPECT_EQ(mb::choose_target(2, eq, cfg), 0);
  eq[0].load = eq[1].load;
  EXPECT_EQ(mb::choose_target(2, eq, cfg), 0);
}

TEST(ThreadPolicy, BusyPreferredNodeGoesToNearestQualifying) {
  auto nodes = line_nodes();
  nodes[2].load = 0.95;
  mb::ThreadCoolDown cool;
  // Runs on node 0, memory on node 2 (busy): node 1 is the nearest qualifying.
  auto plan = mb::plan_thread_moves({thread(7, 0, {{2, 1000}})}, nodes, all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].preferred, 2);
  EXPECT_EQ(plan.moves[0].to, 1);
  EXPECT_DOUBLE_EQ(plan.moves[0].gain, 1000 * (14 - 12) / 10.0);
  EXPECT_NE(plan.moves[0].reason.find("nearest qualifying node 1"), std::string::npos);
  // Running on node 1 already: nowhere better to go.
  plan = mb::plan_thread_moves({thread(7, 1, {{2, 1000}})}, nodes, all_moves(), cool, 1);
  EXPECT_TRUE(plan.moves.empty());
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kNoTarget);
  // Every node busy.
  for (auto& n : nodes) n.load = 0.99;
  plan = mb::plan_thread_moves({thread(7, 0, {{2, 1000}})}, nodes, all_moves(), cool, 1);
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kNoTarget);
}

TEST(ThreadPolicy, MemoryOnCpulessNodeMovesToNearestCpuNode) {
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves({thread(8, 0, {{3, 900}, {0, 100}})}, line_nodes(), all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].to, 2);
  EXPECT_EQ(plan.moves[0].cpus, CpuSet({4, 5}));
  // gain: node 3 accesses 16 -> 12, node 0 accesses 10 -> 14.
  EXPECT_DOUBLE_EQ(plan.moves[0].gain, (900 * 4 - 100 * 4) / 10.0);
}

TEST(ThreadPolicy, MoveGainNeverNegativeMoveIsSkipped) {
  // Most accesses on node 3 (no CPUs), but a nearer-to-3 node gives no gain
  // when the thread also touches its own node a lot... constructed directly:
  auto nodes = line_nodes();
  nodes[2].load = 0.99;
  nodes[1].load = 0.99;
  // Runs on node 1; memory 60% on node 3, 40% on node 1. Nearest qualifying
  // to 3 is node 0: worse for everything.
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves({thread(9, 1, {{3, 600}, {1, 400}})}, nodes, all_moves(), cool, 1);
  EXPECT_TRUE(plan.moves.empty());
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kNoGain);
  EXPECT_LT(mb::move_gain({{3, 600}, {1, 400}}, 1, 0, nodes), 0);
}

TEST(ThreadPolicy, ThrottleLargestGainFirstBoundedShare) {
  std::vector<ThreadInfo> ts;
  for (pid_t tid = 1; tid <= 8; ++tid) ts.push_back(thread(tid, 0, {{1, 100u * tid}}));
  auto nodes = line_nodes();
  std::vector<int> many;
  for (int c = 0; c < 100; ++c) many.push_back(100 + c);
  nodes[1].cpus = CpuSet(many);  // room for everyone
  nodes[1].idle_cpus = 100;
  ThreadPolicyConfig cfg;
  cfg.max_move_share = 0.25;
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves(ts, nodes, cfg, cool, 1);
  EXPECT_EQ(plan.eligible, 8u);
  EXPECT_EQ(plan.budget, 2u);
  ASSERT_EQ(plan.moves.size(), 2u);
  EXPECT_EQ(plan.moves[0].tid, 8);
  EXPECT_EQ(plan.moves[1].tid, 7);
  EXPECT_GT(plan.moves[0].gain, plan.moves[1].gain);
  size_t throttled = 0;
  for (const auto& s : plan.skipped) throttled += s.why == SkipReason::kThrottled;
  EXPECT_EQ(throttled, 6u);
  // A share rounds up: 0.3 x 5 = 1.5 -> 2; any share > 0 allows one move.
  cfg.max_move_share = 0.3;
  ts.resize(5);
  EXPECT_EQ(mb::plan_thread_moves(ts, nodes, cfg, cool, 1).budget, 2u);
  cfg.max_move_share = 0.01;
  EXPECT_EQ(mb::plan_thread_moves(ts, nodes, cfg, cool, 1).budget, 1u);
  cfg.max_move_share = 0;
  EXPECT_EQ(mb::plan_thread_moves(ts, nodes, cfg, cool, 1).moves.size(), 0u);
}

TEST(ThreadPolicy, PlannedMovesUseUpIdleCpus) {
  // Node 1 has 2 idle CPUs: the third thread goes to the next nearest node.
  std::vector<ThreadInfo> ts;
  for (pid_t tid = 1; tid <= 3; ++tid) ts.push_back(thread(tid, 0, {{1, 1000u + tid}}));
  ThreadPolicyConfig cfg = all_moves();
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves(ts, line_nodes(), cfg, cool, 1);
  // Thread 3 (largest gain) and 2 go to node 1; thread 1 finds node 1 full,
  // and its nearest qualifying node is node 0 (12) = its own, or 2 (12):
  // equal distance and load, lower id wins: its own node -> no target.
  ASSERT_EQ(plan.moves.size(), 2u);
  EXPECT_EQ(plan.moves[0].tid, 3);
  EXPECT_EQ(plan.moves[1].tid, 2);
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].tid, 1);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kNoTarget);
}

TEST(ThreadPolicy, CoolDownBlocksRepeatMoves) {
  mb::ThreadCoolDown cool;
  ThreadPolicyConfig cfg = all_moves();
  cfg.cooldown_intervals = 3;
  std::vector<ThreadInfo> ts = {thread(1, 0, {{1, 1000}})};
  auto plan = mb::plan_thread_moves(ts, line_nodes(), cfg, cool, 10);
  ASSERT_EQ(plan.moves.size(), 1u);
  cool.moved(1, 10);
  for (uint32_t i : {10u, 11u, 12u}) {
    plan = mb::plan_thread_moves(ts, line_nodes(), cfg, cool, i);
    EXPECT_TRUE(plan.moves.empty()) << i;
    ASSERT_EQ(plan.skipped.size(), 1u);
    EXPECT_EQ(plan.skipped[0].why, SkipReason::kCoolDown);
    EXPECT_EQ(plan.eligible, 0u);
  }
  EXPECT_EQ(mb::plan_thread_moves(ts, line_nodes(), cfg, cool, 13).moves.size(), 1u);
  // Bookkeeping.
  cool.moved(2, 12);
  EXPECT_EQ(cool.size(), 2u);
  cool.expire(13, 3);  // 1 (moved at 10) is done cooling, 2 is not
  EXPECT_EQ(cool.size(), 1u);
  EXPECT_TRUE(cool.cooling(2, 13, 3));
  cool.forget(2);
  EXPECT_EQ(cool.size(), 0u);
  EXPECT_FALSE(cool.cooling(5, 0, 0));
}

TEST(ThreadPolicy, PinnedSkippedUnlessOverride) {
  ThreadInfo t = thread(1, 0, {{1, 1000}});
  t.pinned = true;
  t.affinity = CpuSet({1});
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1);
  EXPECT_TRUE(plan.moves.empty());
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kPinned);
  EXPECT_EQ(plan.candidates, 1u);
  EXPECT_EQ(plan.eligible, 0u);
  std::string line = mb::describe(plan.skipped[0]);
  EXPECT_NE(line.find("skip tid 1 (tgid 1000) node 0: pinned"), std::string::npos) << line;
  auto cfg = all_moves();
  cfg.override_pinned = true;
  plan = mb::plan_thread_moves({t}, line_nodes(), cfg, cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  std::string mv = mb::describe(plan.moves[0]);
  EXPECT_NE(mv.find("move tid 1 (tgid 1000) node 0 -> 1 [cpus 2-3]"), std::string::npos) << mv;
}

TEST(ThreadPolicy, MoveStaysWithinTheCpusTheThreadWasAllowed) {
  // Allowed node 0 and CPU 2 of node 1 (taskset -c 0-2): a move to node 1
  // sets CPU 2, never CPU 3.
  ThreadInfo t = thread(1, 0, {{1, 1000}});
  t.allowed = CpuSet({0, 1, 2});
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].to, 1);
  EXPECT_EQ(plan.moves[0].cpus, CpuSet({2}));
  std::string mv = mb::describe(plan.moves[0]);
  EXPECT_NE(mv.find("[cpus 2]"), std::string::npos) << mv;
  EXPECT_NE(mv.find("allows cpus 2 there"), std::string::npos) << mv;
  // Allowed all of node 1, or none of it: the whole node.
  t.allowed = CpuSet({0, 1, 2, 3});
  plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].cpus, CpuSet({2, 3}));
  t.allowed = CpuSet({0, 1});
  plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 1);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].cpus, CpuSet({2, 3}));
}

TEST(ThreadPolicy, AThreadMovedBeforeNeedsAClearGainToMoveAgain) {
  // Memory split about evenly: 52% on node 0 after we moved the thread to
  // node 1 for 52% there. Moving it back for a 4-point difference would
  // bounce it every cool-down.
  ThreadInfo t = thread(1, 1, {{0, 520}, {1, 480}});
  t.moved_before = true;
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 20);
  EXPECT_TRUE(plan.moves.empty());
  ASSERT_EQ(plan.skipped.size(), 1u);
  EXPECT_EQ(plan.skipped[0].why, SkipReason::kNoGain);
  EXPECT_NE(plan.skipped[0].reason.find("moved before"), std::string::npos) << plan.skipped[0].reason;
  // A clear shift (60/40) moves it.
  t.mem_accesses = {{0, 600}, {1, 400}};
  plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 20);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].to, 0);
  // A thread never moved moves on the majority alone.
  t.mem_accesses = {{0, 520}, {1, 480}};
  t.moved_before = false;
  plan = mb::plan_thread_moves({t}, line_nodes(), all_moves(), cool, 20);
  EXPECT_EQ(plan.moves.size(), 1u);
}

TEST(ThreadPolicy, FillFromProcessPageLocations) {
  ThreadInfo a = thread(1, 0, {});
  a.cpu_weight = {{0, 300}};
  ThreadInfo b = thread(2, 0, {});
  b.cpu_weight = {{0, 100}};
  ThreadInfo own = thread(3, 0, {{0, 5}});
  own.tgid = 1000;
  ThreadInfo other = thread(4, 0, {});
  other.tgid = 2000;
  other.cpu_weight.clear();
  std::vector<ThreadInfo> ts = {a, b, own, other};
  mb::fill_from_process(ts, {{1000, {{1, 800}, {0, 200}}}, {2000, {{2, 60}}}});
  // tgid 1000 CPU weight: 300 + 100 + 100 (thread 3).
  EXPECT_EQ(ts[0].mem_accesses, (std::map<int, uint64_t>{{0, 120}, {1, 480}}));
  EXPECT_FALSE(ts[0].per_thread);
  EXPECT_EQ(ts[1].mem_accesses, (std::map<int, uint64_t>{{0, 40}, {1, 160}}));
  EXPECT_EQ(ts[2].mem_accesses, (std::map<int, uint64_t>{{0, 5}}));
  EXPECT_TRUE(ts[2].per_thread);
  EXPECT_EQ(ts[3].mem_accesses, (std::map<int, uint64_t>{{2, 60}}));  // only thread: all of it
  // The heavier thread has the larger gain: it moves first.
  auto cfg = all_moves();
  cfg.max_move_share = 0.5;
  mb::ThreadCoolDown cool;
  auto plan = mb::plan_thread_moves(ts, line_nodes(), cfg, cool, 1);
  ASSERT_FALSE(plan.moves.empty());
  EXPECT_EQ(plan.moves[0].tid, 1);
  EXPECT_NE(plan.moves[0].reason.find("process page locations"), std::string::npos);
}

TEST(ThreadPolicy, NodeStatesFromTopology) {
  mb::Topology topo;
  topo.nodes.resize(2);
  topo.nodes[0].id = 0;
  topo.nodes[0].cpus = {0, 1};
  topo.nodes[0].distance = {{0, 10}, {1, 21}};
  topo.nodes[1].id = 1;
  topo.nodes[1].cpus = {2, 3};
  std::map<int, mb::NodeLoad> loads;
  loads[0] = {0, 2, 0.75, 1};
  auto ns = mb::node_states(topo, loads);
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_DOUBLE_EQ(ns[0].load, 0.75);
  EXPECT_EQ(ns[0].idle_cpus, 1);
  EXPECT_EQ(ns[0].distance.at(1), 21);
  EXPECT_EQ(ns[1].idle_cpus, 2);  // no load entry: idle
  EXPECT_EQ(ns[1].cpus, CpuSet({2, 3}));
}

TEST(ThreadPolicy, NodeSharesReport) {
  auto rows = mb::node_shares({{0, 300}, {1, 100}}, {{1, 900}, {2, 100}});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].node, 0);
  EXPECT_DOUBLE_EQ(rows[0].cpu_share, 0.75);
  EXPECT_DOUBLE_EQ(rows[0].mem_share, 0.0);
  EXPECT_DOUBLE_EQ(rows[1].mem_share, 0.9);
  EXPECT_DOUBLE_EQ(rows[2].cpu_share, 0.0);
  std::string text = mb::format_node_shares(rows, 3);
  EXPECT_NE(text.find("NUMA PROCESS CPU AND MEMORY ACCESS PATTERN"), std::string::npos);
  EXPECT_NE(text.find("     1     25.0     90.0"), std::string::npos) << text;
  EXPECT_NE(text.find("threads moved: 3"), std::string::npos);
  EXPECT_TRUE(mb::node_shares({}, {}).empty());
}

// ---- autotune ----

const std::map<int, int> kCpus = {{0, 4}, {1, 4}, {2, 0}};
const std::map<int, int> kCpus2 = {{0, 2}, {1, 2}};

mb::ProcessProfile profile(std::vector<mb::ThreadDistribution> ts) {
  mb::ProcessProfile p;
  p.tgid = 77;
  p.threads = std::move(ts);
  return p;
}

TEST(Autotune, MemoryConcentratedThreadsElsewhereMovesThreads) {
  // Memory 92% on node 1, both threads on node 0.
  auto p = profile({{1, {{0, 100}}, {{1, 460}, {0, 40}}}, {2, {{0, 100}}, {{1, 460}, {0, 40}}}});
  auto d = mb::autotune_decide(p, kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kThreads) << d.why;
  EXPECT_EQ(d.mem_node, 1);
  EXPECT_EQ(d.cpu_node, 0);
  EXPECT_NEAR(d.local_share, 0.08, 1e-9);
  EXPECT_EQ(d.why, "memory 92% on node 1, threads 100% on node 0 (0% on node 1), 8% local -> move threads");
  EXPECT_STREQ(mb::tune_choice_name(d.choice), "threads");
}

TEST(Autotune, ThreadsSpreadMemoryMisplacedMovesMemory) {
  // Threads on nodes 0 and 1; each one's memory mostly on the other node.
  auto p = profile({{1, {{0, 100}}, {{1, 400}, {0, 100}}}, {2, {{1, 100}}, {{0, 400}, {1, 100}}}});
  auto d = mb::autotune_decide(p, kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kMemory) << d.why;
  EXPECT_NEAR(d.local_share, 0.2, 1e-9);
  EXPECT_NE(d.why.find("memory spread"), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("-> move memory"), std::string::npos);
}

TEST(Autotune, MemoryOnCpulessNodeOrTooManyThreadsMovesMemory) {
  auto p = profile({{1, {{0, 100}}, {{2, 900}, {0, 100}}}});
  auto d = mb::autotune_decide(p, kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kMemory);
  EXPECT_NE(d.why.find("no CPUs"), std::string::npos) << d.why;
  // Six busy threads, four CPUs on node 1.
  std::vector<mb::ThreadDistribution> many;
  for (pid_t t = 1; t <= 6; ++t) many.push_back({t, {{0, 100}}, {{1, 300}}});
  d = mb::autotune_decide(profile(many), kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kMemory);
  EXPECT_EQ(d.active_threads, 6u);
  EXPECT_NE(d.why.find("6 active threads > 4 CPUs"), std::string::npos) << d.why;
}

TEST(Autotune, OneNodeWithMemoryNeverMovesMemory) {
  // Six busy threads on node 0, memory on node 1 with four CPUs: memory
  // would move, but a machine of one memory node has nowhere to move it.
  std::vector<mb::ThreadDistribution> many;
  for (pid_t t = 1; t <= 6; ++t) many.push_back({t, {{0, 100}}, {{1, 300}}});
  mb::AutotuneConfig cfg;
  cfg.memory_movable = false;
  auto d = mb::autotune_decide(profile(many), kCpus, cfg);
  EXPECT_EQ(d.choice, mb::TuneChoice::kNone) << d.why;
  EXPECT_NE(d.why.find("6 active threads > 4 CPUs"), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("one node with memory -> nothing to move"), std::string::npos) << d.why;
  EXPECT_EQ(d.why.find("-> move memory"), std::string::npos) << d.why;
  // Threads still move where they can.
  auto p = profile({{1, {{0, 100}}, {{1, 460}, {0, 40}}}, {2, {{0, 100}}, {{1, 460}, {0, 40}}}});
  EXPECT_EQ(mb::autotune_decide(p, kCpus, cfg).choice, mb::TuneChoice::kThreads);
}

TEST(Autotune, AMainThreadThatBarelyRunsIsNotActive) {
  // Two busy workers on node 0, memory on node 1 (2 CPUs); the main thread ran
  // a little (a wake-up, a report): still two active threads -> move threads.
  auto p = profile({{1, {{0, 100}}, {{1, 500}}}, {2, {{0, 90}}, {{1, 550}}}, {3, {{0, 19}}, {}}});
  auto d = mb::autotune_decide(p, kCpus2, {});
  EXPECT_EQ(d.active_threads, 2u);
  EXPECT_EQ(d.choice, mb::TuneChoice::kThreads) << d.why;
  // At a fifth of the busiest thread's time it counts: three threads, two CPUs.
  p = profile({{1, {{0, 100}}, {{1, 500}}}, {2, {{0, 90}}, {{1, 550}}}, {3, {{0, 20}}, {}}});
  d = mb::autotune_decide(p, kCpus2, {});
  EXPECT_EQ(d.active_threads, 3u);
  EXPECT_EQ(d.choice, mb::TuneChoice::kMemory) << d.why;
  EXPECT_NE(d.why.find("3 active threads > 2 CPUs"), std::string::npos) << d.why;
}

// A worker that exited during the window needs no CPU where the threads go:
// counted, two busy threads do not fit the two CPUs of node 1 and the memory
// would move instead. Its accesses still count, and it cannot be the busiest.
TEST(Autotune, ThreadsThatExitedInTheWindowAreNotActive) {
  mb::AutotuneObserver obs(3);
  for (int i = 0; i < 3; ++i) {
    obs.add_thread(10, 11, {{0, 100}}, {{1, 500}});
    obs.add_thread(10, 12, {{0, 90}}, {{1, 500}});
    if (i < 2) obs.add_thread(10, 13, {{0, 400}}, {{1, 500}});  // busiest, then gone
    obs.end_interval();
  }
  auto ds = obs.decide(kCpus2, {});
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].active_threads, 2u);
  EXPECT_EQ(ds[0].accesses, 4000u);
  EXPECT_EQ(ds[0].choice, mb::TuneChoice::kThreads) << ds[0].why;
  // Still there in the last interval, idle or not: it counts.
  mb::AutotuneObserver live(2);
  for (int i = 0; i < 2; ++i) {
    live.add_thread(10, 11, {{0, 100}}, {{1, 500}});
    live.add_thread(10, 12, {{0, 90}}, {{1, 500}});
    live.add_thread(10, 13, i == 0 ? std::map<int, uint64_t>{{0, 400}} : std::map<int, uint64_t>{}, {{1, 500}});
    live.end_interval();
  }
  ds = live.decide(kCpus2, {});
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].active_threads, 3u);
  EXPECT_EQ(ds[0].choice, mb::TuneChoice::kMemory) << ds[0].why;
}

TEST(Autotune, Undecided) {
  // Too few samples.
  auto d = mb::autotune_decide(profile({{1, {{0, 10}}, {{1, 50}}}}), kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kNone);
  EXPECT_NE(d.why.find("too few samples: 50 accesses < 1000"), std::string::npos) << d.why;
  // Already local.
  d = mb::autotune_decide(profile({{1, {{0, 10}}, {{0, 940}, {1, 60}}}, {2, {{1, 10}}, {{1, 1000}}}}), kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kNone);
  EXPECT_NE(d.why.find("already local: 97% local"), std::string::npos) << d.why;
  // No CPU seen.
  d = mb::autotune_decide(profile({{1, {}, {{0, 5000}}}}), kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kNone);
}

TEST(Autotune, PageLocationsWhenNoPerThreadMemory) {
  // The sampler lacks per-thread memory nodes: page locations, and the
  // process's CPU split, decide.
  auto p = profile({{1, {{0, 100}}, {}}, {2, {{0, 100}}, {}}});
  p.page_accesses = {{1, 4500}, {0, 500}};
  auto d = mb::autotune_decide(p, kCpus, {});
  EXPECT_EQ(d.choice, mb::TuneChoice::kThreads) << d.why;
  EXPECT_NEAR(d.local_share, 0.1, 1e-9);
  EXPECT_EQ(d.accesses, 5000u);
}

TEST(Autotune, ObserverAccumulatesIntervals) {
  mb::AutotuneObserver obs(3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(obs.ready());
    obs.add_thread(10, 11, {{0, 10}}, {{1, 200}});  // 600 after 3 intervals
    obs.add_thread(10, 12, {{0, 10}}, {{1, 200}});
    obs.add_thread(20, 21, {{1, 10}}, {{1, 20}});
    obs.add_page_accesses(30, {{0, 10}});
    obs.end_interval();
  }
  EXPECT_TRUE(obs.ready());
  EXPECT_EQ(obs.intervals_seen(), 3u);
  auto ds = obs.decide(kCpus, {});
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].tgid, 10);
  EXPECT_EQ(ds[0].accesses, 1200u);
  EXPECT_EQ(ds[0].choice, mb::TuneChoice::kThreads) << ds[0].why;
  EXPECT_EQ(ds[1].tgid, 20);
  EXPECT_EQ(ds[1].choice, mb::TuneChoice::kNone);  // 60 accesses
  EXPECT_EQ(ds[2].tgid, 30);
  obs.forget_process(10);
  EXPECT_EQ(obs.decide(kCpus, {}).size(), 2u);
}

}  // namespace
