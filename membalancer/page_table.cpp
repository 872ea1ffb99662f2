#include "membalancer/page_table.h"

#include <algorithm>

namespace mb {

PageTable::PageTable(size_t capacity, float decay, uint32_t forget_after, float forget_heat, uint32_t sweep_every)
    : capacity_(std::max<size_t>(capacity, 1)),
      decay_(decay),
      forget_after_(forget_after),
      forget_heat_(forget_heat),
      sweep_every_(std::max<uint32_t>(sweep_every, 1)) {
  // Up to the age where even the 16-bit maximum has decayed below 1e-6.
  for (float p = 1.0f; decay_pow_.size() < 4096 && (decay_ >= 1.0f || p * 65535.0f > 1e-6f); p *= decay_)
    decay_pow_.push_back(p);
  // Load factor at most 0.8 keeps linear probes short; at least one slot
  // always stays empty so probes end. capacity + capacity/4 slots of 40 bytes:
  // at most 50 bytes per page of capacity (from capacity 4 up).
  max_slots_ = capacity_ + std::max<size_t>(capacity_ / 4, 1);
  slots_.resize(std::min<size_t>(max_slots_, 4096));  // grows as pages arrive
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

void PageTable::grow() {
  std::vector<PageEntry> old;
  old.swap(slots_);
  slots_.assign(std::min(max_slots_, old.size() * 2), PageEntry{});
  const size_t n = slots_.size();
  for (const auto& e : old) {
    if (e.key == 0) continue;
    size_t i = home(e.key);
    while (slots_[i].key != 0) i = (i + 1 == n ? 0 : i + 1);
    slots_[i] = e;
  }
}

PageEntry* PageTable::add(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES],
                          uint16_t mem_node) {
  if (key == 0) return nullptr;
  // Double before the load passes 0.8 (the cap keeps one slot free).
  if (slots_.size() < max_slots_ && (stats_.pages + 1) * 5 > slots_.size() * 4 && !find(key)) grow();
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
    e.last_seen = now_;
    ++stats_.pages;
    ++stats_.inserted;
  }
  const float d = decay_since(e.last_seen);
  e.heat = e.heat * d + static_cast<float>(accesses);
  for (int l = 0; l < MB_CPU_LANES; ++l) {
    float v = e.lane_heat[l] * d + (lanes ? lanes[l] : 0);
    e.lane_heat[l] = static_cast<uint16_t>(std::min(65535.0f, v));
  }
  e.last_seen = now_;
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
  if (now_ % sweep_every_ == 0 || stats_.pages >= capacity_) forget_cold();
}

uint64_t PageTable::forget_cold() {
  uint64_t before = stats_.forgotten;
  erase_if([this](const PageEntry& e) { return now_ - e.last_seen >= forget_after_ && heat(e) < forget_heat_; },
           &stats_.forgotten);
  return stats_.forgotten - before;
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

bool PageTable::erase(uint64_t key) {
  PageEntry* e = find(key);
  if (!e) return false;
  erase_at(static_cast<size_t>(e - slots_.data()));
  ++stats_.removed_gone;
  return true;
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
