// `profiler whatif`: the placement policies it compares membalancer's own tier
// policy with, and the oracle that bounds them all. Each is our
// re-implementation of a published rule (no other project's code), replayed
// interval by interval against a two-tier PlacementModel: a fast node of a
// given capacity and an (in practice) unbounded slow node. The engine counts
// an interval's fast-tier hits, then hands the interval's sampled pages to
// each policy, which moves pages in its own copy of the model.
//
// The rules, with their knobs and where the defaults come from
// (../shared/reference/amd-prototype.md, peer-systems.md):
//
// amd-topk (AMD resource-optimizer, tier mode with the runt.sh spec
//   "0:0,1:0:0:0:1:1:0-1:2,3:10:0:0:0:0:0"): no history, only this interval's
//   samples. Of the pages sampled on the slow node, the top 10% by accesses
//   (k = n * 10 / 100, rounded down) are promoted, but only while the fast
//   node had >= 10% free at the start of the interval (-F 10; the prototype
//   reads free memory before a round, not per page). Demotion is only a
//   counterweight to promotion: d = promotions planned x (1% / 10%), taken
//   from the coldest pages sampled on the fast node this interval, at most
//   1% of them. Each page planned moves with its region, as the
//   prototype's mover expands it (-U 1048576 in runt.sh; -D is ignored, so
//   the same size both ways): every page of its 1 MiB-aligned virtual
//   region (256 base pages) on the node it leaves, so cold neighbours of a
//   hot page go up with it and hot neighbours of a cold one go down. A
//   region planned twice in a round moves once (the second move_pages finds
//   it in place); regions go in the order of their pages, hottest first up,
//   coldest first down. The model knows only the pages the trace has shown
//   so far: a region's others, mapped or not, do not move (so on a sparse
//   trace a region costs less room than on the machine). A 2 MiB page holds
//   its region and moves whole. Other pages not sampled in the interval
//   never move, and once the fast node has less than 10% free nothing is
//   planned, so nothing is demoted either: the fast node stays as it is.
//   The mover as the prototype's (perform_move_pages): a region goes in
//   batches of 32 consecutive pages (PAGES_PER_CALL), each charged 32
//   pages of the budget before its move_pages whatever it still holds to
//   move (a batch within a 2 MiB page: the page's 512 when it moves it),
//   and a batch the budget does not cover is dropped, its pages staying
//   where they are, the next batches tried in turn. The budget is whatif's
//   common rate limit, not the prototype's own (-R 32 pages/ms refill, the
//   bucket unbounded by default: -K..-T).
//   Not modelled: the 0.25%-of-samples share filter of classic IBS mode
//   (AmdTopkConfig::min_share_pct; off by default: runt.sh runs the L3-miss
//   mode -l first, which skips it), a batch refused by the limiter's
//   try-lock under contention, its bugs (§6 of the notes: e.g. a region's
//   last partial batch never queued, which -U 1 MiB, 8 whole batches, does
//   not meet).
//
// memtis (Memtis, SOSP'23, htmm defaults): a per-page access count, bins of
//   log2(count + 1) (16 bins, base pages per bin, a 2 MiB page counting 512).
//   At each adaptation the hot threshold is re-fitted: the lowest bin such
//   that the pages in it and above fit the fast capacity, at least bin 1
//   (thres_hot); as in Memtis it only rises at an adaptation and drops by
//   one bin at a cooling, which halves every count. Memtis counts both
//   periods in PEBS samples (adaptation 100,000, cooling 2,000,000); a
//   trace's sample rate can be orders of magnitude lower (at 1,000 samples
//   an interval Memtis would not adapt for 100 intervals), so by default
//   they are scaled to intervals keeping their ratio: re-fit every interval
//   (Memtis migrates every 500 ms), cool every 20 intervals. Setting
//   MemtisConfig's *_samples counts the trace's samples instead. Warm: when
//   the hot set fills less than 75% of the fast capacity, the bin below the
//   threshold is warm. Each interval hot pages on the slow node are promoted
//   hottest first; when the fast node is full, cold pages (below the warm
//   bin) are demoted coldest first to make room; warm and hot pages stay.
//   Not modelled: Memtis's own splitting of skewed huge pages (a split
//   the trace shows is followed), the sampler's CPU quota, the kernel's
//   free page watermarks.
//
// tpp (TPP, ASPLOS'23: its patch "promote only active pages" on Linux NUMA
//   balancing): a slow page is promoted at a hint fault only while it is on
//   the active LRU list; a fault on an inactive page calls
//   mark_page_accessed instead, which marks it referenced the first time
//   and activates it the second. So a page landing on the slow node (first
//   placed there, or demoted: reclaim takes pages inactive and unreferenced)
//   goes up at its third hint fault there. TPP sets no time on it: the
//   state lasts until reclaim on the slow node ages its LRU lists, and the
//   model's slow node never comes under memory pressure, so the faults may be
//   any time apart. Hint faults come from NUMA balancing's scanner
//   (NumaScanConfig, the numa_balancing sysctls' defaults): it unmaps the
//   next 256 MB of the address space (the trace's pages, in address order;
//   a 2 MiB page is 2 MiB of it) every scan delay, a whole pass taking the scan period (1 s to 60 s,
//   adaptive: longer while most faults are on the fast node, where the
//   CPUs are, shorter otherwise), the first window 1 s after the start; a
//   page faults at its first access after it was unmapped, so at most once
//   a pass and never before the scanner reached it (the sampled accesses
//   of an interval taken as evenly spread in it). Candidates go up in the
//   order of their faults. Demotion is LRU: the fast pages sampled longest
//   ago go first (ties by key; pages sampled this interval are referenced
//   and kept), to make room for promotions and, afterwards, until the fast
//   node has the demotion watermark free: 2% of its capacity (the TPP
//   patches' demote_scale_factor default as we know it; peer-systems.md
//   gives no number: TppConfig). Not modelled: reclaim on the slow node,
//   the scanner's private/shared fault split (whatif keeps no threads:
//   every fault counts as the task's own), the kernel doubling the period
//   after a pass without faults.
//
// linux-tiering (Linux's own memory tiering, kernel.numa_balancing=2,
//   5.18+: our re-implementation of the published rule): the same scanner,
//   which in this mode unmaps slow pages only. A hint fault promotes its
//   page when the fault came less than the hot threshold after the scan
//   that unmapped it (numa_balancing_hot_threshold_ms, 1000), or whatever
//   its latency while the fast node has plenty free (more than 1 GiB or a
//   sixteenth of it above the promo watermark: the threshold is reset and
//   no rate limit applies). The promote rate limit
//   (numa_balancing_promote_rate_limit_MBps, 65536) counts candidates in a
//   window that the first candidate more than a second after its start
//   restarts (numa_promotion_rate_limit): candidates once the window's
//   count has reached the limit stay. Every scan_period_max (60 s) the
//   threshold steps by an eighth of its default toward the rate limit:
//   down when the period's candidates were over 110% of what it lets
//   through, up (to twice the default) under 90%; only at a fault while
//   free memory is not plenty (a spell of plenty neither counts nor
//   restarts the period). A promotion needs the fast node's free memory
//   strictly above its high watermark plus the page
//   (migrate_balanced_pgdat); else the page stays and kswapd wakes and
//   demotes the least recently sampled fast pages, a batch of 32 at least,
//   up to the promo watermark (the tiering mode's kswapd target); kswapd
//   also wakes below the low watermark. The watermarks are the kernel's
//   (kernel_watermarks): min the fast node's share of min_free_kbytes (by
//   default the kernel's for the simulated memory: the fast node plus a
//   slow node as large as the footprint so far), then steps of the larger
//   of min / 4 and watermark_scale_factor (10) / 10000 of the node.
//
// memtierd-age (intel/memtierd age policy, README example: IntervalMs
//   5000, ActiveDurationMs 10000, IdleDurationMs 15000). One interval is
//   one memtierd round, so durations become rounds as memtierd computes
//   them: a page is active when sampled in each of the last
//   ActiveDurationMs / IntervalMs + 1 = 3 intervals (this one included) and
//   idle when not sampled in the last IdleDurationMs / IntervalMs = 3.
//   Each interval idle fast pages are demoted (oldest first), then active
//   slow pages promoted (most accessed first) into the room there is:
//   memtierd has no capacity-driven demotion, a move to a full node fails.
//   Not modelled: regions (memtierd moves a region only with > 100 pages
//   off target), the mover queue (new moves only once it is empty).
//
// Common to all: a page's size follows the trace (PlacementModel: a
// collapse merges base pages into a huge page, a split makes 512 base pages
// of one), and each rule's state per page with it (sim_policies.cpp:
// collapsed(), split_off(): counts add up and are shared, the other state
// is the latest of the parts or inherited); at most ctx.budget_bytes move per interval (promotions and
// demotions together, in whole base pages; a 2 MiB page costs 512; what a
// policy leaves unspent carries over to its next interval, as membalancer's
// does: IntervalBudget in membalancer/rate_limiter.h); the model
// refuses moves into a full node (so the slow node needs a capacity in the
// model, a large one: PlacementModel::move refuses a node without one);
// ties are broken by page key, so decisions never depend on the order of
// `counts` or of a hash table. A page promoted by making room costs its
// victims' demotions too: a policy demotes for room only when the budget
// also covers the promotion that follows. A policy only knows the pages
// that appeared in `counts`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "membalancer/placement_model.h"

namespace mb {

// One page sampled in an interval. key = mb_page_key(tgid, vpn); huge: a
// 2 MiB page, 512 base pages.
struct PageCount {
  uint64_t key;
  uint32_t accesses;
  bool huge;
};

struct SimContext {
  uint32_t interval;  // 1, 2, ...
  double interval_s;  // length of an interval in seconds
  int fast_node, slow_node;
  // Bytes the policy may move this interval (promotions + demotions
  // together), in whole base pages: the real mover's rate limit x interval
  // with what earlier intervals left unspent (IntervalBudget); 0 = unlimited.
  uint64_t budget_bytes;
};

class SimPolicy {
 public:
  virtual ~SimPolicy() = default;
  virtual std::string name() const = 0;      // as used on the command line
  virtual std::string describe() const = 0;  // one line: the rule
  // Called once per interval, after that interval's hits were counted, with
  // the pages sampled in it (each page once, any order). Moves pages in the
  // model with model.move(key, node), within ctx.budget_bytes.
  // Every page in `counts` has already been placed in the model. The model
  // is this policy's own: between calls the engine only places new pages in
  // it, never moves one (policies remember where their pages are), except
  // that placing may change pages' sizes (PlacementModel: a collapse takes
  // base pages to where their huge page goes, a split moves nothing).
  // `counts` has the pages as the model holds them after that, and the
  // model keeps the changes (take_resizes) for a policy with state per page
  // to follow first (PageBook::follow); the engine drops what the policy
  // leaves. Pages placed but never in `counts` are unknown to the policy
  // and stay put.
  virtual void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) = 0;
  // Pages moved so far (base pages), promotions and demotions.
  uint64_t promoted() const { return promoted_; }
  uint64_t demoted() const { return demoted_; }
  // Base pages taken of the budgets so far (a batch charged whole counts
  // whole): what the engine takes off its IntervalBudget.
  uint64_t charged() const { return charged_; }

 protected:
  uint64_t promoted_ = 0;
  uint64_t demoted_ = 0;
  uint64_t charged_ = 0;
};

// The knobs, with the published defaults (see the top of this file).
struct AmdTopkConfig {
  uint32_t promote_pct = 10;   // slow tier: top % of its sampled pages promoted
  uint32_t demote_pct = 1;     // fast tier: at most this % of its sampled pages demoted
  uint32_t min_free_pct = 10;  // -F: the fast node needs this % free to take promotions
  double min_share_pct = 0;    // classic IBS mode: 0.25 (a page needs this % of the interval's samples)
  uint64_t region_bytes = 1 << 20;  // -U: a planned page moves with its aligned region; 4096: alone
};

struct MemtisConfig {
  // Periods in intervals: adaptation every interval, cooling every
  // 2,000,000 / 100,000 = 20 adaptations (htmm_cooling_period /
  // htmm_adaptation_period); 0 = never.
  uint32_t adaptation_intervals = 1;
  uint32_t cooling_intervals = 20;
  // Non-zero: the period in the trace's samples instead, as Memtis counts
  // them (its defaults: 100,000 and 2,000,000).
  uint64_t adaptation_samples = 0;
  uint64_t cooling_samples = 0;
  int min_hot_bin = 1;  // htmm_thres_hot
  bool warm = true;     // !htmm_nowarm
};

// NUMA balancing's scanner (the kernel's documented sysctl defaults).
struct NumaScanConfig {
  uint64_t scan_size_mb = 256;  // numa_balancing_scan_size_mb: unmapped per window
  double period_min_s = 1.0;    // numa_balancing_scan_period_min_ms: the fastest whole pass
  double period_max_s = 60.0;   // numa_balancing_scan_period_max_ms: the slowest
  double scan_delay_s = 1.0;    // numa_balancing_scan_delay_ms: the first window, after the task starts
};

struct TppConfig {
  NumaScanConfig scan;
  double demote_watermark = 0.02;  // keep this share of the fast node free (demote_scale_factor)
};

// Linux's own memory tiering (kernel.numa_balancing=2, 5.18+).
struct LinuxTieringConfig {
  NumaScanConfig scan;
  double hot_threshold_s = 1.0;            // numa_balancing_hot_threshold_ms
  double promote_rate_limit_mbps = 65536;  // numa_balancing_promote_rate_limit_MBps
  uint32_t watermark_scale_factor = 10;    // vm.watermark_scale_factor: in 10000ths of the node
  uint64_t min_free_kbytes = 0;            // vm.min_free_kbytes; 0: the kernel's default for the simulated memory
};

// The kernel's default vm.min_free_kbytes for `total_pages` of memory
// (calculate_min_free_kbytes at boot): the integer square root of 16 x the
// memory in KiB, at least 128 and at most 262144 (256 MiB).
uint64_t default_min_free_kbytes(uint64_t total_pages);

// A node's watermarks in base pages, as __setup_per_zone_wmarks sets them
// (the node as one zone): min is the node's share of min_free_kbytes (its
// pages over all the memory's); each step above it is the larger of a
// quarter of min and scale_factor / 10000 of the node; low = min + a step,
// high = low + a step, promo (the tiering mode's kswapd target) = high + a
// step.
struct NodeWatermarks {
  uint64_t min = 0, low = 0, high = 0, promo = 0;
};
NodeWatermarks kernel_watermarks(uint64_t node_pages, uint64_t total_pages, uint64_t min_free_kbytes,
                                 uint32_t scale_factor);

struct MemtierdAgeConfig {
  uint32_t interval_ms = 5000;
  uint32_t active_duration_ms = 10000;
  uint32_t idle_duration_ms = 15000;
};

std::unique_ptr<SimPolicy> make_amd_topk(const AmdTopkConfig& cfg = {});
std::unique_ptr<SimPolicy> make_memtis(const MemtisConfig& cfg = {});
std::unique_ptr<SimPolicy> make_tpp(const TppConfig& cfg = {});
std::unique_ptr<SimPolicy> make_linux_tiering(const LinuxTieringConfig& cfg = {});
std::unique_ptr<SimPolicy> make_memtierd_age(const MemtierdAgeConfig& cfg = {});

// The hint faults NUMA balancing's scanner, as tpp and linux-tiering model
// it, gives on a trace whose pages never move (`model` places them; every
// page is unmapped): per interval, the faults on fast-node and on other
// pages, and the delay between windows at its end.
struct ScanTrace {
  std::vector<uint64_t> local, remote;
  std::vector<double> delay_s;
};
ScanTrace numa_scan_faults(const NumaScanConfig& cfg, double interval_s,
                           const std::vector<std::vector<PageCount>>& intervals, const PlacementModel& model,
                           int fast_node);

// "amd-topk", "linux-tiering", "memtis", "tpp", "memtierd-age" with their default knobs;
// nullptr for an unknown name.
std::unique_ptr<SimPolicy> make_sim_policy(const std::string& name);
// The names make_sim_policy knows, sorted.
std::vector<std::string> sim_policy_names();

// The oracle's hits for one interval: the best placement knowing that
// interval's counts, i.e. the most accesses that pages fitting in
// capacity_pages base pages can hold (a 2 MiB page takes 512). Exact, also
// with mixed sizes: with two sizes the best set is the h hottest huge pages
// plus the hottest base pages in the rest, for the best h, which is searched
// over all h (an exchange argument: within one size, hotter is never worse).
uint64_t oracle_hits(const std::vector<PageCount>& counts, uint64_t capacity_pages);

// The oracle's moves for one interval, with N tiers: `tiers` = the model's
// nodes, fastest first, the last one holding the rest (its capacity never
// runs out). Moves `model`'s pages from where they are to the interval's
// best placement: tier 0 takes the best set fitting its capacity (as
// oracle_hits), tier 1 the best of the rest, and so on, the last tier the
// pages left. With base pages alone that is the placement of
// oracle_tier_hits, each prefix of tiers at its optimum; with 2 MiB pages
// it is one placement, each tier the best of what the faster ones left
// (of sets serving a tier alike, the combination with the most hits tier by
// tier, then the fewest pages moved, counted as below).
//
// With the fewest pages moved: which tier a page needs is fixed by its rank,
// except among pages of equal accesses (and size), which are
// interchangeable. So within each such group, each tier keeps as many of the
// group's pages already on it as it takes of the group, and only the rest
// move, each once, the surplus of faster tiers to the faster shortfalls (of
// equal pages a lower key counts as hotter: a tier's lowest keys go up, its
// highest down). Keeping tier by tier, taking the shortfall from wherever,
// is not enough with three tiers or more: a tier that takes a page another
// tier would have kept costs two moves where one does. Pages not sampled in
// the interval (or with no accesses) stay where they are while their tier
// has room beside the pages it takes; the excess goes to the last tier in as
// few base pages as cover it (2 MiB pages only for what the base pages
// cannot cover; by key within a size). No rate limit (the oracle pays
// nothing for its moves); every page in `counts` must have been placed, and
// every placed page be on one of `tiers`. Returns the accesses each tier
// serves then; adds the base pages moved to a faster tier to *promoted, to a
// slower one to *demoted.
std::vector<uint64_t> oracle_step(const std::vector<PageCount>& counts, PlacementModel& model,
                                  const std::vector<int>& tiers, uint64_t* promoted, uint64_t* demoted);

// The oracle with N tiers: upper_pages = capacities of tiers 0..N-2 (fastest
// first), the last tier holds the rest; returns the accesses each of the N
// tiers serves. The hottest pages fill tier 0, the next tier 1, and so on:
// tiers 0..k together serve oracle_hits(capacity of tiers 0..k), the most any
// placement can, for every k at once. So it is the best placement for any
// per-interval objective sum_k w_k x hits_k with w_0 >= w_1 >= ... (a faster
// tier is worth at least as much): that sum is w_{N-1} x all accesses plus
// sum_k (w_k - w_{k+1}) x (hits of tiers 0..k), each term at its maximum.
// (With 2 MiB pages each prefix is still exact, but one placement may not
// reach them all: the figures remain upper bounds.)
std::vector<uint64_t> oracle_tier_hits(const std::vector<PageCount>& counts, const std::vector<uint64_t>& upper_pages);

}  // namespace mb
