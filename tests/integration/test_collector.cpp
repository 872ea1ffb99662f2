// BpfCollector itself, on the live kernel: what its libbpf callbacks do with
// a consumer that throws.
#include <sys/resource.h>
#include <unistd.h>

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
