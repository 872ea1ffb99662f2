// The user-space page table: every tracked page seen, with a heat that decays
// every interval, per-CPU-node-lane heat, and the page's memory node.
//
// Decay is lazy: an entry's stored heat is as of its last access, and
// heat(e) applies decay^(intervals since). So an interval costs work for the
// pages touched in it, not for the whole table; cold entries are swept out
// every few intervals.
//
// Forgetting adapts to changes of the access pattern: end_interval() compares
// how this interval's samples spread over the pages with how the heat before
// it did (their Bhattacharyya overlap). When the overlap falls a fifth below
// its usual level (kChangedOverlap; many samples fell where the heat did not
// predict them), the pattern changed, and the heat from before this interval
// keeps only what it still explains (end_interval), so the pages hot now rank
// by their own samples at once rather than after a few intervals of decay.
// The scale of each interval is kept in
// a ring, and each entry keeps the share of its heat added in its last
// interval (15 bits of flags), so the scaling stays lazy too.
//
// Open addressing with linear probing in one flat array of 40-byte entries
// that doubles as pages arrive, up to capacity / 0.8 slots (50 bytes per
// tracked page at capacity), with backward-shift deletion. A full table
// counts what it could not insert.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

#include "membalancer/records.h"

namespace mb {

// PageEntry::flags
enum PageFlags : uint16_t {
  kPageHuge = 1 << 0,  // part of a 2 MiB transparent huge page (as last sampled)
  // Bits 1-15: the share of `heat` added in interval last_seen, in 1/32767
  // (PageTable's adaptive forgetting scales only the rest).
  kPageFreshShift = 1,
};
constexpr uint16_t kPageFreshMax = 0x7fff;

struct PageEntry {
  uint64_t key = 0;           // mb_page_key(tgid, vpn); 0 = empty slot
  float heat = 0;             // decayed accesses, as of interval last_seen
  uint32_t last_seen = 0;     // interval number of the last access
  uint32_t node_checked = 0;  // interval number the node was last asked for
  uint16_t node = MB_NODE_UNKNOWN;
  uint16_t flags = 0;         // PageFlags
  uint16_t lane_heat[MB_CPU_LANES] = {};  // decayed accesses per CPU-node lane, as of last_seen

  uint32_t tgid() const { return mb_key_tgid(key); }
  uint64_t vaddr() const { return mb_key_vpn(key) << MB_PAGE_SHIFT; }
  bool huge() const { return flags & kPageHuge; }
};
static_assert(sizeof(PageEntry) == 40, "PageEntry stays small: it is per tracked page");

// What a huge page's heat is made of at a collapse, by what the sampler's
// huge samples count (Pipeline: collapse_heat_for).
enum class CollapseHeat {
  // A huge sample is an access somewhere in the 2 MiB (IBS, PEBS, synthetic
  // traces): the huge page's accesses are its base pages', summed.
  kSum,
  // A huge sample is one accessed bit or fault for the whole 2 MiB a scan
  // (abit's PMD, a hint fault), as a base page's is for it: the huge page is
  // as hot as its hottest base page (a sum would count each scan up to 512
  // times).
  kMax,
};

struct PageTableStats {
  uint64_t pages = 0;           // entries now
  uint64_t inserted = 0;        // entries ever created
  uint64_t forgotten = 0;       // removed for being cold
  uint64_t removed_exited = 0;  // removed because their process exited
  uint64_t removed_exec = 0;    // removed because their process exec'd (the old image's)
  uint64_t removed_gone = 0;    // removed because the page no longer exists (erase)
  uint64_t dropped_full = 0;    // accesses to new pages that found the table full
};

// The pages new to the table in one interval (sampled for the first time,
// or again after being forgotten), by the accesses each had in it: what new
// memory is worth on arrival (AllocationReserve weighs it).
struct Arrivals {
  static constexpr int kBins = 33;  // bin b: accesses in [2^(b-1), 2^b)
  std::array<uint64_t, kBins> pages{};
  std::array<uint64_t, kBins> accesses{};

  void add(uint32_t count) {
    const int b = std::bit_width(count);
    ++pages[b];
    accesses[b] += count;
  }
  Arrivals& operator+=(const Arrivals& o);
  uint64_t total_pages() const;
  // The mean accesses of the n pages with the most (within the bin where
  // the n-th falls, its mean); 0 when there are none.
  double mean_of_hottest(uint64_t n) const;
};

class PageTable {
 public:
  // capacity: pages held at most. decay: factor applied to heat each interval
  // (0.5 halves it). forget_after: intervals without access after which a page
  // whose heat fell below forget_heat is dropped.
  explicit PageTable(size_t capacity, float decay = 0.5f, uint32_t forget_after = 60,
                     float forget_heat = 0.5f, uint32_t sweep_every = 8);

  // Starts interval `now`; every sweep_every intervals (and whenever the
  // table is full) drops the entries that are cold and long unseen.
  void begin_interval(uint32_t now);

  // Ends interval `now`: sets how much of the heat from before it is kept
  // (adaptive forgetting, above). Idempotent; heat reads after it see it.
  void end_interval();
  // Below this share of its usual level, the overlap of an interval's
  // samples with the heat before it says the access pattern changed. While
  // a pattern holds the overlap moves by a few hundredths from interval to
  // interval; a change under a steady background (samples the old heat
  // still predicts) lowers it to 0.6 or 0.7 of its level, which half (the
  // old test) missed, leaving the old hot set on top for intervals.
  static constexpr double kChangedOverlap = 0.8;
  // Heat of e now (decayed since its last access).
  float heat(const PageEntry& e) const { return e.heat * factor(e); }
  // What a place in a tier serves per base page of it, for ranking pages
  // of both sizes against one capacity: a huge page whose samples are
  // accesses anywhere in its 2 MiB (kSum) spreads its heat over its 512
  // base pages; one whose samples are a bit or fault per scan (kMax) is as
  // hot per page as a base page with the same heat.
  float heat_per_base_page(const PageEntry& e) const {
    return e.huge() && huge_heat_ == CollapseHeat::kSum ? heat(e) / static_cast<float>(MB_HUGE_BASE_PAGES) : heat(e);
  }
  // What the huge samples count (Pipeline: collapse_heat_for).
  void set_huge_heat(CollapseHeat how) { huge_heat_ = how; }
  CollapseHeat huge_heat() const { return huge_heat_; }
  // Lane heat of e now.
  float lane_heat(const PageEntry& e, int lane) const { return e.lane_heat[lane] * factor(e); }
  // The share of the heat from before interval `now` that is kept (1 unless
  // end_interval found a change), and the overlap it measured (-1: none).
  float kept_now() const { return kept_[now_ % kRing]; }
  double last_overlap() const { return last_overlap_; }
  // Sweeps forgotten entries now; returns how many were dropped.
  uint64_t forget_cold();
  uint32_t interval() const { return now_; }
  // The variance of a page's heat over its mean, for a page accessed at a
  // steady Poisson rate since the table's first interval: sum w^2 / sum w of
  // the weights heat gives each interval's accesses (decay, kept shares).
  // 1 in the first interval (heat is a plain count), 1 / (1 + decay) once
  // the decay has reached its steady state, and back towards 1 after a
  // change of pattern (the heat from before is mostly dropped).
  float noise_ratio() const;

  // Adds one interval's accesses of a page (from a drained BPF slot).
  // Returns the entry, or nullptr when the table is full (counted).
  PageEntry* add(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES], uint16_t mem_node);

  // A collapse (khugepaged merged base pages into a 2 MiB page): when the
  // 2 MiB at `first` (aligned) holds base pages, each of its base pages
  // holds the huge page's heat from now on, flagged huge: the sum of theirs
  // (kSum: the huge page's accesses are theirs, as a huge page's samples add
  // to each of its base pages) or the hottest one's (kMax), each decayed to
  // now; lanes alike. Absent ones are inserted, so a split later leaves each
  // with that heat; base pages already flagged huge (a huge page whose first
  // base page left the table) count once. Call before the huge page's own
  // samples are added; false (nothing changes) when the 2 MiB holds no base
  // page.
  bool collapse(uint64_t first) { return collapse(first, huge_heat_); }
  bool collapse(uint64_t first, CollapseHeat how);
  // A split (a base page's sample inside a huge page): the huge page at
  // `first` (aligned) is 512 base pages from now on. Where huge samples are
  // accesses (kSum) each keeps 1/512 of its heat, so that they add up to
  // the huge page's (heat_per_base_page is unchanged by the split); where
  // they are a scan's bit (kMax) each keeps it whole. False when no huge
  // page is there.
  bool split(uint64_t first);

  PageEntry* find(uint64_t key);
  const PageEntry* find(uint64_t key) const;

  // Removes every page of these processes (one sweep), counted as removed
  // for the reason given.
  enum class Removal { kExit, kExec };
  void remove_processes(const std::unordered_set<uint32_t>& tgids, Removal why = Removal::kExit);
  // Removes one page that no longer exists (unmapped); false if absent.
  bool erase(uint64_t key);

  void for_each(const std::function<void(const PageEntry&)>& fn) const;
  // The same, inlined: for passes over every page (policies).
  template <typename Fn>
  void visit(Fn&& fn) const {
    for (const PageEntry& e : slots_)
      if (e.key) fn(e);
  }
  void for_each_mut(const std::function<void(PageEntry&)>& fn);

  size_t size() const { return stats_.pages; }
  size_t capacity() const { return capacity_; }
  float decay() const { return decay_; }
  size_t slot_count() const { return slots_.size(); }
  size_t memory_bytes() const { return slots_.capacity() * sizeof(PageEntry); }
  const PageTableStats& stats() const { return stats_; }
  // The pages that arrived in the current interval (from begin_interval).
  const Arrivals& arrivals() const { return arrivals_; }

 private:
  size_t home(uint64_t key) const;
  // A page's heat as add() keeps it: the part from before this interval
  // (decayed to now) and the part added in it; lanes decayed alike.
  struct HeatParts {
    double before = 0, fresh = 0;
    float lanes[MB_CPU_LANES] = {};
    void add(const HeatParts& o) {
      before += o.before;
      fresh += o.fresh;
      for (int l = 0; l < MB_CPU_LANES; ++l) lanes[l] += o.lanes[l];
    }
  };
  HeatParts parts_of(const PageEntry& e) const;
  CollapseHeat huge_heat_ = CollapseHeat::kSum;
  static constexpr uint32_t kRing = 4096;  // intervals whose kept share is remembered
  // Decay (and kept shares) from the end of interval `then` to now.
  float decay_since(uint32_t then) const {
    uint32_t age = now_ - then;
    if (age < decay_pow_.size()) return decay_pow_[age];
    return decay_ >= 1.0f ? decay_pow_.back() : 0.0f;  // decay 1 cools only by kept shares, however long unseen
  }
  // The share kept of the heat e had before its last interval, times the
  // decay since: heat(e) = e.heat * factor(e).
  float factor(const PageEntry& e) const {
    const uint32_t age = now_ - e.last_seen;
    const float k = age < kRing ? kept_[e.last_seen % kRing] : 1.0f;
    if (k == 1.0f) return decay_since(e.last_seen);
    const float fresh = static_cast<float>(e.flags >> kPageFreshShift) / kPageFreshMax;
    return (fresh + (1 - fresh) * k) * decay_since(e.last_seen);
  }
  // The factor that brings the heat of e, last seen before this interval,
  // to now as add() keeps it: this interval's kept share is not applied
  // (it applies at reading, to the share from before: the fresh bits).
  float carried(const PageEntry& e) const {
    const float d = factor(e);
    return ended_ && kept_now() < 1.0f ? d / kept_now() : d;
  }
  // The entry of key, inserted (nothing before this interval) when absent;
  // nullptr when the table is full.
  PageEntry* entry_for(uint64_t key, bool* inserted);
  void rebuild_decay();
  void erase_at(size_t i);
  void grow();
  size_t max_slots_;
  void erase_if(const std::function<bool(const PageEntry&)>& pred, uint64_t* counter);

  std::vector<PageEntry> slots_;
  size_t capacity_;
  float decay_;
  uint32_t forget_after_;
  float forget_heat_;
  uint32_t sweep_every_;
  std::vector<float> decay_pow_;  // decay (and kept shares) over the last `age` intervals, for the ages that still matter
  std::vector<float> kept_ = std::vector<float>(kRing, 1.0f);  // by interval % kRing
  uint32_t now_ = 0;
  std::optional<uint32_t> first_;  // the first interval begun
  // Adaptive forgetting: the heat of the whole table as of the end of the
  // last interval, and this interval's sums over the pages it touched.
  double total_heat_ = 0;
  double samples_now_ = 0;
  double overlap_now_ = 0;  // sum of sqrt(accesses * heat before)
  double last_overlap_ = -1;
  double typical_overlap_ = -1;  // the overlap while the pattern holds (running mean)
  bool ended_ = false;
  PageTableStats stats_;
  Arrivals arrivals_;
};

}  // namespace mb
