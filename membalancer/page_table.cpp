#include "membalancer/page_table.h"

#include <algorithm>
#include <cmath>

namespace mb {

PageTable::PageTable(size_t capacity, float decay, uint32_t forget_after, float forget_heat, uint32_t sweep_every)
    : capacity_(std::max<size_t>(capacity, 1)),
      decay_(decay),
      forget_after_(forget_after),
      forget_heat_(forget_heat),
      sweep_every_(std::max<uint32_t>(sweep_every, 1)) {
  rebuild_decay();
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

void PageTable::rebuild_decay() {
  // Up to the age where even the 16-bit maximum has decayed below 1e-6.
  decay_pow_.clear();
  float p = 1.0f;
  for (uint32_t age = 0; decay_pow_.size() < kRing && p * 65535.0f > 1e-6f; ++age) {
    decay_pow_.push_back(p);
    p *= decay_ * kept_[(now_ - age) % kRing];
  }
}

// Adaptive forgetting. The overlap of this interval's samples (c_i of N)
// with the heat before it (h_i of H, all pages) is sum(sqrt(c_i h_i)) /
// sqrt(N H) (Bhattacharyya): 1 when the samples spread as the heat
// predicted, near 0 when they fell on other pages. Below kChangedOverlap
// times its usual level the pattern changed, and the heat from before is
// kept as much as it still explains: samples drawn from a mix of the old
// pattern (share a) and pages it did not cover have an overlap of sqrt(a),
// so about rel^2 of this interval's samples follow the old heat. The heat
// before keeps at most that share of itself, and at most that share of
// this interval's samples: decay builds heat up to many intervals' worth
// (8 at 0.875), and scaled by rel^2 alone an old hot set, still sampled
// now and then, kept a heat of several intervals of its old rate and
// outranked the new hot set for two more intervals.
void PageTable::end_interval() {
  if (ended_) return;
  ended_ = true;
  float kept = 1.0f;
  last_overlap_ = -1;
  if (samples_now_ > 0 && total_heat_ > 0) {
    last_overlap_ = std::min(1.0, overlap_now_ / std::sqrt(samples_now_ * total_heat_));
    // Sampling noise alone lowers the overlap (sparse samples), so it is
    // judged against its usual level, followed while the pattern holds.
    if (typical_overlap_ < 0) typical_overlap_ = last_overlap_;
    const double rel = last_overlap_ / std::max(typical_overlap_, 1e-9);
    if (rel < kChangedOverlap) {
      const double share = rel * rel;
      kept = static_cast<float>(std::max(share * std::min(1.0, samples_now_ / total_heat_), 1.0 / 64));
    } else {
      typical_overlap_ = 0.75 * typical_overlap_ + 0.25 * last_overlap_;
    }
  }
  if (kept < 1.0f) {
    kept_[now_ % kRing] = kept;
    rebuild_decay();
  }
  total_heat_ = total_heat_ * kept + samples_now_;
}

float PageTable::noise_ratio() const {
  if (!first_) return 1.0f;
  const size_t ages = std::min<size_t>(decay_pow_.size(), static_cast<size_t>(now_ - *first_) + 1);
  double sum = 0, squares = 0;
  for (size_t a = 0; a < ages; ++a) {
    sum += decay_pow_[a];
    squares += static_cast<double>(decay_pow_[a]) * decay_pow_[a];
  }
  return sum > 0 ? static_cast<float>(squares / sum) : 1.0f;
}

PageEntry* PageTable::entry_for(uint64_t key, bool* inserted) {
  *inserted = false;
  // Double before the load passes 0.8 (the cap keeps one slot free).
  if (slots_.size() < max_slots_ && (stats_.pages + 1) * 5 > slots_.size() * 4 && !find(key)) grow();
  size_t n = slots_.size();
  size_t i = home(key);
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1 == n ? 0 : i + 1);
  PageEntry& e = slots_[i];
  if (e.key == 0) {
    if (stats_.pages >= capacity_) return nullptr;
    e = PageEntry{};
    e.key = key;
    e.last_seen = now_ - 1;  // nothing before this interval
    ++stats_.pages;
    ++stats_.inserted;
    *inserted = true;
  }
  return &e;
}

PageEntry* PageTable::add(uint64_t key, uint32_t accesses, const uint16_t lanes[MB_CPU_LANES],
                          uint16_t mem_node) {
  if (key == 0) return nullptr;
  bool inserted;
  PageEntry* found = entry_for(key, &inserted);
  if (!found) {
    stats_.dropped_full += accesses;
    return nullptr;
  }
  if (inserted) arrivals_.add(accesses);
  PageEntry& e = *found;
  const float c = static_cast<float>(accesses);
  const uint16_t keep_flags = e.flags & ((1u << kPageFreshShift) - 1);
  float d, fresh;
  if (e.last_seen == now_) {
    // Again in the same interval: the part added now grows.
    const float f = static_cast<float>(e.flags >> kPageFreshShift) / kPageFreshMax;
    const float before = e.heat * (1 - f), now_part = e.heat * f;
    overlap_now_ += std::sqrt(static_cast<double>(now_part + c) * before) - std::sqrt(static_cast<double>(now_part) * before);
    d = 1.0f;
    e.heat += c;
    fresh = e.heat > 0 ? (now_part + c) / e.heat : 1.0f;
  } else {
    // The heat before this interval (a kept share set by end_interval
    // applies at reading time, not here).
    d = carried(e);
    const float before = e.heat * d;
    overlap_now_ += std::sqrt(static_cast<double>(c) * before);
    e.heat = before + c;
    fresh = e.heat > 0 ? c / e.heat : 1.0f;
  }
  samples_now_ += c;
  fresh = std::clamp(fresh, 0.0f, 1.0f);
  e.flags = keep_flags | static_cast<uint16_t>(std::lround(fresh * kPageFreshMax) << kPageFreshShift);
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

PageTable::HeatParts PageTable::parts_of(const PageEntry& e) const {
  HeatParts p;
  float d = 1.0f;
  if (e.last_seen == now_) {
    const float f = static_cast<float>(e.flags >> kPageFreshShift) / kPageFreshMax;
    p.before = e.heat * (1 - f);
    p.fresh = e.heat * f;
  } else {
    d = carried(e);
    p.before = e.heat * d;
  }
  for (int l = 0; l < MB_CPU_LANES; ++l) p.lanes[l] = e.lane_heat[l] * d;
  return p;
}

bool PageTable::split(uint64_t first) {
  bool split = false;
  for (uint64_t k = first; k < first + MB_HUGE_BASE_PAGES; ++k) {
    PageEntry* e = find(k);
    if (!e || !e->huge()) continue;
    split = true;
    e->flags &= static_cast<uint16_t>(~kPageHuge);
    if (huge_heat_ != CollapseHeat::kSum) continue;  // a scan's bit: each base page's as it was
    // The huge page's accesses were its base pages' together: each keeps its
    // share (the table's sums with it). Lanes say which CPUs' nodes access
    // the page, in proportion: they stay.
    const HeatParts p = parts_of(*e);
    constexpr double kLeft = 1.0 - 1.0 / static_cast<double>(MB_HUGE_BASE_PAGES);
    total_heat_ = std::max(0.0, total_heat_ - kLeft * p.before);
    samples_now_ = std::max(0.0, samples_now_ - kLeft * p.fresh);
    overlap_now_ = std::max(0.0, overlap_now_ - kLeft * std::sqrt(p.before * p.fresh));
    e->heat /= static_cast<float>(MB_HUGE_BASE_PAGES);
  }
  return split;
}

bool PageTable::collapse(uint64_t first, CollapseHeat how) {
  if (first == 0) return false;
  bool merges = false;
  for (uint64_t k = first; k < first + MB_HUGE_BASE_PAGES && !merges; ++k)
    if (const PageEntry* e = find(k)) merges = !e->huge();
  if (!merges) return false;
  HeatParts sum, huge_page;  // sum: the huge page's heat, of the base pages merged so far
  bool had_huge = false, merged = false;
  auto merge = [&](const HeatParts& p) {
    if (how == CollapseHeat::kSum) sum.add(p);
    else if (!merged || p.before + p.fresh > sum.before + sum.fresh) sum = p;
    merged = true;
  };
  for (uint64_t k = first; k < first + MB_HUGE_BASE_PAGES; ++k) {
    const PageEntry* e = find(k);
    if (!e) continue;
    const HeatParts p = parts_of(*e);
    // The table's sums lose the page as it was (it comes back below).
    total_heat_ -= p.before;
    samples_now_ -= p.fresh;
    overlap_now_ -= std::sqrt(p.before * p.fresh);
    if (!e->huge()) merge(p);
    else huge_page = p, had_huge = true;  // each base page of it holds the huge page's heat
  }
  if (had_huge) merge(huge_page);
  const double heat = sum.before + sum.fresh;
  const float fresh = heat > 0 ? static_cast<float>(sum.fresh / heat) : 1.0f;
  uint64_t held = 0;
  for (uint64_t k = first; k < first + MB_HUGE_BASE_PAGES; ++k) {
    bool inserted;
    PageEntry* e = entry_for(k, &inserted);
    if (!e) continue;  // the table is full: the huge page's samples count it dropped
    ++held;
    e->heat = static_cast<float>(heat);
    e->last_seen = now_;
    e->flags = static_cast<uint16_t>(kPageHuge | std::lround(fresh * kPageFreshMax) << kPageFreshShift);
    for (int l = 0; l < MB_CPU_LANES; ++l) e->lane_heat[l] = static_cast<uint16_t>(std::min(65535.0f, sum.lanes[l]));
  }
  // The table's sums as if the 2 MiB had been one huge page all along (a
  // huge page counts once per base page, as its samples do).
  const double n = static_cast<double>(held);
  total_heat_ = std::max(0.0, total_heat_ + n * sum.before);
  samples_now_ = std::max(0.0, samples_now_ + n * sum.fresh);
  overlap_now_ = std::max(0.0, overlap_now_ + n * std::sqrt(sum.before * sum.fresh));
  return true;
}

void PageTable::erase_at(size_t i) {
  total_heat_ = std::max(0.0, total_heat_ - heat(slots_[i]));
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

Arrivals& Arrivals::operator+=(const Arrivals& o) {
  for (int b = 0; b < kBins; ++b) {
    pages[b] += o.pages[b];
    accesses[b] += o.accesses[b];
  }
  return *this;
}

uint64_t Arrivals::total_pages() const {
  uint64_t n = 0;
  for (uint64_t p : pages) n += p;
  return n;
}

double Arrivals::mean_of_hottest(uint64_t n) const {
  uint64_t taken = 0;
  double sum = 0;
  for (int b = kBins - 1; b >= 0 && taken < n; --b) {
    if (!pages[b]) continue;
    const uint64_t k = std::min(pages[b], n - taken);
    sum += static_cast<double>(accesses[b]) * static_cast<double>(k) / static_cast<double>(pages[b]);
    taken += k;
  }
  return taken ? sum / static_cast<double>(taken) : 0.0;
}

void PageTable::begin_interval(uint32_t now) {
  const uint32_t gap = now - now_;
  now_ = now;
  if (!first_) first_ = now;
  kept_[now_ % kRing] = 1.0f;
  rebuild_decay();
  total_heat_ *= decay_since(now_ - gap);
  samples_now_ = overlap_now_ = 0;
  arrivals_ = Arrivals{};
  ended_ = false;
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

void PageTable::remove_processes(const std::unordered_set<uint32_t>& tgids, Removal why) {
  if (tgids.empty()) return;
  erase_if([&](const PageEntry& e) { return tgids.count(e.tgid()) != 0; },
           why == Removal::kExec ? &stats_.removed_exec : &stats_.removed_exited);
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
