#include "profiler/process_keys.h"

#include <algorithm>
#include <string>

#include "membalancer/error.h"

namespace mb::prof {

uint32_t ProcessKeys::lookup(uint32_t tgid, uint64_t time_ns) {
  last_tgid_ = tgid;
  if (!procs_) {
    lo_ = 0, hi_ = UINT64_MAX;
    return last_key_ = tgid;
  }
  Cursor& c = cursors_[tgid];
  if (c.lo >= c.hi || time_ns < c.lo || time_ns >= c.hi) assign(tgid, time_ns, &c);
  lo_ = c.lo, hi_ = c.hi;
  return last_key_ = c.key;
}

ProcessKeys::Place ProcessKeys::place(uint32_t tgid, uint64_t time_ns) const {
  Place p;
  p.span = procs_->span_at(tgid, time_ns);
  if (p.span < 0) return p;
  const auto& sp = procs_->spans()[static_cast<size_t>(p.span)];
  p.lo = sp.begin_ns;
  p.hi = sp.end_ns;
  if (split_) {
    // The part between the swaps around time_ns.
    p.part = std::upper_bound(sp.swaps.begin(), sp.swaps.end(), time_ns) - sp.swaps.begin();
    if (p.part > 0) p.lo = std::max(p.lo, sp.swaps[p.part - 1]);
    if (p.part < sp.swaps.size()) p.hi = std::min(p.hi, sp.swaps[p.part]);
  }
  return p;
}

void ProcessKeys::assign(uint32_t tgid, uint64_t time_ns, Cursor* c) {
  const Place p = place(tgid, time_ns);
  c->lo = p.lo, c->hi = p.hi;
  auto [it, fresh] = keys_.try_emplace({tgid, p.span, p.part}, static_cast<uint32_t>(who_.size()));
  if (!fresh) {
    c->key = it->second;
    return;
  }
  // Keys share 64 bits with a page number (mb_page_key).
  if (who_.size() >= (size_t{1} << MB_KEY_TGID_BITS))
    throw UsageError("more than " + std::to_string(size_t{1} << MB_KEY_TGID_BITS) +
                     " processes and address spaces in one profile");
  const uint32_t key = static_cast<uint32_t>(who_.size());
  // The first key handed out for its span stands for all its parts.
  const uint32_t program = programs_.try_emplace({tgid, p.span}, key).first->second;
  who_.push_back({tgid, p.span, time_ns, program, static_cast<uint32_t>(p.part)});
  std::vector<uint32_t>& parts = parts_[program];
  parts.insert(std::upper_bound(parts.begin(), parts.end(), p.part,
                                [&](size_t part, uint32_t k) { return part < who_[k].part; }),
               key);
  any_split_ |= parts.size() > 1;
  c->key = key;
}

int64_t ProcessKeys::find(uint32_t tgid, uint64_t time_ns) const {
  if (!procs_) return tgid;
  const Place p = place(tgid, time_ns);
  const auto it = keys_.find({tgid, p.span, p.part});
  return it == keys_.end() ? -1 : int64_t{it->second};
}

const ProfileMap* ProcessKeys::mapping(uint32_t key, uint64_t addr) const {
  const Who w = who(key);
  return procs_ ? procs_->mapping(w.tgid, addr, w.time_ns) : nullptr;
}

uint32_t ProcessKeys::page_owner(uint32_t key, uint64_t addr) const {
  if (!any_split_) return key;
  const auto& parts = parts_.at(who_[key].program);
  if (parts.size() < 2) return key;
  const ProfileMap* m = mapping(key, addr);
  for (uint32_t other : parts) {
    if (other == key) break;
    const ProfileMap* o = mapping(other, addr);
    if (m == o || (m && o && ProfileProcesses::same_contents(*m, *o))) return other;
  }
  return key;
}

}  // namespace mb::prof
