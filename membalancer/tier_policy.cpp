#include "membalancer/tier_policy.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>

namespace mb {

namespace {


struct Sampled {
  uint64_t key;
  float heat;  // per base page (PageTable::heat_per_base_page): pages rank against capacity
  uint16_t node;
  int8_t tier;
  bool huge;
  uint64_t pages() const { return huge ? MB_HUGE_BASE_PAGES : 1; }
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
// 1.25, 1.75 or 2 over thirty seeds, and the same on uniform hot sets). The
// steady-state noise, also while heat is young and noisier: the rate
// estimate allows for that, and the margin's allowing for it too held a
// Zipf tail's hotter pages back again.
// No margin in the interval a change of pattern was seen (pattern_changed):
// then a page that looks hotter most likely is (the hot set moved), and
// waiting costs a whole interval of the old pattern's leftovers in the fast
// tier. With a few samples per page the margin held the new hot set back
// for that interval (docs/benchmarks.md: 1.6 points of the oracle on the
// traces under a steady background, no change elsewhere).
constexpr float kExchangeGain = 1.25f;
constexpr float kNoiseZ = 1.5f;
bool decisively_hotter(float ea, float eb, float a, float b, float decay, bool pattern_changed) {
  if (ea < kExchangeGain * eb) return false;
  return pattern_changed || (a - b) >= kNoiseZ * std::sqrt((a + b) / (1 + decay));
}

// A page's real access rate, in heat units (the heat it would have on
// average), estimated from its heat and every sampled page's (empirical
// Bayes). Given its rate r a page's heat h is noisy: sampling is Poisson and
// heat sums the samples with weights (decay), so h / c is about
// Poisson(r / c), c the table's noise ratio (PageTable::noise_ratio: 1 while
// heat is a plain count, 1 / (1 + d) once decayed sums have built up). The
// rates of all sampled pages form a distribution, fitted without assuming
// its shape (the maximum-likelihood mixture over a grid of rates, by EM);
// a page's estimate is its expected rate under that distribution, given its
// heat. Pages that all have one rate (a uniformly warm set) come out equal
// however their samples fell, and are not exchanged for one another; a few
// pages of a truly higher rate among many (a hot set emerging) form their own
// part of the mixture and keep their distance; a Zipf tail keeps its order.
class RateEstimate {
 public:
  explicit RateEstimate(float noise_ratio) : noise_(std::max(noise_ratio, 1e-3f)) {}
  bool ready() const { return fitted_; }
  // The sampled pages, in buckets of rows x kBins (bin 0, decayed to
  // nothing, left out).
  void fit(const std::vector<std::vector<Sampled>>& buckets, size_t rows) {
    fitted_ = true;
    // The heats, in bins 16 to an octave (their count and mean): the fit
    // works on bins, not pages.
    std::vector<double> count(kDataBins, 0), sum(kDataBins, 0);
    for (size_t r = 0; r < rows; ++r)
      for (int bin = 1; bin < HeatHistogram::kBins; ++bin)
        for (const Sampled& x : buckets[r * HeatHistogram::kBins + bin]) {
          const int j = data_bin(x.heat);
          count[j] += 1;
          sum[j] += x.heat;
        }
    double lo = 0, hi = 0, pages = 0;
    std::vector<std::pair<double, double>> data;  // (mean heat, pages)
    for (int j = 0; j < kDataBins; ++j)
      if (count[j] > 0) {
        data.emplace_back(sum[j] / count[j], count[j]);
        pages += count[j];
        if (lo == 0) lo = data.back().first;
        hi = data.back().first;
      }
    if (data.size() < 2) return;
    // The grid of rates: kGridPerOctave to an octave, from a quarter of the
    // lowest heat to twice the highest.
    log2_r0_ = std::log2(lo / 4);
    const int k_count = static_cast<int>(std::ceil((std::log2(hi * 2) - log2_r0_) * kGridPerOctave)) + 1;
    rate_.resize(k_count);
    log_rate_.resize(k_count);
    for (int k = 0; k < k_count; ++k) {
      rate_[k] = std::exp2(log2_r0_ + static_cast<double>(k) / kGridPerOctave);
      log_rate_[k] = std::log(rate_[k]);
    }
    // Each heat bin's likelihood of each rate, relative to the likeliest
    // (r = h), where it is not negligible: a band of the grid.
    struct Band {
      int k0;
      size_t at;  // into like
      int width;
    };
    std::vector<Band> band(data.size());
    std::vector<double> like;
    for (size_t j = 0; j < data.size(); ++j) {
      const double h = data[j].first, log_h = std::log(h);
      int k0 = nearest(h), k1 = k0;
      while (k0 > 0 && log_like(h, log_h, k0 - 1) > kNegligible) --k0;
      while (k1 + 1 < k_count && log_like(h, log_h, k1 + 1) > kNegligible) ++k1;
      band[j] = {k0, like.size(), k1 - k0 + 1};
      for (int k = k0; k <= k1; ++k) like.push_back(std::exp(log_like(h, log_h, k)));
    }
    // EM for the mixture weights, from uniform.
    weight_.assign(k_count, 1.0 / k_count);
    std::vector<double> next(k_count);
    for (int it = 0; it < kIterations; ++it) {
      std::fill(next.begin(), next.end(), 0.0);
      for (size_t j = 0; j < data.size(); ++j) {
        const Band& b = band[j];
        double total = 0;
        for (int i = 0; i < b.width; ++i) total += weight_[b.k0 + i] * like[b.at + i];
        if (!(total > 0)) continue;
        const double share = data[j].second / (total * pages);
        for (int i = 0; i < b.width; ++i) next[b.k0 + i] += weight_[b.k0 + i] * like[b.at + i] * share;
      }
      weight_.swap(next);
    }
    log_weight_.resize(k_count);
    for (int k = 0; k < k_count; ++k) log_weight_[k] = weight_[k] > 0 ? std::log(weight_[k]) : -1e300;
  }
  // Interpolated between the exact estimates at the ends of the heat's
  // 1/64-octave step, each worked out once: an interval of exchanges asks
  // for the heats of thousands of pages, mostly a few steps apart.
  float operator()(float heat) const {
    if (rate_.empty() || !(heat > 0) || !std::isfinite(heat)) return heat;
    const uint32_t step = std::bit_cast<uint32_t>(heat) >> kStepShift;
    const float lo = heat_at(step), hi = heat_at(step + 1);
    const float at_lo = cached(step), at_hi = cached(step + 1);
    return at_lo + (at_hi - at_lo) * (heat - lo) / (hi - lo);
  }

 private:
  static constexpr int kGridPerOctave = 12;
  static constexpr int kIterations = 200;
  static constexpr double kNegligible = -40;  // log likelihood ratio
  // 16 bins to an octave from the histogram's lowest heat (2^-8).
  static constexpr int kDataBins = HeatHistogram::kBins * 4;
  static int data_bin(float heat) {
    const int j = static_cast<int>(std::bit_cast<uint32_t>(heat) >> 19) - ((127 - 8) << 4);
    return std::clamp(j, 0, kDataBins - 1);
  }
  // log P(h | r) - log P(h | h) for h / c ~ Poisson(r / c), r the grid's
  // k-th rate.
  double log_like(double h, double log_h, size_t k) const {
    return (h * (log_rate_[k] - log_h) - (rate_[k] - h)) / noise_;
  }
  static constexpr int kStepShift = 17;  // 2^6 steps per octave
  static float heat_at(uint32_t step) { return std::bit_cast<float>(step << kStepShift); }
  float cached(uint32_t step) const {
    if (cache_.empty()) cache_.assign(size_t{1} << (32 - kStepShift), -1.0f);
    float& v = cache_[step];
    if (v < 0) v = posterior_mean(heat_at(step));
    return v;
  }
  // The expected rate given the heat, over the grid (in logs: the weights
  // span many orders of magnitude), from the terms within e^-40 of the
  // largest.
  float posterior_mean(double heat) const {
    const double log_h = std::log(heat);
    terms_.resize(rate_.size());
    double top = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < rate_.size(); ++k) {
      terms_[k] = log_weight_[k] + log_like(heat, log_h, k);
      top = std::max(top, terms_[k]);
    }
    double num = 0, den = 0;
    for (size_t k = 0; k < rate_.size(); ++k)
      if (terms_[k] > top + kNegligible) {
        const double p = std::exp(terms_[k] - top);
        num += p * rate_[k];
        den += p;
      }
    return static_cast<float>(num / den);
  }
  int nearest(double h) const {
    const int k = static_cast<int>(std::lround((std::log2(h) - log2_r0_) * kGridPerOctave));
    return std::clamp(k, 0, static_cast<int>(rate_.size()) - 1);
  }
  double noise_;
  bool fitted_ = false;
  double log2_r0_ = 0;
  std::vector<double> rate_, log_rate_, weight_, log_weight_;
  mutable std::vector<float> cache_;  // by step; -1: not yet worked out
  mutable std::vector<double> terms_;  // posterior_mean's scratch
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

void AllocationReserve::observe(const std::map<int, NodeObservation>& nodes, const Arrivals& arrivals) {
  uint64_t tree_pages = 0;
  for (const auto& [n, o] : nodes) tree_pages += o.tree_pages;
  if (last_) {
    const uint64_t grown = tree_pages > *last_ ? tree_pages - *last_ : 0;
    if (growth_.size() == kWindow) {
      growth_.erase(growth_.begin());
      arrivals_.erase(arrivals_.begin());
    }
    growth_.push_back(grown);
    arrivals_.push_back(arrivals);
    // Half the weight each interval with evidence: a workload whose pages
    // start landing elsewhere (or here again) is followed within a few.
    constexpr double kKeep = 0.5;
    for (const auto& [n, o] : nodes) {
      auto it = landing_.find(n);
      if (it == landing_.end()) continue;  // no count from before
      Landing& l = it->second;
      const int64_t here = static_cast<int64_t>(o.tree_pages) - static_cast<int64_t>(l.last_tree) - o.moved_in -
                           static_cast<int64_t>(o.maybe_moved_in);
      const uint64_t landed = static_cast<uint64_t>(std::clamp<int64_t>(here, 0, static_cast<int64_t>(grown)));
      // What could have landed: the growth, as far as the room left and
      // what took some of it allow.
      const uint64_t possible = std::min(grown, o.room_pages + landed);
      if (!possible) {
        // Evidence goes stale: a node given to hot pages stays full, so
        // where new pages would land now is asked again (the room comes
        // back until an interval answers).
        if (++l.quiet >= kForgetAfter) l.landed = l.possible = 0;
        continue;
      }
      l.quiet = 0;
      l.landed = l.landed * kKeep + static_cast<double>(landed);
      l.possible = l.possible * kKeep + static_cast<double>(possible);
    }
  }
  last_ = tree_pages;
  for (const auto& [n, o] : nodes) landing_[n].last_tree = o.tree_pages;
}

void AllocationReserve::observe(uint64_t tree_pages, const Arrivals& arrivals) {
  observe({{0, NodeObservation{tree_pages, 0, 0, 0}}}, arrivals);
}

std::optional<float> AllocationReserve::landing_share(int node) const {
  auto it = landing_.find(node);
  if (it == landing_.end() || it->second.possible <= 0) return std::nullopt;
  return static_cast<float>(it->second.landed / it->second.possible);
}

std::map<int, float> AllocationReserve::landing_shares() const {
  std::map<int, float> shares;
  for (const auto& [n, l] : landing_)
    if (auto s = landing_share(n)) shares[n] = *s;
  return shares;
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
    const Sampled s{e.key, table.heat_per_base_page(e), e.node, tier_of_node[e.node], e.huge()};
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
        fits += m.tree_pages + m.room_pages();
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
        if (mem.allocation_reserve_bytes) {
          int64_t reserve = static_cast<int64_t>(*mem.allocation_reserve_bytes);
          // Only as much as lands here: room where new pages do not land is
          // room nothing uses.
          auto landing = mem.allocation_landing.find(n);
          if (t < ntiers - 1 && landing != mem.allocation_landing.end()) {
            const int64_t here = static_cast<int64_t>(static_cast<double>(reserve) * landing->second);
            plan.stats.reserve_elsewhere_bytes +=
                static_cast<uint64_t>(std::max<int64_t>(0, std::min(want, reserve)) - std::max<int64_t>(0, std::min(want, here)));
            reserve = here;
          }
          want = std::min(want, reserve);
        }
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
      // A node waiting after refusing pages (FullNodeWait) has no room
      // above its low watermark, whichever watermark that is here (auto
      // ones can be far below the configured share hide_room applied).
      const int64_t free = m.waiting ? std::min(static_cast<int64_t>(m.free_bytes), low)
                                     : static_cast<int64_t>(m.free_bytes);
      NodeBook& b = book[n];
      b.room = free - high;
      b.low_room = free - low;
      // Below the low watermark: back to the high one (upper tiers only).
      if (t < ntiers - 1 && b.low_room < 0) b.need = b.watermark_need = -b.room;
      capacity[t] += m.tree_pages + static_cast<uint64_t>(std::max<int64_t>(0, b.room)) / kBasePageBytes;
    }
  }
  // The hot threshold of tiers 0..t: the lowest heat whose pages, and all
  // hotter ones, fit their capacity. The histogram finds the bin where the
  // capacity runs out, and that bin's pages are ranked one by one: a bin is
  // a quarter of an octave wide, and a threshold at a bin's edge would keep
  // the bin's pages out of the fast tier's last places while colder pages
  // hold them (right after a change of pattern most of the new hot set
  // shares a bin).
  thread_local std::vector<float> edge;  // heats of that bin
  auto exact_threshold = [&](uint64_t capacity) {
    const float above = hist.threshold_for(capacity);  // a bin edge: the bins from it up fit
    const int b = std::isinf(above) ? kBins - 1 : HeatHistogram::bin(above) - 1;
    if (b < 1) return above;  // every sampled page fits
    uint64_t left = capacity - (std::isinf(above) ? 0 : hist.pages_at_or_above(above));
    auto pages_of_bin = [&](auto fn) {
      for (size_t r = 0; r < node_of_row.size(); ++r)
        for (const Sampled& s : buckets[r * kBins + b]) fn(s);
    };
    float lo = std::numeric_limits<float>::infinity(), hi = 0;
    bool huge = false;
    pages_of_bin([&](const Sampled& s) {
      lo = std::min(lo, s.heat);
      hi = std::max(hi, s.heat);
      huge |= s.huge;
    });
    // The first page, hottest first, that does not fit: the threshold is
    // just above its heat (pages as hot as it, before it, do not fit
    // either). When the bin's pages all have one heat (pages seen once,
    // say), that is every page of it.
    float cut = hi;
    if (lo < hi && !huge) {
      edge.clear();
      pages_of_bin([&](const Sampled& s) { edge.push_back(s.heat); });
      if (left >= edge.size()) return above;  // not reached: the bin does not fit
      std::nth_element(edge.begin(), edge.begin() + static_cast<std::ptrdiff_t>(left), edge.end(), std::greater<>());
      cut = edge[left];
    } else if (lo < hi) {
      std::vector<std::pair<float, uint64_t>> weighed;  // (heat, base pages): huge pages weigh 512
      pages_of_bin([&](const Sampled& s) { weighed.emplace_back(s.heat, s.pages()); });
      std::sort(weighed.begin(), weighed.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      size_t i = 0;
      while (i < weighed.size() && weighed[i].second <= left) left -= weighed[i++].second;
      if (i == weighed.size()) return above;
      cut = weighed[i].first;
    }
    return std::nextafter(cut, std::numeric_limits<float>::infinity());
  };
  std::vector<float> threshold(ntiers, std::numeric_limits<float>::infinity());
  uint64_t cumulative = 0;
  for (int t = 0; t < ntiers - 1; ++t) {
    cumulative += capacity[t];
    threshold[t] = std::max(cfg_.min_hot_heat, exact_threshold(cumulative));
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
  // ordered within a bin by `before` (sorted only as far as fn gets), until
  // fn returns false.
  auto for_each_in_bins = [&](const std::vector<int>& nodes, int from, int to, int step, auto keep, auto before,
                              auto fn) {
    if ((to - from) * step < 0) return;
    for (int bin = from;; bin += step) {
      scratch.clear();
      for (int n : nodes)
        for (const Sampled& s : bucket(n, bin))
          if (keep(s)) scratch.push_back(s);
      bool more = true;
      for_each_ordered(scratch, before, [&](const Sampled& s) { return more = fn(s); });
      if (!more || bin == to) return;
    }
  };

  // An exchange weighs real access rates, not heat as sampled: see RateEstimate.
  RateEstimate rate(table.noise_ratio());
  const bool pattern_changed = table.kept_now() < 1.0f;  // adaptive forgetting saw a change this interval
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
  // The node of the first tier from `from` (up to, not including, `to`) that
  // has one with at least `bytes` available (avail(book)), the one with the
  // most; -1 if none has.
  // Nodes outside the process's cpuset are passed over (*refused: one of
  // them would have done).
  auto node_with_most = [&](uint32_t tgid, int from, int to, int64_t bytes, auto avail, bool* refused) {
    int target = -1;
    int64_t best = 0;
    for (int t = from; t < to && target < 0; ++t)
      for (int n : tiers_.tiers[t]) {
        const int64_t a = avail(book[n]);
        if (a >= bytes && !mem.may_hold(tgid, n)) {
          *refused = true;
          continue;
        }
        if (a >= bytes && (target < 0 || a > best)) target = n, best = a;
      }
    return target;
  };
  auto promote = [&](const Sampled& s, int target, MoveReason why) {
    NodeBook& b = book[target];
    const int64_t bytes = static_cast<int64_t>(s.pages() * kBasePageBytes);
    b.room -= bytes;
    b.low_room -= bytes;
    const uint32_t tgid = mb_key_tgid(s.key);
    const uint64_t vaddr = mb_key_vpn(s.key) << MB_PAGE_SHIFT;
    promotions.push_back({tgid, vaddr, s.huge, s.node, target, MoveDirection::kPromote, why, s.heat});
    promoted.push_back(s.key);
    plan.stats.planned += s.pages();
    if (view) view->promote_pages += s.pages();
  };
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
    bool refused = false;
    const int target = node_with_most(mb_key_tgid(s->key), d, s->tier, bytes, [](const NodeBook& b) {
      return std::max<int64_t>(0, b.room) + b.demotable - b.watermark_need;
    }, &refused);
    if (target < 0) {
      ++(refused ? plan.stats.not_allowed : plan.stats.no_room);
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
    promote(*s, target, MoveReason::kHot);
    return true;
  });
  // Room left above the upper tiers' high watermarks once the hot pages are
  // planned serves no access while it stays free: the hottest of the pages
  // below the hot threshold take it (a page seen once is the likeliest of
  // those to be accessed again; the kernel's NUMA tiering likewise promotes
  // any page while the fast node has plenty free). They only take room,
  // never make it: no page goes down for them, and a page moved within the
  // cool-down stays.
  int64_t room_left = 0;
  for (int t = 0; t < ntiers - 1; ++t)
    for (int n : tiers_.tiers[t]) room_left += std::max<int64_t>(0, book[n].room);
  auto below_threshold = [&](const Sampled& s) { return desired_tier(s.heat) >= s.tier && !cool.cooling(s.key, now); };
  if (room_left >= static_cast<int64_t>(kBasePageBytes))
    for_each_in_bins(lower_nodes, kBins - 1, 1, -1, below_threshold, hotter, [&](const Sampled& s) {
      const int64_t bytes = static_cast<int64_t>(s.pages() * kBasePageBytes);
      bool refused = false;
      const int target =
          node_with_most(mb_key_tgid(s.key), 0, s.tier, bytes, [](const NodeBook& b) { return b.room; }, &refused);
      if (target < 0) {  // a huge page, say, where base pages still fit
        if (refused) ++plan.stats.not_allowed;
        return true;
      }
      if (!spend(static_cast<uint64_t>(bytes))) {
        ++plan.stats.over_budget;
        return false;
      }
      room_left -= bytes;
      promote(s, target, MoveReason::kFreeRoom);
      return room_left >= static_cast<int64_t>(kBasePageBytes);
    });
  budget += reserved_for_room;
  std::sort(promoted.begin(), promoted.end());

  // 4. Demotions: coldest first, to the lower tier with the most room.
  auto demote_target = [&](uint32_t tgid, int from_tier, int64_t bytes, bool* refused) {
    for (int t = from_tier + 1; t < ntiers; ++t) {
      int target = -1;
      int64_t best = 0;
      for (int n : tiers_.tiers[t]) {
        const int64_t r = book[n].low_room;
        if (r >= bytes && !mem.may_hold(tgid, n)) {
          *refused = true;
          continue;
        }
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
        if (exchange &&
            !decisively_hotter(real_heat(arriving), real_heat(heat), arriving, heat, table.decay(), pattern_changed)) {
          b.no_gain = true;
          stop = true;
          return false;
        }
        const int64_t bytes = static_cast<int64_t>(huge ? kHugePageBytes : kBasePageBytes);
        bool refused = false;
        const int target = demote_target(tgid, t, bytes, &refused);
        if (target < 0 && refused) {  // this process's page only: the next one may go
          ++plan.stats.not_allowed;
          return true;
        }
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
        plan.stats.planned += huge ? MB_HUGE_BASE_PAGES : 1;
        if (unsampled) plan.stats.unsampled_demoted += huge ? MB_HUGE_BASE_PAGES : 1;
        if (view) view->demote_pages += huge ? MB_HUGE_BASE_PAGES : 1;
        return b.need > 0;
      };
      // Pages no sample saw (or whose heat decayed to nothing) first.
      if (mem.resident) {
        mem.resident(n, [&](uint32_t tgid, uint64_t vaddr, bool huge) {
          const uint64_t key = mb_page_key(tgid, vaddr >> MB_PAGE_SHIFT);
          const PageEntry* e = table.find(key);
          if (e && HeatHistogram::bin(table.heat_per_base_page(*e)) > 0) return true;  // sampled: below
          return take(tgid, vaddr, huge, e ? table.heat_per_base_page(*e) : 0, true);
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
