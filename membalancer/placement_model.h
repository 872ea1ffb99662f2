// A model of where a recorded workload's pages are: each page on one node,
// each node holding at most its capacity. Replay (`--sampler replay:FILE
// --dry-run`) and `profiler whatif` plan against it instead of the live
// machine, and apply their plans to it as if the mover had done them.
//
// Only the recording's pages are modelled: a node's free memory is its
// capacity minus the modelled pages on it (other processes do not exist).
// Counts are in base pages; a huge page is one entry of 512 base pages.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "membalancer/flat_map.h"
#include "membalancer/policy.h"

namespace mb {

class PlacementModel {
 public:
  // Where a page seen for the first time starts.
  enum class Start {
    kRecorded,  // the node the recording found it on, if that node has room
    kSlow,      // the slow node
  };
  // capacity: node -> base pages it can hold; slow_node: where pages go when
  // they start slow, when their recorded node is unknown or full (its
  // capacity is not enforced for such placements: memory never runs out).
  PlacementModel(std::map<int, uint64_t> capacity_pages, int slow_node, Start start);

  // The node of a page, placing it on first sight (recorded_node < 0: unknown).
  int place(uint64_t key, int recorded_node, bool huge);
  // The node of a page, or -1 when it was never placed.
  int node_of(uint64_t key) const {
    const Placed* p = pages_.find(key);
    return p ? p->node : -1;
  }
  // Whether a placed page is a 2 MiB page (false when never placed).
  bool huge(uint64_t key) const {
    const Placed* p = pages_.find(key);
    return p && p->huge;
  }
  // Moves a placed page; false (and nothing changes) when the page is unknown
  // or `to` lacks room for it.
  bool move(uint64_t key, int to);

  uint64_t used_pages(int node) const;
  uint64_t capacity_pages(int node) const;
  const std::map<int, uint64_t>& capacities() const { return capacity_; }
  uint64_t pages() const { return pages_.size(); }

  // The state the policies plan against: per node total = capacity, free =
  // capacity - modelled pages, tree_pages = modelled pages; resident pages
  // enumerated in key order of no importance (every page on the node).
  MemoryState state() const;

 private:
  struct Placed {
    int32_t node = -1;
    bool huge = false;
  };
  std::map<int, uint64_t> capacity_;
  std::map<int, uint64_t> used_;
  int slow_;
  Start start_;
  FlatMap<uint64_t, Placed, U64KeyOps> pages_;  // one probe per sample, 16 bytes a page
};

// Applies a plan to the model in the mover's order (execution_order); returns the pages (base pages)
// that could not move for lack of room. flows, when given, adds up the pages
// that moved into and out of each node, as the mover's stats do: pages whose
// node changed, counted at the model's size of each (a move to where the page
// already is moves nothing).
uint64_t apply_plan(const Plan& plan, PlacementModel& model, std::map<int, NodeFlow>* flows = nullptr);

}  // namespace mb
