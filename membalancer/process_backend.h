// The `process` mode (move threads to the node holding their memory) and the
// `autotune` mode (per process, move its threads or its memory), plugged into
// the sampling loop like MemoryBackend.
//
// Each interval:
//   1. ThreadSampler gathers, per live thread of the tracked processes, where
//      it ran (scheduler CPU time by node, ThreadCpuTracker) and which memory
//      nodes its accesses hit: its own, from the growth of the BPF task
//      counters, when the sampler knows physical addresses (IBS, PEBS);
//      otherwise its process's accesses this interval by page location (the
//      page table's nodes), split by the threads' CPU time (fill_from_process).
//   2. ThreadBalancer reads the node loads (CpuLoadMonitor), plans with
//      plan_thread_moves and, with --migrate, applies the moves through an
//      AffinityKeeper, which restores every changed affinity on stop() and in
//      its destructor (the error path). Threads gone are forgotten.
//   3. AutotuneBackend feeds an AutotuneObserver for --observe intervals,
//      decides per process (autotune_decide), then balances the threads of the
//      "threads" processes with a ThreadBalancer and the memory of the
//      "memory" processes with a MemoryBackend restricted to them; decides
//      again every --reevaluate intervals from the last --observe ones.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "membalancer/affinity.h"
#include "membalancer/backend.h"
#include "membalancer/cpu_load.h"
#include "membalancer/options.h"
#include "membalancer/thread_policy.h"
#include "membalancer/topology.h"

namespace mb {

class MemoryBackend;

// One interval's per-thread picture of the tracked processes.
struct ThreadSample {
  std::vector<ThreadInfo> threads;                      // live threads (affinity/pinned not filled)
  std::map<int, uint64_t> cpu_ticks_by_node;            // the tree's CPU time by node (-1: unknown)
  std::map<int, uint64_t> mem_by_node;                  // the tree's accesses by memory node
  std::map<pid_t, std::map<int, uint64_t>> process_mem;  // accesses by page location, per process
  std::map<pid_t, std::map<pid_t, std::map<int, uint64_t>>> own_mem;  // tgid -> tid -> sampler's per-thread nodes
  bool per_thread = false;  // threads' accesses are their own (the sampler knows memory nodes per thread)
  bool baseline = false;    // first interval: CPU times are only a baseline, nothing is judged
};

// The pure part of ThreadSampler: threads from the scheduler (`cpu`), the
// sampler's per-thread growth and the per-process accesses by page node
// (unknown nodes, -1, are left out). Per-thread memory nodes are used when
// any thread has some; a thread's CPU weight is then its accesses by CPU node
// (when it has any), else its CPU time on the node it ran on.
ThreadSample build_thread_sample(const std::vector<ThreadCpu>& cpu, const std::vector<ThreadGrowth>& growth,
                                 const std::map<uint32_t, std::map<int, uint64_t>>& process_node_accesses);

class ThreadSampler {
 public:
  explicit ThreadSampler(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  ThreadSample sample(const Pipeline& pipeline, const std::vector<pid_t>& tracked, const Topology& topo);
  // A non-leader exec: thread `tid` goes on as `tgid` (its CPU time too).
  void thread_execed(pid_t tgid, pid_t tid) { tracker_.renumber(tid, tgid); }

 private:
  std::string proc_root_;
  ThreadCpuTracker tracker_;
  bool primed_ = false;
};

ThreadPolicyConfig thread_policy_config(const Options& opts);

class ThreadBalancer {
 public:
  ThreadBalancer(const Topology& topo, const ThreadPolicyConfig& cfg, bool migrate, bool verbose,
                 AffinityOps ops = real_affinity_ops(), std::string proc_root = "/proc");
  // Node loads since the last call (the first one primes the monitor).
  void update_loads();
  // Plans (and with migrate applies) moves for the threads of the processes
  // `include` accepts (empty function: all), and fills `r`'s plan fields.
  void balance(const ThreadSample& sample, uint32_t interval, const std::function<bool(pid_t)>& include,
               ThreadReport& r);
  // Forgets remembered threads that are not in `sample` (exited: the second
  // sample in a row without them, as a non-leader exec's event may come an
  // interval after the thread took the leader's id) or whose id now belongs
  // to a later thread (AffinityKeeper::forget_reused), holds
  // the new threads that inherited an affinity this balancer set (so they
  // are restored too), and lets go of the threads whose affinity someone
  // else set since (AffinityKeeper::forget_overridden): the thread's own
  // choice, judged afresh (pinned, say) and not restored.
  void follow_threads(const ThreadSample& sample);
  // A thread other than the leader exec'd (tid != tgid): it goes on as tgid,
  // with the affinity it had, so what is held for it moves to tgid (and is
  // restored there); the old leader died in the exec, and what was held for
  // it is forgotten, as for a thread that exited.
  void thread_execed(pid_t tgid, pid_t tid);
  // Restores every changed affinity, inherited ones included (threads and
  // processes started since the last interval are looked up in /proc); adds
  // the counts to `r`, and sets its affinities_held to the affinities it went
  // over (= restored + gone + failed).
  void restore(ThreadReport& r);
  void totals(ThreadReport& r) const;

 private:
  const Topology& topo_;
  ThreadPolicyConfig cfg_;
  bool migrate_, verbose_;
  CpuLoadMonitor loads_;
  std::map<int, NodeLoad> last_loads_;
  AffinityKeeper keeper_;
  ThreadCoolDown cool_;
  std::set<pid_t> held_;  // threads whose affinity the keeper changed
  std::set<pid_t> vanished_;  // held threads missing from the last sample, not yet forgotten
  std::string proc_root_;
  std::set<pid_t> processes_;  // the processes of the last sample
  std::map<pid_t, pid_t> tgid_of_;  // the threads of the last sample: tid -> tgid
  uint64_t moved_ = 0, failed_ = 0;
  uint64_t exited_moved_ = 0;  // held threads that exited during the run: nothing to restore
  uint64_t overridden_ = 0;    // held threads whose affinity someone else set during the run: let go
};

class ProcessBackend : public Backend {
 public:
  ProcessBackend(const Options& opts, const Topology& topo, AffinityOps ops = real_affinity_ops(),
                 std::string proc_root = "/proc");
  void interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double elapsed_s,
                IntervalReport& report) override;
  void hold() override { held_ = true; }
  void stop(Summary& summary) override;
  void process_execed(pid_t tgid, pid_t tid) override;

 private:
  Options opts_;
  const Topology& topo_;
  bool held_ = false;
  ThreadSampler sampler_;
  ThreadBalancer balancer_;
};

// Which processes autotune balances how: the latest decisions.
struct AutotunePlan {
  std::set<pid_t> threads, memory;
};
AutotunePlan autotune_plan(const std::vector<TuneDecision>& decisions);

class AutotuneBackend : public Backend {
 public:
  // exec_count: for the memory half's mover (MemoryBackend's); optional.
  AutotuneBackend(const Options& opts, Topology& topo, AffinityOps ops = real_affinity_ops(),
                  std::string proc_root = "/proc", ExecCountFn exec_count = {});
  ~AutotuneBackend() override;
  void interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double elapsed_s,
                IntervalReport& report) override;
  void hold() override;
  void stop(Summary& summary) override;
  void process_execed(pid_t tgid, pid_t tid) override;
  // Threads the observer holds data of: the last window's (nothing is added
  // between a decision and the next window).
  size_t observed_threads() const;

 private:
  Options opts_;
  Topology& topo_;
  bool held_ = false;
  ThreadSampler sampler_;
  ThreadBalancer balancer_;
  AutotuneObserver observer_;
  AutotuneConfig tune_cfg_;
  std::map<int, int> node_cpus_;
  uint32_t decided_at_ = 0;  // interval of the latest decision (0: none yet)
  std::vector<TuneLine> decisions_;
  AutotunePlan plan_;
  ExecCountFn exec_count_;
  std::unique_ptr<MemoryBackend> memory_;
  std::set<pid_t> tracked_;  // last interval's processes
};

}  // namespace mb
