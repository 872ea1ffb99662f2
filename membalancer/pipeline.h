// The user-space half of the sample path, independent of where slots come
// from (live BPF maps, or later a replayed profile): drained slots go into the
// page table, pages without a node are resolved, exited processes leave, and
// each interval becomes an IntervalReport.
#pragma once

#include <sys/types.h>

#include <array>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/node_resolver.h"
#include "membalancer/page_table.h"
#include "membalancer/report.h"

namespace mb {

struct PipelineConfig {
  size_t max_pages = 1 << 20;
  float decay = 0.5f;
  uint64_t region_bytes = 2 << 20;
  int top = 5;
  uint32_t max_ranges = 256;
  uint32_t node_recheck_intervals = 30;  // ask a page's node again after this many
};

class Pipeline {
 public:
  using NameFn = std::function<std::string(pid_t)>;
  Pipeline(const PipelineConfig& cfg, NodeResolver::QueryFn query = {}, NameFn names = {});

  void begin_interval(uint32_t interval);
  void add_slot(const mb_page_slot& slot);
  void process_forked(pid_t tgid);
  void process_exited(pid_t tgid);
  // Cumulative per-thread statistics (BpfCollector::drain_tasks): this
  // interval's accesses by CPU node are the growth since the last call.
  void add_tasks(const std::vector<TaskSnapshot>& tasks);
  // Resolves nodes, removes exited processes, builds the report.
  IntervalReport finish_interval(const std::array<uint64_t, MB_NR_COUNTERS>& counters_delta,
                                 uint64_t tracked_processes);
  Summary summary() const;

  PageTable& table() { return table_; }
  const NodeResolver& resolver() const { return resolver_; }

 private:
  const std::string& name_of(pid_t pid);
  void add_page(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES], uint16_t slot_node);

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
  std::unordered_map<int, uint64_t> cpu_node_acc_;
  uint64_t threads_ = 0;
  // Per thread: last cumulative accesses by CPU node (sparse: node, count).
  std::unordered_map<uint32_t, std::vector<std::pair<int, uint32_t>>> task_prev_;
  uint64_t pages_this_interval_ = 0;
  uint64_t accesses_this_interval_ = 0;

  // Whole run.
  std::unordered_map<int, NodeAccesses> node_total_;
  std::array<uint64_t, MB_NR_COUNTERS> counters_total_{};
  std::unordered_set<uint32_t> seen_;
  uint64_t exited_total_ = 0;
  std::unordered_map<pid_t, std::string> names_cache_;
};

}  // namespace mb
