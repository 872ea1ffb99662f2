// Thread balancing decisions, as pure functions over plain structs:
//   - plan_thread_moves: which threads to move to which node this interval
//     (candidates, load-gated targets, throttle, cool-down, pinned threads),
//     with one explained line per decision for --verbose;
//   - autotune_decide: per process, move threads, move memory, or neither;
//   - node_shares: the per-node CPU time / memory access pattern report.
// Nothing here reads the system or changes it: the caller gathers inputs
// (sampler task stats, cpu_load.h, AffinityKeeper::user_pinned) and applies
// moves (AffinityKeeper::set, then ThreadCoolDown::moved).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "membalancer/affinity.h"
#include "membalancer/cpu_load.h"
#include "membalancer/topology.h"

namespace mb {

// ---- inputs --------------------------------------------------------------------

// One thread over the last interval (or window).
struct ThreadInfo {
  pid_t tid = 0;
  pid_t tgid = 0;
  std::map<int, uint64_t> mem_accesses;  // memory node -> accesses
  std::map<int, uint64_t> cpu_weight;    // CPU node -> accesses made there, or CPU ticks there
  int current_node = -1;                 // node of the CPU it last ran on
  CpuSet affinity;                       // its affinity now (shown in reasons only)
  // The CPUs it was allowed before membalancer changed anything (its original
  // affinity); empty: unknown, no limit. A move sets the target node's CPUs
  // within these when any of them is there, so a thread is never widened to
  // CPUs of a node it was allowed only part of.
  CpuSet allowed;
  // The CPUs its cpuset cgroup lets it use (empty: unknown, no limit): a move
  // sets only these, and a node without any of them is no target.
  CpuSet cpuset;
  bool pinned = false;                   // AffinityKeeper::user_pinned
  bool moved_before = false;             // this balancer has moved it (AffinityKeeper::remembers)
  bool gone = false;                     // exited since it was sampled (its affinity could not be read)
  bool per_thread = true;                // false: mem_accesses estimated from the process (fill_from_process)
};

struct NodeState {
  int id = -1;
  CpuSet cpus;                  // empty: memory-only node, never a target
  double load = 0.0;            // busy fraction 0..1 (NodeLoad::busy_fraction)
  int idle_cpus = 0;            // NodeLoad::idle_cpus
  std::map<int, int> distance;  // node id -> SLIT distance (missing: 10 to itself, 20 otherwise)
};

// Node states from the topology and this interval's loads (nodes without a
// load entry count as fully idle).
std::vector<NodeState> node_states(const Topology& topo, const std::map<int, NodeLoad>& loads);

struct ThreadPolicyConfig {
  double majority = 0.5;          // candidate: one other node gets > this share of its accesses
  uint64_t min_accesses = 32;     // threads with fewer accesses in the window are not judged
  double load_max = 0.8;          // a target node's busy fraction must be below this ...
  int min_idle_cpus = 1;          // ... and it must have at least this many idle CPUs
  double max_move_share = 0.25;   // at most ceil(share x eligible candidates) moves per interval
  uint32_t cooldown_intervals = 10;  // a moved thread is not moved again for this many intervals
  bool override_pinned = false;   // move user-pinned threads too
  // Hysteresis: a thread moved before moves again only when the node holding
  // most of its accesses has at least this share of them more than the node
  // it runs on (55/45), so memory split about evenly does not bounce it
  // between nodes every cool-down.
  double move_again_margin = 0.1;
};

// tid -> interval it was last moved (or its move refused). A thread moved in interval m is cooling
// down in intervals m .. m + cooldown - 1 (cooldown 0: never).
class ThreadCoolDown {
 public:
  void moved(pid_t tid, uint32_t interval) { last_[tid] = interval; }
  bool cooling(pid_t tid, uint32_t now, uint32_t cooldown) const;
  void forget(pid_t tid) { last_.erase(tid); }   // thread exited
  void renumber(pid_t from, pid_t to);           // thread `from` goes on as `to` (AffinityKeeper::renumber)
  void expire(uint32_t now, uint32_t cooldown);  // drops entries no longer cooling
  size_t size() const { return last_.size(); }

 private:
  std::unordered_map<pid_t, uint32_t> last_;
};

// For samplers without per-thread memory nodes: each thread with empty
// mem_accesses gets its process's accesses by page location (process_mem:
// tgid -> memory node -> accesses), scaled by the thread's share of the
// process's total cpu_weight among `threads` (equal shares when none has any),
// and per_thread = false. Threads with their own mem_accesses are unchanged.
void fill_from_process(std::vector<ThreadInfo>& threads,
                       const std::map<pid_t, std::map<int, uint64_t>>& process_mem);

// ---- decisions -------------------------------------------------------------------

// A node qualifies as a target when it has CPUs, load < load_max and
// idle_cpus >= min_idle_cpus.
bool node_qualifies(const NodeState& node, const ThreadPolicyConfig& cfg);

// Where a thread whose memory is on `preferred` should run: `preferred` if it
// qualifies, else the qualifying node nearest to it (distance from
// `preferred`; ties: lower load, then lower id). nullopt when none qualifies.
std::optional<int> choose_target(int preferred, const std::vector<NodeState>& nodes, const ThreadPolicyConfig& cfg);

// Gain of moving a thread from node `from` to `to`: the drop in its
// distance-weighted accesses, sum over n of accesses[n] * (d(from,n) - d(to,n)) / 10.
// With local 10 and remote 20 it is (accesses on `to`) - (accesses on `from`).
double move_gain(const std::map<int, uint64_t>& mem_accesses, int from, int to, const std::vector<NodeState>& nodes);

enum class SkipReason { kPinned, kCoolDown, kNoTarget, kNoGain, kThrottled, kGone, kCpuset };
const char* skip_reason_name(SkipReason r);  // "pinned", "cool-down", ...

struct ThreadMove {
  pid_t tid = 0;
  pid_t tgid = 0;
  int from = -1;       // node it runs on
  int to = -1;         // target node
  int preferred = -1;  // node holding most of its accesses
  double share = 0.0;  // that node's share of its accesses
  double gain = 0.0;   // move_gain(from, to)
  CpuSet cpus;         // the affinity to set: the target node's CPUs, within `allowed` when they meet
  std::string reason;
};

struct ThreadSkip {
  pid_t tid = 0;
  pid_t tgid = 0;
  int from = -1;
  int preferred = -1;
  SkipReason why = SkipReason::kNoTarget;
  std::string reason;
};

struct ThreadPlan {
  std::vector<ThreadMove> moves;    // largest gain first
  std::vector<ThreadSkip> skipped;  // candidates not moved
  size_t judged = 0;      // threads with >= min_accesses and a known node
  size_t candidates = 0;  // judged threads whose accesses are mostly on another node
  size_t eligible = 0;    // candidates neither pinned nor cooling down
  size_t budget = 0;      // moves allowed this interval
};

// The rule, per thread:
//   1. Not judged when it has < min_accesses accesses, or no node it runs on.
//      It runs on the node with the most cpu_weight (current_node when it has
//      none).
//   2. Candidate when the node P with the most of its accesses is not that node
//      and holds > majority of them.
//   3. A candidate is skipped when gone, pinned (unless override_pinned) or
//      cooling down. The others (eligible) are ordered by gain toward their initial
//      target, largest first (ties: lower tid), and get at most
//      budget = ceil(max_move_share x eligible) moves.
//   4. In that order, each gets choose_target(P) against node states that
//      already count the moves planned before it (each planned move takes one
//      idle CPU of its target and adds 1/cpus to its load). No qualifying node,
//      or a target equal to its own node: skipped (no target). A target
//      none of whose CPUs its cpuset allows: skipped (cpuset). Gain <= 0, or
//      a thread moved before whose P holds less than move_again_margin of its
//      accesses more than its own node: skipped (no gain). Budget used up:
//      skipped (throttled).
//   5. A move sets the target's CPUs that the thread's `allowed` holds; all of
//      the target's CPUs when `allowed` is empty or holds none of them. Either
//      way, only those its `cpuset` allows.
// The plan does not touch `cool`: call cool.moved() for each move applied.
ThreadPlan plan_thread_moves(const std::vector<ThreadInfo>& threads, const std::vector<NodeState>& nodes,
                             const ThreadPolicyConfig& cfg, const ThreadCoolDown& cool, uint32_t interval);

// One line for --verbose: "move tid 42 (tgid 40) node 0 -> 1: ..." /
// "skip tid 43 (tgid 40) node 0: pinned: ...".
std::string describe(const ThreadMove& m);
std::string describe(const ThreadSkip& s);

// ---- report ----------------------------------------------------------------------

// One row of the "NUMA PROCESS CPU AND MEMORY ACCESS PATTERN" table.
struct NodeShare {
  int node = -1;  // -1: CPU time whose node is unknown
  uint64_t cpu_ticks = 0;
  uint64_t mem_accesses = 0;
  double cpu_share = 0.0;  // of the tree's CPU time
  double mem_share = 0.0;  // of the tree's memory accesses
};

// Rows for every node present in either map, in node order.
std::vector<NodeShare> node_shares(const std::map<int, uint64_t>& cpu_ticks_by_node,
                                   const std::map<int, uint64_t>& mem_accesses_by_node);
// The table as text, ending with "threads moved: N".
std::string format_node_shares(const std::vector<NodeShare>& rows, uint64_t threads_moved);

// ---- autotune ----------------------------------------------------------------------

enum class TuneChoice { kNone, kThreads, kMemory };
const char* tune_choice_name(TuneChoice c);  // "none", "threads", "memory"

struct ThreadDistribution {
  pid_t tid = 0;
  std::map<int, uint64_t> cpu;  // CPU node -> accesses or CPU ticks
  std::map<int, uint64_t> mem;  // memory node -> accesses (empty: sampler lacks them)
  // Gone before the decision: its accesses and CPU time count, but it needs
  // no CPU on the node the threads move to.
  bool exited = false;
};

struct ProcessProfile {
  pid_t tgid = 0;
  std::vector<ThreadDistribution> threads;
  std::map<int, uint64_t> page_accesses;  // accesses by the node of the page (page table)
};

struct AutotuneConfig {
  uint64_t min_accesses = 1000;   // fewer: undecided
  double local_ok = 0.8;          // >= this share of local accesses: nothing to do
  double mem_concentrated = 0.7;  // threads: >= this share of memory on one node ...
  double threads_elsewhere = 0.5; // ... and < this share of CPU on that node
  // A thread is active when it used at least this share of the busiest
  // thread's CPU time: a main thread that only wakes now and then does not
  // need a CPU of its own on the target node.
  double active_share = 0.2;
  // False on a machine with one node of memory: there is nowhere to move
  // memory to, so a "memory" outcome becomes "none" (its reason says so).
  bool memory_movable = true;
};

struct TuneDecision {
  pid_t tgid = 0;
  TuneChoice choice = TuneChoice::kNone;
  std::string why;
  uint64_t accesses = 0;
  int mem_node = -1;          // node with most memory accesses
  double mem_share = 0.0;
  int cpu_node = -1;          // node with most CPU
  double cpu_share = 0.0;
  double cpu_on_mem_node = 0.0;
  double local_share = 0.0;   // accesses that hit the node their thread runs on
  size_t active_threads = 0;  // threads with CPU time >= active_share of the busiest
};

// The rule, in order:
//   memory distribution = sum of the threads' mem; when that is empty (sampler
//   without per-thread nodes), page_accesses. CPU distribution = sum of cpu.
//   1. accesses < min_accesses, or no CPU weight: kNone (too few samples).
//   2. local share >= local_ok: kNone (already local). Local share = per thread,
//      accesses to the node it ran on most, over all accesses; from the
//      process distributions (sum over n of cpu%(n) x mem%(n)) when threads
//      have no mem of their own.
//   3. memory >= mem_concentrated on node M, and < threads_elsewhere of the CPU
//      on M: kThreads when M has CPUs and at least as many as active threads
//      (CPU time >= active_share of the busiest thread's; exited threads
//      are neither active nor the busiest);
//      otherwise kMemory (threads cannot all go there).
//   4. Otherwise kMemory: threads spread or memory spread, and misplaced.
//   Without memory_movable, a kMemory outcome is kNone.
// node_cpus: node -> number of CPUs (missing or 0: memory-only).
TuneDecision autotune_decide(const ProcessProfile& p, const std::map<int, int>& node_cpus,
                             const AutotuneConfig& cfg);

// Accumulates profiles over a number of intervals, then decides per process.
class AutotuneObserver {
 public:
  explicit AutotuneObserver(uint32_t intervals) : intervals_(intervals) {}
  // Adds one interval's data of a thread (deltas, not cumulative counts).
  // Every live thread is added each interval, idle or not: a thread missing
  // from the last interval before a decision has exited.
  void add_thread(pid_t tgid, pid_t tid, const std::map<int, uint64_t>& cpu, const std::map<int, uint64_t>& mem);
  void add_page_accesses(pid_t tgid, const std::map<int, uint64_t>& by_node);
  void forget_process(pid_t tgid);
  void end_interval() { ++seen_; }
  bool ready() const { return seen_ >= intervals_; }
  uint32_t intervals_seen() const { return seen_; }
  size_t threads() const;  // threads with data, over all processes
  // One decision per process seen, in tgid order.
  std::vector<TuneDecision> decide(const std::map<int, int>& node_cpus, const AutotuneConfig& cfg) const;

 private:
  uint32_t intervals_;
  uint32_t seen_ = 0;
  std::map<pid_t, std::map<pid_t, ThreadDistribution>> threads_;
  std::map<pid_t, uint32_t> last_added_;  // tid -> interval of its latest data (live: the last one)
  std::map<pid_t, std::map<int, uint64_t>> pages_;
};

}  // namespace mb
