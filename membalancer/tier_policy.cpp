#include "membalancer/tier_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
// that exchanging them is worth a migration: its estimated real rate (ea, eb:
// RateEstimate) a quarter higher, and the heats apart by more than sampling
// noise. Heat sums samples decayed by d per interval; for Poisson sampling
// its variance is about heat / (1 + d), so the difference must exceed
// kNoiseZ standard deviations of the difference. 1.5, not 2: right after
// first touch the fast tier holds pages no sample chose, and a stricter test
// keeps them there for intervals while a skewed (Zipf) tail's hotter pages
// wait (docs/benchmarks.md, policy quality: 1.5 served more accesses than
// 1.25, 1.75 or 2 over thirty seeds, and the same on uniform hot sets).
constexpr float kExchangeGain = 1.25f;
constexpr float kNoiseZ = 1.5f;
bool decisively_hotter(float ea, float eb, float a, float b, float decay) {
  return ea >= kExchangeGain * eb && (a - b) >= kNoiseZ * std::sqrt((a + b) / (1 + decay));
}

// A page's real access rate, in heat units, estimated from its heat and its
// neighbours' (empirical Bayes). Among the pages within two octaves of its
// heat, the spread that sampling noise explains (variance heat / (1 + d)) is
// no evidence; only the rest is. So the estimate moves from their mean
// towards the page's own heat by the share of their variance that is not
// noise: pages that all have the same rate (a uniformly warm set) come out
// equal however their samples happened to fall, and are not exchanged for
// one another, while pages of truly different rates (a Zipf tail) keep
// their order and distance.
class RateEstimate {
 public:
  explicit RateEstimate(float decay) : decay_(decay) {}
  bool ready() const { return !n_.empty(); }
  // Sums of the sampled pages' heat by bin (buckets: rows x kBins).
  void fit(const std::vector<std::vector<Sampled>>& buckets, size_t rows) {
    constexpr int kBins = HeatHistogram::kBins;
    n_.assign(kBins + 1, 0);
    s1_ = s2_ = n_;
    for (size_t r = 0; r < rows; ++r)
      for (int bin = 1; bin < kBins; ++bin)
        for (const Sampled& x : buckets[r * kBins + bin]) {
          n_[bin + 1] += 1;
          s1_[bin + 1] += x.heat;
          s2_[bin + 1] += static_cast<double>(x.heat) * x.heat;
        }
    for (int bin = 1; bin <= kBins; ++bin) {  // prefix sums
      n_[bin] += n_[bin - 1];
      s1_[bin] += s1_[bin - 1];
      s2_[bin] += s2_[bin - 1];
    }
  }
  float operator()(float heat) const {
    // Two octaves either side (4 bins per octave): a narrower window's mean
    // would follow the page's own heat, and noise would look like a gain.
    constexpr int kSpan = 8;
    const int b = HeatHistogram::bin(heat);
    if (b < 1) return heat;
    const int lo = std::max(1, b - kSpan), hi = std::min(HeatHistogram::kBins - 1, b + kSpan);
    const double n = n_[hi + 1] - n_[lo];
    if (n < 2) return heat;
    const double mean = (s1_[hi + 1] - s1_[lo]) / n;
    const double var = (s2_[hi + 1] - s2_[lo]) / n - mean * mean;
    const double noise = mean / (1 + decay_);
    const double real_share = var > noise ? 1 - noise / var : 0.0;
    return static_cast<float>(mean + real_share * (heat - mean));
  }

 private:
  float decay_;
  std::vector<double> n_, s1_, s2_;  // pages, heat and heat² of bins below i (prefix)
};

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

void AllocationReserve::observe(uint64_t tree_pages, const Arrivals& arrivals) {
  if (last_) {
    if (growth_.size() == kWindow) {
      growth_.erase(growth_.begin());
      arrivals_.erase(arrivals_.begin());
    }
    growth_.push_back(tree_pages > *last_ ? tree_pages - *last_ : 0);
    arrivals_.push_back(arrivals);
  }
  last_ = tree_pages;
}

std::optional<float> AllocationReserve::arrival_heat() const {
  uint64_t grown = 0;
  Arrivals all;
  for (size_t i = 0; i < growth_.size(); ++i) {
    grown += growth_[i];
    all += arrivals_[i];
  }
  if (!grown) return std::nullopt;
  // Pages sampled for the first time that were not allocated now (resident
  // all along, or forgotten and back) come with them: the hottest as many
  // as were allocated stand for the allocations.
  return static_cast<float>(all.mean_of_hottest(grown));
}

std::optional<uint64_t> AllocationReserve::bytes() const {
  if (growth_.empty()) return std::nullopt;
  return 2 * *std::max_element(growth_.begin(), growth_.end()) * kBasePageBytes;
}

TierPolicy::TierPolicy(Tiers tiers, const TierPolicyConfig& cfg) : tiers_(std::move(tiers)), cfg_(cfg) {}

Plan TierPolicy::plan(const PageTable& table, const MemoryState& mem, const CoolDown& cool, TierPlanView* view) const {
  Plan plan;
  const uint32_t now = table.interval();
  const int ntiers = static_cast<int>(tiers_.size());
  if (ntiers < 2) return plan;

  // 1. One walk over the table: the sampled pages of the tiers, compacted
  // (16 bytes each) into buckets by node and heat bin, so that the
  // thresholds, the bytes that stay and the candidates hottest (or coldest)
  // first are read bin by bin afterwards, without a second walk or a sort
  // of the whole table.
  // Node -> tier and node -> bucket row, as flat arrays.
  std::vector<int8_t> tier_of_node(static_cast<size_t>(MB_NODE_UNKNOWN) + 1, -1);
  std::vector<int16_t> row_of_node(tier_of_node.size(), -1);
  std::vector<int> node_of_row;
  for (int t = 0; t < ntiers; ++t)
    for (int n : tiers_.tiers[t])
      if (n >= 0 && n < MB_NODE_UNKNOWN) {
        tier_of_node[n] = static_cast<int8_t>(t);
        row_of_node[n] = static_cast<int16_t>(node_of_row.size());
        node_of_row.push_back(n);
      }
  constexpr int kBins = HeatHistogram::kBins;
  // Scratch kept between passes (per thread): a pass over 1M pages would
  // otherwise fault in 16 MiB afresh every interval.
  thread_local std::vector<std::vector<Sampled>> buckets;
  thread_local std::vector<Sampled> scratch;
  if (buckets.size() < node_of_row.size() * kBins) buckets.resize(node_of_row.size() * kBins);
  for (auto& b : buckets) b.clear();
  std::vector<uint64_t> bin_pages(node_of_row.size() * kBins, 0);
  uint64_t candidates = 0;
  table.visit([&](const PageEntry& e) {
    const int row = row_of_node[e.node];
    // A huge page is planned once, at its first base page.
    if (row < 0 || (e.huge() && (e.vaddr() & (kHugePageBytes - 1)))) return;
    const Sampled s{e.key, table.heat(e), e.node, tier_of_node[e.node], e.huge()};
    const size_t i = static_cast<size_t>(row) * kBins + HeatHistogram::bin(s.heat);
    buckets[i].push_back(s);
    bin_pages[i] += s.pages();
    ++candidates;
  });
  plan.stats.candidates = candidates;
  auto bucket = [&](int n, int bin) -> const std::vector<Sampled>& {
    return buckets[static_cast<size_t>(row_of_node[n]) * kBins + bin];
  };
  HeatHistogram hist;
  for (size_t i = 0; i < bin_pages.size(); ++i) hist.add_to_bin(static_cast<int>(i % kBins), bin_pages[i]);

  auto node_mem = [&](int n) -> NodeMemory {
    auto it = mem.nodes.find(n);
    return it == mem.nodes.end() ? NodeMemory{} : it->second;
  };
  // --watermark auto: room for new pages is kept only as far as it costs
  // pages colder than new pages are on arrival. Tiers 0..t hold the hottest
  // pages that fit them (above the kernel's watermarks); room kept free there
  // is given up by the coldest of those, so the room worth keeping is the
  // share of them colder than a new page (never sampled ones are):
  // reserve_slack[t], in bytes. Where new pages are no hotter than the warm
  // pages the fast tier holds, they land lower and rise if they turn hot.
  // Before the allocations are known (the first interval), the most room,
  // made only of free memory and never-sampled pages.
  std::optional<float> arrival_heat = mem.allocation_reserve_bytes ? mem.allocation_heat : 0.0f;
  std::vector<int64_t> reserve_slack(ntiers, std::numeric_limits<int64_t>::max());
  if (cfg_.follow_allocations && arrival_heat) {
    // Sampled pages, all tiers, not colder than a new page (those decayed to
    // nothing count as never sampled, as demotion takes them).
    const uint64_t not_colder = hist.pages_at_or_above(*arrival_heat);
    uint64_t fits = 0;  // pages tiers 0..t hold without a reserve
    for (int t = 0; t < ntiers - 1; ++t) {
      for (int n : tiers_.tiers[t]) {
        const NodeMemory m = node_mem(n);
        fits += m.tree_pages + (m.free_bytes > m.kernel_high_bytes ? m.free_bytes - m.kernel_high_bytes : 0) / kBasePageBytes;
      }
      reserve_slack[t] = static_cast<int64_t>((fits > not_colder ? fits - not_colder : 0) * kBasePageBytes);
    }
  }
  std::map<int, NodeBook> book;
  std::vector<uint64_t> capacity(ntiers, 0);
  for (int t = 0; t < ntiers; ++t) {
    for (int n : tiers_.tiers[t]) {
      const NodeMemory m = node_mem(n);
      int64_t high = static_cast<int64_t>(m.total_bytes * cfg_.high_watermark);
      int64_t low = static_cast<int64_t>(m.total_bytes * cfg_.low_watermark);
      if (cfg_.follow_allocations) {
        // Room for the allocations to come, above the kernel's watermark
        // (below it kswapd would reclaim the fast node itself).
        const int64_t kernel = static_cast<int64_t>(m.kernel_high_bytes);
        int64_t want = high - kernel;
        if (mem.allocation_reserve_bytes) want = std::min(want, static_cast<int64_t>(*mem.allocation_reserve_bytes));
        if (t < ntiers - 1) {
          const int64_t keep = std::clamp<int64_t>(reserve_slack[t], 0, std::max<int64_t>(0, want));
          plan.stats.reserve_withheld_bytes += static_cast<uint64_t>(std::max<int64_t>(0, want) - keep);
          plan.stats.reserve_bytes += static_cast<uint64_t>(keep);
          reserve_slack[t] -= keep;
          want = keep;
        }
        high = std::min(high, kernel + want);
        low = std::min(low, kernel + want / 2);
      }
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
  // The bin a threshold falls in: the bins above it are wholly at or above
  // it, those below wholly under; its own pages are compared one by one.
  auto bin_of = [](float threshold) { return HeatHistogram::bin(threshold); };
  // 2. Tracked bytes on each node that are cold for its tier: all resident
  // pages less the sampled ones hot enough to stay.
  for (auto& [n, b] : book) {
    if (n < 0 || n >= MB_NODE_UNKNOWN) continue;
    const int t = tier_of_node[n];
    const int tb = bin_of(threshold[t]);
    int64_t hot_bytes = 0;
    for (int bin = tb + 1; bin < kBins; ++bin)
      hot_bytes += static_cast<int64_t>(bin_pages[static_cast<size_t>(row_of_node[n]) * kBins + bin] * kBasePageBytes);
    for (const Sampled& s : bucket(n, tb))
      if (s.heat >= threshold[t]) hot_bytes += static_cast<int64_t>(s.pages() * kBasePageBytes);
    b.demotable = std::max<int64_t>(0, static_cast<int64_t>(node_mem(n).tree_pages * kBasePageBytes) - hot_bytes);
  }
  // Calls fn on the sampled pages of `nodes` whose heat passes keep(s), bin
  // by bin from `from` to `to` (inclusive; up when step is 1, down when -1),
  // ordered within a bin by `before`, until fn returns false.
  auto for_each_in_bins = [&](const std::vector<int>& nodes, int from, int to, int step, auto keep, auto before,
                              auto fn) {
    if ((to - from) * step < 0) return;
    for (int bin = from;; bin += step) {
      scratch.clear();
      for (int n : nodes)
        for (const Sampled& s : bucket(n, bin))
          if (keep(s)) scratch.push_back(s);
      std::sort(scratch.begin(), scratch.end(), before);
      for (const Sampled& s : scratch)
        if (!fn(s)) return;
      if (bin == to) return;
    }
  };

  // An exchange weighs real access rates, not heat as sampled: see RateEstimate.
  RateEstimate rate(table.decay());
  auto real_heat = [&](float h) {
    if (!rate.ready()) rate.fit(buckets, node_of_row.size());
    return rate(h);
  };
  uint64_t budget = cfg_.budget_bytes ? cfg_.budget_bytes : std::numeric_limits<uint64_t>::max();
  auto spend = [&](uint64_t bytes) {
    if (budget < bytes) return false;
    budget -= bytes;
    return true;
  };

  // 3. Promotions, hottest first: the pages of lower tiers hot enough for a
  // higher one.
  std::vector<uint64_t> promoted;  // keys, sorted once the promotions are planned
  uint64_t reserved_for_room = 0;  // budget set aside for the demotions promotions need
  std::vector<PlannedMove> promotions;
  std::vector<int> lower_nodes;
  int lowest_bin = kBins - 1;
  for (int t = 1; t < ntiers; ++t)
    for (int n : tiers_.tiers[t])
      if (n >= 0 && n < MB_NODE_UNKNOWN) {
        lower_nodes.push_back(n);
        lowest_bin = std::min(lowest_bin, bin_of(threshold[t - 1]));
      }
  auto may_rise = [&](const Sampled& s) { return desired_tier(s.heat) < s.tier; };
  auto hotter = [](const Sampled& a, const Sampled& b) { return a.heat > b.heat; };
  for_each_in_bins(lower_nodes, kBins - 1, lowest_bin, -1, may_rise, hotter, [&](const Sampled& sp) {
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
    promoted.push_back(s->key);
    plan.stats.planned += s->pages();
    if (view) view->promote_pages += s->pages();
    return true;
  });
  budget += reserved_for_room;
  std::sort(promoted.begin(), promoted.end());

  // 4. Demotions: coldest first, to the lower tier with the most room.
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
        if (std::binary_search(promoted.begin(), promoted.end(), key)) return true;
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
        if (exchange && !decisively_hotter(real_heat(arriving), real_heat(heat), arriving, heat, table.decay())) {
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
      const float cold_below = threshold[t];
      for_each_in_bins({n}, mem.resident ? 1 : 0, bin_of(cold_below), 1,
                       [&](const Sampled& s) { return s.heat < cold_below; },
                       [](const Sampled& a, const Sampled& c) { return a.heat < c.heat; }, [&](const Sampled& s) {
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
