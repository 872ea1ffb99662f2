#include "profiler/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "membalancer/error.h"
#include "membalancer/report.h"

namespace mb::prof {

namespace {

uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Streams of SynthRng: one for the layout (hot ranges), one for the zipf
// permutation's keys, one for the samples, one for the THP ranges (so that
// --thp changes no sample's page or time).
enum : uint64_t { kStreamSamples = 0, kStreamLayout = 1, kStreamPermutation = 2, kStreamThp = 3 };

// The shortest text that reads back as v: 1.0000001 is not shown as "1"
// (which would read as a valid --hot-share).
std::string num(double v) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string bytes_text(uint64_t b) { return std::to_string(b) + " bytes (" + format_bytes(b) + ")"; }

// A size option in bytes: whole 4 KiB pages, at least one, at most the cap.
uint64_t pages_of(uint64_t bytes, const char* option) {
  if (bytes < kSynthPageBytes)
    throw UsageError(std::string(option) + ": " + bytes_text(bytes) + " is less than a page (4K)");
  if (bytes % kSynthPageBytes)
    throw UsageError(std::string(option) + ": " + bytes_text(bytes) + " is not a whole number of 4K pages");
  if (bytes > kSynthMaxBytes)
    throw UsageError(std::string(option) + ": " + bytes_text(bytes) + " is more than " + format_bytes(kSynthMaxBytes));
  return bytes / kSynthPageBytes;
}

}  // namespace

SynthPattern parse_synth_pattern(const std::string& name) {
  if (name == "gups") return SynthPattern::kGups;
  if (name == "hotset") return SynthPattern::kHotset;
  if (name == "zipf") return SynthPattern::kZipf;
  if (name == "phase") return SynthPattern::kPhase;
  throw UsageError("--pattern " + name + ": unknown pattern (want gups, hotset, zipf or phase)");
}

const char* synth_pattern_name(SynthPattern p) {
  switch (p) {
    case SynthPattern::kGups: return "gups";
    case SynthPattern::kHotset: return "hotset";
    case SynthPattern::kZipf: return "zipf";
    case SynthPattern::kPhase: return "phase";
  }
  return "?";
}

// ---- building blocks ----------------------------------------------------------------------

SynthRng::SynthRng(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ mix64(stream + 0x632be59bd9b4e019ULL);
  for (auto& s : s_) {
    x += 0x9e3779b97f4a7c15ULL;  // splitmix64
    s = mix64(x);
  }
}

// Rejection-inversion (W. Hörmann, G. Derflinger: "Rejection-inversion to
// generate variates from monotone discrete distributions", 1996). With
// h(x) = x^-s and H its antiderivative, a continuous x is drawn by inverting
// H between H(1.5) - 1 and H(n + 0.5); k = round(x) is accepted when x falls
// under the step of height h(k) around k (always when k - x <= squeeze_).
// The result follows r^-s exactly; s == 1 is handled by the series helpers.
namespace {
double log1p_over_x(double x) {
  return std::fabs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}
double expm1_over_x(double x) {
  return std::fabs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}
}  // namespace

double ZipfSampler::h(double x) const { return std::exp(-s_ * std::log(x)); }

double ZipfSampler::hintegral(double x) const {  // (x^(1-s) - 1) / (1 - s), log x at s == 1
  const double lx = std::log(x);
  return expm1_over_x((1 - s_) * lx) * lx;
}

double ZipfSampler::hintegral_inverse(double x) const {
  double t = x * (1 - s_);
  if (t < -1) t = -1;  // rounding near the lower end
  return std::exp(log1p_over_x(t) * x);
}

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(static_cast<double>(n)), s_(s) {
  hx1_ = hintegral(1.5) - 1;
  hn_ = hintegral(n_ + 0.5);
  squeeze_ = 2 - hintegral_inverse(hintegral(2.5) - h(2));
}

uint64_t ZipfSampler::operator()(SynthRng& rng) const {
  for (;;) {
    const double u = hn_ + rng.unit() * (hx1_ - hn_);  // (hx1_, hn_]
    const double x = hintegral_inverse(u);
    double k = std::floor(x + 0.5);
    if (k < 1) k = 1;
    else if (k > n_) k = n_;
    if (k - x <= squeeze_ || u >= hintegral(k + 0.5) - h(k)) return static_cast<uint64_t>(k);
  }
}

PagePermutation::PagePermutation(uint64_t n, uint64_t seed) : n_(n) {
  int bits = 0;
  while (bits < 64 && (n - 1) >> bits) ++bits;  // bits to write n - 1
  half_bits_ = bits < 2 ? 1 : (bits + 1) / 2;
  mask_ = (1ULL << half_bits_) - 1;
  SynthRng rng(seed, kStreamPermutation);
  for (auto& k : keys_) k = rng.next();
}

uint64_t PagePermutation::encrypt(uint64_t x) const {
  uint64_t l = x >> half_bits_, r = x & mask_;
  for (uint64_t k : keys_) {
    const uint64_t t = l ^ (mix64(r ^ k) & mask_);
    l = r;
    r = t;
  }
  return (l << half_bits_) | r;
}

// ---- the plan --------------------------------------------------------------------------------

uint64_t SynthPlan::time_of(uint64_t i) const {
  return kSynthStartMonotonicNs + static_cast<uint64_t>(static_cast<unsigned __int128>(i) * 1'000'000'000ULL / rate);
}

SynthPlan plan_synth(const SynthConfig& c) {
  SynthPlan p;
  p.config = c;
  p.pattern = c.pattern;
  p.seed = c.seed;
  const bool hot = c.pattern == SynthPattern::kHotset || c.pattern == SynthPattern::kPhase;
  const std::string pat = synth_pattern_name(c.pattern);

  p.pages = pages_of(c.footprint_bytes, "--footprint");
  if (c.samples == 0) throw UsageError("--samples: want at least 1");
  if (c.samples > kSynthMaxSamples)
    throw UsageError("--samples " + std::to_string(c.samples) + ": at most " + std::to_string(kSynthMaxSamples));
  p.samples = c.samples;
  if (c.rate == 0 || c.rate > kSynthMaxRate)
    throw UsageError("--rate " + std::to_string(c.rate) + ": want 1 to " + std::to_string(kSynthMaxRate) +
                     " samples per second");
  p.rate = c.rate;
  if (c.tgid == 0 || c.tgid > kSynthMaxTgid)
    throw UsageError("--tgid " + std::to_string(c.tgid) + ": want 1 to " + std::to_string(kSynthMaxTgid));
  p.tgid = c.tgid;
  p.fast_pages = c.fast_bytes ? pages_of(*c.fast_bytes, "--fast") : std::max<uint64_t>(1, p.pages / 4);

  if (!hot && c.hot_bytes) throw UsageError("--hot-size: applies to --pattern hotset and phase, not " + pat);
  if (!hot && c.hot_share) throw UsageError("--hot-share: applies to --pattern hotset and phase, not " + pat);
  if (c.pattern != SynthPattern::kZipf && c.skew) throw UsageError("--skew: applies to --pattern zipf, not " + pat);

  if (hot) {
    if (c.hot_bytes) {
      p.hot_pages = pages_of(*c.hot_bytes, "--hot-size");
      if (p.hot_pages > p.pages)
        throw UsageError("--hot-size: " + bytes_text(*c.hot_bytes) + " is larger than --footprint " +
                         bytes_text(c.footprint_bytes));
    } else {
      p.hot_pages = std::max<uint64_t>(1, p.pages / 10);
    }
    if (c.pattern == SynthPattern::kPhase && 2 * p.hot_pages > p.pages) {
      const std::string why = " (phase needs two hot sets that do not overlap)";
      if (c.hot_bytes)
        throw UsageError("--hot-size: " + bytes_text(*c.hot_bytes) + " is more than half of --footprint" + why);
      throw UsageError("--footprint: phase needs at least 2 pages" + why);
    }
    p.hot_share = c.hot_share.value_or(0.9);
    if (!(p.hot_share >= 0 && p.hot_share <= 1))
      throw UsageError("--hot-share " + num(p.hot_share) + ": want a fraction from 0 to 1");
  }
  if (c.pattern == SynthPattern::kZipf) {
    p.skew = c.skew.value_or(0.99);
    if (!(p.skew > 0 && p.skew <= kSynthMaxSkew))
      throw UsageError("--skew " + num(p.skew) + ": want more than 0 and at most " + num(kSynthMaxSkew));
  }

  if (c.thp_split && !c.thp) throw UsageError("--thp-split: applies with --thp");
  if (c.thp) {
    p.sizes = true;
    p.thp = *c.thp;
    p.thp_split = c.thp_split.value_or(0);
    if (!(p.thp >= 0 && p.thp <= 1)) throw UsageError("--thp " + num(p.thp) + ": want a fraction from 0 to 1");
    if (!(p.thp_split >= 0 && p.thp_split <= 1))
      throw UsageError("--thp-split " + num(p.thp_split) + ": want a fraction from 0 to 1");
    if (p.thp > 0 && p.whole_ranges() == 0)
      throw UsageError("--thp " + num(p.thp) + ": --footprint " + bytes_text(c.footprint_bytes) +
                       " holds no whole 2 MiB range");
    // floor(thp x ranges) ranges, uniform without repeats (a partial
    // Fisher-Yates shuffle), each collapsing at a uniform sample; the first
    // floor(thp_split x that) of them, in the order drawn, split at a uniform
    // later sample (one that collapses at the last sample cannot).
    SynthRng thp(c.seed, kStreamThp);
    std::vector<uint64_t> order(p.whole_ranges());
    for (uint64_t r = 0; r < order.size(); ++r) order[r] = r;
    const auto chosen = static_cast<uint64_t>(p.thp * static_cast<double>(order.size()));
    const auto splitting = static_cast<uint64_t>(p.thp_split * static_cast<double>(chosen));
    for (uint64_t k = 0; k < chosen; ++k) {
      std::swap(order[k], order[k + thp.below(order.size() - k)]);
      SynthThpRange r{order[k], thp.below(p.samples), p.samples};
      if (k < splitting && r.collapse_at + 1 < p.samples) r.split_at = r.collapse_at + 1 + thp.below(p.samples - r.collapse_at - 1);
      p.thp_ranges.push_back(r);
    }
    std::sort(p.thp_ranges.begin(), p.thp_ranges.end(),
              [](const SynthThpRange& a, const SynthThpRange& b) { return a.range < b.range; });
  }

  // The hot ranges: page-aligned, chosen by the seed.
  SynthRng layout(c.seed, kStreamLayout);
  const uint64_t P = p.pages, H = p.hot_pages;
  if (c.pattern == SynthPattern::kHotset) {
    p.hot_first[0] = p.hot_first[1] = layout.below(P - H + 1);
  } else if (c.pattern == SynthPattern::kPhase) {
    // The first range must leave room for a second one before or after it:
    // a start in [0, P-2H] (room after) or in [H, P-H] (room before).
    const uint64_t a = P - 2 * H + 1;  // starts with room after; as many with room before
    uint64_t first;
    if (H <= a) first = layout.below(P - H + 1);  // the two intervals cover [0, P-H]
    else {
      uint64_t i = layout.below(2 * a);
      first = i < a ? i : H + (i - a);
    }
    // The second: any start that does not overlap, before or after.
    const uint64_t before = first >= H ? first - H + 1 : 0;                   // [0, first-H]
    const uint64_t after = first + H <= P - H ? P - H - (first + H) + 1 : 0;  // [first+H, P-H]
    uint64_t i = layout.below(before + after);
    p.hot_first[0] = first;
    p.hot_first[1] = i < before ? i : first + H + (i - before);
    p.second_half = p.samples / 2;
  }
  return p;
}

Topology synth_topology(const SynthPlan& plan) {
  Topology t;
  NumaNode fast;
  fast.id = 0;
  fast.cpus = {0, 1};
  fast.distance = {{0, 10}, {1, 20}};
  fast.mem_total_bytes = fast.mem_free_bytes = plan.fast_bytes();
  NumaNode slow;
  slow.id = 1;
  slow.distance = {{0, 20}, {1, 10}};
  slow.mem_total_bytes = slow.mem_free_bytes = plan.footprint_bytes();
  t.nodes = {fast, slow};
  t.cpu_node = {0, 0};
  return t;
}

ProfileStart synth_profile_start(const SynthPlan& plan) {
  ProfileStart s;
  s.sampler = std::string("synth:") + synth_pattern_name(plan.pattern);
  s.sampler_kind = MB_SAMPLER_SYNTHETIC;
  s.topology = synth_topology(plan);
  s.start_realtime_ns = kSynthStartRealtimeNs;
  s.start_monotonic_ns = kSynthStartMonotonicNs;
  return s;
}

// ---- generation ------------------------------------------------------------------------------

namespace {

// First-touch placement: 2 bits per page (0 not seen yet, 1 node 0, 2 node 1).
class FirstTouch {
 public:
  FirstTouch(uint64_t pages, uint64_t fast_pages) : state_((pages + 31) / 32), room_(fast_pages) {}
  uint16_t node(uint64_t page) {
    uint64_t& w = state_[page >> 5];
    const int sh = static_cast<int>(page & 31) * 2;
    uint64_t v = (w >> sh) & 3;
    if (v == 0) {
      ++stats.pages_seen;
      if (stats.pages_node0 < room_) {
        ++stats.pages_node0;
        v = 1;
      } else {
        v = 2;
      }
      w |= v << sh;
    }
    return static_cast<uint16_t>(v - 1);
  }
  // Pages of one node among the `n` from `first` placed so far.
  uint64_t placed_on(uint64_t first, uint64_t n, uint16_t node) const {
    uint64_t k = 0;
    for (uint64_t page = first; page < first + n; ++page)
      k += ((state_[page >> 5] >> (static_cast<int>(page & 31) * 2)) & 3) == node + 1u;
    return k;
  }
  // Places a page not seen yet on `node` (where its huge page is).
  void place_on(uint64_t page, uint16_t node) {
    uint64_t& w = state_[page >> 5];
    const int sh = static_cast<int>(page & 31) * 2;
    if ((w >> sh) & 3) return;
    ++stats.pages_seen;
    stats.pages_node0 += node == 0;
    w |= static_cast<uint64_t>(node + 1) << sh;
  }
  bool room_for(uint64_t pages) const { return stats.pages_node0 + pages <= room_; }
  SynthStats stats;

 private:
  std::vector<uint64_t> state_;
  uint64_t room_;
};

// --thp: each 2 MiB range's size over the trace and, once it collapsed, its
// node. khugepaged puts the new huge page where most of the range's pages
// are (a tie: node 0), on node 1 when node 0 lacks room for the range's
// pages not on it yet; the range stays there when it splits.
class ThpRanges {
 public:
  explicit ThpRanges(const SynthPlan& plan) {
    if (plan.thp_ranges.empty()) return;
    collapse_at_.assign(plan.whole_ranges(), UINT64_MAX);
    split_at_.assign(plan.whole_ranges(), UINT64_MAX);
    node_.assign(plan.whole_ranges(), kUnplaced);
    for (const SynthThpRange& r : plan.thp_ranges) collapse_at_[r.range] = r.collapse_at, split_at_[r.range] = r.split_at;
  }
  // The flags and node of sample i at `page`.
  void size_and_node(uint64_t i, uint64_t page, FirstTouch& placement, uint16_t* flags, uint16_t* node) {
    const uint64_t r = page / kSynthRangePages;
    const bool huge = r < collapse_at_.size() && i >= collapse_at_[r] && i < split_at_[r];
    *flags |= huge ? MB_ACC_HUGE : MB_ACC_BASE_PAGE;
    if (huge && node_[r] == kUnplaced) node_[r] = collapse_node(r, placement);
    if (r >= node_.size() || node_[r] == kUnplaced) {
      *node = placement.node(page);
      return;
    }
    placement.place_on(page, node_[r]);
    *node = node_[r];
  }

 private:
  static constexpr uint16_t kUnplaced = 0xffff;
  static uint16_t collapse_node(uint64_t r, const FirstTouch& placement) {
    const uint64_t first = r * kSynthRangePages;
    const uint64_t on0 = placement.placed_on(first, kSynthRangePages, 0);
    const uint64_t on1 = placement.placed_on(first, kSynthRangePages, 1);
    if (on0 + on1 == 0) return placement.room_for(kSynthRangePages) ? 0 : 1;  // first touched as a huge page
    return on0 >= on1 && placement.room_for(kSynthRangePages - on0) ? 0 : 1;
  }
  std::vector<uint64_t> collapse_at_, split_at_;  // by range; UINT64_MAX: never
  std::vector<uint16_t> node_;
};

template <SynthPattern P>
SynthStats generate(const SynthPlan& plan, const SynthSink& sink) {
  SynthRng rng(plan.seed, kStreamSamples);
  FirstTouch placement(plan.pages, plan.fast_pages);
  ThpRanges thp(plan);
  std::optional<ZipfSampler> zipf;
  std::optional<PagePermutation> perm;
  if constexpr (P == SynthPattern::kZipf) {
    zipf.emplace(plan.pages, plan.skew);
    perm.emplace(plan.pages, plan.seed);
  }
  std::vector<mb_sample> batch(std::min<uint64_t>(kSynthBatch, plan.samples));
  // time_ns = start + floor(i * 1e9 / rate), kept as quotient and remainder.
  const uint64_t step_q = 1'000'000'000ULL / plan.rate, step_r = 1'000'000'000ULL % plan.rate;
  uint64_t q = 0, r = 0;
  mb_sample proto{};
  proto.tgid = proto.tid = plan.tgid;
  proto.cpu = 0;
  proto.cpu_node = 0;
  proto.flags = MB_ACC_VADDR | MB_ACC_LOAD;
  proto.sampler = MB_SAMPLER_SYNTHETIC;

  for (uint64_t i = 0; i < plan.samples;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(batch.size(), plan.samples - i));
    for (size_t k = 0; k < n; ++k, ++i) {
      uint64_t page;
      if constexpr (P == SynthPattern::kGups) {
        page = rng.below(plan.pages);
      } else if constexpr (P == SynthPattern::kZipf) {
        page = (*perm)((*zipf)(rng) - 1);
      } else {
        const int half = P == SynthPattern::kPhase && i >= plan.second_half;
        page = rng.unit() < plan.hot_share ? plan.hot_first[half] + rng.below(plan.hot_pages) : rng.below(plan.pages);
      }
      mb_sample& s = batch[k];
      s = proto;
      s.time_ns = kSynthStartMonotonicNs + q;
      if (plan.sizes) thp.size_and_node(i, page, placement, &s.flags, &s.mem_node);
      else s.mem_node = placement.node(page);
      s.vaddr = kSynthBase + page * kSynthPageBytes + ((rng.next() >> 55) << 3);  // 8-byte aligned in the page
      q += step_q;
      r += step_r;
      if (r >= plan.rate) {
        r -= plan.rate;
        ++q;
      }
    }
    sink(batch.data(), n);
  }
  placement.stats.samples = plan.samples;
  return placement.stats;
}

}  // namespace

SynthStats generate_synth(const SynthPlan& plan, const SynthSink& sink) {
  switch (plan.pattern) {
    case SynthPattern::kGups: return generate<SynthPattern::kGups>(plan, sink);
    case SynthPattern::kHotset: return generate<SynthPattern::kHotset>(plan, sink);
    case SynthPattern::kZipf: return generate<SynthPattern::kZipf>(plan, sink);
    case SynthPattern::kPhase: return generate<SynthPattern::kPhase>(plan, sink);
  }
  return {};
}

SynthStats write_synth_profile(const SynthPlan& plan, const std::string& path, bool force) {
  ProfileWriter w(path, synth_profile_start(plan), force);
  try {
    w.add_process(kSynthStartMonotonicNs, plan.tgid, 0, kProcSeen,
                  std::string("synth-") + synth_pattern_name(plan.pattern));
    ProfileMap m;
    m.start = kSynthBase;
    m.end = kSynthBase + plan.footprint_bytes();
    m.prot = kMapRead | kMapWrite;
    w.add_maps(kSynthStartMonotonicNs, plan.tgid, {m});
    SynthStats st = generate_synth(plan, [&](const mb_sample* s, size_t n) { w.add_samples(s, n); });
    w.finish(plan.end_time(), 0);
    return st;
  } catch (...) {
    w.discard();  // a full disk leaves no truncated trace behind
    throw;
  }
}

std::string synth_summary(const SynthPlan& plan, const SynthStats& st, const std::string& path) {
  std::string s = std::string("synth ") + synth_pattern_name(plan.pattern) + ": " + std::to_string(st.samples) +
                  " samples over " + format_bytes(plan.footprint_bytes()) + " (seed " + std::to_string(plan.seed) +
                  ") -> " + path;
  if (plan.hot_pages) {
    s += "; hot set " + format_hex(plan.hot_start(0)) + "-" + format_hex(plan.hot_end(0));
    if (plan.pattern == SynthPattern::kPhase)
      s += ", from sample " + std::to_string(plan.second_half) + " " + format_hex(plan.hot_start(1)) + "-" +
           format_hex(plan.hot_end(1));
  }
  s += "; pages: " + std::to_string(st.pages_node0) + " on node 0, " + std::to_string(st.pages_seen - st.pages_node0) +
       " on node 1";
  if (plan.sizes) {
    const auto splitting = std::count_if(plan.thp_ranges.begin(), plan.thp_ranges.end(),
                                         [&](const SynthThpRange& r) { return r.split_at < plan.samples; });
    s += "; THP: " + std::to_string(plan.thp_ranges.size()) + " of " + std::to_string(plan.whole_ranges()) +
         " 2 MiB ranges collapse, " + std::to_string(splitting) + " of them split later";
  }
  return s;
}

}  // namespace mb::prof
