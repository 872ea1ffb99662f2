// Unit tests for membalancer/memory_backend.h on a model of the memory (as a
// replay with --dry-run uses it): hot pages on the slow node are planned up,
// after a stop signal (hold) the last interval is reported but plans and
// applies nothing, and nothing is planned on a process that exec'd.

#include <gtest/gtest.h>

#include "membalancer/interval_runner.h"
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
  static void hot_pages(mb::PlacementModel* model, const std::function<void(const mb_page_slot&)>& fn) {
    for (uint64_t v = 0; v < 64; ++v) {
      mb_page_slot s{};
      s.key = mb_page_key(100, 0x1000 + v);
      s.accesses = 50;
      s.mem_node1 = 2;
      model->place(s.key, 1, false);  // as the replay places each page it serves
      fn(s);
    }
  }
  mb::IntervalReport next() {
    pipeline->begin_interval(++interval);
    hot_pages(model, [&](const mb_page_slot& s) { pipeline->add_slot(s); });
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

// The loop's view of a live source: the events of the interval's poll, and
// those that came after it, waiting for the next poll; process 100's hot
// pages every interval.
struct LiveSource : mb::SampleSource {
  mb::PlacementModel* model = nullptr;
  std::vector<mb_proc_event> polled, waiting;
  mb::SamplerPlan plan;
  std::array<uint64_t, MB_NR_COUNTERS> counters_now{};
  void poll_process_events(const std::function<void(const mb_proc_event&)>& fn) override {
    for (const auto& ev : polled) fn(ev);
    polled.clear();
  }
  void peek_process_events(const std::function<void(const mb_proc_event&)>& fn) override {
    for (const auto& ev : waiting) fn(ev);
  }
  uint64_t drain_pages(const PageFn& fn) override {
    TierDryRun::hot_pages(model, fn);
    return 64;
  }
  void drain_tasks(std::vector<mb::TaskSnapshot>* tasks) override { tasks->clear(); }
  std::array<uint64_t, MB_NR_COUNTERS> counters() const override { return counters_now; }
  const std::array<uint64_t, MB_NR_COUNTERS>& counters_at_swap() const override { return counters_now; }
  std::vector<pid_t> tracked_processes() const override { return {100}; }
  const mb::SamplerPlan& sampler() const override { return plan; }
  std::vector<std::pair<pid_t, uint32_t>> execs;  // the kernel's exec counts
  std::vector<std::pair<pid_t, uint32_t>> exec_counts() const override { return execs; }
};

// TierDryRun's backend (or `backend`) in the loop, on a LiveSource.
struct LiveDryRun {
  TierDryRun run;
  LiveSource source;
  mb::IntervalRunner runner;
  uint32_t interval = 0;
  explicit LiveDryRun(mb::Backend* backend = nullptr)
      : runner(source, *run.pipeline, backend ? backend : run.backend.get()) {
    source.model = run.model;
  }
  mb::IntervalReport next() { return runner.run(++interval, [] { return 0.0; }); }
};

mb_proc_event exec_event(uint32_t tgid, uint64_t time_ns) {
  mb_proc_event ev{};
  ev.type = MB_PROC_EXEC;
  ev.tgid = tgid;
  ev.time_ns = time_ns;
  return ev;
}

// An exec that came after the interval's events were read, before its plan:
// the table still holds the old image's pages, and none of them is planned
// (their addresses mean nothing in the new program). Nor in the interval
// that polls it (its pages all go at its end); the new image's pages are
// planned after that.
TEST(MemoryBackend, NothingIsPlannedOnAProcessWhoseExecWasSeen) {
  LiveDryRun live;
  live.source.waiting = {exec_event(100, 1)};
  mb::IntervalReport r = live.next();
  ASSERT_TRUE(r.migration);
  EXPECT_EQ(r.migration->plan_promote_pages, 0u) << "planned on the old image";
  EXPECT_EQ(live.run.pipeline->table().size(), 0u) << "the old image's pages stayed in the table";
  live.source.polled = std::move(live.source.waiting);
  live.source.waiting.clear();
  r = live.next();
  EXPECT_EQ(r.migration->plan_promote_pages, 0u);
  r = live.next();
  EXPECT_EQ(r.migration->plan_promote_pages, 64u) << "the new image's pages, sampled since";
}

// Nor is the new image's memory demoted in the interval of the exec: its
// pages were never sampled yet, which does not make them the coldest.
TEST(MemoryBackend, NoDemotionOfAProcessWhoseExecWasSeen) {
  LiveDryRun live;
  // The fast node full of process 100's pages no sample saw.
  mb::PlacementModel& model = *live.run.model;
  for (uint64_t v = 0; v < model.capacity_pages(0); ++v) {
    const uint64_t key = mb_page_key(100, 0x100000 + v);
    model.place(key, 1, false);
    ASSERT_TRUE(model.move(key, 0));
  }
  live.source.polled = {exec_event(100, 1)};
  mb::IntervalReport r = live.next();
  ASSERT_TRUE(r.migration);
  EXPECT_EQ(r.migration->plan_demote_pages, 0u);
  r = live.next();
  EXPECT_GT(r.migration->plan_demote_pages, 0u) << "the fast node is over its watermark";
}

// What a backend is told of execs: each once, whether it came before the
// poll or after (seen at the peek before interval(), then polled).
struct ExecCounter : mb::Backend {
  std::vector<pid_t> execs;
  void interval(mb::Pipeline&, const std::vector<pid_t>&, double, mb::IntervalReport&) override {}
  void hold() override {}
  void stop(mb::Summary&) override {}
  void process_execed(pid_t tgid, pid_t /*tid*/) override { execs.push_back(tgid); }
};

TEST(MemoryBackend, TheBackendIsToldOfEachExecOnce) {
  ExecCounter backend;
  LiveDryRun live(&backend);
  live.source.polled = {exec_event(100, 1)};
  live.source.waiting = {exec_event(100, 2)};
  live.next();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100, 100}));
  live.source.polled = {exec_event(100, 2), exec_event(100, 3)};  // the one peeked, and a later exec
  live.source.waiting.clear();
  live.next();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100, 100, 100}));
}

// An exec whose event was lost (the ring buffer full: counted) is found by
// the kernel's exec count running ahead of the events, once the next poll
// has not brought its event: the old image's pages leave the table as at an
// exec event, the backend is told (its queued moves cancelled), and it is
// counted. It used to go unnoticed: the old pages were planned on until
// they cooled off.
TEST(MemoryBackend, AnExecWhoseEventWasLostIsFoundByItsCount) {
  ExecCounter backend;
  LiveDryRun live(&backend);
  live.next();
  ASSERT_EQ(live.run.pipeline->table().size(), 64u);
  live.source.execs = {{100, 1}};
  live.source.counters_now[MB_CTR_EVENTS_LOST] = 1;
  live.next();  // the count is read: ahead, its event may still come
  EXPECT_TRUE(backend.execs.empty());
  live.next();  // no event at the poll: lost
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100}));
  EXPECT_EQ(live.run.pipeline->table().size(), 0u) << "the old image's pages stayed in the table";
  EXPECT_EQ(live.run.pipeline->summary().execs_without_event, 1u);
  live.next();
  live.next();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100})) << "found once";
  EXPECT_EQ(live.run.pipeline->table().size(), 64u) << "the new image's pages, sampled since";
}

// A count read ahead of an event that was only late (sent, polled next
// interval) is no lost exec; nor is anything read while no event was lost.
TEST(MemoryBackend, AnExecWhoseEventCameLateIsNotFoundTwice) {
  ExecCounter backend;
  LiveDryRun live(&backend);
  live.source.execs = {{100, 1}};
  live.next();  // no event lost: the counts are not read
  live.source.counters_now[MB_CTR_EVENTS_LOST] = 1;  // another process's event lost
  live.next();
  live.source.polled = {exec_event(100, 1)};
  live.next();
  live.next();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100}));
  EXPECT_EQ(live.run.pipeline->summary().execs_without_event, 0u);
}

// Before the backend stops, the loop tells it the execs that came after the
// last interval's plan (a thread renumbered by one is restored under its new
// id); still once each.
TEST(MemoryBackend, TheExecsWaitingAtTheStopAreToldOnce) {
  ExecCounter backend;
  LiveDryRun live(&backend);
  live.next();
  live.source.waiting = {exec_event(100, 4)};
  live.runner.tell_waiting_execs();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100}));
  live.runner.tell_waiting_execs();
  live.source.polled = std::move(live.source.waiting);
  live.source.waiting.clear();
  live.next();
  EXPECT_EQ(backend.execs, (std::vector<pid_t>{100}));
}

}  // namespace
