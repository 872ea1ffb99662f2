#include "membalancer/page_table.h"

#include <algorithm>

namespace mb {

PageTable::PageTable(size_t capacity, float decay, uint32_t forget_after, float forget_heat)
    : capacity_(std::max<size_t>(capacity, 1)),
      decay_(decay),
      forget_after_(forget_after),
      forget_heat_(forget_heat) {
  // Load factor at most 0.8 keeps linear probes short; at least one slot
  // always stays empty so probes end. capacity + capacity/4 slots of 40 bytes:
  // at most 50 bytes per page of capacity (from capacity 4 up).
  slots_.resize(capacity_ + std::max<size_t>(capacity_ / 4, 1));
}

size_t PageTable::home(uint64_t key) const {
  uint64_t h = key * 0x9E3779B97F4A7C15ULL;
  return static_cast<size_t>((static_cast<unsigned __int128>(h) * slots_.size()) >> 64);
}

PageEntry* PageTable::find(uint64_t key) {
  return const_cast<PageEntry*>(static_cast<const PageTable*>(this)->find(key));
}

const PageEntry* PageTable::find(uint64_t key) const {
  if (key == 0) return nullptr;
  size_t n = slots_.size();
  for (size_t i = home(key), probes = 0; probes < n; i = (i + 1 == n ? 0 : i + 1), ++probes) {
    if (slots_[i].key == key) return &slots_[i];
    if (slots_[i].key == 0) return nullptr;
  }
  return nullptr;
}

PageEntry* PageTable::add(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES],
                          uint16_t mem_node) {
  if (key == 0) return nullptr;
  size_t n = slots_.size();
  size_t i = home(key);
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1 == n ? 0 : i + 1);
  PageEntry& e = slots_[i];
  if (e.key == 0) {
    if (stats_.pages >= capacity_) {
      stats_.dropped_full += accesses;
      return nullptr;
    }
    e = PageEntry{};
    e.key = key;
    ++stats_.pages;
    ++stats_.inserted;
  }
  e.heat += static_cast<float>(accesses);
  e.last_seen = now_;
  if (lanes) {
    for (int l = 0; l < MB_CPU_LANES; ++l)
      e.lane_heat[l] = static_cast<uint16_t>(std::min<uint32_t>(0xffff, e.lane_heat[l] + lanes[l]));
  }
  if (mem_node != MB_NODE_UNKNOWN) {
    e.node = mem_node;
    e.node_checked = now_;
  }
  return &e;
}

void PageTable::erase_at(size_t i) {
  // Backward-shift deletion: pull later members of the probe run into the gap.
  size_t n = slots_.size();
  size_t gap = i;
  size_t j = i;
  for (;;) {
    j = (j + 1 == n ? 0 : j + 1);
    if (slots_[j].key == 0) break;
    size_t h = home(slots_[j].key);
    // Move j into the gap unless its home lies cyclically in (gap, j].
    bool home_in_between = gap <= j ? (gap < h && h <= j) : (gap < h || h <= j);
    if (!home_in_between) {
      slots_[gap] = slots_[j];
      gap = j;
    }
  }
  slots_[gap] = PageEntry{};
  --stats_.pages;
}

void PageTable::begin_interval(uint32_t now) {
  now_ = now;
  for (auto& e : slots_) {
    if (e.key == 0) continue;
    e.heat *= decay_;
    for (auto& l : e.lane_heat) l = static_cast<uint16_t>(l * decay_);
  }
  // A separate pass: deletion shifts entries, which must not be decayed twice.
  erase_if([this](const PageEntry& e) { return e.heat < forget_heat_ && now_ - e.last_seen >= forget_after_; },
           &stats_.forgotten);
}

void PageTable::erase_if(const std::function<bool(const PageEntry&)>& pred, uint64_t* counter) {
  for (size_t i = 0; i < slots_.size();) {
    if (slots_[i].key != 0 && pred(slots_[i])) {
      erase_at(i);
      ++*counter;
      continue;  // slot i now holds a shifted entry (or is empty): look again
    }
    ++i;
  }
}

void PageTable::remove_processes(const std::unordered_set<uint32_t>& tgids) {
  if (tgids.empty()) return;
  erase_if([&](const PageEntry& e) { return tgids.count(e.tgid()) != 0; }, &stats_.removed_exited);
}

void PageTable::for_each(const std::function<void(const PageEntry&)>& fn) const {
  for (const auto& e : slots_)
    if (e.key != 0) fn(e);
}

void PageTable::for_each_mut(const std::function<void(PageEntry&)>& fn) {
  for (auto& e : slots_)
    if (e.key != 0) fn(e);
}

}  // namespace mb
