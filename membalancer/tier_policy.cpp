#include "membalancer/tier_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

namespace mb {

namespace {

constexpr uint64_t kHugeBasePages = kHugePageBytes / kBasePageBytes;

struct Sampled {
  uint64_t key;
  float heat;
  uint16_t node;
  int8_t tier;
  bool huge;
  uint64_t pages() const { return huge ? kHugeBasePages : 1; }
};

// How far past its tier's threshold a page's heat must be for it to move
// again within the cool-down.
constexpr float kDecisive = 2.0f;

// Whether a page of heat `a` is decisively hotter than one of heat `b`, so
// that exchanging them is worth a migration: by the factor above, and by
// more than sampling noise. Heat sums samples decayed by d per interval; for
// Poisson sampling its variance is about heat / (1 + d), so the difference
// must exceed kNoiseZ standard deviations of the difference.
constexpr float kNoiseZ = 2.0f;
bool decisively_hotter(float a, float b, float decay) {
  return a >= kDecisive * b && (a - b) >= kNoiseZ * std::sqrt((a + b) / (1 + decay));
}

// Per node of the plan: signed byte balances.
struct NodeBook {
  int64_t room = 0;        // free bytes above the high watermark, less planned arrivals
  int64_t low_room = 0;    // free bytes above the low watermark, less planned arrivals
  int64_t demotable = 0;   // bytes of tracked pages here below the tier's threshold
  int64_t need = 0;        // bytes to demote from here
  int64_t watermark_need = 0;  // the part of `need` the low watermark asks for (no exchange)
  // Promotions into this node that need a page to leave: bytes and heat,
  // hottest first (the order they were planned in).
  std::vector<std::pair<int64_t, float>> exchanges;
  bool no_gain = false;  // an exchange stopped: the page arriving was not decisively hotter
};

}  // namespace

TierPolicy::TierPolicy(Tiers tiers, const TierPolicyConfig& cfg) : tiers_(std::move(tiers)), cfg_(cfg) {}

Plan TierPolicy::plan(const PageTable& table, const MemoryState& mem, const CoolDown& cool, TierPlanView* view) const {
  Plan plan;
  const uint32_t now = table.interval();
  const int ntiers = static_cast<int>(tiers_.size());
  if (ntiers < 2) return plan;

  // 1. One walk over the table: the sampled pages of the tiers, compacted
  // (16 bytes each, so the second pass reads a fifth of the memory), and
  // their heat histogram.
  // Node -> tier, as a flat array.
  std::vector<int8_t> tier_of_node(static_cast<size_t>(MB_NODE_UNKNOWN) + 1, -1);
  for (int t = 0; t < ntiers; ++t)
    for (int n : tiers_.tiers[t])
      if (n >= 0 && n < MB_NODE_UNKNOWN) tier_of_node[n] = static_cast<int8_t>(t);
  // A huge page is planned once, at its first base page.
  auto counted = [&](const PageEntry& e) {
    return tier_of_node[e.node] >= 0 && !(e.huge() && (e.vaddr() & (kHugePageBytes - 1)));
  };
  HeatHistogram hist;
  // Scratch kept between passes (per thread): a pass over 1M pages would
  // otherwise fault in 16 MiB afresh every interval.
  thread_local std::vector<Sampled> sampled, promote, cold, mine;
  sampled.clear();
  sampled.reserve(table.size());
  table.visit([&](const PageEntry& e) {
    if (!counted(e)) return;
    Sampled s{e.key, table.heat(e), e.node, tier_of_node[e.node], e.huge()};
    hist.add(s.heat, s.pages());
    sampled.push_back(s);
  });
  plan.stats.candidates = sampled.size();

  auto node_mem = [&](int n) -> NodeMemory {
    auto it = mem.nodes.find(n);
    return it == mem.nodes.end() ? NodeMemory{} : it->second;
  };
  std::map<int, NodeBook> book;
  std::vector<uint64_t> capacity(ntiers, 0);
  for (int t = 0; t < ntiers; ++t) {
    for (int n : tiers_.tiers[t]) {
      const NodeMemory m = node_mem(n);
      const int64_t high = static_cast<int64_t>(m.total_bytes * cfg_.high_watermark);
      const int64_t low = static_cast<int64_t>(m.total_bytes * cfg_.low_watermark);
      NodeBook& b = book[n];
      b.room = static_cast<int64_t>(m.free_bytes) - high;
      b.low_room = static_cast<int64_t>(m.free_bytes) - low;
      // Below the low watermark: back to the high one (upper tiers only).
      if (t < ntiers - 1 && b.low_room < 0) b.need = b.watermark_need = -b.room;
      capacity[t] += m.tree_pages + static_cast<uint64_t>(std::max<int64_t>(0, b.room)) / kBasePageBytes;
    }
  }
  std::vector<float> threshold(ntiers, std::numeric_limits<float>::infinity());
  uint64_t cumulative = 0;
  for (int t = 0; t < ntiers - 1; ++t) {
    cumulative += capacity[t];
    threshold[t] = std::max(cfg_.min_hot_heat, hist.threshold_for(cumulative));
  }
  auto desired_tier = [&](float heat) {
    for (int t = 0; t < ntiers - 1; ++t)
      if (heat >= threshold[t]) return t;
    return ntiers - 1;
  };
  // 2. Second pass (over the compact copy): promotion candidates, pages cold for their (upper)
  // tier, and the bytes hot enough to stay on each node.
  promote.clear();
  cold.clear();
  std::vector<int64_t> hot_bytes(tier_of_node.size(), 0);
  for (const Sampled& s : sampled) {
    const int t = s.tier;
    if (t > 0 && desired_tier(s.heat) < t) promote.push_back(s);
    if (s.heat >= threshold[t]) hot_bytes[s.node] += static_cast<int64_t>(s.pages() * kBasePageBytes);
    else if (t < ntiers - 1) cold.push_back(s);
  }
  // Tracked bytes on each node that are cold for its tier: all resident
  // pages less the sampled ones hot enough to stay.
  for (auto& [n, b] : book)
    b.demotable = std::max<int64_t>(0, static_cast<int64_t>(node_mem(n).tree_pages * kBasePageBytes) - hot_bytes[n]);

  uint64_t budget = cfg_.budget_bytes ? cfg_.budget_bytes : std::numeric_limits<uint64_t>::max();
  auto spend = [&](uint64_t bytes) {
    if (budget < bytes) return false;
    budget -= bytes;
    return true;
  };

  // 2. Promotions, hottest first.
  std::unordered_set<uint64_t> promoted;
  uint64_t reserved_for_room = 0;  // budget set aside for the demotions promotions need
  std::vector<PlannedMove> promotions;
  auto hotter = [](const Sampled& a, const Sampled& b) { return a.heat > b.heat; };
  for_each_ordered(promote, hotter, [&](const Sampled& sp) {
    const Sampled* s = &sp;
    const int d = desired_tier(s->heat);
    // A page moved within the cool-down moves back only when its heat is
    // decisively on the other side (twice the threshold up, half of it
    // down): that is a changed access pattern, not ping-pong. Moving it the
    // same way again waits: someone moved it back, or the move failed.
    if (cool.cooling(s->key, now) && (cool.last_up(s->key) || s->heat < kDecisive * threshold[d])) {
      ++plan.stats.cooling;
      return true;
    }
    const int64_t bytes = static_cast<int64_t>(s->pages() * kBasePageBytes);
    // The node of tier d (or, when it is full, of the tiers between d and
    // the page's own) with the most room, counting what demotions can free.
    int target = -1;
    int64_t best = 0;
    for (int t = d; t < s->tier && target < 0; ++t) {
      for (int n : tiers_.tiers[t]) {
        const NodeBook& b = book[n];
        const int64_t avail = std::max<int64_t>(0, b.room) + b.demotable - b.watermark_need;
        if (avail >= bytes && (target < 0 || avail > best)) target = n, best = avail;
      }
    }
    if (target < 0) {
      ++plan.stats.no_room;
      return true;
    }
    NodeBook& b = book[target];
    const bool needs_room = b.room < bytes;
    if (!spend(static_cast<uint64_t>(needs_room ? 2 * bytes : bytes))) {
      ++plan.stats.over_budget;
      return false;
    }
    if (needs_room) {
      b.need += bytes;
      b.demotable -= bytes;
      b.exchanges.emplace_back(bytes, s->heat);
      reserved_for_room += static_cast<uint64_t>(bytes);
    }
    b.room -= bytes;
    b.low_room -= bytes;
    const uint32_t tgid = mb_key_tgid(s->key);
    const uint64_t vaddr = mb_key_vpn(s->key) << MB_PAGE_SHIFT;
    promotions.push_back({tgid, vaddr, s->huge, s->node, target, MoveDirection::kPromote, MoveReason::kHot, s->heat});
    promoted.insert(s->key);
    plan.stats.planned += s->pages();
    if (view) view->promote_pages += s->pages();
    return true;
  });
  budget += reserved_for_room;

  // 3. Demotions: coldest first, to the lower tier with the most room.
  auto demote_target = [&](int from_tier, int64_t bytes) {
    for (int t = from_tier + 1; t < ntiers; ++t) {
      int target = -1;
      int64_t best = 0;
      for (int n : tiers_.tiers[t]) {
        const int64_t r = book[n].low_room;
        if (r >= bytes && (target < 0 || r > best)) target = n, best = r;
      }
      if (target >= 0) return target;
    }
    return -1;
  };
  std::vector<PlannedMove> demotions;
  for (int t = 0; t < ntiers - 1; ++t) {
    for (int n : tiers_.tiers[t]) {
      NodeBook& b = book[n];
      if (b.need <= 0) continue;
      bool stop = false;
      // Demotions beyond the watermark's make room for promotions: the
      // coldest page leaving pairs with the hottest page arriving, and so
      // on. An exchange is made only when the page arriving is decisively
      // hotter than the page leaving; past the first pair that is not,
      // none is (arrivals get colder, departures hotter), and the
      // promotions left without room give way below. Sampling noise among
      // equally warm pages so moves nothing.
      int64_t demoted_bytes = 0;
      size_t pair = 0;
      int64_t paired_end = b.watermark_need;  // byte offset where exchanges[pair] ends
      if (!b.exchanges.empty()) paired_end += b.exchanges[0].first;
      auto arriving_heat = [&](int64_t offset) -> float {
        if (offset < b.watermark_need) return std::numeric_limits<float>::infinity();
        while (pair < b.exchanges.size() && offset >= paired_end)
          if (++pair < b.exchanges.size()) paired_end += b.exchanges[pair].first;
        return pair < b.exchanges.size() ? b.exchanges[pair].second : std::numeric_limits<float>::infinity();
      };
      auto take = [&](uint32_t tgid, uint64_t vaddr, bool huge, float heat, bool unsampled) {
        const uint64_t key = mb_page_key(tgid, vaddr >> MB_PAGE_SHIFT);
        if (promoted.count(key)) return true;
        const float arriving = arriving_heat(demoted_bytes);
        const bool exchange = arriving < std::numeric_limits<float>::infinity();
        // Within the cool-down a page promoted leaves again only for a
        // decisively hotter one (exchange), or, for the watermark, when it
        // is decisively cold; a page that came up some other way stays.
        if (cool.cooling(key, now) &&
            (!cool.last_up(key) || (!exchange && heat * kDecisive >= threshold[t]))) {
          ++plan.stats.cooling;
          return true;
        }
        if (exchange && !decisively_hotter(arriving, heat, table.decay())) {
          b.no_gain = true;
          stop = true;
          return false;
        }
        const int64_t bytes = static_cast<int64_t>(huge ? kHugePageBytes : kBasePageBytes);
        const int target = demote_target(t, bytes);
        if (target < 0) {
          ++plan.stats.no_room;
          stop = true;
          return false;
        }
        if (!spend(static_cast<uint64_t>(bytes))) {
          ++plan.stats.over_budget;
          stop = true;
          return false;
        }
        book[target].low_room -= bytes;
        book[target].room -= bytes;
        b.need -= bytes;
        demoted_bytes += bytes;
        demotions.push_back({tgid, vaddr, huge, n, target, MoveDirection::kDemote, MoveReason::kWatermark, heat});
        plan.stats.planned += huge ? kHugeBasePages : 1;
        if (unsampled) plan.stats.unsampled_demoted += huge ? kHugeBasePages : 1;
        if (view) view->demote_pages += huge ? kHugeBasePages : 1;
        return b.need > 0;
      };
      // Pages no sample saw (or whose heat decayed to nothing) first.
      if (mem.resident) {
        mem.resident(n, [&](uint32_t tgid, uint64_t vaddr, bool huge) {
          const uint64_t key = mb_page_key(tgid, vaddr >> MB_PAGE_SHIFT);
          const PageEntry* e = table.find(key);
          if (e && HeatHistogram::bin(table.heat(*e)) > 0) return true;  // sampled: below
          return take(tgid, vaddr, huge, e ? table.heat(*e) : 0, true);
        });
      }
      if (stop || b.need <= 0) continue;
      // Then sampled pages of this node below its tier's threshold (those
      // decayed to nothing went with the never-sampled ones).
      mine.clear();
      for (const auto& s : cold)
        if (s.node == n && (!mem.resident || HeatHistogram::bin(s.heat) > 0)) mine.push_back(s);
      for_each_ordered(mine, [](const Sampled& a, const Sampled& c) { return a.heat < c.heat; }, [&](const Sampled& s) {
        return take(mb_key_tgid(s.key), mb_key_vpn(s.key) << MB_PAGE_SHIFT, s.huge, s.heat, false);
      });
    }
  }

  // Room the demotions could not make (the cold pages there are cooling
  // down, say): the coldest promotions into that node give way, or they
  // would overfill it.
  for (auto it = promotions.rbegin(); it != promotions.rend(); ++it) {
    NodeBook& b = book[it->to];
    if (b.need <= 0 || b.room >= 0) continue;
    const int64_t bytes = static_cast<int64_t>(it->bytes());
    b.need -= bytes;
    b.room += bytes;
    const uint64_t pages = it->bytes() / kBasePageBytes;
    plan.stats.planned -= pages;
    if (view) view->promote_pages -= pages;
    ++(b.no_gain ? plan.stats.no_gain : plan.stats.no_room);
    it->to = -1;  // dropped
  }
  std::erase_if(promotions, [](const PlannedMove& m) { return m.to < 0; });
  plan.moves = std::move(demotions);
  plan.moves.insert(plan.moves.end(), promotions.begin(), promotions.end());
  for (const auto& m : plan.moves) plan.stats.planned_bytes += m.bytes();
  plan.stats.hot_threshold = threshold[0];
  if (view) {
    view->thresholds.assign(threshold.begin(), threshold.end() - 1);
    view->capacity_pages = capacity;
  }
  return plan;
}

}  // namespace mb
