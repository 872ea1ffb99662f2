// CPU load from /proc, for thread balancing:
//   - per NUMA node: busy fraction and idle CPU count over an interval, from
//     the per-CPU lines of /proc/stat (two snapshots, their difference);
//   - per thread: cumulative CPU time and the CPU it last ran on, from
//     /proc/PID/task/TID/stat (utime + stime, processor);
//   - per node: the tree's CPU time in an interval, from thread CPU-time
//     deltas attributed to the node of the CPU each thread was last seen on.
// Every reader takes the proc root (normally "/proc") so that tests can use a
// fake tree. Times are in clock ticks (USER_HZ), as the kernel prints them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "membalancer/topology.h"

namespace mb {

// One CPU's cumulative times from a "cpuN ..." line of /proc/stat.
//   idle = idle + iowait; busy = user + nice + system + irq + softirq + steal
//   (guest time is already inside user/nice and is not added twice).
struct CpuTimes {
  uint64_t busy = 0;
  uint64_t idle = 0;
};

// Per-CPU times keyed by CPU number (the aggregate "cpu" line is skipped;
// offline CPUs have no line). Malformed lines are skipped.
std::map<int, CpuTimes> parse_proc_stat(const std::string& text);
// Empty when /proc/stat cannot be read.
std::map<int, CpuTimes> read_cpu_times(const std::string& proc_root = "/proc");

struct NodeLoad {
  int node = -1;
  int cpus = 0;                // CPUs of the node seen in both snapshots
  double busy_fraction = 0.0;  // busy ticks / (busy + idle) ticks over those CPUs
  int idle_cpus = 0;           // CPUs whose own busy fraction was < idle_cpu_busy_max
};

// A CPU counts as idle when its busy fraction over the interval is below this:
// it has at least half a CPU to give to a thread moved there.
constexpr double kIdleCpuBusyMax = 0.5;

// Load of every node of `topo` between two snapshots. A node without CPUs has
// cpus = 0, busy_fraction = 0, idle_cpus = 0. A CPU without ticks in the
// interval (or missing from either snapshot) counts as neither busy nor idle.
std::map<int, NodeLoad> node_loads(const Topology& topo, const std::map<int, CpuTimes>& before,
                                   const std::map<int, CpuTimes>& after,
                                   double idle_cpu_busy_max = kIdleCpuBusyMax);

// Keeps the last /proc/stat snapshot: each update() returns the loads since
// the previous one (the first call returns loads since boot).
class CpuLoadMonitor {
 public:
  explicit CpuLoadMonitor(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  std::map<int, NodeLoad> update(const Topology& topo, double idle_cpu_busy_max = kIdleCpuBusyMax);

 private:
  std::string proc_root_;
  std::map<int, CpuTimes> prev_;
};

// A thread's line of /proc/PID/task/TID/stat.
struct TaskStat {
  pid_t tid = 0;
  char state = '?';
  uint64_t cpu_ticks = 0;  // utime + stime (fields 14 and 15)
  int processor = -1;      // field 39: the CPU it last ran on
  uint64_t start_ticks = 0;  // field 22: when it started, clock ticks after boot
};

// Parses a stat line (the comm may hold spaces and parentheses). nullopt on
// malformed text.
std::optional<TaskStat> parse_task_stat(const std::string& line);
// nullopt when the thread is gone or its stat unreadable.
std::optional<TaskStat> read_task_stat(pid_t tgid, pid_t tid, const std::string& proc_root = "/proc");
// Every thread of a process (threads that exit while being read are left out).
std::vector<TaskStat> read_process_tasks(pid_t tgid, const std::string& proc_root = "/proc");

// One thread's CPU use in an interval.
struct ThreadCpu {
  pid_t tid = 0;
  pid_t tgid = 0;
  uint64_t ticks = 0;  // CPU time used in the interval
  int cpu = -1;        // where it was last seen running
  int node = -1;       // node of that CPU (-1: unknown)
};

// Turns successive cumulative thread CPU times into per-interval deltas and a
// per-node split of the tree's CPU time. The whole delta of a thread goes to
// the node of the CPU it is on at the end of the interval (a thread that ran
// on two nodes in one interval is attributed to the last one: the error is
// bounded by the interval length).
//
// The first update() only records a baseline for the threads it sees (their
// past CPU time is not this interval's). A thread first seen in a later
// update was born during the interval: all its CPU time counts. Threads absent
// from an update are forgotten.
class ThreadCpuTracker {
 public:
  struct Interval {
    std::vector<ThreadCpu> threads;     // threads present now, in input order
    std::map<int, uint64_t> node_ticks; // CPU time by node (unknown node: -1)
    uint64_t total_ticks = 0;
  };
  // `tasks`: (tgid, stat) of every live thread of the tree.
  Interval update(const std::vector<std::pair<pid_t, TaskStat>>& tasks, const Topology& topo);
  // Reads the threads of each process under proc_root, then update().
  Interval update_from_proc(const std::vector<pid_t>& tgids, const Topology& topo,
                            const std::string& proc_root = "/proc");
  size_t tracked() const { return prev_.size(); }
  // Thread `from` goes on as `to` (a non-leader exec: AffinityKeeper::renumber),
  // its CPU time counted on from what it had; what `to` had is forgotten.
  void renumber(pid_t from, pid_t to);

 private:
  bool primed_ = false;
  std::unordered_map<pid_t, uint64_t> prev_;  // tid -> cumulative ticks
};

}  // namespace mb
