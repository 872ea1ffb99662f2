// BpfCollector itself, on the live kernel: what its libbpf callbacks do with
// a consumer that throws.
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <stdexcept>

#include "membalancer/bpf_collector.h"
#include "membalancer/topology.h"
#include "tests/integration/harness.h"

using namespace mb;

// A consumer's exception must not unwind through libbpf (C frames): the
// callback catches it, stops consuming, and poll_samples rethrows it. The
// record it was given is consumed; the rest stay for the next poll.
TEST(Collector, ConsumerExceptionLeavesPollNotLibbpf) {
  REQUIRE_ROOT();
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited);
  CollectorConfig cfg;
  cfg.mode = TrackMode::kPid;
  cfg.pid = getpid();
  cfg.page_slots = 1 << 12;
  cfg.stream_samples = true;
  cfg.synthetic_source = true;
  cfg.sample_ring_bytes = 1u << 20;
  SamplerPlan plan;
  plan.name = "synthetic";
  plan.kind = MB_SAMPLER_SYNTHETIC;
  BpfCollector collector(cfg, plan, read_topology());
  mb_synth_args args{};
  args.count = 10;
  args.tgid = static_cast<uint32_t>(getpid());
  args.vaddr = 0x7f0000000000ULL;
  collector.run_synthetic(args);
  int seen = 0;
  EXPECT_THROW(collector.poll_samples([&](const mb_sample&) {
    ++seen;
    throw std::runtime_error("consumer failed");
  }),
               std::runtime_error);
  EXPECT_EQ(seen, 1);
  collector.run_synthetic(args);
  seen = 0;
  collector.poll_samples([&](const mb_sample&) { ++seen; });
  EXPECT_EQ(seen, 19) << "the 9 left by the failed poll, then 10 more";
}

// A tracked process that execs says so (MB_PROC_EXEC, between its fork and
// its exit), the event fd wakes a waiting loop, and the observer sees every
// event as it leaves the ring buffer, early (take_process_events) or not.
// An untracked process's exec (--pid does not follow children) says nothing.
TEST(Collector, ExecOfATrackedProcessIsAnEvent) {
  REQUIRE_ROOT();
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited);
  for (TrackMode mode : {TrackMode::kTree, TrackMode::kPid}) {
    SCOPED_TRACE(mode == TrackMode::kTree ? "tree" : "pid");
    // The root waits for the collector, then execs a shell whose child
    // execs /bin/true (the collector never tracks its own process).
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    const pid_t root = fork();
    if (root == 0) {
      char c;
      close(go[1]);
      if (read(go[0], &c, 1) != 1) _exit(126);
      execl("/bin/sh", "sh", "-c", "/bin/true; :", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(go[0]);
    CollectorConfig cfg;
    cfg.mode = mode;
    cfg.pid = root;
    cfg.page_slots = 1 << 12;
    cfg.synthetic_source = true;  // no sampler: the process tree only
    cfg.stream_samples = true;
    cfg.sample_ring_bytes = 1u << 20;
    SamplerPlan plan;
    plan.name = "synthetic";
    plan.kind = MB_SAMPLER_SYNTHETIC;
    auto collector = std::make_unique<BpfCollector>(cfg, plan, read_topology());
    std::vector<mb_proc_event> observed;
    collector->set_event_observer([&](const mb_proc_event& ev) { observed.push_back(ev); });
    pollfd pfd{collector->process_event_fd(), POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 0), 0) << "nothing to read yet";
    ASSERT_EQ(write(go[1], "x", 1), 1);
    close(go[1]);
    EXPECT_EQ(poll(&pfd, 1, 5000), 1) << "the event fd wakes a waiting loop";
    collector->take_process_events();
    ASSERT_FALSE(observed.empty()) << "observed when taken, before any delivery";
    EXPECT_EQ(observed[0].type, MB_PROC_EXEC);
    EXPECT_EQ(observed[0].tgid, static_cast<uint32_t>(root));
    int status = 0;
    ASSERT_EQ(waitpid(root, &status, 0), root);
    std::vector<mb_proc_event> delivered;
    collector->poll_process_events([&](const mb_proc_event& ev) { delivered.push_back(ev); });
    EXPECT_EQ(delivered.size(), observed.size()) << "every event observed once and delivered once";
    std::map<uint32_t, std::vector<uint32_t>> types;  // tgid -> event types, in order
    for (const auto& ev : delivered) types[ev.tgid].push_back(ev.type);
    EXPECT_EQ(types[root], (std::vector<uint32_t>{MB_PROC_EXEC, MB_PROC_EXIT}));
    types.erase(root);
    if (mode == TrackMode::kTree) {
      ASSERT_EQ(types.size(), 1u) << "the shell's child";
      EXPECT_EQ(types.begin()->second, (std::vector<uint32_t>{MB_PROC_FORK, MB_PROC_EXEC, MB_PROC_EXIT}));
    } else {
      EXPECT_TRUE(types.empty()) << "an untracked child's exec is no event";
    }
    EXPECT_EQ(collector->counters()[MB_CTR_EVENTS_LOST], 0u);
  }
}
