// Unit tests for membalancer/memory_backend.h on a model of the memory (as a
// replay with --dry-run uses it): hot pages on the slow node are planned up,
// and after a stop signal (hold) the last interval is reported but plans and
// applies nothing.

#include <gtest/gtest.h>

#include "membalancer/memory_backend.h"
#include "membalancer/pipeline.h"
#include "membalancer/replay.h"

namespace {

mb::Topology fast_and_slow() {
  mb::Topology t;
  t.nodes.resize(2);
  for (int i = 0; i < 2; ++i) {
    t.nodes[i].id = i;
    t.nodes[i].distance = {{i, 10}, {1 - i, 20}};
    t.nodes[i].mem_total_bytes = 1ull << 30;
    t.nodes[i].mem_free_bytes = 1ull << 29;
  }
  t.nodes[0].cpus = {0, 1};  // node 1 is memory only: the slow tier
  t.cpu_node = {0, 0};
  return t;
}

struct TierDryRun {
  mb::Topology topo = fast_and_slow();
  mb::Options opts;
  std::unique_ptr<mb::MemoryBackend> backend;
  std::unique_ptr<mb::Pipeline> pipeline;
  mb::PlacementModel* model = nullptr;
  uint32_t interval = 0;

  TierDryRun() {
    opts.command = "tier";
    opts.dry_run = true;
    opts.tiers = "0:1";
    backend = std::make_unique<mb::MemoryBackend>(opts, topo);
    model = backend->use_model(64ull << 20, mb::PlacementModel::Start::kSlow);
    pipeline = std::make_unique<mb::Pipeline>(mb::pipeline_config(opts), mb::replay_node_query(),
                                              [](pid_t) { return std::string("mx"); });
    pipeline->process_forked(100);
  }
  // 64 pages of process 100 on the slow node, sampled 50 times each.
  mb::IntervalReport next() {
    pipeline->begin_interval(++interval);
    for (uint64_t v = 0; v < 64; ++v) {
      mb_page_slot s{};
      s.key = mb_page_key(100, 0x1000 + v);
      s.accesses = 50;
      s.mem_node1 = 2;
      model->place(s.key, 1, false);  // as the replay places each page it serves
      pipeline->add_slot(s);
    }
    pipeline->add_tasks({});
    mb::IntervalReport r = pipeline->finish_interval({}, 1);
    backend->interval(*pipeline, {100}, interval, r);
    return r;
  }
};

TEST(MemoryBackend, HotPagesOnTheSlowNodeArePlannedUp) {
  TierDryRun run;
  uint64_t promoted = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = run.next();
    ASSERT_TRUE(r.migration);
    promoted += r.migration->plan_promote_pages;
    ASSERT_EQ(r.migration->tiers_view.size(), 2u);
    EXPECT_EQ(r.migration->tiers_view[0].promoted_pages, promoted) << "what arrived in the model, whole run";
  }
  EXPECT_EQ(promoted, 64u);
}

TEST(MemoryBackend, AfterAStopSignalTheLastIntervalPlansNothing) {
  TierDryRun run;
  run.backend->hold();
  auto r = run.next();
  ASSERT_TRUE(r.migration) << "the interval is still reported";
  EXPECT_EQ(r.migration->plan_promote_pages, 0u);
  EXPECT_EQ(r.migration->dry_run_applied_pages, 0u);
  ASSERT_EQ(r.migration->tiers_view.size(), 2u);
  EXPECT_EQ(r.migration->tiers_view[1].accesses, 64u * 50u);
}

}  // namespace
