// BpfCollector itself, on the live kernel: what its libbpf callbacks do with
// a consumer that throws, exec events, and the thread table across a
// non-leader exec.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>
#include <thread>

#include "membalancer/bpf_collector.h"
#include "membalancer/topology.h"
#include "tests/integration/harness.h"

using namespace mb;
using mbtest::wait_for;

namespace {

// A collector streaming synthetic samples of this process into a 1 MiB ring;
// without consumer_waits, as membalancer --record reads it (poll_samples).
std::unique_ptr<BpfCollector> synthetic_stream(bool consumer_waits = true) {
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited);
  CollectorConfig cfg;
  cfg.mode = TrackMode::kPid;
  cfg.pid = getpid();
  cfg.page_slots = 1 << 12;
  cfg.stream_samples = true;
  cfg.synthetic_source = true;
  cfg.sample_ring_bytes = 1u << 20;
  cfg.sample_consumer_waits = consumer_waits;
  SamplerPlan plan;
  plan.name = "synthetic";
  plan.kind = MB_SAMPLER_SYNTHETIC;
  return std::make_unique<BpfCollector>(cfg, plan, read_topology());
}

mb_synth_args synth(uint32_t count) {
  mb_synth_args args{};
  args.count = count;
  args.tgid = static_cast<uint32_t>(getpid());
  args.vaddr = 0x7f0000000000ULL;
  args.pages = 64;
  return args;
}

// Whether the sample ring woke its waiters (its epoll fd turned readable)
// within timeout_ms after run_synthetic(synth(count)).
bool ring_woke(BpfCollector& collector, uint32_t count, int timeout_ms) {
  pollfd pfd{collector.sample_event_fd(), POLLIN, 0};
  EXPECT_GE(pfd.fd, 0);
  collector.run_synthetic(synth(count));
  return poll(&pfd, 1, timeout_ms) == 1;
}

}  // namespace

// A consumer's exception must not unwind through libbpf (C frames): the
// callback catches it, stops consuming, and poll_samples rethrows it. The
// record it was given is consumed; the rest stay for the next poll.
TEST(Collector, ConsumerExceptionLeavesPollNotLibbpf) {
  REQUIRE_ROOT();
  auto stream = synthetic_stream();
  BpfCollector& collector = *stream;
  const mb_synth_args args = synth(10);
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

// A few streamed samples wake no one (the consumer reads on its timer); a
// quarter of the ring filled does wake it, so it never fills up unread.
TEST(Collector, SamplesWakeTheConsumerOnlyPastAFillLevel) {
  REQUIRE_ROOT();
  auto collector = synthetic_stream();
  EXPECT_FALSE(ring_woke(*collector, 10, 200)) << "10 samples (720 bytes) woke the consumer";
  // 72 bytes a record in the ring: 4000 are past a quarter of 1 MiB.
  EXPECT_TRUE(ring_woke(*collector, 4000, 5000)) << "a quarter of the ring filled and no wake-up";
  uint64_t n = 0;
  EXPECT_EQ(collector->wait_samples(0, [&](const mb_sample&) { ++n; }), 4010);
  EXPECT_EQ(n, 4010u) << "every sample read, woken or not";
  EXPECT_EQ(collector->counters()[MB_CTR_SAMPLES_LOST], 0u);
}

// membalancer --record takes its samples in its interval loop: no thread
// waits on the ring. A quarter of the ring filled forced a wake-up of the
// ring's waiters all the same (its epoll fd turned readable); now no sample
// wakes anyone, however full the ring. A ring too small for what came
// counts the samples it could not take as lost, and the loop's poll reads
// every other one.
TEST(Collector, SamplesNoConsumerWaitsForWakeNoOne) {
  REQUIRE_ROOT();
  auto collector = synthetic_stream(false);
  // 72 bytes a record in the ring: 4000 are past a quarter of 1 MiB, 20000
  // more past all of it.
  EXPECT_FALSE(ring_woke(*collector, 4000, 500)) << "a quarter of the ring filled woke its waiters";
  EXPECT_FALSE(ring_woke(*collector, 20000, 500)) << "the full ring woke its waiters";
  uint64_t read = 0;
  collector->poll_samples([&](const mb_sample&) { ++read; });
  const uint64_t lost = collector->counters()[MB_CTR_SAMPLES_LOST];
  EXPECT_GT(lost, 0u) << "24000 samples (1.7 MB) fitted a 1 MiB ring";
  EXPECT_EQ(read + lost, 24000u) << read << " read, " << lost << " counted lost";
  // Into the ring emptied: still no wake-up (the kernel's default wakes
  // the waiters of a ring their reader had caught up with).
  EXPECT_FALSE(ring_woke(*collector, 1, 500)) << "a sample into the empty ring woke its waiters";
  EXPECT_EQ(collector->wait_samples(0, [](const mb_sample&) {}), -EINVAL) << "a wait no sample would end";
}

// A steady trickle of samples, one at a time, to a consumer thread looping
// on wait_samples with profiler record's 20 ms timeout: it used to wake for
// nearly every sample (one sleep and wake-up each, its voluntary context
// switches); it now wakes on its timer, and still gets them all.
TEST(Collector, ASteadySampleStreamDoesNotWakeTheConsumerPerSample) {
  REQUIRE_ROOT();
  auto collector = synthetic_stream();
  constexpr uint64_t kSamples = 2000;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> got{0};
  long switches = -1;
  std::thread consumer([&] {
    rusage before{}, after{};
    getrusage(RUSAGE_THREAD, &before);
    for (;;) {
      const bool last = stop.load();
      collector->wait_samples(last ? 0 : 20, [&](const mb_sample&) { ++got; });
      if (last) break;
    }
    getrusage(RUSAGE_THREAD, &after);
    switches = after.ru_nvcsw - before.ru_nvcsw;
  });
  for (uint64_t i = 0; i < kSamples; ++i) {
    collector->run_synthetic(synth(1));
    usleep(200);  // time for a woken consumer to catch up
  }
  stop = true;
  consumer.join();
  EXPECT_EQ(got.load(), kSamples);
  EXPECT_EQ(collector->counters()[MB_CTR_SAMPLES_LOST], 0u);
  EXPECT_LT(switches, static_cast<long>(kSamples / 10))
      << "the consumer slept and woke " << switches << " times for " << kSamples << " samples";
}

// A consumer that read the ring empty waits with no timer (profiler record's
// consumer when idle): nothing wakes it while no sample comes, the first
// sample into the empty ring does (its wait has no timeout to end it
// otherwise), and the wake fd does (a stop).
TEST(Collector, AnIdleConsumerSleepsUntilTheFirstSample) {
  REQUIRE_ROOT();
  auto collector = synthetic_stream();
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(stop_fd, 0);
  std::atomic<uint64_t> got{0};
  std::atomic<int> waits{0};  // waits that returned
  std::vector<int> delivered;  // what each wait that delivered any delivered, read after the join
  std::thread consumer([&] {
    for (;;) {
      const int n = collector->wait_samples(-1, [&](const mb_sample&) { ++got; }, true, stop_fd);
      if (n != 0) delivered.push_back(n);
      ++waits;
      pollfd stop{stop_fd, POLLIN, 0};
      if (poll(&stop, 1, 0) == 1 || n < 0) break;
    }
  });
  usleep(300000);  // idle: fifteen periods of the old 20 ms timer
  EXPECT_EQ(waits.load(), 0) << "an idle consumer's wait returned with nothing to read";
  // One sample at a time into the empty ring: each wakes it.
  for (uint64_t want = 1; want <= 3; ++want) {
    collector->run_synthetic(synth(1));
    EXPECT_TRUE(wait_for([&] { return got.load() == want; }, 10)) << "sample " << want << " did not wake it";
  }
  // Asleep again. (A wait may end once with nothing: the wake-up record the
  // BPF side discards can still be in the ring when the consumer reads it.)
  usleep(100000);
  const int waits_before = waits.load();
  usleep(300000);
  EXPECT_EQ(waits.load(), waits_before) << "the consumer woke with no sample";
  const uint64_t one = 1;
  ASSERT_EQ(write(stop_fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  consumer.join();
  close(stop_fd);
  EXPECT_EQ(delivered, (std::vector<int>{1, 1, 1})) << "a wake-up per sample";
  EXPECT_EQ(collector->counters()[MB_CTR_SAMPLES_LOST], 0u);
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

namespace {

// The thread table's entry of `tid` in a drain (nullptr: none).
const TaskSnapshot* task_entry(const std::vector<TaskSnapshot>& tasks, uint32_t tid) {
  for (const auto& t : tasks)
    if (t.tid == tid) return &t;
  return nullptr;
}

}  // namespace

// A thread other than the leader execs: the kernel gives it the leader's id.
// The exec event names the thread by its old id, and the thread table's
// entry under that id, which no sample reaches any more, is read once as
// exited and freed (it used to stay for good, a live thread to every
// interval).
TEST(Collector, ANonLeaderExecEndsItsOldThreadEntry) {
  REQUIRE_ROOT();
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited);
  int go[2], told[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(told), 0);
  const pid_t child = fork();
  if (child == 0) {
    // A second thread faults 64 pages in (samples under its tid), says its
    // id, and at the next byte execs sleep; the leader waits in join.
    close(go[1]);
    close(told[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(126);
    std::thread t([&] {
      const size_t bytes = 64 * 4096;
      auto* p = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
      const pid_t tid = gettid();
      if (write(told[1], &tid, sizeof tid) != sizeof tid || read(go[0], &c, 1) != 1) _exit(126);
      execl("/bin/sleep", "sleep", "0.5", static_cast<char*>(nullptr));
      _exit(127);
    });
    t.join();
    _exit(125);
  }
  close(go[0]);
  close(told[1]);
  CollectorConfig cfg;
  cfg.mode = TrackMode::kPid;
  cfg.pid = child;
  cfg.page_slots = 1 << 12;
  std::string why;
  auto plan = plan_sampler("fault", SamplerOptions{}, &why);
  ASSERT_TRUE(plan) << why;
  auto collector = std::make_unique<BpfCollector>(cfg, *plan, read_topology());
  ASSERT_EQ(write(go[1], "x", 1), 1);
  pid_t thread = 0;
  ASSERT_EQ(read(told[0], &thread, sizeof thread), static_cast<ssize_t>(sizeof thread));
  ASSERT_NE(thread, child);
  std::vector<TaskSnapshot> tasks;
  collector->drain_tasks(&tasks);
  const TaskSnapshot* before = task_entry(tasks, static_cast<uint32_t>(thread));
  ASSERT_NE(before, nullptr) << "the thread's faults made it an entry";
  EXPECT_FALSE(before->stats.flags & MB_TASK_EXITED);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  std::vector<mb_proc_event> execs;
  ASSERT_TRUE(mbtest::wait_for([&] {
    collector->poll_process_events([&](const mb_proc_event& ev) {
      if (ev.type == MB_PROC_EXEC) execs.push_back(ev);
    });
    return !execs.empty();
  }, 10));
  EXPECT_EQ(execs[0].tgid, static_cast<uint32_t>(child));
  EXPECT_EQ(execs[0].tid, static_cast<uint32_t>(thread)) << "the thread that exec'd, by its old id";
  // The tracked entry counts it too (an exec whose event is lost is found so).
  const auto counts = collector->exec_counts();
  EXPECT_EQ(counts, (std::vector<std::pair<pid_t, uint32_t>>{{child, 1u}}));
  const auto exec_count = collector->exec_counter();  // the mover's
  EXPECT_EQ(exec_count(child), std::optional<uint32_t>(1u));
  EXPECT_EQ(exec_count(getpid()), std::nullopt) << "not tracked";
  collector->drain_tasks(&tasks);
  const TaskSnapshot* last = task_entry(tasks, static_cast<uint32_t>(thread));
  ASSERT_NE(last, nullptr) << "read once more after the exec";
  EXPECT_TRUE(last->stats.flags & MB_TASK_EXITED) << "the old id's entry gets no more samples";
  collector->drain_tasks(&tasks);
  EXPECT_EQ(task_entry(tasks, static_cast<uint32_t>(thread)), nullptr) << "and is freed";
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}
