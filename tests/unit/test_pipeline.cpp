// Unit tests for membalancer/pipeline.h with a fake move_pages and fake
// process names: drained slots in, IntervalReports and a Summary out.

#include <gtest/gtest.h>

#include <errno.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/pipeline.h"
#include "membalancer/tier_policy.h"

namespace {

using Counters = std::array<uint64_t, MB_NR_COUNTERS>;

// A drained BPF slot. node < 0: the sample had no physical address.
mb_page_slot slot(uint32_t tgid, uint64_t vpn, uint32_t accesses, int node = -1,
                  std::array<uint16_t, MB_CPU_LANES> lanes = {}) {
  mb_page_slot s{};
  s.key = mb_page_key(tgid, vpn);
  s.accesses = accesses;
  s.mem_node1 = node < 0 ? 0 : static_cast<uint16_t>(node + 1);
  for (int l = 0; l < MB_CPU_LANES; ++l) s.lanes[l / 4] |= static_cast<uint64_t>(lanes[l]) << (16 * (l % 4));
  return s;
}

struct FakeKernel {
  // pid -> node answered for every page; missing pid: -ENOENT per page.
  std::map<pid_t, int> node_of_pid;
  std::vector<std::pair<pid_t, unsigned long>> calls;
  std::map<pid_t, int> name_calls;

  mb::NodeResolver::QueryFn query() {
    return [this](pid_t pid, unsigned long count, void**, int* status) -> long {
      calls.emplace_back(pid, count);
      auto it = node_of_pid.find(pid);
      for (unsigned long i = 0; i < count; ++i) status[i] = it == node_of_pid.end() ? -ENOENT : it->second;
      return 0;
    };
  }
  mb::Pipeline::NameFn names() {
    return [this](pid_t pid) {
      ++name_calls[pid];
      return "proc" + std::to_string(pid);
    };
  }
};

mb::PipelineConfig config() {
  mb::PipelineConfig c;
  c.max_pages = 1024;
  c.decay = 0.5f;
  c.region_bytes = 2 << 20;
  c.top = 5;
  c.max_ranges = 256;
  c.node_recheck_intervals = 30;
  return c;
}

const mb::NodeAccesses* node_line(const mb::IntervalReport& r, int node) {
  for (const auto& n : r.nodes)
    if (n.node == node) return &n;
  return nullptr;
}

void expect_node(const mb::IntervalReport& r, int node, uint64_t accesses, uint64_t pages) {
  const mb::NodeAccesses* n = node_line(r, node);
  ASSERT_NE(n, nullptr) << "node " << node;
  EXPECT_EQ(n->accesses, accesses) << "node " << node;
  EXPECT_EQ(n->pages, pages) << "node " << node;
}

uint64_t node_sum(const mb::IntervalReport& r) {
  uint64_t s = 0;
  for (const auto& n : r.nodes) s += n.accesses;
  return s;
}

TEST(SlotLanes, UnpacksFourPerWord) {
  mb_page_slot s = slot(1, 1, 1, -1, {1, 2, 3, 0xffff, 5, 0, 7, 8});
  uint16_t lanes[MB_CPU_LANES];
  mb::slot_lanes(s, lanes);
  const uint16_t want[MB_CPU_LANES] = {1, 2, 3, 0xffff, 5, 0, 7, 8};
  for (int l = 0; l < MB_CPU_LANES; ++l) EXPECT_EQ(lanes[l], want[l]) << l;
  EXPECT_EQ(s.lanes[0], 0xffff000300020001ull);
}

TEST(Pipeline, NodeSharesFromSlotsAndResolver) {
  FakeKernel k;
  k.node_of_pid[100] = 1;  // pid 200's pages are not present (ENOENT)
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(100, 0x10, 5, 0));
  p.add_slot(slot(100, 0x11, 3, 2));
  p.add_slot(slot(100, 0x12, 4));
  p.add_slot(slot(200, 0x50, 6));
  auto r = p.finish_interval({}, 2);
  EXPECT_EQ(r.interval, 1u);
  ASSERT_EQ(r.nodes.size(), 4u);
  EXPECT_EQ(r.nodes[0].node, -1);  // sorted by node, unknown first
  expect_node(r, -1, 6, 1);
  expect_node(r, 0, 5, 1);
  expect_node(r, 1, 4, 1);
  expect_node(r, 2, 3, 1);
  EXPECT_EQ(r.accesses_this_interval, 18u);
  EXPECT_EQ(r.pages_this_interval, 4u);
  EXPECT_EQ(node_sum(r), r.accesses_this_interval);
  EXPECT_EQ(r.tracked_processes, 2u);
  EXPECT_EQ(r.table_pages, 4u);
  // One query per process, only for pages without a node.
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[0], (std::pair<pid_t, unsigned long>{100, 1}));
  EXPECT_EQ(k.calls[1], (std::pair<pid_t, unsigned long>{200, 1}));
  const mb::PageEntry* e = p.table().find(mb_page_key(100, 0x12));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->node, 1);
  EXPECT_EQ(e->node_checked, 1u);
  EXPECT_EQ(p.table().find(mb_page_key(200, 0x50))->node, MB_NODE_UNKNOWN);

  // Next interval: the resolved page is not asked again, the unknown one is.
  p.begin_interval(2);
  p.add_slot(slot(100, 0x12, 2));
  p.add_slot(slot(200, 0x50, 1));
  r = p.finish_interval({}, 2);
  EXPECT_EQ(k.calls.size(), 3u);
  EXPECT_EQ(k.calls.back().first, 200);
  ASSERT_EQ(r.nodes.size(), 2u);
  expect_node(r, -1, 1, 1);
  expect_node(r, 1, 2, 1);
  EXPECT_EQ(node_sum(r), 3u);

  auto s = p.summary();
  EXPECT_EQ(s.node_queries, 3u);
  EXPECT_EQ(s.node_query_failures, 2u);
  ASSERT_EQ(s.nodes.size(), 4u);
  EXPECT_EQ(s.nodes[0].node, -1);
  EXPECT_EQ(s.nodes[0].accesses, 7u);
  EXPECT_EQ(s.nodes[0].pages, 2u);
  EXPECT_EQ(s.nodes[2].node, 1);
  EXPECT_EQ(s.nodes[2].accesses, 6u);
}

TEST(Pipeline, StaleNodesAreAskedAgain) {
  FakeKernel k;
  k.node_of_pid[1] = 1;
  auto cfg = config();
  cfg.node_recheck_intervals = 3;
  mb::Pipeline p(cfg, k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(1, 0x1, 1));
  p.add_slot(slot(1, 0x2, 1, 0));  // node known from the sample
  p.finish_interval({}, 1);
  EXPECT_EQ(k.calls.size(), 1u);
  k.node_of_pid[1] = 2;  // the page moved
  for (uint32_t i = 2; i <= 3; ++i) {
    p.begin_interval(i);
    p.add_slot(slot(1, 0x1, 1));
    p.add_slot(slot(1, 0x2, 1, 0));
    auto r = p.finish_interval({}, 1);
    EXPECT_EQ(k.calls.size(), 1u) << "interval " << i;
    expect_node(r, 1, 1, 1);
  }
  p.begin_interval(4);
  p.add_slot(slot(1, 0x1, 1));
  p.add_slot(slot(1, 0x2, 1, 0));
  auto r = p.finish_interval({}, 1);
  ASSERT_EQ(k.calls.size(), 2u);
  EXPECT_EQ(k.calls[1], (std::pair<pid_t, unsigned long>{1, 1}));
  expect_node(r, 2, 1, 1);
  expect_node(r, 0, 1, 1);
  EXPECT_EQ(node_line(r, 1), nullptr);
  EXPECT_EQ(p.table().find(mb_page_key(1, 0x1))->node, 2);
  EXPECT_EQ(p.table().find(mb_page_key(1, 0x1))->node_checked, 4u);
}

TEST(Pipeline, LanesReachTheTable) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(7, 0x9, 36, 0, {1, 2, 3, 4, 5, 6, 7, 8}));
  p.finish_interval({}, 1);
  const mb::PageEntry* e = p.table().find(mb_page_key(7, 0x9));
  ASSERT_NE(e, nullptr);
  for (int l = 0; l < MB_CPU_LANES; ++l) EXPECT_EQ(e->lane_heat[l], l + 1);
  EXPECT_FLOAT_EQ(e->heat, 36.0f);
  EXPECT_EQ(e->node, 0);
}

// A huge page (its slot flagged MB_SLOT_HUGE: 512 base pages in the table,
// each flagged huge), then one base-page sample inside it: the kernel split
// it, so every base page of it is a base page now (the tier policy plans a
// huge-flagged page only at its first base page, as one 2 MiB move: the
// others would never be planned). A base page elsewhere keeps its own flag.
//
// Its accesses were its base pages' together: each keeps 1/512 of the huge
// page's heat (3 x 0.5 in interval 2: so its heat per base page, what it
// ranks by, is what it was), and the one sampled adds its own access. Kept
// whole, each base page would be as hot as the whole 2 MiB was, 512 times
// hotter per page than it: a cold huge page split in the slow tier would
// outrank every hot base page.
TEST(Pipeline, ABaseSampleInsideAHugePageSplitsItsBasePages) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  mb_page_slot huge = slot(7, 0x400, 3, 0);
  huge.mem_node1 |= MB_SLOT_HUGE;
  p.add_slot(huge);
  mb_page_slot other = slot(7, 0x800, 3, 0);
  other.mem_node1 |= MB_SLOT_HUGE;
  p.add_slot(other);
  p.finish_interval({}, 1);
  for (uint64_t vpn : {0x400ull, 0x401ull, 0x5ffull}) EXPECT_TRUE(p.table().find(mb_page_key(7, vpn))->huge()) << vpn;
  p.begin_interval(2);
  p.add_slot(slot(7, 0x407, 1, 0));
  p.finish_interval({}, 1);
  for (uint64_t vpn : {0x400ull, 0x401ull, 0x407ull, 0x5ffull})
    EXPECT_FALSE(p.table().find(mb_page_key(7, vpn))->huge()) << vpn;
  EXPECT_TRUE(p.table().find(mb_page_key(7, 0x800))->huge()) << "another huge page stays whole";
  const mb::PageTable& t = p.table();
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x401))), 1.5f / 512);
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x5ff))), 1.5f / 512);
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x407))), 1.5f / 512 + 1);
  EXPECT_FLOAT_EQ(t.heat_per_base_page(*t.find(mb_page_key(7, 0x401))), 1.5f / 512);
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x800))), 1.5f) << "a huge page's heat is its 2 MiB's";
  EXPECT_FLOAT_EQ(t.heat_per_base_page(*t.find(mb_page_key(7, 0x800))), 1.5f / 512);
}

// Where a huge sample is a scan's accessed bit for the 2 MiB (abit, faults),
// a base page of a split huge page is as hot as the huge page was: it was
// seen each time the huge page was (its bit was the huge page's).
TEST(Pipeline, AScannedHugePageSplitsIntoBasePagesAsHotAsItWas) {
  FakeKernel k;
  mb::PipelineConfig cfg = config();
  cfg.collapse_heat = mb::collapse_heat_for(MB_SAMPLER_ABIT);
  mb::Pipeline p(cfg, k.query(), k.names());
  p.begin_interval(1);
  mb_page_slot huge = slot(7, 0x400, 3, 0);
  huge.mem_node1 |= MB_SLOT_HUGE;
  p.add_slot(huge);
  p.finish_interval({}, 1);
  const mb::PageTable& t = p.table();
  EXPECT_FLOAT_EQ(t.heat_per_base_page(*t.find(mb_page_key(7, 0x400))), 3.0f);
  p.begin_interval(2);
  p.add_slot(slot(7, 0x407, 1, 0));
  p.finish_interval({}, 1);
  EXPECT_FALSE(t.find(mb_page_key(7, 0x401))->huge());
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x401))), 1.5f);
  EXPECT_FLOAT_EQ(t.heat(*t.find(mb_page_key(7, 0x407))), 2.5f);
}

// A collapse in the real tier mode's path (Pipeline, then TierPolicy): a 2 MiB
// range whose accesses were spread over its base pages (4 each in interval
// 1, on the slow node 1) is collapsed by khugepaged, and its huge page's 2
// accesses in interval 2 come as one huge slot. Its heat is its base pages':
// 512 x 4 x 0.5 + 2 = 1026, about 2 per base page (a huge page ranks by its
// heat per base page: it takes 512 of the tier), at the hot threshold
// (--min-heat 2). A hundred base pages seen once in interval 2 (1, not hot)
// compete for the fast node's room of 512 pages (2 MiB above the high
// watermark): the huge page goes up, and no room is left for the hundred.
// Planned by its first base page's own heat, 4 x 0.5 + 2 = 4, a hundredth
// of a sample per base page, the huge page was the coldest: the hundred took
// the free room and it stayed slow (412 pages left: no room).
TEST(Pipeline, ACollapsedRangeIsPlannedByItsBasePagesSummedHeat) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  const uint64_t range = 0x400;  // 2 MiB-aligned vpn
  p.begin_interval(1);
  for (uint64_t vpn = range; vpn < range + 512; ++vpn) p.add_slot(slot(7, vpn, 4, 1));
  p.finish_interval({}, 1);
  p.begin_interval(2);
  mb_page_slot huge = slot(7, range, 2, 1);
  huge.mem_node1 |= MB_SLOT_HUGE;
  p.add_slot(huge);
  for (uint64_t vpn = 0x1000; vpn < 0x1000 + 100; ++vpn) p.add_slot(slot(7, vpn, 1, 1));
  p.finish_interval({}, 1);
  EXPECT_FLOAT_EQ(p.table().heat(*p.table().find(mb_page_key(7, range))), 1026.0f);

  constexpr uint64_t kMiB = 1 << 20;
  mb::Tiers tiers;
  tiers.tiers = {{0}, {1}};
  mb::TierPolicyConfig cfg;
  cfg.low_watermark = 0.05;
  cfg.high_watermark = 0.10;
  mb::MemoryState mem;
  mem.nodes[0] = {1024 * kMiB, 1024 * kMiB / 10 + 2 * kMiB, 0};
  mem.nodes[1] = {4096 * kMiB, 3000 * kMiB, 612};
  const mb::Plan plan = mb::TierPolicy(tiers, cfg).plan(p.table(), mem, mb::CoolDown(10));
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_TRUE(plan.moves[0].huge);
  EXPECT_EQ(plan.moves[0].vaddr, range << MB_PAGE_SHIFT);
  EXPECT_EQ(plan.moves[0].direction, mb::MoveDirection::kPromote);
  EXPECT_EQ(plan.moves[0].to, 0);
}

// What a collapse makes of its base pages' heat follows the sampler: its
// 512 base pages took 2 accesses each, page 5 took 40, in interval 1; the
// huge page's 2 in interval 2. Where a sample is an access (IBS, PEBS,
// synthetic: kSum) the huge page had them all: (511 x 2 + 40) x 0.5 + 2 =
// 533. Where it is one accessed bit a scan for the 2 MiB (abit, faults:
// kMax), as a base page's is for it, it is as hot as page 5: 40 x 0.5 + 2 =
// 22 (a sum would count each scan up to 512 times). Before, both were its
// first base page's own: 2 x 0.5 + 2 = 3.
TEST(Pipeline, ACollapsedRangesHeatFollowsWhatTheSamplerCounts) {
  EXPECT_EQ(mb::collapse_heat_for(MB_SAMPLER_IBS), mb::CollapseHeat::kSum);
  EXPECT_EQ(mb::collapse_heat_for(MB_SAMPLER_PEBS), mb::CollapseHeat::kSum);
  EXPECT_EQ(mb::collapse_heat_for(MB_SAMPLER_SYNTHETIC), mb::CollapseHeat::kSum);
  EXPECT_EQ(mb::collapse_heat_for(MB_SAMPLER_ABIT), mb::CollapseHeat::kMax);
  EXPECT_EQ(mb::collapse_heat_for(MB_SAMPLER_FAULT), mb::CollapseHeat::kMax);
  for (auto [how, want] : {std::pair{mb::CollapseHeat::kSum, 533.0f}, std::pair{mb::CollapseHeat::kMax, 22.0f}}) {
    FakeKernel k;
    mb::PipelineConfig cfg = config();
    cfg.collapse_heat = how;
    mb::Pipeline p(cfg, k.query(), k.names());
    const uint64_t range = 0x400;
    p.begin_interval(1);
    for (uint64_t vpn = range; vpn < range + 512; ++vpn) p.add_slot(slot(7, vpn, vpn == range + 5 ? 40 : 2, 1));
    p.finish_interval({}, 1);
    p.begin_interval(2);
    mb_page_slot huge = slot(7, range, 2, 1);
    huge.mem_node1 |= MB_SLOT_HUGE;
    p.add_slot(huge);
    p.finish_interval({}, 1);
    EXPECT_FLOAT_EQ(p.table().heat(*p.table().find(mb_page_key(7, range))), want);
    EXPECT_FLOAT_EQ(p.table().heat(*p.table().find(mb_page_key(7, range + 300))), want);
  }
}

// Three hot regions: pid 100's regions 0 (3 pages, heat 12, most heat on
// node 0) and 0x40000000 (heat 100 on node 1), and pid 200's region 0x200000
// (2 MiB: one page, heat 50 on node 3).
void add_three_regions(mb::Pipeline& p) {
  p.add_slot(slot(100, 0x10, 5, 0));
  p.add_slot(slot(100, 0x11, 3, 2));
  p.add_slot(slot(100, 0x12, 4, 1));
  p.add_slot(slot(100, 0x40000, 100, 1));
  p.add_slot(slot(200, 0x200, 50, 3));
}

TEST(Pipeline, ProcessesAndHottestRegions) {
  FakeKernel k;
  auto cfg = config();
  cfg.top = 2;
  mb::Pipeline p(cfg, k.query(), k.names());
  p.begin_interval(1);
  add_three_regions(p);
  // A second page in pid 200's region: 2 pages, heat 51, mostly node 3.
  p.add_slot(slot(200, 0x3ff, 1, 2));
  auto r = p.finish_interval({}, 2);

  ASSERT_EQ(r.processes.size(), 2u);
  EXPECT_EQ(r.processes[0].pid, 100u);
  EXPECT_EQ(r.processes[0].comm, "proc100");
  EXPECT_EQ(r.processes[0].pages, 4u);
  EXPECT_EQ(r.processes[0].accesses, 112u);
  EXPECT_DOUBLE_EQ(r.processes[0].heat, 112.0);
  EXPECT_EQ(r.processes[1].pid, 200u);
  EXPECT_EQ(r.processes[1].pages, 2u);
  EXPECT_EQ(r.processes[1].accesses, 51u);

  ASSERT_EQ(r.hottest.size(), 2u);  // top 2 of 3
  EXPECT_EQ(r.hottest[0].pid, 100u);
  EXPECT_EQ(r.hottest[0].start, 0x40000000u);
  EXPECT_EQ(r.hottest[0].bytes, 2u << 20);
  EXPECT_EQ(r.hottest[0].pages, 1u);
  EXPECT_DOUBLE_EQ(r.hottest[0].heat, 100.0);
  EXPECT_EQ(r.hottest[0].node, 1);
  EXPECT_EQ(r.hottest[0].comm, "proc100");
  EXPECT_EQ(r.hottest[1].pid, 200u);
  EXPECT_EQ(r.hottest[1].start, 0x200000u);
  EXPECT_EQ(r.hottest[1].pages, 2u);
  EXPECT_DOUBLE_EQ(r.hottest[1].heat, 51.0);
  EXPECT_EQ(r.hottest[1].node, 3);
  EXPECT_EQ(r.hottest[1].comm, "proc200");

  // Next interval: heat decays; only pid 200 is touched; the order flips.
  p.begin_interval(2);
  p.add_slot(slot(200, 0x200, 100, 3));
  r = p.finish_interval({}, 2);
  ASSERT_EQ(r.processes.size(), 2u);
  EXPECT_EQ(r.processes[0].pid, 100u);
  EXPECT_EQ(r.processes[0].pages, 4u);
  EXPECT_EQ(r.processes[0].accesses, 0u);
  EXPECT_DOUBLE_EQ(r.processes[0].heat, 56.0);
  EXPECT_EQ(r.processes[1].accesses, 100u);
  EXPECT_DOUBLE_EQ(r.processes[1].heat, 125.5);
  ASSERT_EQ(r.hottest.size(), 2u);
  EXPECT_EQ(r.hottest[0].pid, 200u);
  EXPECT_DOUBLE_EQ(r.hottest[0].heat, 125.5);
  EXPECT_EQ(r.hottest[1].start, 0x40000000u);
  EXPECT_DOUBLE_EQ(r.hottest[1].heat, 50.0);
}

TEST(Pipeline, AllRegionsWhenTopIsLarge) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  add_three_regions(p);
  auto r = p.finish_interval({}, 2);
  ASSERT_EQ(r.hottest.size(), 3u);
  for (size_t i = 1; i < r.hottest.size(); ++i) EXPECT_GE(r.hottest[i - 1].heat, r.hottest[i].heat);
  EXPECT_EQ(r.hottest[2].pid, 100u);
  EXPECT_EQ(r.hottest[2].start, 0u);
  EXPECT_EQ(r.hottest[2].pages, 3u);
  EXPECT_DOUBLE_EQ(r.hottest[2].heat, 12.0);
  EXPECT_EQ(r.hottest[2].node, 0);
}

TEST(Pipeline, RegionOfUnknownNode) {
  FakeKernel k;  // every query: ENOENT
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(5, 0x1, 9));
  auto r = p.finish_interval({}, 1);
  ASSERT_EQ(r.hottest.size(), 1u);
  EXPECT_EQ(r.hottest[0].node, -1);
}

TEST(Pipeline, AccessedRanges) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  for (uint64_t v : {0x12, 0x10, 0x11, 0x14, 0x20}) p.add_slot(slot(100, v, 1, 0));
  for (uint64_t v : {0x22, 0x21}) p.add_slot(slot(101, v, 1, 0));
  p.add_slot(slot(102, 0x5, 1, 0));
  auto r = p.finish_interval({}, 3);
  ASSERT_EQ(r.ranges.size(), 5u);
  auto expect_range = [&](size_t i, uint32_t pid, uint64_t start, uint64_t end) {
    EXPECT_EQ(r.ranges[i].pid, pid) << i;
    EXPECT_EQ(r.ranges[i].start, start) << i;
    EXPECT_EQ(r.ranges[i].end, end) << i;
  };
  expect_range(0, 100, 0x10000, 0x13000);
  expect_range(1, 100, 0x14000, 0x15000);
  expect_range(2, 100, 0x20000, 0x21000);
  expect_range(3, 101, 0x21000, 0x23000);  // adjacent to pid 100's, but another process
  expect_range(4, 102, 0x5000, 0x6000);
  EXPECT_FALSE(r.ranges_truncated);

  // Only pages accessed in this interval.
  p.begin_interval(2);
  p.add_slot(slot(100, 0x11, 1, 0));
  r = p.finish_interval({}, 3);
  ASSERT_EQ(r.ranges.size(), 1u);
  expect_range(0, 100, 0x11000, 0x12000);
  EXPECT_EQ(r.table_pages, 8u);
}

TEST(Pipeline, AccessedRangesTruncated) {
  FakeKernel k;
  auto cfg = config();
  cfg.max_ranges = 3;
  mb::Pipeline p(cfg, k.query(), k.names());
  p.begin_interval(1);
  for (uint64_t v : {0x10, 0x11, 0x12, 0x14, 0x20, 0x21, 0x30, 0x40}) p.add_slot(slot(100, v, 1, 0));
  auto r = p.finish_interval({}, 1);
  ASSERT_EQ(r.ranges.size(), 3u);
  EXPECT_TRUE(r.ranges_truncated);
  EXPECT_EQ(r.ranges[0].start, 0x10000u);
  EXPECT_EQ(r.ranges[0].end, 0x13000u);
  EXPECT_EQ(r.ranges[2].start, 0x20000u);
  EXPECT_EQ(r.ranges[2].end, 0x22000u);  // the last range is still merged
}

// A process that leaves the tracked set without an exit event (the ring
// buffer was full) leaves the table one interval later, counted once; one
// whose event comes in that interval is not counted twice.
TEST(Pipeline, UntrackedProcessesWithoutExitEventLeave) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(100, 1, 1, 0));
  p.add_slot(slot(200, 1, 1, 0));
  p.add_slot(slot(300, 1, 1, 0));
  p.reconcile_tracked({100, 200, 300});
  auto r = p.finish_interval({}, 3);
  EXPECT_EQ(r.exited_processes, 0u);
  // 200 and 300 exit after the drain: untracked, events not yet seen.
  p.begin_interval(2);
  p.reconcile_tracked({100});
  r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 0u) << "an interval of grace for the exit event";
  EXPECT_EQ(r.table_pages, 3u);
  // 200's event comes; 300's was lost.
  p.begin_interval(3);
  p.process_exited(200);
  p.reconcile_tracked({100});
  r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 2u);
  EXPECT_EQ(r.table_pages, 1u);
  ASSERT_EQ(r.processes.size(), 3u) << "their last interval is still reported";
  p.begin_interval(4);
  p.reconcile_tracked({100});
  r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 0u);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].pid, 100u);
  auto s = p.summary();
  EXPECT_EQ(s.processes_exited, 2u);
  EXPECT_EQ(s.exits_without_event, 1u);
}

// Forks whose exit events were lost: one interval later they count as
// exited, and leave no name or seen pid behind (a reused pid is a new
// process, asked its name and seen again).
TEST(Pipeline, ForkedProcessesWithoutExitEventLeave) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  for (pid_t c = 1000; c < 1100; ++c) p.process_forked(c);
  p.reconcile_tracked({1000});
  auto r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 0u);
  p.begin_interval(2);
  p.reconcile_tracked({1000});
  r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 99u);
  EXPECT_EQ(k.name_calls[1050], 1);
  p.begin_interval(3);
  p.add_slot(slot(1050, 1, 1, 0));
  p.reconcile_tracked({1000, 1050});
  r = p.finish_interval({}, 2);
  EXPECT_EQ(r.exited_processes, 0u);
  EXPECT_EQ(k.name_calls[1050], 2);
  EXPECT_EQ(k.name_calls[1000], 1);
  auto s = p.summary();
  EXPECT_EQ(s.processes_seen, 101u);
  EXPECT_EQ(s.processes_exited, 99u);
  EXPECT_EQ(s.exits_without_event, 99u);
}

TEST(Pipeline, ExitedProcessesAreReportedThenRemoved) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  for (uint64_t v = 1; v <= 3; ++v) p.add_slot(slot(100, v, 2, 0));
  p.add_slot(slot(200, 1, 1, 1));
  p.process_forked(300);
  p.process_exited(100);
  auto r = p.finish_interval({}, 3);
  ASSERT_EQ(r.processes.size(), 2u);
  EXPECT_EQ(r.processes[0].pid, 100u);  // its last interval is still reported
  EXPECT_EQ(r.processes[0].pages, 3u);
  EXPECT_EQ(r.exited_processes, 1u);
  EXPECT_EQ(r.table_pages, 1u);  // counted after the removal
  EXPECT_EQ(p.table().size(), 1u);
  for (uint64_t v = 1; v <= 3; ++v) EXPECT_EQ(p.table().find(mb_page_key(100, v)), nullptr);
  EXPECT_NE(p.table().find(mb_page_key(200, 1)), nullptr);
  // Names are asked once per process while it lives.
  EXPECT_EQ(k.name_calls[100], 1);
  EXPECT_EQ(k.name_calls[200], 1);
  EXPECT_EQ(k.name_calls[300], 1);

  p.begin_interval(2);
  p.add_slot(slot(200, 1, 1, 1));
  r = p.finish_interval({}, 2);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].pid, 200u);
  EXPECT_EQ(r.exited_processes, 0u);

  // A reused pid is a new process: its name is asked again.
  p.begin_interval(3);
  p.add_slot(slot(100, 9, 1, 0));
  p.process_exited(200);
  p.process_exited(300);
  r = p.finish_interval({}, 2);
  EXPECT_EQ(k.name_calls[100], 2);
  EXPECT_EQ(r.exited_processes, 2u);
  EXPECT_EQ(p.table().size(), 1u);

  auto s = p.summary();
  EXPECT_EQ(s.processes_seen, 4u);  // 100, 200, 300 and the second 100
  EXPECT_EQ(s.processes_exited, 3u);
  EXPECT_EQ(s.intervals, 3u);
  EXPECT_EQ(s.table_pages, 1u);
}

// An exec replaces the process's image: its pages so far (and this
// interval's, drained after the event) are reported once more with the new
// name, then leave, counted apart from exits; the process stays (no exit,
// seen once) and its new pages are taken in from the next interval on.
TEST(Pipeline, ExecedProcessLeavesItsOldImageAfterTheInterval) {
  FakeKernel k;
  std::map<pid_t, std::string> names = {{100, "sh"}, {200, "other"}};
  std::map<pid_t, int> name_calls;
  mb::Pipeline p(config(), k.query(), [&](pid_t pid) {
    ++name_calls[pid];
    return names[pid];
  });
  p.begin_interval(1);
  for (uint64_t v = 1; v <= 3; ++v) p.add_slot(slot(100, v, 2, 0));
  p.add_slot(slot(200, 1, 1, 0));
  auto r = p.finish_interval({}, 2);
  ASSERT_EQ(r.processes.size(), 2u);
  EXPECT_EQ(r.processes[0].comm, "sh");

  p.begin_interval(2);
  names[100] = "prog";
  p.process_execed(100);
  p.add_slot(slot(100, 7, 1, 0));  // drained after the event: old or new image
  p.add_slot(slot(200, 1, 1, 0));
  r = p.finish_interval({}, 2);
  ASSERT_EQ(r.processes.size(), 2u);
  EXPECT_EQ(r.processes[0].pid, 100u);
  EXPECT_EQ(r.processes[0].comm, "prog");  // the new name at once
  EXPECT_EQ(r.processes[0].pages, 4u);     // reported, then removed
  EXPECT_EQ(r.exited_processes, 0u);
  EXPECT_EQ(r.table_pages, 1u);
  for (uint64_t v : {1, 2, 3, 7}) EXPECT_EQ(p.table().find(mb_page_key(100, v)), nullptr) << v;
  EXPECT_NE(p.table().find(mb_page_key(200, 1)), nullptr);
  EXPECT_EQ(p.table().stats().removed_exec, 4u);
  EXPECT_EQ(p.table().stats().removed_exited, 0u);

  p.begin_interval(3);
  p.add_slot(slot(100, 7, 1, 0));  // the new image's
  r = p.finish_interval({}, 2);
  EXPECT_EQ(p.table().size(), 2u);
  EXPECT_NE(p.table().find(mb_page_key(100, 7)), nullptr);
  EXPECT_EQ(r.processes[0].comm, "prog");
  EXPECT_EQ(name_calls[100], 2);  // at first sight and at the exec

  // An exec and the exit in one interval: an exit.
  p.begin_interval(4);
  p.process_execed(100);
  p.process_exited(100);
  r = p.finish_interval({}, 1);
  EXPECT_EQ(r.exited_processes, 1u);
  EXPECT_EQ(p.table().stats().removed_exited, 1u);
  EXPECT_EQ(p.table().stats().removed_exec, 4u);
  auto sum = p.summary();
  EXPECT_EQ(sum.processes_seen, 2u);
  EXPECT_EQ(sum.processes_exited, 1u);
}

// Only live processes are remembered (a long run sees pids without end);
// each process, a reused pid too, is counted once.
TEST(Pipeline, ProcessesSeenCountsEveryProcessOnce) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  for (uint32_t i = 1; i <= 3; ++i) {
    p.begin_interval(i);
    for (pid_t c = 1000; c < 1100; ++c) {
      p.process_forked(c);
      p.add_slot(slot(static_cast<uint32_t>(c), 1, 1, 0));  // seen twice in one life
      p.process_exited(c);
    }
    p.finish_interval({}, 0);
  }
  auto s = p.summary();
  EXPECT_EQ(s.processes_seen, 300u);
  EXPECT_EQ(s.processes_exited, 300u);
}

// Lost fork events (a full event ring buffer) must not lose processes: one
// known only from the tracked set, and one only from its exit event, are
// seen once each, so seen - exited stays the live tree.
TEST(Pipeline, ProcessesWhoseForkEventWasLostAreStillSeen) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  p.begin_interval(1);
  p.reconcile_tracked({1, 500});  // 500: forked, event lost, never sampled
  p.process_exited(600);          // 600: forked and exited, fork event lost
  p.finish_interval({}, 2);
  p.begin_interval(2);
  p.reconcile_tracked({1, 500});
  p.finish_interval({}, 2);
  auto s = p.summary();
  EXPECT_EQ(s.processes_seen, 3u);
  EXPECT_EQ(s.processes_exited, 1u);
  EXPECT_EQ(s.processes_seen - s.processes_exited, 2u);
}

TEST(Pipeline, CountersPerIntervalAndSummed) {
  FakeKernel k;
  mb::Pipeline p(config(), k.query(), k.names());
  Counters d1{};
  d1[MB_CTR_SAMPLES] = 10;
  d1[MB_CTR_ACCEPTED] = 8;
  d1[MB_CTR_PAGE_TABLE_FULL] = 2;
  d1[MB_CTR_SAMPLES_LOST] = 3;
  d1[MB_CTR_LANE_SATURATED] = 7;  // not a drop
  Counters d2{};
  d2[MB_CTR_SAMPLES] = 5;
  d2[MB_CTR_TASK_TABLE_FULL] = 1;
  d2[MB_CTR_EVENTS_LOST] = 4;
  d2[MB_CTR_TRACKED_FULL] = 2;
  p.begin_interval(1);
  auto r1 = p.finish_interval(d1, 1);
  EXPECT_EQ(r1.counters, d1);
  EXPECT_EQ(r1.dropped, 5u);
  EXPECT_TRUE(r1.nodes.empty());
  EXPECT_EQ(r1.accesses_this_interval, 0u);
  p.begin_interval(2);
  auto r2 = p.finish_interval(d2, 1);
  EXPECT_EQ(r2.counters, d2);
  EXPECT_EQ(r2.dropped, 7u);
  auto s = p.summary();
  EXPECT_EQ(s.intervals, 2u);
  EXPECT_EQ(s.counters[MB_CTR_SAMPLES], 15u);
  EXPECT_EQ(s.counters[MB_CTR_ACCEPTED], 8u);
  EXPECT_EQ(s.counters[MB_CTR_LANE_SATURATED], 7u);
  EXPECT_EQ(s.counters[MB_CTR_EVENTS_LOST], 4u);
  EXPECT_EQ(s.dropped, 12u);
  EXPECT_EQ(s.processes_seen, 0u);
}

TEST(Pipeline, FullTableCountsAndStillReportsNodes) {
  FakeKernel k;
  k.node_of_pid[1] = 2;
  auto cfg = config();
  cfg.max_pages = 2;
  mb::Pipeline p(cfg, k.query(), k.names());
  p.begin_interval(1);
  p.add_slot(slot(1, 1, 5, 1));
  p.add_slot(slot(1, 2, 5, 1));
  p.add_slot(slot(1, 3, 7, 1));  // no room: counted on its sampled node
  p.add_slot(slot(1, 4, 2));     // no room and no node: unknown, not asked
  auto r = p.finish_interval({}, 1);
  EXPECT_TRUE(k.calls.empty());
  EXPECT_EQ(r.table_pages, 2u);
  EXPECT_EQ(r.table_dropped_full, 9u);
  EXPECT_EQ(r.pages_this_interval, 4u);
  EXPECT_EQ(r.accesses_this_interval, 19u);
  ASSERT_EQ(r.nodes.size(), 2u);
  expect_node(r, -1, 2, 1);
  expect_node(r, 1, 17, 3);
  EXPECT_EQ(p.summary().table_dropped_full, 9u);
}

}  // namespace
