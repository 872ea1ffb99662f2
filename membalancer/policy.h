// What the memory policies (numa, tier) share: the memory state they plan
// against, the moves they plan, the cool-down that stops ping-pong, the heat
// histogram that turns a capacity into a hot threshold, and the hand-over of
// a plan to the mover.
//
// Policies are pure: they read the page table and a MemoryState and return a
// plan; they never read /proc or sysfs themselves. So the same code runs
// against the live machine and, in `profiler whatif`, against a model.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "membalancer/mover.h"
#include "membalancer/page_table.h"

namespace mb {

struct NodeMemory {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t tree_pages = 0;  // resident base pages of the tracked processes here (numa_maps)
  uint64_t kernel_high_bytes = 0;  // the kernel's high free-page watermark here (0: unknown, a model)
  // The node refused pages for want of room and waits (FullNodeWait): the
  // policies see no room on it, whatever their watermarks are.
  bool waiting = false;
  // Free base pages above the kernel's high watermark: what allocations and
  // moves can fill before kswapd reclaims the node.
  uint64_t room_pages() const {
    return (free_bytes > kernel_high_bytes ? free_bytes - kernel_high_bytes : 0) / kBasePageBytes;
  }
};

// The memory the policies plan against.
struct MemoryState {
  std::map<int, NodeMemory> nodes;
  // Enumerates the tracked processes' resident pages on `node` (sampled or
  // not) until fn returns false. May be empty: then only sampled pages are
  // candidates for demotion.
  using ResidentFn = std::function<void(int node, const std::function<bool(uint32_t tgid, uint64_t vaddr, bool huge)>& fn)>;
  ResidentFn resident;
  // tier, --watermark auto: the free memory an upper-tier node keeps for
  // the tracked processes' new allocations (AllocationReserve). Unset: the
  // configured watermarks.
  std::optional<uint64_t> allocation_reserve_bytes;
  // ... and the accesses a new page had in its first interval
  // (AllocationReserve::arrival_heat): the reserve is made only of pages
  // colder than that. Unset: of any page.
  std::optional<float> allocation_heat;
  // ... and by node, the share of the new pages that land there while it has
  // room (AllocationReserve::landing_share): a node keeps that share of the
  // reserve. Absent: all of it.
  std::map<int, float> allocation_landing;
  // Whether a process may have pages on a node (its cpuset's memory nodes:
  // move_pages refuses others whole, EACCES). Empty: every node.
  std::function<bool(uint32_t tgid, int node)> allowed;
  bool may_hold(uint32_t tgid, int node) const { return !allowed || allowed(tgid, node); }
};

struct PlannedMove {
  uint32_t tgid;
  uint64_t vaddr;
  bool huge;  // a 2 MiB page, moved whole (512 base pages)
  int from;
  int to;
  MoveDirection direction;
  MoveReason reason;
  float heat;
  uint64_t bytes() const { return huge ? kHugePageBytes : kBasePageBytes; }
};

// Pages moved recently, by page key: not moved again within `intervals`.
// Remembers whether the last move went up (a promotion), so that a policy can
// tell a reversal from a repeat.
class CoolDown {
 public:
  explicit CoolDown(uint32_t intervals) : intervals_(intervals) {}
  bool cooling(uint64_t key, uint32_t now) const {
    auto it = moved_.find(key);
    return it != moved_.end() && now - it->second.at < intervals_;
  }
  // Whether the page's last move (cooling or not) was a promotion.
  bool last_up(uint64_t key) const {
    auto it = moved_.find(key);
    return it != moved_.end() && it->second.up;
  }
  void moved(uint64_t key, uint32_t now, bool up = false) { moved_[key] = {now, up}; }
  // The move did not happen: the page may be planned again at once.
  void forget(uint64_t key) { moved_.erase(key); }
  // Forgets expired entries (call every few intervals to keep it bounded).
  void expire(uint32_t now);
  size_t size() const { return moved_.size(); }
  uint32_t intervals() const { return intervals_; }

 private:
  struct Move {
    uint32_t at;
    bool up;
  };
  uint32_t intervals_;
  std::unordered_map<uint64_t, Move> moved_;
};

// Histogram of page heat in four bins per octave (from the float's bits): the
// hot threshold for a capacity of N pages is the lowest bin whose pages and
// all hotter ones fit in N, as Memtis sizes its hot set.
class HeatHistogram {
 public:
  static constexpr int kBins = 160;
  static int bin(float heat);            // 0 for heat <= 0
  static float bin_floor(int bin);       // smallest heat of a bin (bin >= 1)
  void add(float heat, uint64_t pages = 1) { counts_[bin(heat)] += pages; }
  void add_to_bin(int bin, uint64_t pages) { counts_[bin] += pages; }
  // The smallest bin boundary h such that pages with heat >= h number at
  // most `capacity` (above every page when even the hottest bin does not fit).
  float threshold_for(uint64_t capacity) const;
  uint64_t pages_at_or_above(float heat) const;

 private:
  std::array<uint64_t, kBins> counts_{};
};

struct PlanStats {
  uint64_t candidates = 0;        // pages considered
  uint64_t planned = 0;           // pages planned to move
  uint64_t planned_bytes = 0;
  uint64_t cooling = 0;           // skipped: moved within the cool-down
  uint64_t no_room = 0;           // skipped: no node of the target keeps its floor/watermark
  uint64_t not_allowed = 0;       // skipped: the nodes with room are outside the process's cpuset
  uint64_t no_gain = 0;           // tier: promotion skipped, not decisively hotter than the page it would displace
  uint64_t over_budget = 0;       // skipped: this interval's byte budget was spent
  uint64_t unsampled_demoted = 0; // demoted pages no sample ever saw
  // tier, --watermark auto: free memory kept on the upper tiers for new
  // pages, and the part of it not kept because the pages that would leave
  // for it are hotter than new pages are on arrival.
  uint64_t reserve_bytes = 0;
  uint64_t reserve_withheld_bytes = 0;
  // ... and the room not kept where new pages are not seen to land.
  uint64_t reserve_elsewhere_bytes = 0;
  float hot_threshold = 0;        // heat a page needed to count as hot
};

struct Plan {
  std::vector<PlannedMove> moves;  // in the order they should run (demotions first)
  PlanStats stats;
};

// Calls fn on the items of v in the order of `before` (hottest first, say)
// until fn returns false, sorting only as far as it gets: chunks of 64K are
// selected with nth_element and sorted, so a pass that stops early (budget,
// room) costs O(n), not O(n log n).
template <typename T, typename Before, typename Fn>
void for_each_ordered(std::vector<T>& v, Before before, Fn fn) {
  constexpr size_t kChunk = 1 << 16;
  for (size_t start = 0; start < v.size();) {
    size_t end = std::min(v.size(), start + kChunk);
    if (end < v.size()) std::nth_element(v.begin() + start, v.begin() + end, v.end(), before);
    std::sort(v.begin() + start, v.begin() + end, before);
    for (size_t i = start; i < end; ++i)
      if (!fn(v[i])) return;
    start = end;
  }
}

// Marks the plan's pages as cooling and their table entries as on their
// target node (the next sample or node check corrects a move that failed).
void commit_plan(const Plan& plan, PageTable& table, CoolDown& cool, uint32_t now);

// The order moves are carried out in: demotions first (they make the room
// promotions use), then grouped by process, target and reason, the plan's
// order (hottest first) kept within a group.
std::vector<const PlannedMove*> execution_order(const Plan& plan);

// Groups the plan into move requests (one per process, target, direction
// and reason, in plan order) and submits them. Returns pages refused by a
// full queue; refused_moves (if given) gets the moves of refused requests.
uint64_t submit_plan(const Plan& plan, Mover& mover, std::vector<const PlannedMove*>* refused_moves = nullptr);

// submit_plan, then commit_plan for the moves the mover took: a request the
// queue refused (the mover counts it, dropped_queue_full) never moves, so its
// pages keep their node in the table and are not cooling; they may be
// planned again at once. Returns the base pages refused.
uint64_t submit_and_commit(const Plan& plan, Mover& mover, PageTable& table, CoolDown& cool, uint32_t now);

}  // namespace mb
