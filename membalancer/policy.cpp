#include "membalancer/policy.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <limits>

namespace mb {

void CoolDown::expire(uint32_t now) {
  for (auto it = moved_.begin(); it != moved_.end();) {
    if (now - it->second.at >= intervals_) it = moved_.erase(it);
    else ++it;
  }
}

// From the float's bits: the exponent and the top two mantissa bits, so four
// bins per octave (split linearly within it), with no log per page. Bin 1
// starts at heat 2^-8: anything colder has decayed to nothing.
int HeatHistogram::bin(float heat) {
  if (!(heat > 0)) return 0;
  uint32_t bits;
  std::memcpy(&bits, &heat, sizeof(bits));
  int b = static_cast<int>(bits >> 21) - ((127 - 8) << 2) + 1;
  return b < 1 ? 0 : (b >= kBins ? kBins - 1 : b);
}

float HeatHistogram::bin_floor(int b) {
  uint32_t bits = static_cast<uint32_t>(b - 1 + ((127 - 8) << 2)) << 21;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

float HeatHistogram::threshold_for(uint64_t capacity) const {
  uint64_t sum = 0;
  int lowest = kBins;
  for (int b = kBins - 1; b >= 1; --b) {
    if (sum + counts_[b] > capacity) break;
    sum += counts_[b];
    lowest = b;
  }
  return lowest == kBins ? std::numeric_limits<float>::infinity() : bin_floor(lowest);
}

uint64_t HeatHistogram::pages_at_or_above(float heat) const {
  uint64_t sum = 0;
  for (int b = std::max(1, bin(heat)); b < kBins; ++b) sum += counts_[b];
  return sum;
}

void commit_plan(const Plan& plan, PageTable& table, CoolDown& cool, uint32_t now) {
  for (const auto& m : plan.moves) {
    const uint64_t key = mb_page_key(m.tgid, m.vaddr >> MB_PAGE_SHIFT);
    cool.moved(key, now, m.direction == MoveDirection::kPromote);
    const uint64_t pages = m.huge ? kHugePageBytes / kBasePageBytes : 1;
    for (uint64_t i = 0; i < pages; ++i)
      if (PageEntry* e = table.find(key + i)) e->node = static_cast<uint16_t>(m.to);
  }
}

std::vector<const PlannedMove*> execution_order(const Plan& plan) {
  std::vector<const PlannedMove*> order;
  order.reserve(plan.moves.size());
  for (const auto& m : plan.moves) order.push_back(&m);
  std::stable_sort(order.begin(), order.end(), [](const PlannedMove* a, const PlannedMove* b) {
    auto rank = [](const PlannedMove* m) { return m->direction == MoveDirection::kDemote ? 0 : 1; };
    return std::make_tuple(rank(a), a->tgid, a->to, a->reason) < std::make_tuple(rank(b), b->tgid, b->to, b->reason);
  });
  return order;
}

uint64_t submit_plan(const Plan& plan, Mover& mover, std::vector<const PlannedMove*>* refused_moves) {
  uint64_t refused = 0;
  MoveRequest req;
  std::vector<const PlannedMove*> in_req;  // the moves of req
  auto flush = [&] {
    if (req.pages.empty()) return;
    const uint64_t n = req.pages.size();
    uint64_t pages = 0;
    for (size_t i = 0; i < n; ++i) pages += req.huge[i] ? kHugePageBytes / kBasePageBytes : 1;
    if (!mover.submit(std::move(req))) {
      refused += pages;
      if (refused_moves) refused_moves->insert(refused_moves->end(), in_req.begin(), in_req.end());
    }
    req = MoveRequest{};
    in_req.clear();
  };
  // Few, large requests: one per run of equal (process, target, reason).
  for (const PlannedMove* mp : execution_order(plan)) {
    const PlannedMove& m = *mp;
    if (!req.pages.empty() && (req.pid != static_cast<pid_t>(m.tgid) || req.target_node != m.to ||
                               req.direction != m.direction || req.reason != m.reason))
      flush();
    req.pid = static_cast<pid_t>(m.tgid);
    req.target_node = m.to;
    req.direction = m.direction;
    req.reason = m.reason;
    req.pages.push_back(m.vaddr);
    req.huge.push_back(m.huge);
    req.from.push_back(m.from);
    in_req.push_back(mp);
  }
  flush();
  return refused;
}

uint64_t submit_and_commit(const Plan& plan, Mover& mover, PageTable& table, CoolDown& cool, uint32_t now) {
  std::vector<const PlannedMove*> refused_moves;
  const uint64_t refused = submit_plan(plan, mover, &refused_moves);
  if (refused_moves.empty()) {
    commit_plan(plan, table, cool, now);
    return refused;
  }
  std::sort(refused_moves.begin(), refused_moves.end());
  Plan taken;
  for (const auto& m : plan.moves)
    if (!std::binary_search(refused_moves.begin(), refused_moves.end(), &m)) taken.moves.push_back(m);
  commit_plan(taken, table, cool, now);
  return refused;
}

}  // namespace mb
