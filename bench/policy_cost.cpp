// Benchmark: one policy pass over 1M tracked pages, no migration.
//
// The daemon's default per-interval budget applies (200 MiB: --rate-limit
// 200M, 1 s interval), so a pass plans at most 51200 pages of moves.
// Input: a page table holding 1M pages of one process, as the pipeline
// leaves it: a skewed heat (a 64K-page hot set at heat ~50, 256K warm pages
// at ~4, the rest seen once), spread over a fast node 0 and a slow node 1, 8
// CPU-node lanes filled for the numa policy. The tier pass plans promotions
// into 256 MiB of room and, with node 0 below its low watermark, demotions
// of cold sampled pages (no resident walker: the walk is measured by the VM
// tests, not here). Baseline in the same run: one plain walk over the table
// reading each page's decayed heat (the least any pass must do).
// A third pass, tier with exchanges: another 1M-page table, four intervals
// of Poisson samples in, a third of it warm (4 a interval) filling the fast
// node to its high watermark, a third hotter (12) on the slow node. Every
// promotion needs a page to leave, so the pass fits the rate estimate and
// plans as many exchanges as the budget allows (25600).
// Prints RESULT lines; target: each pass <= 50 ms.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "bench/bench_util.h"
#include "membalancer/numa_policy.h"
#include "membalancer/page_table.h"
#include "membalancer/tier_policy.h"

int main(int argc, char** argv) {
  const uint64_t pages = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1 << 20;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  constexpr uint64_t kMiB = 1 << 20;

  mb::PageTable table(pages, 0.5f);
  table.begin_interval(1);
  std::mt19937_64 rng(1);
  for (uint64_t p = 0; p < pages; ++p) {
    uint32_t acc = p < 65536 ? 50 : (p < 65536 + 262144 ? 4 : 1);
    uint16_t lanes[MB_CPU_LANES] = {};
    lanes[rng() % 2] = static_cast<uint16_t>(acc);
    table.add(mb_page_key(1000, 0x10000 + (p ^ (p >> 3))), acc, lanes, static_cast<uint16_t>(p % 3 == 0 ? 0 : 1));
  }
  table.begin_interval(2);  // the pass runs one interval later: heat decays lazily
  std::printf("table: %zu pages, %.1f MiB\n", table.size(), table.memory_bytes() / double(kMiB));

  mb::Topology topo;
  for (int id : {0, 1}) {
    mb::NumaNode n;
    n.id = id;
    n.cpus = {id};
    n.mem_total_bytes = 64ull << 30;
    n.distance = {{0, id == 0 ? 10 : 20}, {1, id == 1 ? 10 : 20}};
    topo.nodes.push_back(n);
  }
  mb::MemoryState mem;
  // Node 0: 64 GiB, 512 MiB free (below the default 1% low watermark).
  mem.nodes[0] = {64ull << 30, 512ull << 20, pages / 3};
  mem.nodes[1] = {64ull << 30, 32ull << 30, pages - pages / 3};
  mb::Tiers tiers;
  tiers.tiers = {{0}, {1}};
  // The daemon's default budget: --rate-limit 200M over a 1 s interval.
  mb::TierPolicyConfig tc;
  tc.budget_bytes = 200ull << 20;
  mb::NumaPolicyConfig nc;
  nc.budget_bytes = 200ull << 20;
  mb::TierPolicy tier(tiers, tc);
  mb::NumaPolicy numa(topo, nc);
  mb::CoolDown cool(30);

  mb::PageTable warm_table(pages, 0.5f);
  std::poisson_distribution<uint32_t> warm(4.0), hotter(12.0);
  for (uint32_t i = 1; i <= 4; ++i) {
    warm_table.begin_interval(i);
    for (uint64_t p = 0; p < pages; ++p) {
      const uint32_t acc = p % 3 == 0 ? warm(rng) : p % 3 == 1 ? hotter(rng) : 1;
      if (acc) warm_table.add(mb_page_key(1000, 0x10000 + p), acc, nullptr, static_cast<uint16_t>(p % 3 == 0 ? 0 : 1));
    }
    warm_table.end_interval();
  }
  mb::MemoryState warm_mem;
  const uint64_t fast_bytes = (pages / 3 + 1) * mb::kBasePageBytes;
  warm_mem.nodes[0] = {fast_bytes * 100 / 98, fast_bytes * 100 / 98 - fast_bytes, pages / 3 + 1};  // at the high watermark
  warm_mem.nodes[1] = {64ull << 30, 32ull << 30, pages - pages / 3 - 1};

  std::vector<double> walk, tier_t, numa_t, exchange_t;
  uint64_t tier_moves = 0, numa_moves = 0, exchange_moves = 0;
  double sink = 0;
  for (int r = 0; r < reps; ++r) {
    double t0 = bench::now_s();
    table.for_each([&](const mb::PageEntry& e) { sink += table.heat(e); });
    double t1 = bench::now_s();
    mb::Plan tp = tier.plan(table, mem, cool);
    double t2 = bench::now_s();
    mb::Plan np = numa.plan(table, mem, cool, {});
    double t3 = bench::now_s();
    mb::Plan xp = tier.plan(warm_table, warm_mem, cool);
    double t4 = bench::now_s();
    walk.push_back(t1 - t0);
    tier_t.push_back(t2 - t1);
    numa_t.push_back(t3 - t2);
    exchange_t.push_back(t4 - t3);
    tier_moves = tp.moves.size();
    numa_moves = np.moves.size();
    exchange_moves = xp.moves.size();
  }
  std::printf("walk %.1f ms, tier pass %.1f ms (%llu moves planned), numa pass %.1f ms (%llu moves planned); sink %g\n",
              bench::median(walk) * 1e3, bench::median(tier_t) * 1e3, (unsigned long long)tier_moves,
              bench::median(numa_t) * 1e3, (unsigned long long)numa_moves, sink > 0 ? 1.0 : 0.0);
  std::printf("tier pass with exchanges %.1f ms (%llu moves planned)\n", bench::median(exchange_t) * 1e3,
              (unsigned long long)exchange_moves);
  bench::result("policy_pages", static_cast<double>(table.size()), "pages");
  bench::result("policy_walk_ms", bench::median(walk) * 1e3, "ms");
  bench::result("policy_tier_ms", bench::median(tier_t) * 1e3, "ms");
  bench::result("policy_numa_ms", bench::median(numa_t) * 1e3, "ms");
  bench::result("policy_tier_exchange_ms", bench::median(exchange_t) * 1e3, "ms");
  bench::result("policy_tier_exchange_moves", static_cast<double>(exchange_moves), "moves");
  bench::result("policy_tier_moves", static_cast<double>(tier_moves), "moves");
  bench::result("policy_numa_moves", static_cast<double>(numa_moves), "moves");
  return 0;
}
