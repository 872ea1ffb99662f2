// An open-addressing hash map (linear probing, power-of-two capacity, load
// <= 3/4) for per-sample counting (profiler reports, replay): one probe in the common case
// and no allocation per entry. Keys have a reserved empty value (Ops::empty).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mb {

template <typename K, typename V, typename Ops>
class FlatMap {
 public:
  FlatMap() { rehash(1024); }

  // The value of k, inserted value-initialised if absent.
  V& operator[](const K& k) {
    size_t i = Ops::hash(k) >> shift_;
    for (;;) {
      auto& slot = slots_[i];
      if (slot.first == k) return slot.second;
      if (slot.first == Ops::empty()) {
        if ((size_ + 1) * 4 > slots_.size() * 3) {  // load <= 3/4
          rehash(slots_.size() * 2);
          return (*this)[k];
        }
        slot.first = k;
        ++size_;
        return slot.second;
      }
      i = (i + 1) & mask_;
    }
  }
  V* find(const K& k) { return const_cast<V*>(std::as_const(*this).find(k)); }
  const V* find(const K& k) const {
    size_t i = Ops::hash(k) >> shift_;
    for (;;) {
      const auto& slot = slots_[i];
      if (slot.first == k) return &slot.second;
      if (slot.first == Ops::empty()) return nullptr;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }
  // Removes k; false when it was absent. Backward-shift deletion: the
  // entries after it in its probe run move up, so lookups never need
  // tombstones.
  bool erase(const K& k) {
    size_t i = Ops::hash(k) >> shift_;
    while (!(slots_[i].first == k)) {
      if (slots_[i].first == Ops::empty()) return false;
      i = (i + 1) & mask_;
    }
    for (size_t j = (i + 1) & mask_; !(slots_[j].first == Ops::empty()); j = (j + 1) & mask_) {
      const size_t home = Ops::hash(slots_[j].first) >> shift_;
      // The entry at j may fill the hole at i unless its home lies after i
      // (cyclically) up to j: then a lookup would start past the hole.
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = std::move(slots_[j]);
        i = j;
      }
    }
    slots_[i] = {Ops::empty(), V{}};
    --size_;
    return true;
  }
  // Empties the map, keeping its capacity.
  void clear() {
    if (!size_) return;
    for (auto& s : slots_) s = {Ops::empty(), V{}};
    size_ = 0;
  }
  // Starts loading k's home slot into the cache (batched lookups hide the
  // memory latency of a large table).
  void prefetch(const K& k) const { __builtin_prefetch(&slots_[Ops::hash(k) >> shift_], 1); }
  // Room for n keys without rehashing.
  void reserve(size_t n) {
    size_t cap = slots_.size();
    while (cap * 3 < n * 4) cap *= 2;
    if (cap != slots_.size()) rehash(cap);
  }

  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& s : slots_)
      if (!(s.first == Ops::empty())) fn(s.first, s.second);
  }
  // Until fn returns false.
  template <typename Fn>
  void for_each_while(Fn&& fn) const {
    for (const auto& s : slots_)
      if (!(s.first == Ops::empty()) && !fn(s.first, s.second)) return;
  }
  template <typename Fn>
  void for_each_mut(Fn&& fn) {
    for (auto& s : slots_)
      if (!(s.first == Ops::empty())) fn(s.first, s.second);
  }

 private:
  void rehash(size_t cap) {
    std::vector<std::pair<K, V>> old;
    old.swap(slots_);
    slots_.assign(cap, {Ops::empty(), V{}});
    mask_ = cap - 1;
    int bits = 0;
    while ((size_t{1} << bits) < cap) ++bits;
    shift_ = 64 - bits;
    size_ = 0;
    for (auto& s : old)
      if (!(s.first == Ops::empty())) (*this)[s.first] = std::move(s.second);
  }
  std::vector<std::pair<K, V>> slots_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 54;
};

// 64-bit keys (page keys, tgids) with ~0 as the empty key.
struct U64KeyOps {
  static uint64_t empty() { return ~0ULL; }
  static uint64_t hash(uint64_t k) { return k * 0x9E3779B97F4A7C15ULL; }
};

}  // namespace mb
