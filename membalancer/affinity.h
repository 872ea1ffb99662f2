// Thread CPU affinity: a CPU set of any size, the sched_{get,set}affinity
// calls behind an injectable interface, and AffinityKeeper, which changes
// affinities and puts every one it changed back when membalancer stops.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "membalancer/topology.h"

namespace mb {

// A set of CPU numbers (sorted, unique). No upper bound: machines with more
// than 1024 CPUs (glibc's cpu_set_t) are handled by the real calls below.
class CpuSet {
 public:
  CpuSet() = default;
  explicit CpuSet(std::vector<int> cpus);  // any order, duplicates allowed; negatives dropped

  void add(int cpu);
  bool has(int cpu) const;
  bool empty() const { return cpus_.empty(); }
  size_t count() const { return cpus_.size(); }
  const std::vector<int>& cpus() const { return cpus_; }
  bool contains_all(const CpuSet& other) const;  // other ⊆ *this
  CpuSet intersect(const CpuSet& other) const;
  std::string to_string() const;  // "0-3,8" ("" when empty)
  bool operator==(const CpuSet& o) const { return cpus_ == o.cpus_; }

 private:
  std::vector<int> cpus_;
};

// The CPUs of a node of `topo` (empty for CPU-less or unknown nodes).
CpuSet node_cpu_set(const Topology& topo, int node);

// How affinities are read and written. Both return 0 or an errno value
// (ESRCH: no such thread). Tests inject fakes; real_affinity_ops() calls the
// kernel.
//
// `started` (a thread's start, clock ticks after boot: /proc/TID/stat field
// 22; nullopt when it is gone) and `now` (the same clock) tell a thread from
// a later one with the same id and a thread created after an affinity was
// set; without them (fakes) neither is checked.
struct AffinityOps {
  std::function<int(pid_t tid, CpuSet* out)> get;
  std::function<int(pid_t tid, const CpuSet& cpus)> set;
  // Optional (empty: no tid-reuse check, no inherited affinities adopted).
  std::function<std::optional<uint64_t>(pid_t tid)> started;
  std::function<uint64_t()> now;
  // Optional: the CPUs the thread's cpuset cgroup lets it use (nullopt:
  // unknown, no limit). The kernel refuses (EINVAL) an affinity outside them.
  std::function<std::optional<CpuSet>(pid_t tid)> cpuset;
};

// The effective CPUs of a thread's cpuset: cgroup v1's cpuset hierarchy
// (<cgroup_root>/cpuset/PATH/cpuset.effective_cpus) when the thread has one,
// else cgroup v2's cpuset.cpus.effective of its cgroup or the nearest
// ancestor that has the file. nullopt when none can be read.
std::optional<CpuSet> read_cpuset_cpus(pid_t tid, const std::string& proc_root = "/proc",
                                       const std::string& cgroup_root = "/sys/fs/cgroup");

// Number of possible CPUs: 1 + the highest CPU in
// <sysfs_root>/devices/system/cpu/possible; 0 when unreadable.
int possible_cpu_count(const std::string& sysfs_root = "/sys");

// sched_getaffinity/sched_setaffinity with CPU_ALLOC'd masks sized for
// `possible_cpus` (0: possible_cpu_count(), at least 1024 bits); get retries
// with a doubled mask while the kernel answers EINVAL (mask too small).
AffinityOps real_affinity_ops(int possible_cpus = 0);

// Remembers the original affinity of every thread it changes and restores
// them on restore_all() (and, for whatever is left, in its destructor, so an
// exception unwinding past the owner still restores). The owner calls
// restore_all() when membalancer stops: SIGINT/SIGTERM, --duration over, or a
// fatal error.
class AffinityKeeper {
 public:
  explicit AffinityKeeper(AffinityOps ops = real_affinity_ops());
  ~AffinityKeeper();
  AffinityKeeper(const AffinityKeeper&) = delete;
  AffinityKeeper& operator=(const AffinityKeeper&) = delete;

  // Sets tid's affinity to `cpus`. The first time for a tid its current
  // affinity is read and remembered as its original; later sets keep that
  // first original (unless the id now belongs to a later thread: then that
  // thread's affinity is its original). Returns 0 or the errno of the failing call. On any failure
  // the thread's affinity is unchanged, and a tid remembered only for this call
  // is not kept; on ESRCH (thread gone) the tid is forgotten altogether.
  int set(pid_t tid, const CpuSet& cpus);

  // The thread exited: drop what is remembered (nothing is restored).
  void forget(pid_t tid);

  // Thread `from` now has the id `to` (a thread other than the leader
  // exec'd: it takes the leader's id, and the leader's start time, and keeps
  // its affinity): what is remembered for `from` is for `to` now, restored
  // there; what was remembered for `to` (the leader, gone) is dropped.
  void renumber(pid_t from, pid_t to);

  // Drops every remembered id that now belongs to another thread (its start
  // time differs, or it is gone): the thread it was remembered for exited,
  // and a later one with the same id is not ours to restore, nor moved by us.
  // Needs `started` (without it nothing is dropped). Ids in `waiting` are
  // kept while gone (their thread may have taken another id: renumber()).
  // Returns the ids dropped.
  std::vector<pid_t> forget_reused(const std::set<pid_t>& waiting = {});

  // Drops every remembered thread whose affinity is no longer the one set
  // here: someone else set it since (the thread itself, its user with
  // taskset, a change of its cpuset). That affinity is the thread's own now:
  // it is neither set back at the stop nor taken for ours. Threads gone are
  // left to forget/forget_reused, and ids in `not_yet` are kept for now.
  // Returns the ids dropped.
  std::vector<pid_t> forget_overridden(const std::set<pid_t>& not_yet = {});

  // A thread inherits its creator's affinity (clone, fork), so the threads
  // and processes a moved thread starts carry the affinity set here. Of the
  // live threads `tids`, takes on each one not remembered that started after
  // an affinity was set and has that affinity now, with the original of the
  // thread it was set on (the first such thread when several were given the
  // same CPUs). Needs `started` and `now`. Returns the threads taken on.
  std::vector<pid_t> adopt_inherited(const std::vector<pid_t>& tids);

  struct RestoreCounts {
    size_t restored = 0;  // original affinity set again
    size_t gone = 0;      // the thread had exited (not an error), its id perhaps reused
    size_t overridden = 0;  // someone else had set its affinity since: left as it is (forget_overridden)
    size_t failed = 0;    // any other error (first one in first_error)
    int first_error = 0;
  };
  // Restores every remembered thread whose affinity is still the one set
  // here, then forgets them all.
  RestoreCounts restore_all();

  // Is the thread pinned by its user? Defined as: its current affinity A,
  // limited to `usable` when given (e.g. the CPUs its cpuset cgroup allows),
  // does not include every CPU of N, where N is the node of `current_cpu` (the
  // CPU the scheduler last ran it on) and N's CPUs are also limited to
  // `usable`. So a thread allowed everywhere, or on a whole node or more, is
  // not pinned; one restricted to some CPUs of its node (taskset -c 3) is.
  // A thread this keeper has changed is never user-pinned (its original was
  // judged when it was first moved). nullopt when the affinity cannot be read
  // (thread gone) or current_cpu has no node.
  std::optional<bool> user_pinned(pid_t tid, int current_cpu, const Topology& topo,
                                  const CpuSet* usable = nullptr) const;

  // Current affinity through the ops: 0 or errno.
  int get(pid_t tid, CpuSet* out) const { return ops_.get(tid, out); }
  // The thread's cpuset CPUs through the ops (nullopt: unknown, no limit).
  std::optional<CpuSet> cpuset(pid_t tid) const { return ops_.cpuset ? ops_.cpuset(tid) : std::nullopt; }
  bool remembers(pid_t tid) const { return originals_.count(tid) != 0; }
  std::optional<CpuSet> original(pid_t tid) const;
  size_t size() const { return originals_.size(); }

 private:
  struct Held {
    CpuSet original;                     // restored at the end
    CpuSet applied;                      // what was set last, as the kernel keeps it (read back)
    uint64_t since = 0;                  // when (AffinityOps::now), 0 without it
    std::optional<uint64_t> started;     // the thread's start, to know it again
  };
  // Is `tid` still the thread `h` was remembered for? (true without `started`)
  bool same_thread(pid_t tid, const Held& h) const;

  AffinityOps ops_;
  std::map<pid_t, Held> originals_;
};

// The rule behind AffinityKeeper::user_pinned, on plain sets: true when
// `affinity` ∩ usable does not include all of `node_cpus` ∩ usable (`usable`
// null: no limit). A node without CPUs (empty set) pins nothing.
bool narrower_than_node(const CpuSet& affinity, const CpuSet& node_cpus, const CpuSet* usable = nullptr);

}  // namespace mb
