// profiler synth: determinism, the four patterns' distributions, exact Zipf,
// the seeded permutation, first-touch nodes, validation, and the file.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "profiler/synth.h"
#include "tests/unit/temp_tree.h"

using namespace mb;
using namespace mb::prof;

namespace {

constexpr uint64_t kPage = 4096;

SynthConfig config(SynthPattern p, uint64_t footprint, uint64_t samples, uint64_t seed = 1) {
  SynthConfig c;
  c.pattern = p;
  c.footprint_bytes = footprint;
  c.samples = samples;
  c.seed = seed;
  return c;
}

std::vector<mb_sample> generate(const SynthPlan& plan, SynthStats* stats = nullptr) {
  std::vector<mb_sample> v;
  v.reserve(plan.samples);
  SynthStats st = generate_synth(plan, [&](const mb_sample* s, size_t n) {
    EXPECT_LE(n, kSynthBatch);
    v.insert(v.end(), s, s + n);
  });
  if (stats) *stats = st;
  return v;
}

std::vector<mb_sample> generate(const SynthConfig& c) { return generate(plan_synth(c)); }

uint64_t page_of(const mb_sample& s) { return (s.vaddr - kSynthBase) / kPage; }

// Per-page counts of samples [from, to).
std::vector<uint64_t> page_counts(const std::vector<mb_sample>& v, uint64_t pages, size_t from = 0,
                                  size_t to = SIZE_MAX) {
  std::vector<uint64_t> c(pages);
  to = std::min(to, v.size());
  for (size_t i = from; i < to; ++i) {
    EXPECT_GE(v[i].vaddr, kSynthBase);
    EXPECT_LT(v[i].vaddr, kSynthBase + pages * kPage);
    uint64_t p = page_of(v[i]);
    if (p < pages) ++c[p];
  }
  return c;
}

// Share of samples [from, to) whose page is in [first, first + n).
double share_in(const std::vector<mb_sample>& v, uint64_t first, uint64_t n, size_t from, size_t to) {
  uint64_t in = 0;
  for (size_t i = from; i < to; ++i) {
    uint64_t p = page_of(v[i]);
    in += p >= first && p < first + n;
  }
  return static_cast<double>(in) / static_cast<double>(to - from);
}

// Pages hit more than `threshold` times, as [first, last] (and how many).
struct HotSpan {
  uint64_t first = UINT64_MAX, last = 0, count = 0;
};
HotSpan hot_span(const std::vector<uint64_t>& counts, uint64_t threshold) {
  HotSpan h;
  for (uint64_t p = 0; p < counts.size(); ++p)
    if (counts[p] > threshold) {
      h.first = std::min(h.first, p);
      h.last = p;
      ++h.count;
    }
  return h;
}

template <typename Fn>
void expect_usage_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no UsageError thrown";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.status(), 2);
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const SynthPattern kAll[] = {SynthPattern::kGups, SynthPattern::kHotset, SynthPattern::kZipf, SynthPattern::kPhase};

}  // namespace

TEST(SynthDeterminism, SameSeedSameSamplesOtherSeedOthers) {
  for (SynthPattern p : kAll) {
    SCOPED_TRACE(synth_pattern_name(p));
    auto a = generate(config(p, 64 << 20, 20000, 7));
    auto b = generate(config(p, 64 << 20, 20000, 7));
    auto c = generate(config(p, 64 << 20, 20000, 8));
    ASSERT_EQ(a.size(), 20000u);
    ASSERT_EQ(b.size(), a.size());
    ASSERT_EQ(c.size(), a.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(mb_sample)), 0);
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i].vaddr != c[i].vaddr;
    EXPECT_GT(differ, a.size() * 9 / 10);
  }
  // The layout depends on the seed too.
  SynthConfig h1 = config(SynthPattern::kHotset, 1 << 30, 1, 1), h2 = config(SynthPattern::kHotset, 1 << 30, 1, 2);
  EXPECT_NE(plan_synth(h1).hot_first[0], plan_synth(h2).hot_first[0]);
}

TEST(SynthDeterminism, PinnedOutput) {
  // Pins the PRNG, the distributions and the layout: if this changes, files
  // made with the same arguments by an older build differ. Change the
  // expected values only on purpose (and say so in docs/profiler.md).
  SynthRng r(1);
  EXPECT_EQ(r.next(), 0xc77b6107c66edf7bULL);
  EXPECT_EQ(r.next(), 0xb4da9dc4018569d1ULL);
  EXPECT_EQ(r.next(), 0x4916a262fd51a42cULL);
  EXPECT_NE(SynthRng(1).next(), SynthRng(1, 1).next());  // streams differ
  auto digest = [](SynthPattern p) {
    SynthPlan plan = plan_synth(config(p, 64 << 20, 1000));
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the records
    generate_synth(plan, [&](const mb_sample* s, size_t n) {
      const auto* b = reinterpret_cast<const unsigned char*>(s);
      for (size_t i = 0; i < n * sizeof(mb_sample); ++i) h = (h ^ b[i]) * 0x100000001b3ULL;
    });
    return h;
  };
  // gups, hotset and phase use integer arithmetic and one comparison with a
  // double on a 2^-53 grid: the same on every IEEE machine. (zipf also calls
  // log/exp, whose last bit a different libm may round otherwise.)
  EXPECT_EQ(digest(SynthPattern::kGups), 0x119e164aeef51e3dULL);
  EXPECT_EQ(digest(SynthPattern::kHotset), 0xb4ba0c2fbe6e4befULL);
  EXPECT_EQ(digest(SynthPattern::kPhase), 0x7811f3a5a370bbd1ULL);
  SynthPlan phase = plan_synth(config(SynthPattern::kPhase, 64 << 20, 1000));
  EXPECT_EQ(phase.hot_first[0], 5053u);
  EXPECT_EQ(phase.hot_first[1], 10566u);
}

TEST(SynthDeterminism, BoundedAndUnitDraws) {
  SynthRng b(3);
  std::vector<uint64_t> c(3);
  for (int i = 0; i < 30000; ++i) ++c[b.below(3)];
  for (uint64_t x : c) EXPECT_NEAR(static_cast<double>(x), 10000.0, 400.0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(b.below(1), 0u);
  for (int i = 0; i < 1000; ++i) {
    double u = b.unit();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(SynthSamples, FieldsAndTimes) {
  SynthConfig c = config(SynthPattern::kGups, 1 << 20, 30000);
  c.rate = 7;  // 1e9 / 7 is not an integer: times must still be exact
  c.tgid = 4242;
  SynthPlan plan = plan_synth(c);
  auto v = generate(plan);
  ASSERT_EQ(v.size(), 30000u);
  for (size_t i = 0; i < v.size(); ++i) {
    const mb_sample& s = v[i];
    const auto expect = static_cast<uint64_t>(static_cast<unsigned __int128>(i) * 1000000000 / 7);
    ASSERT_EQ(s.time_ns, kSynthStartMonotonicNs + expect) << i;
    EXPECT_EQ(s.time_ns, plan.time_of(i));
    EXPECT_EQ(s.tgid, 4242u);
    EXPECT_EQ(s.tid, 4242u);
    EXPECT_EQ(s.cpu, 0u);
    EXPECT_EQ(s.cpu_node, 0);
    EXPECT_EQ(s.flags, MB_ACC_VADDR | MB_ACC_LOAD);
    EXPECT_EQ(s.sampler, MB_SAMPLER_SYNTHETIC);
    EXPECT_EQ(s.paddr, 0u);
    EXPECT_EQ(s.ip, 0u);
    EXPECT_EQ(s.vaddr % 8, 0u);
    EXPECT_GE(s.vaddr, kSynthBase);
    EXPECT_LT(s.vaddr, kSynthBase + (1 << 20));
  }
  EXPECT_EQ(plan.end_time(), kSynthStartMonotonicNs + 30000ull * 1000000000 / 7);
  // The default rate: one sample per microsecond.
  SynthPlan d = plan_synth(config(SynthPattern::kGups, 1 << 20, 10));
  EXPECT_EQ(d.time_of(5), kSynthStartMonotonicNs + 5000);
}

TEST(SynthGups, PagesAreCoveredUniformly) {
  const uint64_t pages = 1024, n = 400000;
  SynthPlan plan = plan_synth(config(SynthPattern::kGups, pages * kPage, n));
  auto counts = page_counts(generate(plan), pages);
  const double expect = static_cast<double>(n) / pages;
  double chi2 = 0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint64_t c : counts) {
    chi2 += (c - expect) * (c - expect) / expect;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  // 1023 degrees of freedom: mean 1023, sd 45.
  EXPECT_LT(chi2, 1023 + 5 * 45.2);
  EXPECT_GT(chi2, 1023 - 5 * 45.2);
  EXPECT_GT(lo, 0u);
  EXPECT_LT(static_cast<double>(hi) / static_cast<double>(lo), 1.5) << lo << ".." << hi;
}

TEST(SynthHotset, HotRangeGetsItsShare) {
  const uint64_t pages = 16384, hot = 1024, n = 200000;
  SynthConfig c = config(SynthPattern::kHotset, pages * kPage, n, 5);
  c.hot_bytes = hot * kPage;
  c.hot_share = 0.8;
  SynthPlan plan = plan_synth(c);
  EXPECT_EQ(plan.hot_pages, hot);
  EXPECT_LE(plan.hot_first[0] + hot, pages);
  EXPECT_EQ(plan.hot_first[0], plan.hot_first[1]);
  EXPECT_EQ(plan.hot_start(0), kSynthBase + plan.hot_first[0] * kPage);
  auto v = generate(plan);
  // The hot share plus the uniform rest's part of the hot range.
  const double want = 0.8 + 0.2 * static_cast<double>(hot) / pages;
  EXPECT_NEAR(share_in(v, plan.hot_first[0], hot, 0, n), want, 0.01);
  // The hot pages seen in the trace are exactly the planned range
  // (about 156 samples per hot page, 2.4 per cold one).
  HotSpan h = hot_span(page_counts(v, pages), 60);
  EXPECT_EQ(h.first, plan.hot_first[0]);
  EXPECT_EQ(h.last, plan.hot_first[0] + hot - 1);
  EXPECT_EQ(h.count, hot);
}

TEST(SynthHotset, Defaults) {
  SynthPlan plan = plan_synth(config(SynthPattern::kHotset, 100 << 20, 1));
  EXPECT_EQ(plan.hot_pages, (100u << 20) / 10 / kPage);  // footprint/10 in whole pages
  EXPECT_DOUBLE_EQ(plan.hot_share, 0.9);
  EXPECT_EQ(plan.fast_pages, (100u << 20) / 4 / kPage);
  // Share 1: every sample in the hot set; share 0: plain gups.
  SynthConfig all = config(SynthPattern::kHotset, 16 << 20, 20000);
  all.hot_share = 1;
  SynthPlan pa = plan_synth(all);
  auto v = generate(pa);
  EXPECT_DOUBLE_EQ(share_in(v, pa.hot_first[0], pa.hot_pages, 0, v.size()), 1.0);
}

TEST(SynthZipf, TopRanksFollowThePowerLaw) {
  const uint64_t pages = 16384, n = 1000000;
  for (double s : {0.99, 1.0, 1.3}) {
    SCOPED_TRACE(s);
    SynthConfig c = config(SynthPattern::kZipf, pages * kPage, n, 3);
    c.skew = s;
    auto v = generate(c);
    auto counts = page_counts(v, pages);
    std::vector<std::pair<uint64_t, uint64_t>> ranked;  // (count, page)
    for (uint64_t p = 0; p < pages; ++p) ranked.push_back({counts[p], p});
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
    double hsum = 0;
    for (uint64_t r = 1; r <= pages; ++r) hsum += std::pow(static_cast<double>(r), -s);
    for (int r = 1; r <= 5; ++r) {
      const double want = n * std::pow(r, -s) / hsum;
      EXPECT_NEAR(static_cast<double>(ranked[r - 1].first), want, 0.03 * want) << "rank " << r;
    }
    // The hot pages are scattered over the footprint, not the first pages.
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int r = 0; r < 16; ++r) {
      lo = std::min(lo, ranked[r].second);
      hi = std::max(hi, ranked[r].second);
    }
    EXPECT_GT(hi - lo, pages / 4);
  }
}

TEST(SynthZipf, SamplerIsExactOnSmallSupports) {
  // Chi-square over every rank: an approximate sampler (e.g. a continuous
  // power law rounded) fails this at a million samples.
  for (auto [n, s] : {std::pair<uint64_t, double>{10, 0.99}, {10, 1.0}, {7, 2.5}, {50, 0.5}}) {
    SCOPED_TRACE(std::to_string(n) + " " + std::to_string(s));
    ZipfSampler z(n, s);
    SynthRng rng(11);
    const uint64_t draws = 1000000;
    std::vector<uint64_t> c(n + 1);
    for (uint64_t i = 0; i < draws; ++i) {
      uint64_t r = z(rng);
      ASSERT_GE(r, 1u);
      ASSERT_LE(r, n);
      ++c[r];
    }
    double hsum = 0;
    for (uint64_t r = 1; r <= n; ++r) hsum += std::pow(static_cast<double>(r), -s);
    double chi2 = 0;
    for (uint64_t r = 1; r <= n; ++r) {
      const double e = draws * std::pow(static_cast<double>(r), -s) / hsum;
      chi2 += (c[r] - e) * (c[r] - e) / e;
    }
    // n-1 degrees of freedom; the 99.9th percentile is below 2(n-1) + 20 here.
    EXPECT_LT(chi2, 2.0 * (n - 1) + 20) << chi2;
  }
  ZipfSampler one(1, 0.99);
  SynthRng rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(one(rng), 1u);
}

TEST(SynthPermutation, IsABijection) {
  for (uint64_t n : {1ull, 2ull, 3ull, 5ull, 1000ull, 4097ull, 65536ull, 100003ull}) {
    SCOPED_TRACE(n);
    PagePermutation perm(n, 42);
    std::vector<bool> hit(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t p = perm(i);
      ASSERT_LT(p, n);
      ASSERT_FALSE(hit[p]) << i;
      hit[p] = true;
    }
  }
  // Another seed, another order.
  PagePermutation a(1000, 1), b(1000, 2);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += a(i) == b(i);
  EXPECT_LT(same, 20);
}

TEST(SynthPhase, HotSetMovesToANonOverlappingRange) {
  const uint64_t pages = 16384, hot = 2048, n = 400000;
  SynthConfig c = config(SynthPattern::kPhase, pages * kPage, n, 9);
  c.hot_bytes = hot * kPage;
  SynthPlan plan = plan_synth(c);
  const uint64_t a = plan.hot_first[0], b = plan.hot_first[1];
  EXPECT_TRUE(a + hot <= b || b + hot <= a) << a << " " << b;
  EXPECT_LE(std::max(a, b) + hot, pages);
  EXPECT_EQ(plan.second_half, n / 2);
  auto v = generate(plan);
  const double want = 0.9 + 0.1 * static_cast<double>(hot) / pages, cold = 0.1 * static_cast<double>(hot) / pages;
  EXPECT_NEAR(share_in(v, a, hot, 0, n / 2), want, 0.01);
  EXPECT_NEAR(share_in(v, b, hot, n / 2, n), want, 0.01);
  EXPECT_NEAR(share_in(v, b, hot, 0, n / 2), cold, 0.01);
  EXPECT_NEAR(share_in(v, a, hot, n / 2, n), cold, 0.01);
  // Seen from the trace: each half's hot pages are its range.
  HotSpan h1 = hot_span(page_counts(v, pages, 0, n / 2), 30), h2 = hot_span(page_counts(v, pages, n / 2, n), 30);
  EXPECT_EQ(h1.first, a);
  EXPECT_EQ(h1.last, a + hot - 1);
  EXPECT_EQ(h2.first, b);
  EXPECT_EQ(h2.last, b + hot - 1);
}

TEST(SynthPhase, LayoutAlwaysFits) {
  // Tight cases: a hot set of half the footprint (only two placements of
  // the first range leave room), and tiny footprints.
  for (auto [pages, hot] : {std::pair<uint64_t, uint64_t>{2, 1}, {10, 5}, {10, 4}, {11, 5}, {10, 3}, {1000, 500},
                            {1001, 400}}) {
    for (uint64_t seed = 1; seed <= 200; ++seed) {
      SynthConfig c = config(SynthPattern::kPhase, pages * kPage, 10, seed);
      c.hot_bytes = hot * kPage;
      SynthPlan p = plan_synth(c);
      const uint64_t a = p.hot_first[0], b = p.hot_first[1];
      ASSERT_TRUE(a + hot <= b || b + hot <= a) << pages << " " << hot << " " << a << " " << b;
      ASSERT_LE(std::max(a, b) + hot, pages);
    }
  }
}

TEST(SynthFirstTouch, NodeZeroHoldsTheFirstPagesUntilFull) {
  const uint64_t pages = 4096;
  for (SynthPattern p : kAll) {
    for (uint64_t fast : {64ull, 1024ull, 8192ull}) {
      SCOPED_TRACE(std::string(synth_pattern_name(p)) + " fast pages " + std::to_string(fast));
      SynthConfig c = config(p, pages * kPage, 30000, 4);
      c.fast_bytes = fast * kPage;
      SynthPlan plan = plan_synth(c);
      SynthStats st;
      auto v = generate(plan, &st);
      std::map<uint64_t, uint16_t> node;  // page -> node
      uint64_t order = 0;
      for (const auto& s : v) {
        auto [it, fresh] = node.emplace(page_of(s), s.mem_node);
        if (fresh) {
          // The first `fast` distinct pages go to node 0, every later one to node 1.
          EXPECT_EQ(s.mem_node, order < fast ? 0 : 1) << "page number " << order;
          ++order;
        } else {
          EXPECT_EQ(s.mem_node, it->second);  // a page stays where it was placed
        }
      }
      uint64_t on0 = 0;
      for (auto& [pg, n] : node) on0 += n == 0;
      EXPECT_EQ(on0, std::min<uint64_t>(node.size(), fast));
      EXPECT_EQ(st.pages_seen, node.size());
      EXPECT_EQ(st.pages_node0, on0);
      EXPECT_EQ(st.samples, v.size());
    }
  }
}

TEST(SynthValidation, BadInputIsAOneLineUsageError) {
  const uint64_t G = 1ull << 30;
  expect_usage_error([] { parse_synth_pattern("uniform"); }, {"--pattern", "uniform", "gups"});
  EXPECT_EQ(parse_synth_pattern("zipf"), SynthPattern::kZipf);
  auto bad = [](SynthConfig c, std::initializer_list<std::string> parts) {
    expect_usage_error([&] { plan_synth(c); }, parts);
  };
  bad(config(SynthPattern::kGups, 0, 10), {"--footprint", "less than a page"});
  bad(config(SynthPattern::kGups, 4095, 10), {"--footprint", "less than a page"});
  bad(config(SynthPattern::kGups, 6000, 10), {"--footprint", "4K pages"});
  bad(config(SynthPattern::kGups, 1024 * G, 10), {"--footprint", "512"});
  bad(config(SynthPattern::kGups, G, 0), {"--samples"});
  bad(config(SynthPattern::kGups, G, kSynthMaxSamples + 1), {"--samples"});
  SynthConfig c = config(SynthPattern::kGups, G, 10);
  c.rate = 0;
  bad(c, {"--rate"});
  c = config(SynthPattern::kGups, G, 10);
  c.tgid = 0;
  bad(c, {"--tgid"});
  c = config(SynthPattern::kGups, G, 10);
  c.fast_bytes = 0;
  bad(c, {"--fast"});
  c = config(SynthPattern::kHotset, G, 10);
  c.hot_bytes = 2 * G;
  bad(c, {"--hot-size", "larger than --footprint"});
  c.hot_bytes = 0;
  bad(c, {"--hot-size"});
  c = config(SynthPattern::kPhase, G, 10);
  c.hot_bytes = G / 2 + kPage;
  bad(c, {"--hot-size", "half"});
  c.hot_bytes = G / 2;  // exactly half fits
  EXPECT_NO_THROW(plan_synth(c));
  bad(config(SynthPattern::kPhase, kPage, 10), {"phase", "2 pages"});
  for (double share : {-0.1, 1.5, std::nan("")}) {
    c = config(SynthPattern::kHotset, G, 10);
    c.hot_share = share;
    bad(c, {"--hot-share"});
  }
  for (double skew : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    c = config(SynthPattern::kZipf, G, 10);
    c.skew = skew;
    bad(c, {"--skew"});
  }
  // Options of another pattern are refused, not ignored.
  c = config(SynthPattern::kGups, G, 10);
  c.skew = 1.2;
  bad(c, {"--skew", "zipf"});
  c = config(SynthPattern::kZipf, G, 10);
  c.hot_bytes = G / 8;
  bad(c, {"--hot-size"});
  c = config(SynthPattern::kGups, G, 10);
  c.hot_share = 0.5;
  bad(c, {"--hot-share"});
}

TEST(SynthFile, WritesAProfileWithTopologyProcessAndMap) {
  mb_test::TempTree dir("mb_synth");
  SynthConfig c = config(SynthPattern::kHotset, 64 << 20, 50000, 2);
  c.fast_bytes = 16 << 20;
  SynthPlan plan = plan_synth(c);
  const std::string path = dir.path("h.prof");
  SynthStats st = write_synth_profile(plan, path, false);
  EXPECT_EQ(st.samples, 50000u);
  struct stat sb;
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);  // a profile is its owner's (safe_file.h)

  ProfileReader r(path);
  ASSERT_TRUE(r.ok()) << r.error();
  const ProfileInfo& info = r.info();
  EXPECT_TRUE(info.complete);
  EXPECT_EQ(info.sampler, "synth:hotset");
  EXPECT_EQ(info.sampler_kind, MB_SAMPLER_SYNTHETIC);
  EXPECT_EQ(info.samples, 50000u);
  EXPECT_EQ(info.samples_lost, 0u);
  EXPECT_EQ(info.start_monotonic_ns, kSynthStartMonotonicNs);
  EXPECT_EQ(info.start_realtime_ns, kSynthStartRealtimeNs);
  EXPECT_EQ(info.end_time_ns, plan.end_time());
  ASSERT_EQ(info.topology.nodes.size(), 2u);
  const NumaNode& n0 = info.topology.nodes[0];
  const NumaNode& n1 = info.topology.nodes[1];
  EXPECT_EQ(n0.id, 0);
  EXPECT_EQ(n0.cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(n0.mem_total_bytes, 16u << 20);
  EXPECT_EQ(n1.id, 1);
  EXPECT_TRUE(n1.cpus.empty());
  EXPECT_GE(n1.mem_total_bytes, 64u << 20);
  EXPECT_EQ(info.topology.distance(0, 1), 20);
  EXPECT_EQ(info.topology.distance(1, 0), 20);
  EXPECT_EQ(info.topology.distance(0, 0), 10);
  EXPECT_EQ(info.topology.distance(1, 1), 10);
  // The topology written is the one planned (free = total there).
  Topology t = synth_topology(plan);
  EXPECT_EQ(t.nodes[0].mem_free_bytes, t.nodes[0].mem_total_bytes);
  EXPECT_EQ(t.nodes[1].mem_free_bytes, t.nodes[1].mem_total_bytes);

  ASSERT_EQ(info.processes.size(), 1u);
  EXPECT_EQ(info.processes[0].tgid, 1000u);
  EXPECT_EQ(info.processes[0].event, kProcSeen);
  EXPECT_EQ(info.processes[0].name, "synth-hotset");
  ASSERT_EQ(info.maps_changes.size(), 1u);
  EXPECT_EQ(info.maps_changes[0].tgid, 1000u);
  const std::vector<ProfileMap> maps = info.last_maps(1000);
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].start, kSynthBase);
  EXPECT_EQ(maps[0].end, kSynthBase + (64 << 20));
  EXPECT_EQ(maps[0].path, "");
  ProfileProcesses procs(info);
  EXPECT_EQ(ProfileProcesses::mapping_kind(procs.mapping(1000, plan.hot_start(0))), "anon");

  // The samples in the file are the generated ones.
  auto want = generate(plan);
  std::vector<mb_sample> got;
  r.for_each_batch([&](const mb_sample* s, size_t n) { got.insert(got.end(), s, s + n); });
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(mb_sample)), 0);

  // Same arguments, same bytes; an existing file needs force.
  const std::string again = dir.path("h2.prof");
  write_synth_profile(plan_synth(c), again, false);
  EXPECT_EQ(slurp(path), slurp(again));
  expect_usage_error([&] { write_synth_profile(plan, path, false); }, {"exists", "--force"});
  EXPECT_NO_THROW(write_synth_profile(plan, path, true));
  EXPECT_EQ(slurp(path), slurp(again));
  dir.symlink(path, "link.prof");
  expect_usage_error([&] { write_synth_profile(plan, dir.path("link.prof"), true); }, {"symbolic link"});
}

TEST(SynthSummary, NamesTheHotRanges) {
  SynthConfig c = config(SynthPattern::kPhase, 64 << 20, 10);
  SynthPlan plan = plan_synth(c);
  SynthStats st;
  generate(plan, &st);
  std::string s = synth_summary(plan, st, "x.prof");
  EXPECT_NE(s.find("synth phase: 10 samples"), std::string::npos) << s;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "0x%llx-0x%llx", static_cast<unsigned long long>(plan.hot_start(1)),
                static_cast<unsigned long long>(plan.hot_end(1)));
  EXPECT_NE(s.find(buf), std::string::npos) << s;
  EXPECT_EQ(s.find('\n'), std::string::npos);
}

// ---- --thp: transparent huge pages ----------------------------------------------------

namespace {

SynthConfig thp_config(SynthPattern p, uint64_t seed = 1) {
  SynthConfig c = config(p, 64 << 20, 200000, seed);  // 32 ranges of 2 MiB
  c.thp = 0.5;
  c.thp_split = 0.5;
  return c;
}

constexpr uint16_t kSizeFlags = MB_ACC_HUGE | MB_ACC_BASE_PAGE;

}  // namespace

// Half of the 32 ranges collapse, half of those split later, each at a
// sample the seed draws. Every sample says its page's size: huge from its
// range's collapse until its split, a base page otherwise (ranges that never
// collapse included). Pages and times are those of the trace without --thp:
// only the size flags and the nodes differ (a huge page's node is its
// range's; the pages it put on node 0 take their part of its room).
TEST(SynthThp, SamplesSayTheirPagesSizeAsItsRangeCollapsesAndSplits) {
  for (SynthPattern p : kAll) {
    SCOPED_TRACE(synth_pattern_name(p));
    const SynthPlan plan = plan_synth(thp_config(p));
    ASSERT_EQ(plan.whole_ranges(), 32u);
    ASSERT_EQ(plan.thp_ranges.size(), 16u);
    std::map<uint64_t, SynthThpRange> by_range;
    uint64_t splitting = 0;
    for (const SynthThpRange& r : plan.thp_ranges) {
      EXPECT_LT(r.range, 32u);
      EXPECT_LT(r.collapse_at, plan.samples);
      EXPECT_GT(r.split_at, r.collapse_at);
      splitting += r.split_at < plan.samples;
      EXPECT_TRUE(by_range.emplace(r.range, r).second) << "range " << r.range << " twice";
    }
    EXPECT_EQ(splitting, 8u);
    const auto v = generate(plan);
    const auto plain = generate(config(p, 64 << 20, 200000));
    ASSERT_EQ(v.size(), plain.size());
    uint64_t huge = 0, base_after_split = 0;
    std::map<uint64_t, uint16_t> node_of_range;  // from its first huge sample on
    std::map<uint64_t, uint16_t> node_of_page;   // before that
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(v[i].vaddr, plain[i].vaddr) << i;
      ASSERT_EQ(v[i].time_ns, plain[i].time_ns) << i;
      ASSERT_EQ(plain[i].flags & kSizeFlags, 0) << "without --thp a sample does not say its size";
      const uint64_t range = page_of(v[i]) / 512;
      auto it = by_range.find(range);
      const bool is_huge = it != by_range.end() && i >= it->second.collapse_at && i < it->second.split_at;
      ASSERT_EQ(v[i].flags, MB_ACC_VADDR | MB_ACC_LOAD | (is_huge ? MB_ACC_HUGE : MB_ACC_BASE_PAGE)) << i;
      huge += is_huge;
      if (is_huge) node_of_range.emplace(range, v[i].mem_node);
      auto n = node_of_range.find(range);
      if (n != node_of_range.end()) {
        // One huge page, one node; its base pages stay there after a split.
        ASSERT_EQ(v[i].mem_node, n->second) << i;
        base_after_split += !is_huge;
      } else {
        // First touch, as without --thp (the pages that huge pages put on
        // node 0 take their part of its room).
        const auto [at, first] = node_of_page.emplace(page_of(v[i]), v[i].mem_node);
        ASSERT_TRUE(first || at->second == v[i].mem_node) << i;
      }
    }
    EXPECT_GT(huge, v.size() / 100) << "part of the trace is THP-backed";
    EXPECT_GT(base_after_split, 0u) << "some ranges are sampled after their split";
  }
}

TEST(SynthThp, SameSeedSameTraceOtherSeedOtherRanges) {
  const SynthConfig c = thp_config(SynthPattern::kHotset, 7);
  const auto a = generate(c), b = generate(c);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(mb_sample)), 0);
  const SynthPlan p7 = plan_synth(c), p8 = plan_synth(thp_config(SynthPattern::kHotset, 8));
  auto ranges = [](const SynthPlan& p) {
    std::vector<uint64_t> r;
    for (const auto& x : p.thp_ranges) r.push_back(x.range);
    return r;
  };
  EXPECT_NE(ranges(p7), ranges(p8));
  // Pinned, as SynthDeterminism.PinnedOutput: change only on purpose.
  uint64_t h = 0xcbf29ce484222325ULL;
  generate_synth(plan_synth(thp_config(SynthPattern::kHotset)), [&](const mb_sample* s, size_t n) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(s);
    for (size_t i = 0; i < n * sizeof(mb_sample); ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
  });
  EXPECT_EQ(h, 0xca40e947cfa09e96ULL);
}

// --thp 0: no range collapses, and every sample says it is a base page.
TEST(SynthThp, ZeroSaysEverySampleIsABasePage) {
  SynthConfig c = config(SynthPattern::kGups, 64 << 20, 5000);
  c.thp = 0;
  const SynthPlan plan = plan_synth(c);
  EXPECT_TRUE(plan.thp_ranges.empty());
  for (const mb_sample& s : generate(plan)) ASSERT_EQ(s.flags, MB_ACC_VADDR | MB_ACC_LOAD | MB_ACC_BASE_PAGE);
}

// khugepaged puts a huge page where most of its range's pages are, on node 1
// when node 0 lacks room: with a fast node of the whole footprint every
// huge sample is on node 0; with one of a page, on node 1.
TEST(SynthThp, AHugePageIsWhereMostOfItsPagesWereWithRoom) {
  for (uint64_t fast : {uint64_t{64} << 20, kPage}) {
    SynthConfig c = thp_config(SynthPattern::kGups);
    c.fast_bytes = fast;
    uint64_t huge = 0;
    for (const mb_sample& s : generate(c))
      if (s.flags & MB_ACC_HUGE) {
        ++huge;
        ASSERT_EQ(s.mem_node, fast == kPage ? 1 : 0) << "fast " << fast;
      }
    EXPECT_GT(huge, 0u);
  }
}

TEST(SynthThp, BadInputIsAOneLineUsageError) {
  auto bad = [](SynthConfig c, std::initializer_list<std::string> parts) {
    expect_usage_error([&] { plan_synth(c); }, parts);
  };
  SynthConfig c = config(SynthPattern::kGups, 64 << 20, 10);
  c.thp_split = 0.5;
  bad(c, {"--thp-split", "--thp"});
  for (double f : {-0.1, 1.5, std::nan("")}) {
    c = config(SynthPattern::kGups, 64 << 20, 10);
    c.thp = f;
    bad(c, {"--thp", "fraction"});
    c.thp = 0.5;
    c.thp_split = f;
    bad(c, {"--thp-split", "fraction"});
  }
  c = config(SynthPattern::kGups, 1 << 20, 10);
  c.thp = 0.5;
  bad(c, {"--thp", "no whole 2 MiB range"});
  c.thp = 0;  // no range asked for: fine
  EXPECT_NO_THROW(plan_synth(c));
}

TEST(SynthThp, SummarySaysTheRanges) {
  const SynthPlan plan = plan_synth(thp_config(SynthPattern::kHotset));
  SynthStats st;
  generate(plan, &st);
  const std::string s = synth_summary(plan, st, "x.prof");
  EXPECT_NE(s.find("; THP: 16 of 32 2 MiB ranges collapse, 8 of them split later"), std::string::npos) << s;
  EXPECT_EQ(synth_summary(plan_synth(config(SynthPattern::kHotset, 64 << 20, 10)), st, "x").find("THP"),
            std::string::npos);
}
