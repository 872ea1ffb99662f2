// A model of where a recorded workload's pages are: each page on one node,
// each node holding at most its capacity. Replay (`--sampler replay:FILE
// --dry-run`) and `profiler whatif` plan against it instead of the live
// machine, and apply their plans to it as if the mover had done them.
//
// Only the recording's pages are modelled: a node's free memory is its
// capacity minus the modelled pages on it (other processes do not exist).
// Counts are in base pages; a huge page is one entry of 512 base pages,
// keyed by its first base page (2 MiB-aligned, as the replay reader keys a
// huge sample).
//
// A page's size follows the samples, as the kernel changes it:
// - Collapse (khugepaged): a huge sample at an aligned key whose 2 MiB holds
//   base-page entries merges them into one huge entry. khugepaged allocates
//   the new THP on the node holding most of the base pages it scanned
//   (ties: here the lowest node id) and copies them there; the model does
//   the same, or puts it on the slow node when that node lacks room for
//   it (the trace says the collapse happened; the slow node never runs out).
// - Split (partial munmap/mprotect, a failed migration, reclaim): a base
//   sample inside a huge entry splits it into its 512 base pages, all on
//   the huge page's node (a split moves nothing).
// Used pages stay the sum of the entries' sizes on each node across both.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

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

  // A size change place() made: base pages collapsed into the huge page at
  // `key`, or the huge page at `key` split into 512 base pages; `node`:
  // where the huge page (collapse) or its base pages (split) are now.
  struct Resize {
    uint64_t key;
    int node;
    bool collapsed;
  };

  // The node of a page, placing it on first sight (recorded_node < 0:
  // unknown) and following a change of its size (above).
  int place(uint64_t key, int recorded_node, bool huge);
  // The key of the entry holding a page: `key`, or the key of the huge page
  // holding it; `key` when no entry holds it.
  uint64_t holder(uint64_t key) const;
  // With keep_resizes(true), place() logs its size changes, in order, for
  // take_resizes() (a whatif rule keeps its own state per page and follows
  // them); otherwise none are kept.
  void keep_resizes(bool keep) { keep_resizes_ = keep; }
  const std::vector<Resize>& resizes() const { return resizes_; }
  std::vector<Resize> take_resizes() { return std::exchange(resizes_, {}); }
  // The node of a page's own entry, or -1 when it has none.
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
  int collapse(uint64_t key);
  int split(uint64_t key, Placed& huge_page);
  void note(const Resize& r) {
    if (keep_resizes_) resizes_.push_back(r);
  }
  std::map<int, uint64_t> capacity_;
  std::map<int, uint64_t> used_;
  int slow_;
  Start start_;
  bool keep_resizes_ = false;
  std::vector<Resize> resizes_;
  FlatMap<uint64_t, Placed, U64KeyOps> pages_;  // one probe per sample, 16 bytes a page
};

// Applies a plan to the model in the mover's order (execution_order); returns the pages (base pages)
// that could not move for lack of room. flows, when given, adds up the pages
// that moved into and out of each node, as the mover's stats do: pages whose
// node changed, counted at the model's size of each (a move to where the page
// already is moves nothing). A move is of the entry holding its address at
// that entry's size, as move_pages moves a whole THP for any address in it
// and one base page of a split one: a plan that took the page for another
// size (planned before a size change) is carried out at the current one.
uint64_t apply_plan(const Plan& plan, PlacementModel& model, std::map<int, NodeFlow>* flows = nullptr);

}  // namespace mb
