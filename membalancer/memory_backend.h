// The `numa` and `tier` modes on the live machine: each interval reads the
// nodes' free memory and the tracked processes' resident pages, runs the
// policy, and (with --migrate) hands the plan to the mover.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "membalancer/backend.h"
#include "membalancer/cpu_load.h"
#include "membalancer/full_nodes.h"
#include "membalancer/mover.h"
#include "membalancer/numa_policy.h"
#include "membalancer/options.h"
#include "membalancer/placement_model.h"
#include "membalancer/rate_limiter.h"
#include "membalancer/resident.h"
#include "membalancer/tier_policy.h"
#include "membalancer/topology.h"

namespace mb {

// Throws SystemError (status 1) unless the machine has two nodes with
// memory: numa mode has nowhere to move pages otherwise. Checked before
// anything is set up, and by MemoryBackend.
void require_numa_machine(const Topology& topo);

class MemoryBackend : public Backend {
 public:
  // opts.command is "numa" or "tier". Throws UsageError/SystemError (tiers).
  // exec_count: a process's exec count (BpfCollector::exec_counter), with
  // which the mover drops an exec'd process's old moves before the loop
  // sees the exec (MoverConfig::exec_count). Optional.
  MemoryBackend(const Options& opts, Topology& topo,
                ExecCountFn exec_count = {});
  ~MemoryBackend() override;

  void interval(Pipeline& pipeline, const std::vector<pid_t>& tracked, double elapsed_s,
                IntervalReport& report) override;
  void hold() override;
  void stop(Summary& summary) override;
  // Cancels the process's moves not started, and plans none for it in the
  // next interval(): its old image's pages leave the table, and its new
  // image was not sampled yet (demotion would take it for the coldest).
  void process_execed(pid_t tgid, pid_t tid) override;

  // numa: only these processes' memory is read and planned (autotune gives
  // the processes it chose memory migration for). Unset: every tracked one.
  void restrict_to(std::set<uint32_t> tgids) { only_ = std::move(tgids); }

  // A replay: plans against a model of the recorded memory instead of the
  // machine (and, with --dry-run, applies them to it). tier: the fast nodes
  // are tier 0 (resized to fast_bytes when nonzero), pages that find no room
  // start in the last tier; numa: every node keeps its recorded size.
  // Returns the model, owned by the backend, for the replay to place pages.
  PlacementModel* use_model(uint64_t fast_bytes, PlacementModel::Start start);
  const PlacementModel* model() const { return model_.get(); }

 private:
  MemoryState read_memory(const std::vector<pid_t>& tracked);
  void wait_on_full_nodes(MemoryState& mem, uint32_t now);
  void observe_allocations(const std::map<int, NodeFlow>& flows_before, const std::map<int, NodeFlow>& flows_after,
                           const Arrivals& arrivals, MemoryState& mem);
  MigrationReport base_report(double elapsed_s) const;
  std::vector<TierLine> tier_lines(const IntervalReport& report, const std::vector<float>& thresholds);

  Options opts_;
  Topology& topo_;
  IntervalBudget budget_;  // the plans' bytes per interval (--rate-limit x --interval)
  std::optional<TierPolicy> tier_;
  AllocationReserve reserve_;  // tier: what the tracked processes allocate
  // Pages moved per node (the mover's or the model's flows) as of just
  // before and just after the last interval read the tracked pages.
  std::map<int, NodeFlow> flows_before_read_, flows_after_read_;
  std::map<int, NodeFlow> model_flows_;  // a replay's model: pages moved per node so far
  std::optional<NumaPolicy> numa_;
  CoolDown cool_;
  // Pages the mover could not move (key, node it stayed on or -errno), from
  // its workers; taken in at the next interval. Declared before the mover,
  // which calls into them, so that they outlive it.
  std::mutex failed_mu_;
  std::vector<std::pair<uint64_t, int>> failed_;
  std::vector<std::pair<uint64_t, int>> redirected_;  // (key, node): moved to a full target's stand-in
  std::unique_ptr<Mover> mover_;
  FullNodeWait full_wait_;
  ResidentScanner scanner_;
  ThreadCpuTracker cpu_tracker_;
  std::map<uint32_t, std::map<int, double>> process_cpu_;  // numa: CPU time share by node
  std::map<int, uint64_t> resident_by_node_;               // last interval's numa_maps sums
  std::map<int, uint64_t> moved_into_node_promote_, moved_into_node_demote_;  // live --dry-run: planned
  std::optional<MigrationReport> last_;
  std::optional<std::set<uint32_t>> only_;
  std::unordered_set<uint32_t> execed_;  // exec'd since the last interval(): nothing planned on them
  std::unique_ptr<PlacementModel> model_;
  uint64_t dry_applied_ = 0, dry_refused_ = 0;
  bool held_ = false;
};

}  // namespace mb
