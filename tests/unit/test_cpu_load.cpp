// Unit tests for membalancer/cpu_load.h: /proc/stat and task stat parsing,
// per-node load with idle CPUs, and per-node thread CPU time, against fake
// /proc trees (and this process's own threads in the real /proc).

#include <gtest/gtest.h>

#include <unistd.h>

#include <string>
#include <vector>

#include "membalancer/cpu_load.h"
#include "temp_tree.h"

namespace {

// Nodes 0 = cpus 0,1; 1 = cpus 2,3; 2 = no CPUs.
mb::Topology two_nodes_and_memory() {
  mb::Topology t;
  t.nodes.resize(3);
  t.nodes[0].id = 0;
  t.nodes[0].cpus = {0, 1};
  t.nodes[1].id = 1;
  t.nodes[1].cpus = {2, 3};
  t.nodes[2].id = 2;
  t.cpu_node = {0, 0, 1, 1};
  return t;
}

// A /proc/PID/task/TID/stat line with the fields the code reads set.
std::string task_stat(pid_t tid, const std::string& comm, char state, uint64_t utime, uint64_t stime, int cpu) {
  std::string s = std::to_string(tid) + " (" + comm + ")";
  for (int field = 3; field <= 52; ++field) {
    s += ' ';
    if (field == 3) s += state;
    else if (field == 14) s += std::to_string(utime);
    else if (field == 15) s += std::to_string(stime);
    else if (field == 39) s += std::to_string(cpu);
    else s += (field == 4 ? "1" : "0");
  }
  return s + "\n";
}

// user nice system idle iowait irq softirq steal guest guest_nice
std::string stat_text(const std::vector<std::vector<uint64_t>>& cpus) {
  std::string s = "cpu  1 2 3 4 5 6 7 8 0 0\n";
  for (size_t c = 0; c < cpus.size(); ++c) {
    s += "cpu" + std::to_string(c);
    for (uint64_t v : cpus[c]) s += " " + std::to_string(v);
    s += "\n";
  }
  return s + "intr 12345 0 0\nctxt 999\nbtime 1700000000\n";
}

TEST(CpuLoad, ParseProcStat) {
  auto m = mb::parse_proc_stat(
      "cpu  100 0 100 100 0 0 0 0 0 0\n"
      "cpu0 10 1 2 30 4 5 6 7 8 9\n"
      "cpu3 1 1 1 1\n"
      "cpux 1 2 3 4\n"
      "cpu7 1 2\n"
      "intr 1 2 3\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at(0).busy, 10u + 1 + 2 + 5 + 6 + 7);  // guest not counted twice
  EXPECT_EQ(m.at(0).idle, 30u + 4);
  EXPECT_EQ(m.at(3).busy, 3u);
  EXPECT_EQ(m.at(3).idle, 1u);
}

TEST(CpuLoad, NodeLoadsBusyFractionAndIdleCpus) {
  auto topo = two_nodes_and_memory();
  std::map<int, mb::CpuTimes> before{{0, {100, 100}}, {1, {100, 100}}, {2, {0, 0}}, {3, {0, 0}}};
  // cpu0 90% busy, cpu1 10% busy; cpu2 100% busy, cpu3 40% busy.
  std::map<int, mb::CpuTimes> after{{0, {190, 110}}, {1, {110, 190}}, {2, {100, 0}}, {3, {40, 60}}};
  auto loads = mb::node_loads(topo, before, after);
  ASSERT_EQ(loads.size(), 3u);
  EXPECT_EQ(loads[0].cpus, 2);
  EXPECT_DOUBLE_EQ(loads[0].busy_fraction, 0.5);
  EXPECT_EQ(loads[0].idle_cpus, 1);
  EXPECT_DOUBLE_EQ(loads[1].busy_fraction, 0.7);
  EXPECT_EQ(loads[1].idle_cpus, 1);
  // Memory-only node.
  EXPECT_EQ(loads[2].cpus, 0);
  EXPECT_EQ(loads[2].idle_cpus, 0);
  EXPECT_DOUBLE_EQ(loads[2].busy_fraction, 0.0);
  // A stricter idle threshold: cpu3 at 40% is no longer idle.
  EXPECT_EQ(mb::node_loads(topo, before, after, 0.3)[1].idle_cpus, 0);
}

TEST(CpuLoad, OfflineCpuAndCounterResetIgnored) {
  auto topo = two_nodes_and_memory();
  std::map<int, mb::CpuTimes> before{{0, {100, 100}}, {1, {500, 500}}, {2, {0, 0}}};
  std::map<int, mb::CpuTimes> after{{0, {150, 150}}, {1, {10, 10}}, {3, {5, 5}}};
  auto loads = mb::node_loads(topo, before, after);
  EXPECT_EQ(loads[0].cpus, 2);
  EXPECT_DOUBLE_EQ(loads[0].busy_fraction, 0.5);  // cpu1 went backwards: no ticks counted
  EXPECT_EQ(loads[0].idle_cpus, 0);
  EXPECT_EQ(loads[1].cpus, 0);  // cpu2 gone, cpu3 new: neither in both snapshots
}

TEST(CpuLoad, MonitorReadsDeltasFromFakeProc) {
  mb_test::TempTree tree("mb_cpuload");
  auto topo = two_nodes_and_memory();
  tree.write("stat", stat_text({{0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}));
  mb::CpuLoadMonitor mon(tree.path());
  mon.update(topo);
  tree.write("stat", stat_text({{80, 0, 20, 0, 0, 0, 0, 0, 0, 0},   // cpu0 busy
                                {50, 0, 50, 0, 0, 0, 0, 0, 0, 0},   // cpu1 busy
                                {0, 0, 0, 100, 0, 0, 0, 0, 0, 0},   // cpu2 idle
                                {10, 0, 0, 80, 10, 0, 0, 0, 0, 0}}));  // cpu3 10% busy
  auto loads = mon.update(topo);
  EXPECT_DOUBLE_EQ(loads[0].busy_fraction, 1.0);
  EXPECT_EQ(loads[0].idle_cpus, 0);
  EXPECT_DOUBLE_EQ(loads[1].busy_fraction, 0.05);
  EXPECT_EQ(loads[1].idle_cpus, 2);
}

TEST(CpuLoad, ParseTaskStat) {
  auto st = mb::parse_task_stat(task_stat(4242, "my (odd) prog", 'R', 120, 30, 3));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->tid, 4242);
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->cpu_ticks, 150u);
  EXPECT_EQ(st->processor, 3);
  EXPECT_FALSE(mb::parse_task_stat("").has_value());
  EXPECT_FALSE(mb::parse_task_stat("12 (x) S 1 2 3").has_value());  // too short
  EXPECT_FALSE(mb::parse_task_stat("12 x S 1 2 3").has_value());
  std::string bad = task_stat(7, "x", 'S', 1, 1, 0);
  bad.replace(bad.find(") S") + 2, 1, "SS");  // state not one letter
  EXPECT_FALSE(mb::parse_task_stat(bad).has_value());
}

TEST(CpuLoad, ThreadCpuTrackerDeltasByNode) {
  mb_test::TempTree tree("mb_taskcpu");
  auto topo = two_nodes_and_memory();
  tree.write("100/stat", task_stat(100, "app", 'S', 0, 0, 0));
  tree.write("100/task/100/stat", task_stat(100, "app", 'S', 1000, 0, 0));
  tree.write("100/task/101/stat", task_stat(101, "app", 'R', 500, 500, 2));
  tree.write("200/task/200/stat", task_stat(200, "other", 'R', 70, 0, 3));

  mb::ThreadCpuTracker tr;
  auto first = tr.update_from_proc({100, 200}, topo, tree.path());
  EXPECT_EQ(first.threads.size(), 3u);
  EXPECT_EQ(first.total_ticks, 0u);  // baseline only
  EXPECT_TRUE(first.node_ticks.empty());

  // 100 ran 30 ticks on node 0; 101 ran 50 and is now on cpu 1 (node 0);
  // 102 is new (all its 20 ticks count, on node 1); 200 exited.
  tree.write("100/task/100/stat", task_stat(100, "app", 'S', 1020, 10, 0));
  tree.write("100/task/101/stat", task_stat(101, "app", 'R', 550, 500, 1));
  tree.write("100/task/102/stat", task_stat(102, "app", 'R', 15, 5, 2));
  std::filesystem::remove_all(tree.path("200"));
  auto second = tr.update_from_proc({100, 200}, topo, tree.path());
  ASSERT_EQ(second.threads.size(), 3u);
  std::map<pid_t, mb::ThreadCpu> by_tid;
  for (const auto& t : second.threads) by_tid[t.tid] = t;
  EXPECT_EQ(by_tid[100].ticks, 30u);
  EXPECT_EQ(by_tid[101].ticks, 50u);
  EXPECT_EQ(by_tid[101].node, 0);
  EXPECT_EQ(by_tid[102].ticks, 20u);
  EXPECT_EQ(by_tid[102].node, 1);
  EXPECT_EQ(by_tid[102].tgid, 100);
  EXPECT_EQ(second.total_ticks, 100u);
  EXPECT_EQ(second.node_ticks.at(0), 80u);
  EXPECT_EQ(second.node_ticks.at(1), 20u);
  EXPECT_EQ(tr.tracked(), 3u);  // 200 forgotten
}

TEST(CpuLoad, ThreadCpuTrackerReusedTidAndUnknownCpu) {
  auto topo = two_nodes_and_memory();
  mb::ThreadCpuTracker tr;
  mb::TaskStat a{5, 'R', 1000, 0};
  tr.update({{5, a}}, topo);
  mb::TaskStat reused{5, 'R', 40, 9};  // count went down: a new thread; cpu 9 has no node
  auto iv = tr.update({{5, reused}}, topo);
  ASSERT_EQ(iv.threads.size(), 1u);
  EXPECT_EQ(iv.threads[0].ticks, 40u);
  EXPECT_EQ(iv.threads[0].node, -1);
  EXPECT_EQ(iv.node_ticks.at(-1), 40u);
}

// A thread other than the leader execs: it goes on as the leader's id, with
// its own CPU time. Its interval is what it ran since its last look (under
// its old id), not the difference to the dead leader's count.
TEST(CpuLoad, ThreadCpuTrackerFollowsANonLeaderExec) {
  auto topo = two_nodes_and_memory();
  mb::ThreadCpuTracker tr;
  tr.update({{100, mb::TaskStat{100, 'S', 1000, 0}}, {100, mb::TaskStat{101, 'R', 1200, 1}}}, topo);
  tr.renumber(101, 100);
  auto iv = tr.update({{100, mb::TaskStat{100, 'R', 1230, 1}}}, topo);
  ASSERT_EQ(iv.threads.size(), 1u);
  EXPECT_EQ(iv.threads[0].ticks, 30u);
  EXPECT_EQ(tr.tracked(), 1u);
}

TEST(CpuLoad, RealProcOwnThreads) {
  auto tasks = mb::read_process_tasks(getpid());
  bool found = false;
  for (const auto& t : tasks)
    if (t.tid == getpid()) {
      found = true;
      EXPECT_GE(t.processor, 0);
      EXPECT_EQ(t.state, 'R');  // reading its own stat
    }
  EXPECT_TRUE(found);
  auto times = mb::read_cpu_times();
  EXPECT_EQ(times.size(), static_cast<size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
}

}  // namespace
