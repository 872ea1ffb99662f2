// The user-space half of the sample path, independent of where slots come
// from (live BPF maps, or later a replayed profile): drained slots go into the
// page table, pages without a node are resolved, exited processes leave, and
// each interval becomes an IntervalReport.
#pragma once

#include <sys/types.h>

#include <array>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/node_resolver.h"
#include "membalancer/page_table.h"
#include "membalancer/report.h"

namespace mb {

// One thread's growth in an interval, from its cumulative BPF task counters.
struct ThreadGrowth {
  uint32_t tid = 0;
  uint32_t tgid = 0;
  std::map<int, uint64_t> cpu_nodes;  // accesses made on CPUs of each node
  std::map<int, uint64_t> mem_nodes;  // accesses to memory of each node (samplers that know physical addresses)
  bool exited = false;                // read for the last time
};

struct PipelineConfig {
  size_t max_pages = 1 << 20;
  float decay = 0.5f;
  uint64_t region_bytes = 2 << 20;
  int top = 5;
  uint32_t max_ranges = 256;
  uint32_t node_recheck_intervals = 30;  // ask a page's node again after this many
  // What huge samples count, by the sampler (collapse_heat_for): how a
  // collapse makes the huge page's heat and how a huge page ranks.
  CollapseHeat collapse_heat = CollapseHeat::kSum;
};

// What a collapse makes of the base pages' heat, by what the sampler's huge
// samples count: abit and page faults give one per 2 MiB a scan (kMax), the
// others an access each (kSum).
CollapseHeat collapse_heat_for(mb_sampler_kind kind);

class Pipeline {
 public:
  using NameFn = std::function<std::string(pid_t)>;
  Pipeline(const PipelineConfig& cfg, NodeResolver::QueryFn query = {}, NameFn names = {});

  void begin_interval(uint32_t interval);
  void add_slot(const mb_page_slot& slot);
  void process_forked(pid_t tgid);
  void process_exited(pid_t tgid);
  // The process exec'd: a new program, whose name is read now. The pages
  // in the table are the old image's, gone with it: they leave at the end
  // of this interval (after it is reported), with the ones drained in it —
  // the samples before the exec are all in by then, and the new program's
  // pages among them come back when sampled again — so none of the old
  // image's addresses is planned on or reported afterwards.
  void process_execed(pid_t tgid);
  // The same, for an exec found without its event (lost: the ring buffer
  // was full), counted in execs_without_event.
  void process_exec_found(pid_t tgid);
  // The source's tracked set, read after this interval's drain. A process
  // seen (forked, or with pages) that was already untracked at the last
  // call, and whose exit event has not come since, lost its exit event (the
  // event ring buffer was full): it exits now, counted in
  // exits_without_event, and leaves the table, the names and the seen set.
  // (An exit between the drain and the read sends its event, and its last
  // samples, in time for the next interval: hence the interval of grace.)
  void reconcile_tracked(const std::vector<pid_t>& tracked);
  // Cumulative per-thread statistics (BpfCollector::drain_tasks): this
  // interval's accesses by CPU node are the growth since the last call.
  void add_tasks(const std::vector<TaskSnapshot>& tasks);
  // Resolves nodes, removes exited processes, builds the report.
  IntervalReport finish_interval(const std::array<uint64_t, MB_NR_COUNTERS>& counters_delta,
                                 uint64_t tracked_processes);
  Summary summary() const;

  // This interval's per-thread growth (add_tasks), threads without growth
  // included.
  const std::vector<ThreadGrowth>& thread_growth() const { return growth_; }
  // This interval's accesses per process by the node of the page (-1:
  // unknown), complete after finish_interval.
  const std::map<uint32_t, std::map<int, uint64_t>>& process_node_accesses() const { return process_nodes_; }

  PageTable& table() { return table_; }
  const NodeResolver& resolver() const { return resolver_; }

 private:
  const std::string& name_of(pid_t pid);
  void add_page(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES], uint16_t slot_node, bool huge);

  PipelineConfig cfg_;
  PageTable table_;
  NodeResolver resolver_;
  NameFn names_;
  uint32_t interval_ = 0;

  // This interval.
  std::vector<NodeResolver::Page> unresolved_;
  std::vector<std::pair<uint64_t, uint32_t>> unresolved_keys_;  // key, accesses
  std::unordered_map<int, NodeAccesses> node_acc_;
  std::unordered_map<uint32_t, uint64_t> process_acc_;
  std::unordered_set<uint32_t> exited_;
  std::unordered_set<uint32_t> execed_;
  std::unordered_map<int, uint64_t> cpu_node_acc_;
  uint64_t threads_ = 0;
  // Per thread: last cumulative accesses by CPU node and by memory node
  // (sparse: node, count).
  struct TaskPrev {
    std::vector<std::pair<int, uint32_t>> cpu, mem;
  };
  std::unordered_map<uint32_t, TaskPrev> task_prev_;
  std::vector<ThreadGrowth> growth_;
  std::unordered_map<uint64_t, uint64_t> proc_node_acc_;  // (tgid << 32 | node + 1) -> accesses
  std::map<uint32_t, std::map<int, uint64_t>> process_nodes_;
  uint64_t pages_this_interval_ = 0;
  uint64_t accesses_this_interval_ = 0;

  // Whole run.
  std::unordered_map<int, NodeAccesses> node_total_;
  std::array<uint64_t, MB_NR_COUNTERS> counters_total_{};
  // Processes seen and not exited yet (a set of every pid ever seen grew
  // with each process a long run saw); seen_total_ counts each once, a
  // reused pid again.
  std::unordered_set<uint32_t> seen_;
  uint64_t seen_total_ = 0;
  uint64_t exited_total_ = 0;
  uint64_t exits_without_event_ = 0;
  uint64_t execs_without_event_ = 0;
  std::unordered_set<uint32_t> gone_before_;  // untracked, no exit event, at the last reconcile_tracked
  std::unordered_map<pid_t, std::string> names_cache_;
};

}  // namespace mb
