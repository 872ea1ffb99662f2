// profiler whatif with more than two tiers: the N-tier oracle (checked by
// hand and against every placement of a small interval), where recorded
// pages start, and membalancer's policy on a small three-tier trace; and a
// recording of a machine with one tier, simulated as two.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "membalancer/error.h"
#include "membalancer/placement_model.h"
#include "membalancer/profile_file.h"
#include "profiler/sim_policies.h"
#include "profiler/synth.h"
#include "profiler/whatif.h"
#include "tests/unit/temp_tree.h"
#include "written.h"

using namespace mb;
using namespace mb::prof;

namespace {

PageCount pc(uint64_t key, uint32_t accesses) { return {key, accesses, false}; }

// ---- the oracle ---------------------------------------------------------------------

TEST(WhatifOracle, HottestFillTierZeroThenTierOne) {
  // Tier 0 holds 2 pages, tier 1 one, tier 2 the rest: 10 + 8 | 5 | 3 + 1.
  const std::vector<PageCount> c = {pc(1, 3), pc(2, 10), pc(3, 1), pc(4, 5), pc(5, 8)};
  EXPECT_EQ(oracle_tier_hits(c, {2, 1}), (std::vector<uint64_t>{18, 5, 4}));
  // Two tiers: the two-tier oracle and the rest.
  EXPECT_EQ(oracle_tier_hits(c, {2}), (std::vector<uint64_t>{oracle_hits(c, 2), 27 - oracle_hits(c, 2)}));
  // Faster tiers larger than the pages: the lower ones serve nothing.
  EXPECT_EQ(oracle_tier_hits(c, {8, 3, 1}), (std::vector<uint64_t>{27, 0, 0, 0}));
  EXPECT_EQ(oracle_tier_hits({}, {1, 1}), (std::vector<uint64_t>{0, 0, 0}));
}

// Optimal for every per-interval objective sum_k w_k x hits_k with weights
// not rising toward slower tiers: no placement of the 6 pages into tiers of
// 2, 1 and any number of pages does better (all 3^6 placements tried).
TEST(WhatifOracle, NoPlacementBeatsItForAnyHitWeightedObjective) {
  const std::vector<PageCount> c = {pc(1, 7), pc(2, 2), pc(3, 9), pc(4, 4), pc(5, 4), pc(6, 1)};
  const std::vector<uint64_t> caps = {2, 1};
  const auto oracle = oracle_tier_hits(c, caps);
  ASSERT_EQ(oracle, (std::vector<uint64_t>{16, 4, 7}));
  const std::vector<std::array<uint64_t, 3>> weights = {{1, 0, 0}, {1, 1, 0}, {3, 2, 1}, {10, 1, 0}, {5, 4, 4}};
  for (const auto& wt : weights) {
    const uint64_t mine = wt[0] * oracle[0] + wt[1] * oracle[1] + wt[2] * oracle[2];
    uint64_t best = 0;
    for (int code = 0; code < 729; ++code) {
      std::array<uint64_t, 3> used{}, hits{};
      for (int p = 0, x = code; p < 6; ++p, x /= 3) {
        ++used[x % 3];
        hits[x % 3] += c[p].accesses;
      }
      if (used[0] > caps[0] || used[1] > caps[1]) continue;
      best = std::max(best, wt[0] * hits[0] + wt[1] * hits[1] + wt[2] * hits[2]);
    }
    EXPECT_EQ(mine, best) << "weights " << wt[0] << "," << wt[1] << "," << wt[2];
  }
}

// ---- the oracle's moves with N tiers -------------------------------------------------

// A model of node k = tier k: tiers 0..N-2 of the given capacities, the last
// unbounded.
PlacementModel tier_model(const std::vector<uint64_t>& upper) {
  std::map<int, uint64_t> cap;
  for (size_t k = 0; k < upper.size(); ++k) cap[static_cast<int>(k)] = upper[k];
  cap[static_cast<int>(upper.size())] = 1ull << 40;
  return PlacementModel(cap, static_cast<int>(upper.size()), PlacementModel::Start::kRecorded);
}

std::vector<int> tier_nodes(size_t n) {
  std::vector<int> t;
  for (size_t k = 0; k < n; ++k) t.push_back(static_cast<int>(k));
  return t;
}

// Two pages alike, one in tier 1, one in the last; tiers 0 and 1 take one
// each. Keeping tier by tier (tier 0 keeps its own, then takes the first
// other page by key, then tier 1 likewise) moves both: page 1 up from tier
// 1, page 2 up to tier 1. One move does: page 2 up to tier 0, page 1 stays.
// And two full tiers swapping pages: through the last tier, each moved once.
TEST(WhatifOracle, NTierMovesKeepWhatAnyTierCan) {
  PlacementModel m = tier_model({1, 1});
  m.place(1, 1, false);
  m.place(2, 2, false);
  uint64_t up = 0, down = 0;
  EXPECT_EQ(oracle_step({pc(1, 5), pc(2, 5)}, m, tier_nodes(3), &up, &down), (std::vector<uint64_t>{5, 5, 0}));
  EXPECT_EQ(m.node_of(1), 1);
  EXPECT_EQ(m.node_of(2), 0);
  EXPECT_EQ(up, 1u);
  EXPECT_EQ(down, 0u);
  // Page 1 (in tier 1) now the hottest, page 2 (in tier 0) next.
  EXPECT_EQ(oracle_step({pc(1, 9), pc(2, 1)}, m, tier_nodes(3), &up, &down), (std::vector<uint64_t>{9, 1, 0}));
  EXPECT_EQ(m.node_of(1), 0);
  EXPECT_EQ(m.node_of(2), 1);
  EXPECT_EQ(up, 2u);
  EXPECT_EQ(down, 1u);
  // Of pages alike, a lower key counts as hotter: 3, 4, 5 all in the last
  // tier, tiers 0 and 1 full of pages not sampled (1, 2: down to the last):
  // 3 to tier 0, 4 to tier 1.
  for (uint64_t k : {3, 4, 5}) m.place(k, 2, false);
  EXPECT_EQ(oracle_step({pc(3, 2), pc(4, 2), pc(5, 2)}, m, tier_nodes(3), &up, &down),
            (std::vector<uint64_t>{2, 2, 2}));
  EXPECT_EQ(m.node_of(3), 0);
  EXPECT_EQ(m.node_of(4), 1);
  EXPECT_EQ(m.node_of(5), 2);
  EXPECT_EQ(up, 4u);
  EXPECT_EQ(down, 3u);
}

// Against every placement of a few pages in three or four tiers: the oracle
// reaches a placement serving oracle_tier_hits in every tier, within every
// capacity, with the fewest pages moved of all such placements, and what it
// counts as moved (up and down) is what changed tier. Accesses of 1 to 3 make
// ties common; some pages are not sampled, some sampled with no accesses.
TEST(WhatifOracle, NTierMovesAreTheFewestOfEveryBestPlacement) {
  std::mt19937 rng(11);
  constexpr int kPages = 7;
  for (int round = 0; round < 300; ++round) {
    const size_t n = 3 + rng() % 2;
    std::vector<uint64_t> upper;
    for (size_t k = 0; k + 1 < n; ++k) upper.push_back(rng() % 4);
    PlacementModel m = tier_model(upper);
    std::vector<PageCount> counts;
    std::array<int, kPages> before{};
    for (int p = 0; p < kPages; ++p) {
      // Where it starts: a random tier with room, else the last.
      const int want = static_cast<int>(rng() % n);
      before[p] = m.place(static_cast<uint64_t>(p + 1), want, false);
      if (rng() % 4) counts.push_back(pc(p + 1, rng() % 4));
    }
    const std::vector<uint64_t> best = oracle_tier_hits(counts, upper);
    uint64_t up = 0, down = 0;
    EXPECT_EQ(oracle_step(counts, m, tier_nodes(n), &up, &down), best) << "round " << round;
    uint64_t moved_up = 0, moved_down = 0;
    for (int p = 0; p < kPages; ++p) {
      const int now = m.node_of(static_cast<uint64_t>(p + 1));
      moved_up += now < before[p];
      moved_down += now > before[p];
    }
    for (size_t k = 0; k + 1 < n; ++k) EXPECT_LE(m.used_pages(static_cast<int>(k)), upper[k]);
    EXPECT_EQ(up, moved_up) << "round " << round;
    EXPECT_EQ(down, moved_down) << "round " << round;
    // The fewest moves of every placement serving `best`.
    uint64_t fewest = kPages;
    int codes = 1;
    for (int p = 0; p < kPages; ++p) codes *= static_cast<int>(n);
    for (int code = 0; code < codes; ++code) {
      std::array<int, kPages> tier{};
      std::vector<uint64_t> used(n, 0), hits(n, 0);
      uint64_t moves = 0;
      for (int p = 0, x = code; p < kPages; ++p, x /= static_cast<int>(n)) {
        tier[p] = x % static_cast<int>(n);
        ++used[tier[p]];
        moves += tier[p] != before[p];
      }
      bool fits = true;
      for (size_t k = 0; k + 1 < n; ++k) fits &= used[k] <= upper[k];
      if (!fits) continue;
      for (const auto& c : counts) hits[tier[c.key - 1]] += c.accesses;
      if (hits == best) fewest = std::min(fewest, moves);
    }
    EXPECT_EQ(up + down, fewest) << "round " << round;
  }
}

// With 2 MiB pages a tier may be served alike by different splits: here a
// huge page H (100 accesses) already in tier 0 (512 pages) or 100 base
// pages of one access each, in the last tier. Either serves 100. The
// oracle took the first split (the base pages): H out (512 pages) and the
// base pages in (100); keeping H moves nothing. With three tiers (512,
// 512): tier 0 keeps H and tier 1 takes the base pages (100 moves), where
// the first split moved all 612 pages.
TEST(WhatifOracle, HugePagesEqualSplitsTakeTheFewestMoves) {
  const uint64_t h = 1000;
  std::vector<PageCount> c{{h, 100, true}};
  for (uint64_t k = 1; k <= 100; ++k) c.push_back(pc(k, 1));
  for (const size_t n : {2u, 3u}) {
    PlacementModel m = tier_model(std::vector<uint64_t>(n - 1, 512));
    m.place(h, 0, true);
    for (uint64_t k = 1; k <= 100; ++k) m.place(k, static_cast<int>(n - 1), false);
    uint64_t up = 0, down = 0;
    const auto hits = oracle_step(c, m, tier_nodes(n), &up, &down);
    EXPECT_EQ(hits[0], 100u) << n;
    EXPECT_EQ(m.node_of(h), 0) << n;
    EXPECT_EQ(up, n == 2 ? 0u : 100u) << n;
    EXPECT_EQ(down, 0u) << n;
    if (n == 3) {
      EXPECT_EQ(m.node_of(1), 1);
    }
  }
}

// Two tiers with 2 MiB pages, against every placement: the oracle serves
// the best and moves the fewest base pages of every placement that does
// (4 base pages and 2 huge ones, accesses 1 to 3: ties are common).
TEST(WhatifOracle, HugePagesFewestMovesOfEveryBestPlacement) {
  std::mt19937 rng(17);
  for (int round = 0; round < 300; ++round) {
    const uint64_t cap = (rng() % 2 ? 512 : 1024) + rng() % 4;  // a huge page leaves room for 0-3 base pages
    PlacementModel m = tier_model({cap});
    std::vector<PageCount> counts;
    std::array<int, 6> before{};
    std::array<uint64_t, 6> size{};
    for (int p = 0; p < 6; ++p) {
      const bool huge = p >= 4;
      size[p] = huge ? 512 : 1;
      before[p] = m.place(static_cast<uint64_t>(p + 1), static_cast<int>(rng() % 2), huge);
      counts.push_back({static_cast<uint64_t>(p + 1), static_cast<uint32_t>(rng() % 3 + 1), huge});
    }
    const uint64_t best = oracle_hits(counts, cap);
    uint64_t up = 0, down = 0;
    EXPECT_EQ(oracle_step(counts, m, tier_nodes(2), &up, &down)[0], best) << "round " << round;
    uint64_t fewest = UINT64_MAX;
    for (int code = 0; code < 64; ++code) {
      uint64_t used = 0, hits = 0, moves = 0;
      for (int p = 0; p < 6; ++p) {
        const int tier = (code >> p) & 1;
        if (tier == 0) used += size[p], hits += counts[p].accesses;
        if (tier != before[p]) moves += size[p];
      }
      if (used <= cap && hits == best) fewest = std::min(fewest, moves);
    }
    EXPECT_EQ(up + down, fewest) << "round " << round;
  }
}

TEST(WhatifTiers, RecordedTiersMapFastestFirstSlowestLast) {
  // Two tiers, as before: the recorded fast tier is fast, all else slow.
  EXPECT_EQ(sim_tier_of_recorded(0, 2, 2), 0u);
  EXPECT_EQ(sim_tier_of_recorded(1, 2, 2), 1u);
  EXPECT_EQ(sim_tier_of_recorded(1, 3, 2), 1u);
  EXPECT_EQ(sim_tier_of_recorded(2, 3, 2), 1u);
  // More simulated tiers than recorded: the slowest recorded goes last.
  EXPECT_EQ(sim_tier_of_recorded(0, 2, 4), 0u);
  EXPECT_EQ(sim_tier_of_recorded(1, 2, 4), 3u);
  EXPECT_EQ(sim_tier_of_recorded(1, 3, 3), 1u);
  EXPECT_EQ(sim_tier_of_recorded(2, 3, 3), 2u);
}

// ---- membalancer's policy on three tiers ------------------------------------------

constexpr uint64_t kBase = 0x40000000;
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kTgid = 100;

// The start of a test recording of the given machine (one CPU on node 0).
ProfileStart test_start(std::vector<NumaNode> nodes) {
  ProfileStart st;
  st.sampler = "synth:test";
  st.sampler_kind = MB_SAMPLER_SYNTHETIC;
  st.topology.nodes = std::move(nodes);
  st.topology.cpu_node = {0};
  st.start_realtime_ns = st.start_monotonic_ns = kSecond;
  return st;
}

// A profile of the given machine: `each(t, sample)` for t = 0..intervals-1
// (1 s apart) calls sample(page, times, node) for what interval t saw.
using SampleFn = std::function<void(uint64_t page, int times, int node)>;
std::string write_trace(const std::string& path, std::vector<NumaNode> nodes, uint64_t intervals,
                        const std::function<void(uint64_t, const SampleFn&)>& each,
                        uint16_t flags = MB_ACC_VADDR | MB_ACC_LOAD) {
  ProfileWriter w(path, test_start(std::move(nodes)));
  w.add_process(kSecond, kTgid, 0, kProcSeen, "heat");
  for (uint64_t t = 0; t < intervals; ++t) {
    uint64_t ns = (t + 1) * kSecond;
    each(t, [&](uint64_t page, int times, int node) {
      for (int i = 0; i < times; ++i) {
        mb_sample s{};
        s.time_ns = ns++;
        s.tgid = s.tid = kTgid;
        s.vaddr = kBase + page * 4096;
        s.mem_node = static_cast<uint16_t>(node);
        s.flags = flags;
        s.sampler = MB_SAMPLER_SYNTHETIC;
        w.add_sample(s);
      }
    });
  }
  w.finish((intervals + 1) * kSecond, 0);
  return path;
}

NumaNode memory_node(int id, uint64_t bytes, std::vector<int> cpus, std::map<int, int> distance) {
  NumaNode n;
  n.id = id;
  n.cpus = std::move(cpus);
  n.distance = std::move(distance);
  n.mem_total_bytes = n.mem_free_bytes = bytes;
  return n;
}

// Pages 0..63: hot (20 samples an interval); 64..191: warm (6); 192..703:
// cold (one sample, in the first interval only). 12 intervals of 1 s. Warm
// pages recorded on node 0 (fast), the others on node 1.
std::string three_heat_trace(const mb_test::TempTree& dir) {
  return write_trace(dir.path("heat.prof"),
                     {memory_node(0, 4ull << 20, {0}, {{0, 10}, {1, 20}}),
                      memory_node(1, 64ull << 20, {}, {{0, 20}, {1, 10}})},
                     12, [](uint64_t t, const SampleFn& sample) {
                       auto node = [](uint64_t p) { return p >= 64 && p < 192 ? 0 : 1; };
                       for (uint64_t p = 0; p < 64; ++p) sample(p, 20, node(p));
                       for (uint64_t p = 64; p < 192; ++p) sample(p, 6, node(p));
                       if (t == 0)
                         for (uint64_t p = 192; p < 704; ++p) sample(p, 1, node(p));
                     });
}

// The message of the UsageError run_whatif(o) throws; "(ran)" when it ran.
std::string usage_error_of(const WhatifOptions& o) {
  try {
    run_whatif(o);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(ran)";
}

const WhatifRun& run_of(const WhatifResult& r, const std::string& name) {
  for (const auto& run : r.runs)
    if (run.policy == name) return run;
  throw std::runtime_error("no run " + name);
}

// Tier 0: 80 pages (room for the hot 64), tier 1: 160 (the warm 128), tier 2: the rest.
WhatifOptions three_tiers(const std::string& path, bool start_slow) {
  WhatifOptions o;
  o.path = path;
  o.fast_bytes = 80 * 4096;
  o.middle_bytes = {160 * 4096};
  o.start_slow = start_slow;
  return o;
}

TEST(WhatifTiers, MembalancerSettlesHotInTierZeroWarmInTierOne) {
  mb_test::TempTree dir("mbwhatif");
  const WhatifResult r = run_whatif(three_tiers(three_heat_trace(dir), true));
  ASSERT_EQ(r.tiers(), 3u);
  ASSERT_EQ(r.accesses.size(), 12u);
  // By default only the N-tier runs; the two-tier rules are named as not run.
  ASSERT_EQ(r.runs.size(), 2u);
  EXPECT_EQ(r.not_run, (std::vector<std::string>{"amd-topk", "linux-tiering", "memtierd-age", "memtis", "tpp"}));
  const WhatifRun& mb = run_of(r, "membalancer");
  ASSERT_EQ(mb.lower_hits.size(), 2u);
  // Everything starts in the last tier.
  EXPECT_EQ(mb.hits[0], 0u);
  EXPECT_EQ(mb.lower_hits[0][0], 0u);
  EXPECT_EQ(mb.lower_hits[1][0], r.accesses[0]);
  // Settled: the hot pages' accesses from tier 0, the warm ones' from tier 1.
  const size_t last = r.accesses.size() - 1;
  EXPECT_EQ(r.accesses[last], 64u * 20 + 128 * 6);
  EXPECT_EQ(mb.hits[last], 64u * 20);
  EXPECT_EQ(mb.lower_hits[0][last], 128u * 6);
  EXPECT_EQ(mb.lower_hits[1][last], 0u);
  EXPECT_GE(mb.promoted, 64u + 128);
  // The oracle fills tier 0 to the brim (16 warm pages join the hot ones;
  // membalancer keeps its watermark free), from the first interval on.
  const WhatifRun& oracle = run_of(r, "oracle");
  for (size_t i = 1; i <= last; ++i) {
    EXPECT_EQ(oracle.hits[i], 64u * 20 + 16 * 6) << i;
    EXPECT_EQ(oracle.lower_hits[0][i], 112u * 6) << i;
    EXPECT_EQ(oracle.lower_hits[1][i], 0u) << i;
  }
  EXPECT_LE(mb.total_hits(), oracle.total_hits());
}

namespace {

// Page 0 is first seen as a 2 MiB page (interval 1), then sampled 40 times
// an interval with `later_flags`' page size; ten base pages 4 MiB further on
// take 20 samples an interval. The fast tier holds 100 pages; everything
// starts slow. membalancer alone runs.
WhatifRun huge_page_then_samples(const std::string& path, uint16_t later_flags) {
  {
    ProfileWriter w(path, test_start({memory_node(0, 4ull << 20, {0}, {{0, 10}, {1, 20}}),
                                      memory_node(1, 64ull << 20, {}, {{0, 20}, {1, 10}})}));
    w.add_process(kSecond, kTgid, 0, kProcSeen, "split");
    for (uint64_t t = 0; t < 8; ++t) {
      uint64_t ns = (t + 1) * kSecond;
      auto sample = [&](uint64_t page, int times, uint16_t flags) {
        for (int i = 0; i < times; ++i) {
          mb_sample s{};
          s.time_ns = ns++;
          s.tgid = s.tid = kTgid;
          s.vaddr = kBase + page * 4096;
          s.mem_node = 1;
          s.flags = flags;
          s.sampler = MB_SAMPLER_SYNTHETIC;
          w.add_sample(s);
        }
      };
      if (t == 0) sample(0, 1, MB_ACC_VADDR | MB_ACC_LOAD | MB_ACC_HUGE);
      else sample(0, 40, MB_ACC_VADDR | MB_ACC_LOAD | later_flags);
      for (uint64_t p = 1024; p < 1034; ++p) sample(p, 20, MB_ACC_VADDR | MB_ACC_LOAD | MB_ACC_BASE_PAGE);
    }
    w.finish(9 * kSecond, 0);
  }
  WhatifOptions o;
  o.path = path;
  o.fast_bytes = 100 * 4096;
  o.start_slow = true;
  o.policies = {"membalancer"};
  return run_of(run_whatif(o), "membalancer");
}

uint64_t sum(const std::vector<uint64_t>& v) { return std::accumulate(v.begin(), v.end(), uint64_t{0}); }

}  // namespace

// membalancer's pages moved are those that moved in the model, counted as
// the other rules' are, not those its plan asked for. Page 0's later
// samples say it is a base page: the kernel split it, and the model, the
// page table and so the plan all hold 512 base pages from then on, each with
// its share of the huge page's one sample (1/512: the samples are accesses,
// somewhere in the 2 MiB). Before the model followed the split it kept one
// 2 MiB entry that the plan's base page 0 could not fit in 100 pages
// (refused), and the ten hot base pages moved: 10 pages. Now page 0 and the
// ten go up: 11 pages, each counted once. (While each base page kept the
// huge page's whole sample, the split's other 501 base pages, each as hot as
// the whole 2 MiB had been, filled the rest of the free fast tier: 100.)
TEST(WhatifMoves, MembalancerCountsWhatMovedNotWhatItPlanned) {
  mb_test::TempTree dir("mbwhatif");
  const WhatifRun mb = huge_page_then_samples(dir.path("split.prof"), MB_ACC_BASE_PAGE);
  EXPECT_EQ(mb.promoted, 11u);
  EXPECT_EQ(mb.demoted, 0u);
  EXPECT_EQ(sum(mb.promoted_at), 11u);
  // Page 0 and the ten serve from the fast tier in the end.
  EXPECT_EQ(mb.hits.back(), 40u + 10u * 20);
}

// The same trace, but page 0's later samples do not say their page's size
// (IBS outside a TLB hit, PEBS, page faults): they are samples of the huge
// page they fall in, not a split. The 2 MiB page cannot fit in 100 pages, so
// only the ten go up and page 0's 40 samples an interval stay slow. Read as
// splits (as every base-keyed sample was), they promoted 100 pages.
TEST(WhatifMoves, ASampleOfNoSizeInAHugePageIsNotASplit) {
  mb_test::TempTree dir("mbwhatif");
  const WhatifRun mb = huge_page_then_samples(dir.path("nosize.prof"), 0);
  EXPECT_EQ(mb.promoted, 10u);
  EXPECT_EQ(sum(mb.promoted_at), 10u);
  EXPECT_EQ(mb.hits.back(), 10u * 20);
}

// A 2 MiB page's samples count once for membalancer's hits, as for every
// rule and in the interval's accesses: one huge page recorded on the fast
// node (which holds it), 30 samples an interval, so every rule serves all
// 30 from the fast tier each interval. membalancer's hits were the
// pipeline's node accesses, which count a 2 MiB page's once per base page
// (as abit's report does): 512 x 30 = 15360 an interval, a hit ratio of 51200%.
TEST(WhatifHits, AHugePageCountsItsSamplesOnceForEveryRule) {
  mb_test::TempTree dir("mbwhatif");
  const std::string path = write_trace(dir.path("huge.prof"),
                                       {memory_node(0, 4ull << 20, {0}, {{0, 10}, {1, 20}}),
                                        memory_node(1, 64ull << 20, {}, {{0, 20}, {1, 10}})},
                                       4, [](uint64_t, const SampleFn& sample) { sample(0, 30, 0); },
                                       MB_ACC_VADDR | MB_ACC_LOAD | MB_ACC_HUGE);
  WhatifOptions o;
  o.path = path;
  const WhatifResult r = run_whatif(o);
  EXPECT_EQ(r.pages_seen, 512u) << "in base pages, as the tiers' sizes (it said 1: 4 KiB seen)";
  EXPECT_EQ(r.accesses, (std::vector<uint64_t>{30, 30, 30, 30}));
  for (const WhatifRun& run : r.runs) EXPECT_EQ(run.hits, (std::vector<uint64_t>{30, 30, 30, 30})) << run.policy;
}

TEST(WhatifTiers, RecordedFastPagesStartInTierZeroWhileItHasRoom) {
  mb_test::TempTree dir("mbwhatif");
  const WhatifResult r = run_whatif(three_tiers(three_heat_trace(dir), false));
  const WhatifRun& mb = run_of(r, "membalancer");
  // The 128 warm pages were recorded on the fast node: 80 fit in tier 0, the
  // others start in the last tier (as slow pages do: tier 1 starts empty).
  EXPECT_EQ(mb.hits[0], 80u * 6);
  EXPECT_EQ(mb.lower_hits[0][0], 0u);
  EXPECT_EQ(mb.lower_hits[1][0], r.accesses[0] - 80 * 6);
}

TEST(WhatifTiers, TwoTierRulesOnlyWithTwoTiers) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o = three_tiers(three_heat_trace(dir), true);
  o.policies = {"tpp"};
  EXPECT_EQ(usage_error_of(o), "--policy: tpp is a two-tier rule; with 3 tiers only membalancer runs (and the oracle)");
  // Two tiers: every rule runs, and each has its slow tier's share.
  o.middle_bytes.clear();
  o.policies.clear();
  const WhatifResult r = run_whatif(o);
  EXPECT_EQ(r.runs.size(), 7u);
  EXPECT_TRUE(r.not_run.empty());
  for (const auto& run : r.runs) {
    ASSERT_EQ(run.lower_hits.size(), 1u) << run.policy;
    EXPECT_EQ(run.tier_total(0) + run.tier_total(1), r.total_accesses()) << run.policy;
  }
}

// ---- a recording of one tier ----------------------------------------------------------

// A machine of DRAM alone (one node): pages 0..199 touched once in the first
// interval, in order; from then on pages 150..199 are hot (20 samples an
// interval). 8 intervals.
std::string one_tier_trace(const mb_test::TempTree& dir) {
  return write_trace(dir.path("one.prof"), {memory_node(0, 64ull << 20, {0, 1}, {{0, 10}})}, 8,
                     [](uint64_t t, const SampleFn& sample) {
                       if (t == 0)
                         for (uint64_t p = 0; p < 200; ++p) sample(p, 1, 0);
                       else
                         for (uint64_t p = 150; p < 200; ++p) sample(p, 20, 0);
                     });
}

TEST(WhatifOneTier, PagesStartFastAsFirstSeenThenEveryRuleMovesTheHotOnesUp) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  o.fast_bytes = 100 * 4096;
  const WhatifResult r = run_whatif(o);
  EXPECT_EQ(r.recorded_tiers, 1u);
  ASSERT_EQ(r.tiers(), 2u);
  ASSERT_EQ(r.accesses.size(), 8u);
  EXPECT_TRUE(r.not_run.empty());
  ASSERT_EQ(r.runs.size(), 7u);
  // First touch: the first 100 pages fill the fast tier, the other 100
  // start slow, for every rule alike.
  for (const auto& run : r.runs) {
    EXPECT_EQ(run.hits[0], 100u) << run.policy;
    EXPECT_EQ(run.lower_hits[0][0], 100u) << run.policy;
  }
  // The hot 50 were the last touched: all slow at first. membalancer brings
  // every one of them up (making room of the cold pages first seen).
  const WhatifRun& mb = run_of(r, "membalancer");
  EXPECT_EQ(mb.hits[1], 0u);
  EXPECT_EQ(mb.hits[7], 50u * 20);
  EXPECT_GE(mb.promoted, 50u);
  EXPECT_EQ(run_of(r, "oracle").hits[1], 50u * 20);
}

TEST(WhatifInput, AfterIntervalCanEndTheRun) {
  mb_test::TempTree dir("mb_whatif_stop");
  WhatifOptions o;
  o.path = three_heat_trace(dir);
  o.fast_bytes = 1ull << 20;
  int calls = 0;
  o.after_interval = [&calls] {
    if (++calls == 3) throw mb::SystemError("writing the output (stdout)", EPIPE);
  };
  EXPECT_THROW(run_whatif(o), mb::SystemError);
  EXPECT_EQ(calls, 3) << "the run ended at the third interval of 12";
  calls = -100;
  EXPECT_EQ(run_whatif(o).accesses.size(), 12u);
  EXPECT_EQ(calls, -88) << "called once after each interval";
}

// A rate limit under a page per interval (2K/s, 1 s intervals): every rule,
// membalancer's included, moves at most 2 KiB x the intervals so far, a page
// every second interval (the unspent credit carries over: IntervalBudget).
// It once rounded down to 0 pages, which the comparison rules read as no
// limit; then it moved a page every interval, twice the rate.
TEST(WhatifRateLimit, UnderAPagePerIntervalKeepsTheRate) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  o.fast_bytes = 300 * 4096;  // room for every page: promotions need no demotion
  o.start_slow = true;
  o.rate_limit_bytes = 2048;
  const WhatifResult r = run_whatif(o);
  ASSERT_EQ(r.accesses.size(), 8u);
  for (const auto& run : r.runs) {
    if (run.policy == "oracle") continue;
    uint64_t moved = 0;
    for (size_t i = 0; i < run.promoted_at.size(); ++i) {
      moved += run.promoted_at[i] + run.demoted_at[i];
      EXPECT_LE(moved * 4096, 2048 * (i + 1)) << run.policy << " by interval " << i + 1;
    }
  }
  EXPECT_GT(run_of(r, "membalancer").promoted, 0u);
  EXPECT_GT(run_of(r, "tpp").promoted, 0u);
}

// A sample at 2^63 ns (a damaged time): whatif used to step through every
// empty interval up to it (a hang, memory growing). It is damage: what
// precedes it is simulated, the result names it. With an END chunk (the
// recording's end is known) and without one (a gap of absurd length).
TEST(WhatifInput, ASampleAtAnAbsurdTimeIsDamageNotAHang) {
  mb_test::TempTree dir("mbwhatif");
  for (const bool with_end : {true, false}) {
    const std::string path = dir.path(with_end ? "end.prof" : "noend.prof");
    {
      ProfileWriter w(path, test_start({memory_node(0, 64ull << 20, {0, 1}, {{0, 10}})}));
      w.add_process(kSecond, kTgid, 0, kProcSeen, "heat");
      mb_sample s{};
      s.tgid = s.tid = kTgid;
      s.flags = MB_ACC_VADDR | MB_ACC_LOAD;
      s.sampler = MB_SAMPLER_SYNTHETIC;
      for (uint64_t i = 0; i < 3; ++i) {
        s.time_ns = kSecond + i * kSecond;
        s.vaddr = kBase + i * 4096;
        w.add_sample(s);
      }
      s.time_ns = 1ull << 63;
      w.add_sample(s);
      if (with_end) w.finish(5 * kSecond, 0);
      else w.flush();
    }
    WhatifOptions o;
    o.path = path;
    o.fast_bytes = 100 * 4096;
    const WhatifResult r = run_whatif(o);
    // Without an END the missing END is named first; either way, no hang.
    if (with_end) EXPECT_NE(r.damage.find("its time is damaged"), std::string::npos) << r.damage;
    else EXPECT_FALSE(r.damage.empty());
    EXPECT_LE(r.accesses.size(), 5u);
    EXPECT_EQ(r.samples, 3u);
  }
}

// A recording with losses: whatif says so (text and json) rather than
// presenting the simulation of an incomplete trace as the whole.
TEST(WhatifInput, RecordedLossesAreSaid) {
  mb_test::TempTree dir("mbwhatif");
  const std::string path = dir.path("lost.prof");
  {
    ProfileWriter w(path, test_start({memory_node(0, 64ull << 20, {0, 1}, {{0, 10}})}));
    mb_sample s{};
    s.tgid = s.tid = kTgid;
    s.flags = MB_ACC_VADDR | MB_ACC_LOAD;
    s.time_ns = kSecond;
    s.vaddr = kBase;
    w.add_sample(s);
    w.finish(2 * kSecond, 42);
  }
  WhatifOptions o;
  o.path = path;
  o.fast_bytes = 100 * 4096;
  o.policies = {"tpp"};
  const WhatifResult r = run_whatif(o);
  EXPECT_EQ(r.lost.samples, 42u);
  for (const std::string format : {"text", "json"}) {
    const std::string out = mb_test::written_by([&](FILE* f) { print_whatif(f, o, r, format); });
    EXPECT_NE(out.find(format == "json" ? "\"samples_lost\":42" : "42 samples lost"), std::string::npos) << out;
  }
}

TEST(WhatifOneTier, StartSlowPutsEveryPageInTheLastTier) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  o.fast_bytes = 100 * 4096;
  o.start_slow = true;
  const WhatifResult r = run_whatif(o);
  for (const auto& run : r.runs) {
    if (run.policy == "oracle") continue;
    EXPECT_EQ(run.hits[0], 0u) << run.policy;
  }
}

TEST(WhatifOneTier, WithoutAFastSizeTheErrorAsksForOne) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  EXPECT_EQ(usage_error_of(o), o.path + ": recorded on a machine of one memory tier (64.0 MiB): give the fast "
                                       "tier's size (--fast SIZE, --tiers or --sweep)");
}

TEST(WhatifOneTier, TwoSocketsOfDramAreOneTier) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  // Pages 0..99 on socket 0, 100..199 on socket 1, each touched once, then
  // all read once an interval.
  o.path = write_trace(dir.path("sockets.prof"),
                       {memory_node(0, 32ull << 20, {0}, {{0, 10}, {1, 21}}),
                        memory_node(1, 32ull << 20, {1}, {{0, 21}, {1, 10}})},
                       2, [](uint64_t, const SampleFn& sample) {
                         for (uint64_t p = 0; p < 200; ++p) sample(p, 1, p < 100 ? 0 : 1);
                       });
  o.fast_bytes = 150 * 4096;
  const WhatifResult r = run_whatif(o);
  EXPECT_EQ(r.recorded_tiers, 1u);
  // Both sockets' pages start fast, first seen first, while there is room.
  for (const auto& run : r.runs) EXPECT_EQ(run.hits[0], 150u) << run.policy;
}

// A recording of instruction pointers alone (cpu-clock) has no pages.
TEST(WhatifInput, NoDataAddressIsAnErrorNotAnEmptyTable) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = write_trace(
      dir.path("ip.prof"), {memory_node(0, 64ull << 20, {0}, {{0, 10}})}, 3,
      [](uint64_t, const SampleFn& sample) { sample(1, 10, 0); }, MB_ACC_IP);
  o.fast_bytes = 1 << 20;
  EXPECT_EQ(usage_error_of(o), o.path + ": no samples with a data address (recorded with synth:test): whatif "
                                       "needs the pages accessed (ibs, pebs, abit or fault)");
}

// A sweep on threads gives, size by size, what one size at a time gives.
TEST(WhatifSweep, JobsChangeNothingButTheTime) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  const std::vector<uint64_t> sizes{40 * 4096, 80 * 4096, 120 * 4096, 160 * 4096, 200 * 4096};
  const auto one = run_sweep(o, sizes, 1), three = run_sweep(o, sizes, 3);
  ASSERT_EQ(one.size(), sizes.size());
  ASSERT_EQ(three.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(three[i].fast_bytes, sizes[i]);
    ASSERT_EQ(one[i].result.runs.size(), three[i].result.runs.size());
    for (size_t k = 0; k < one[i].result.runs.size(); ++k) {
      EXPECT_EQ(one[i].result.runs[k].hits, three[i].result.runs[k].hits) << i << " " << k;
      EXPECT_EQ(one[i].result.runs[k].promoted, three[i].result.runs[k].promoted) << i << " " << k;
    }
  }
  // More fast memory never serves the oracle less.
  for (size_t i = 1; i < sizes.size(); ++i)
    EXPECT_GE(three[i].result.runs[0].total_hits(), three[i - 1].result.runs[0].total_hits());
  // Sized to the memory: the first size alone, then the rest; the same points.
  const auto fitted = run_sweep(o, sizes, 3, true);
  ASSERT_EQ(fitted.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i)
    for (size_t k = 0; k < one[i].result.runs.size(); ++k)
      EXPECT_EQ(one[i].result.runs[k].hits, fitted[i].result.runs[k].hits) << i << " " << k;
  // An error comes back to the caller, once, whichever way the sizes run.
  o.path = dir.path("none.prof");
  EXPECT_THROW(run_sweep(o, sizes, 3), UsageError);
  EXPECT_THROW(run_sweep(o, sizes, 3, true), UsageError);
}

// No more simulations at once than four fifths of the available memory hold.
TEST(WhatifSweep, JobsThatFitTheAvailableMemory) {
  const uint64_t gib = 1ull << 30;
  EXPECT_EQ(jobs_that_fit(4, gib, 16 * gib), 4u);      // 12.8 GiB holds 12: the 4 asked
  EXPECT_EQ(jobs_that_fit(4, 5 * gib, 16 * gib), 2u);  // 12.8 / 5
  EXPECT_EQ(jobs_that_fit(4, 20 * gib, 16 * gib), 1u); // never none
  EXPECT_EQ(jobs_that_fit(4, 0, 16 * gib), 4u);        // nothing measured: as asked
  EXPECT_EQ(jobs_that_fit(0, gib, 16 * gib), 1u);
}

}  // namespace

namespace {

// What print_whatif writes, as a string.
std::string printed(const WhatifOptions& o, const WhatifResult& r, const std::string& format) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  print_whatif(f, o, r, format);
  std::fclose(f);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

}  // namespace

// An interval without accesses has no hit ratio: the over-time output said
// 0.0% for every rule, the oracle too, as though each had missed them all.
TEST(WhatifOutput, AnIntervalWithoutAccessesHasNoHitRatio) {
  mb_test::TempTree dir("mbwhatif");
  SynthConfig c;
  c.pattern = SynthPattern::kHotset;
  c.footprint_bytes = 1 << 20;
  c.samples = 10;
  c.rate = 50;  // a sample every 20 ms: every other 10 ms interval is empty
  WhatifOptions o;
  o.path = dir.path("gap.prof");
  write_synth_profile(plan_synth(c), o.path, false);
  o.fast_bytes = 64 << 10;
  o.interval_ms = 10;
  const WhatifResult r = run_whatif(o);
  ASSERT_EQ(r.accesses.size(), 19u);
  ASSERT_EQ(r.accesses[0], 1u);
  ASSERT_EQ(r.accesses[1], 0u);
  const std::string text = printed(o, r, "text");
  const size_t over_time = text.find("hit ratio over time");
  ASSERT_NE(over_time, std::string::npos);
  std::istringstream rows(text.substr(over_time));
  std::string line, first, second;
  std::getline(rows, line);  // the title
  std::getline(rows, line);  // the policies
  std::getline(rows, first);
  std::getline(rows, second);
  EXPECT_NE(first.find("100.0%"), std::string::npos) << first;
  EXPECT_EQ(second.find('%'), std::string::npos) << "interval 2 had no accesses: " << second;
  EXPECT_EQ(std::count(second.begin(), second.end(), '-'), static_cast<long>(r.runs.size())) << second;
  // csv: the ratio cells of interval 2 empty, its accesses 0.
  const std::string csv = printed(o, r, "csv");
  EXPECT_NE(csv.find("\n2,0" + std::string(r.runs.size(), ',') + "\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n1,1,1.0000,"), std::string::npos) << csv;
}

// The oracle's pages moved: it was printed as 0 promoted, 0 demoted, though
// its placement changes whenever the hottest pages do. Here the 50 hot pages
// start slow and the fast tier is full of the first 100 touched: the oracle
// brings the 50 up for the second interval, making room of 50 it no longer
// needs, and then keeps its placement. With three tiers they were not counted
// (`-`, json null): tiers 0 and 1 of 50 pages, the first 50 touched in tier
// 0. In interval 1 every page is alike: tier 0 keeps its 50, tier 1 takes the
// next 50 (50-99) up from the last tier. In interval 2 the hot 50 come up to
// tier 0, and its 50 unsampled pages go down to the last tier (tier 1 keeps
// its own: it takes no sampled page and has room for them).
TEST(WhatifOracle, ItsMovesAreCounted) {
  mb_test::TempTree dir("mbwhatif");
  WhatifOptions o;
  o.path = one_tier_trace(dir);
  o.fast_bytes = 100 * 4096;
  const WhatifResult r = run_whatif(o);
  const WhatifRun& oracle = run_of(r, "oracle");
  EXPECT_EQ(oracle.promoted, 50u);
  EXPECT_EQ(oracle.demoted, 50u);
  ASSERT_EQ(oracle.promoted_at.size(), 8u);
  EXPECT_EQ(oracle.promoted_at[0], 0u) << "interval 1: every page alike, the first touched stay";
  EXPECT_EQ(oracle.promoted_at[1], 50u);
  EXPECT_NE(printed(o, r, "json").find("\"promoted_pages\":50,\"demoted_pages\":50"), std::string::npos);
  WhatifOptions three = o;
  three.fast_bytes = 50 * 4096;
  three.middle_bytes = {50 * 4096};
  const WhatifResult r3 = run_whatif(three);
  const WhatifRun& oracle3 = run_of(r3, "oracle");
  EXPECT_EQ(oracle3.promoted, 100u);
  EXPECT_EQ(oracle3.demoted, 50u);
  ASSERT_EQ(oracle3.promoted_at.size(), 8u);
  EXPECT_EQ(oracle3.promoted_at[0], 50u);
  EXPECT_EQ(oracle3.promoted_at[1], 50u);
  EXPECT_EQ(oracle3.demoted_at[1], 50u);
  EXPECT_NE(printed(three, r3, "json").find("\"promoted_pages\":100,\"demoted_pages\":50"), std::string::npos);
  EXPECT_NE(printed(three, r3, "text").find("         100          50  each interval"), std::string::npos)
      << printed(three, r3, "text");
}
