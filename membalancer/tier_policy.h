// `membalancer tier`: hot pages of lower tiers move up, the coldest pages of
// upper tiers move down.
//
// Each interval:
//  1. Hot thresholds from capacity. Every sampled page's heat goes into a
//     histogram. Tier j (and the tiers above it) can hold the tracked pages
//     already there plus the free memory above each node's high watermark;
//     the hot threshold of tier j is the lowest heat whose pages, and all
//     hotter ones, fit in that capacity (as Memtis sizes its hot set), but
//     never below min_hot_heat: a page seen once is not hot.
//  2. Promotion, hottest first: a page of tier t whose heat reaches the
//     threshold of a tier d < t moves to the node of tier d with the most room.
//     Room is free memory above the high watermark; past that, the node's cold
//     pages (below its tier's threshold) are demoted to make room.
//  2b. Free room: room left above an upper tier's high watermark once the
//     hot pages are planned takes the hottest pages below the threshold (a
//     page seen once, say): free memory serves no access. They only take
//     room, never make it, and a page within its cool-down stays.
//  3. Demotion: a node of an upper tier whose free memory is below the low
//     watermark (or that needs room for promotions) sends its coldest pages to
//     the next tier down until the high watermark is back. Coldest first: the
//     resident pages no sample ever saw (enumerated, not only sampled), then
//     sampled pages in order of heat.
//  Exchanges: a demotion that makes room for a promotion pairs the coldest
//  page leaving with the hottest arriving, and happens only when the page
//  arriving is decisively hotter (a quarter more by estimated real rate,
//  and by more than sampling noise); otherwise the promotion waits
//  (`no_gain`). Noise among equally warm pages so moves nothing.
//  Watermarks: fixed shares (--watermark LOW:HIGH), or by default (auto)
//  room for what the tracked processes allocate (AllocationReserve) above
//  the kernel's own high watermark, at most 1% : 2%, and made only of pages
//  colder than new pages are on arrival (before that is known, the first
//  interval: of free memory and never-sampled pages): where the fast tier
//  holds nothing that cold, new pages land lower and rise if they turn hot.
//  No ping-pong: pages moved within the cool-down are left alone unless their
//  heat is decisively on the other side (at least twice the threshold to go
//  up, below half of it to go down: a changed pattern, as after a phase
//  change) or a decisively hotter page needs their room, and a page demoted
//  is below its tier's threshold, so it is never also promoted in the same
//  interval.
//  A byte budget per interval (the mover's rate × the interval, with what
//  earlier plans left unspent: IntervalBudget) keeps the plan within what the
//  mover can do before the next one.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "membalancer/policy.h"
#include "membalancer/tiers.h"

namespace mb {

struct TierPolicyConfig {
  double low_watermark = 0.01;   // of each upper-tier node's memory: demote below this free share
  double high_watermark = 0.02;  // ... until this free share is back
  // --watermark auto: the free share follows the tracked processes'
  // allocations (MemoryState::allocation_reserve_bytes), above the kernel's
  // own high watermark, at most the shares above.
  bool follow_allocations = false;
  float min_hot_heat = 2.0f;     // a page must have been seen about twice to count as hot
  uint64_t budget_bytes = 0;     // per interval; 0 = unlimited
};

struct TierPlanView {
  std::vector<float> thresholds;  // hot threshold of tiers 0..n-2
  std::vector<uint64_t> capacity_pages;
  uint64_t promote_pages = 0;  // base pages
  uint64_t demote_pages = 0;
};

// The free memory a fast node must keep so that the tracked processes' new
// pages land there (the reason for a demotion watermark, as TPP keeps one),
// sized by what they allocate rather than fixed: twice the most their
// resident pages grew in one of the last kWindow intervals. A workload whose
// footprint has stopped growing then uses the whole fast tier; one that
// allocates gets room for two intervals of it.
// And what that room is worth: the pages that arrived in the page table over
// the window, as many of the hottest as the footprint grew by, and their
// mean accesses in their first interval (arrival_heat). Room kept empty
// costs the accesses of the pages demoted to make it; the policy makes it
// only of pages colder than that (TierPolicy).
// And where it is of use: room on a node serves only if new pages land
// there. Per node, what the tracked processes' pages grew by there other
// than by moves, against what they could have put there (the growth, as far
// as the node had room): landing_share. Pages bound elsewhere (a memory
// policy, threads on another socket) leave a node's room unused, so it is
// not kept; a node full all along gives no evidence either way, and
// evidence kForgetAfter intervals old is forgotten (the pages may land there
// now, and the node, given to hot pages meanwhile, would never show it).
class AllocationReserve {
 public:
  static constexpr size_t kWindow = 4;
  // Intervals without evidence after which a node's landing share is
  // forgotten (unset: the whole room again).
  static constexpr uint32_t kForgetAfter = 16;
  // One node as observed at the end of an interval.
  struct NodeObservation {
    uint64_t tree_pages = 0;  // the tracked processes' resident base pages there
    int64_t moved_in = 0;     // base pages moved in less those moved out, in the interval
    uint64_t room_pages = 0;  // free base pages above the kernel's high watermark
    // Moves that may or may not show in tree_pages (they completed while it
    // was read): the pages that landed are counted as if they all did.
    uint64_t maybe_moved_in = 0;
  };
  // Each interval: the tracked processes' nodes, and the pages new to the
  // page table in it.
  void observe(const std::map<int, NodeObservation>& nodes, const Arrivals& arrivals = {});
  // The same with every page on one node and nothing moved.
  void observe(uint64_t tree_pages, const Arrivals& arrivals = {});
  // Unset until two intervals were observed.
  std::optional<uint64_t> bytes() const;
  // Unset until two intervals were observed, or when nothing grew in the
  // window; 0 when the new pages were never sampled.
  std::optional<float> arrival_heat() const;
  // The share of the growth that landed on `node` while it had room for it,
  // the recent intervals weighing most; unset while no interval gave
  // evidence (no growth while the node had room).
  std::optional<float> landing_share(int node) const;
  // Every node with a landing share.
  std::map<int, float> landing_shares() const;

 private:
  struct Landing {
    uint64_t last_tree = 0;
    double landed = 0;    // decayed sums over the intervals with evidence
    double possible = 0;
    uint32_t quiet = 0;   // intervals since the last with evidence
  };
  std::optional<uint64_t> last_;
  std::vector<uint64_t> growth_;      // base pages per interval, the last kWindow
  std::vector<Arrivals> arrivals_;    // the same intervals' arrivals
  std::map<int, Landing> landing_;
};

class TierPolicy {
 public:
  TierPolicy(Tiers tiers, const TierPolicyConfig& cfg);

  // Plans this interval's moves (table.interval() is the current interval).
  Plan plan(const PageTable& table, const MemoryState& mem, const CoolDown& cool, TierPlanView* view = nullptr) const;

  const Tiers& tiers() const { return tiers_; }
  const TierPolicyConfig& config() const { return cfg_; }
  // The next plans' budget (the backend's IntervalBudget sets it each interval).
  void set_budget_bytes(uint64_t bytes) { cfg_.budget_bytes = bytes; }

 private:
  Tiers tiers_;
  TierPolicyConfig cfg_;
};

}  // namespace mb
