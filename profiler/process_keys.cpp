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

void ProcessKeys::assign(uint32_t tgid, uint64_t time_ns, Cursor* c) {
  const int64_t span = procs_->span_at(tgid, time_ns);
  size_t part = 0;
  if (span >= 0) {
    const auto& sp = procs_->spans()[static_cast<size_t>(span)];
    c->lo = sp.begin_ns;
    c->hi = sp.end_ns;
    if (split_) {
      // The part between the swaps around time_ns.
      part = std::upper_bound(sp.swaps.begin(), sp.swaps.end(), time_ns) - sp.swaps.begin();
      if (part > 0) c->lo = std::max(c->lo, sp.swaps[part - 1]);
      if (part < sp.swaps.size()) c->hi = std::min(c->hi, sp.swaps[part]);
    }
  } else {
    c->lo = 0, c->hi = UINT64_MAX;
  }
  auto [it, fresh] = keys_.try_emplace({tgid, span, part}, static_cast<uint32_t>(who_.size()));
  if (!fresh) {
    c->key = it->second;
    return;
  }
  // Keys share 64 bits with a page number (mb_page_key).
  if (who_.size() >= (size_t{1} << MB_KEY_TGID_BITS))
    throw UsageError("more than " + std::to_string(size_t{1} << MB_KEY_TGID_BITS) +
                     " processes and address spaces in one profile");
  // The first key handed out for its span stands for all its parts.
  const uint32_t program = programs_.try_emplace({tgid, span}, static_cast<uint32_t>(who_.size())).first->second;
  who_.push_back({tgid, span, time_ns, program});
  c->key = static_cast<uint32_t>(who_.size() - 1);
}

}  // namespace mb::prof
