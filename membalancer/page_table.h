// The user-space page table: every tracked page seen, with a heat that decays
// every interval, per-CPU-node-lane heat, and the page's memory node.
//
// Decay is lazy: an entry's stored heat is as of its last access, and
// heat(e) applies decay^(intervals since). So an interval costs work for the
// pages touched in it, not for the whole table; cold entries are swept out
// every few intervals.
//
// Open addressing with linear probing in one flat array of 40-byte entries
// that doubles as pages arrive, up to capacity / 0.8 slots (50 bytes per
// tracked page at capacity), with backward-shift deletion. A full table
// counts what it could not insert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_set>
#include <vector>

#include "membalancer/records.h"

namespace mb {

// PageEntry::flags
enum PageFlags : uint16_t {
  kPageHuge = 1 << 0,  // part of a 2 MiB transparent huge page (as last sampled)
};

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

struct PageTableStats {
  uint64_t pages = 0;           // entries now
  uint64_t inserted = 0;        // entries ever created
  uint64_t forgotten = 0;       // removed for being cold
  uint64_t removed_exited = 0;  // removed because their process exited
  uint64_t removed_gone = 0;    // removed because the page no longer exists (erase)
  uint64_t dropped_full = 0;    // accesses to new pages that found the table full
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

  // Heat of e now (decayed since its last access).
  float heat(const PageEntry& e) const { return e.heat * decay_since(e.last_seen); }
  // Lane heat of e now.
  float lane_heat(const PageEntry& e, int lane) const { return e.lane_heat[lane] * decay_since(e.last_seen); }
  // Sweeps forgotten entries now; returns how many were dropped.
  uint64_t forget_cold();
  uint32_t interval() const { return now_; }

  // Adds one interval's accesses of a page (from a drained BPF slot).
  // Returns the entry, or nullptr when the table is full (counted).
  PageEntry* add(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES], uint16_t mem_node);

  PageEntry* find(uint64_t key);
  const PageEntry* find(uint64_t key) const;

  // Removes every page of these processes (one sweep).
  void remove_processes(const std::unordered_set<uint32_t>& tgids);
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

 private:
  size_t home(uint64_t key) const;
  float decay_since(uint32_t then) const {
    uint32_t age = now_ - then;
    if (age < decay_pow_.size()) return decay_pow_[age];
    return decay_ >= 1.0f ? 1.0f : 0.0f;  // decay 1 never cools, however long unseen
  }
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
  std::vector<float> decay_pow_;  // decay^age for the ages that still matter
  uint32_t now_ = 0;
  PageTableStats stats_;
};

}  // namespace mb
