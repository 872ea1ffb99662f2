// Profiler benchmarks (bench/sections/profiler.sh):
//   report     `profiler report`'s aggregation (every table's data in one pass)
//              over a 10M-record file, against a bare read of the same file
//   symbols    Symbolizer lookups with the cache warm, against cold lookups
//   record     the real ring-buffer path at 1M samples/s of synthetic input
//              (synth_samples via BPF_PROG_TEST_RUN) drained by the
//              recorder's SampleConsumer into a profile file: drops must be 0
// Usage: profiler_cost [--quick] [DIR]   (DIR holds the 640 MB test file)
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "bench/bench_util.h"
#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "profiler/record.h"
#include "profiler/report.h"
#include "profiler/symbolizer.h"

using namespace mb;
using namespace bench;

namespace {

extern "C" __attribute__((noinline)) int bench_symbol_target(int x) { return x * 7 + 3; }

void write_synthetic(const std::string& path, uint64_t records) {
  ProfileStart st;
  st.sampler = "synthetic";
  st.sampler_kind = MB_SAMPLER_SYNTHETIC;
  st.topology.nodes.resize(2);
  st.topology.nodes[0].id = 0;
  st.topology.nodes[1].id = 1;
  ProfileWriter w(path, st, true);
  for (uint32_t p = 0; p < 8; ++p) w.add_process(0, 1000 + p, 1, kProcSeen, "bench");
  uint64_t x = 88172645463325252ULL;
  mb_sample s{};
  s.flags = MB_ACC_VADDR | MB_ACC_IP | MB_ACC_LATENCY | MB_ACC_SRC;
  s.sampler = MB_SAMPLER_SYNTHETIC;
  for (uint64_t i = 0; i < records; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s.time_ns = i * 100;
    // 1M distinct pages of 8 processes: a hot 64K-page set gets half of
    // the samples, the rest are spread over all of them.
    uint64_t page = (x >> 8) & ((x & 0x100) ? 0xffff : 0xfffff);
    s.tgid = s.tid = 1000 + static_cast<uint32_t>(page & 7);
    s.vaddr = 0x7f0000000000ULL + (page << 12) + ((x >> 32) & 0xfc0);
    s.mem_node = static_cast<uint16_t>(page & 1);
    s.ip = 0x401000 + ((x >> 40) & 0x3ff) * 4;
    s.latency = static_cast<uint32_t>(50 + ((x >> 20) & 0x3ff));
    s.data_source = static_cast<uint16_t>(page & 1 ? MB_SRC_REMOTE_DRAM : MB_SRC_LOCAL_DRAM);
    w.add_sample(s);
  }
  w.finish(records * 100, 0);
}

void bench_report(const std::string& dir, uint64_t records) {
  std::string path = dir + "/profiler_cost_10m.prof";
  double t0 = now_s();
  write_synthetic(path, records);
  std::printf("wrote %" PRIu64 " records (%.0f MB) in %.2f s\n", records, records * 64 / 1e6, now_s() - t0);
  std::vector<double> bare, full;
  for (int rep = 0; rep < 3; ++rep) {
    {
      double t = now_s();
      ProfileReader r(path);
      uint64_t sum = 0;
      r.for_each_batch([&](const mb_sample* s, size_t n) {
        for (size_t i = 0; i < n; ++i) sum += s[i].vaddr;
      });
      bare.push_back(now_s() - t);
      if (sum == 42) std::printf("-\n");
    }
    {
      double t = now_s();
      ProfileReader r(path);
      prof::Aggregate agg;
      prof::aggregate_file(r, &agg);
      auto regions = prof::hottest_regions(agg, 2 << 20, 10);
      auto pages = prof::hottest_pages(agg, 10);
      full.push_back(now_s() - t);
      if (rep == 0)
        std::printf("aggregate: %" PRIu64 " samples, %zu pages, %zu ips, %zu processes; hottest region %" PRIu64
                    " accesses\n",
                    agg.samples, agg.pages.size(), agg.ips.size(), agg.processes.size(),
                    regions.empty() ? 0 : regions[0].accesses);
    }
  }
  double b = median(bare), f = median(full);
  std::printf("report on %" PRIu64 " records: bare read (checksums + one field) %.3f s, full aggregation %.3f s\n",
              records, b, f);
  result("profiler_report_bare_records_per_s", records / b, "records/s");
  result("profiler_report_records_per_s", records / f, "records/s");
  result("profiler_report_ratio", f / b, "x");
  unlink(path.c_str());
}

void bench_symbols(uint64_t lookups) {
  ProfileInfo info;
  const uint32_t self = static_cast<uint32_t>(getpid());
  info.add_maps(0, self, read_proc_maps(getpid()));
  ProfileProcesses procs(info);
  prof::Symbolizer sym(procs);
  // 4096 distinct addresses in this executable and in libc.
  std::vector<uint64_t> ips;
  uint64_t base = reinterpret_cast<uint64_t>(&bench_symbol_target);
  uint64_t libc = reinterpret_cast<uint64_t>(&std::memcpy);
  for (uint64_t i = 0; i < 2048; ++i) ips.push_back(base + (i * 37) % 8192), ips.push_back(libc + (i * 53) % 65536);
  double t = now_s();
  for (uint64_t ip : ips) sym.lookup(self, ip);
  double cold = now_s() - t;
  const std::string& name = sym.lookup(self, base).function;
  std::printf("cold: %zu distinct addresses in %.3f s (%.0f/s); %s\n", ips.size(), cold, ips.size() / cold, name.c_str());
  t = now_s();
  size_t chars = 0;
  for (uint64_t i = 0; i < lookups; ++i) chars += sym.lookup(self, ips[i % ips.size()]).function.size();
  double warm = now_s() - t;
  std::printf("warm: %" PRIu64 " lookups in %.3f s (%zu chars)\n", lookups, warm, chars);
  result("profiler_symbols_cold_per_s", ips.size() / cold, "addresses/s");
  result("profiler_symbols_warm_per_s", lookups / warm, "addresses/s");
}

void bench_record(const std::string& dir, double seconds, uint64_t rate) {
  raise_memlock();
  Topology topo = read_topology();
  CollectorConfig cfg;
  cfg.mode = TrackMode::kPid;
  cfg.pid = getpid();
  cfg.page_slots = 1 << 12;
  cfg.stream_samples = true;
  cfg.synthetic_source = true;
  cfg.sample_ring_bytes = 32u << 20;  // the profiler's default
  SamplerPlan plan;
  plan.name = "synthetic";
  plan.kind = MB_SAMPLER_SYNTHETIC;
  BpfCollector collector(cfg, plan, topo);
  std::string path = dir + "/profiler_cost_record.prof";
  ProfileStart st;
  st.sampler = "synthetic";
  st.sampler_kind = MB_SAMPLER_SYNTHETIC;
  st.topology = topo;
  ProfileWriter writer(path, st, true);
  std::mutex mu;
  prof::SampleConsumer consumer(collector, writer, mu, false);
  const uint64_t batch = 1000;  // samples per BPF_PROG_TEST_RUN
  const uint64_t total = static_cast<uint64_t>(seconds * rate);
  mb_synth_args args{};
  args.count = batch;
  args.tgid = static_cast<uint32_t>(getpid());
  args.vaddr = 0x7f0000000000ULL;
  args.pages = 65536;
  double t0 = now_s();
  uint64_t sent = 0;
  while (sent < total) {
    // Paced: batch k is due at k * batch / rate.
    double due = t0 + static_cast<double>(sent) / rate;
    double now = now_s();
    if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
    collector.run_synthetic(args);
    sent += batch;
  }
  double produce = now_s() - t0;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  consumer.stop();
  auto c = collector.counters();
  writer.finish(0, c[MB_CTR_SAMPLES_LOST]);
  ProfileReader r(path);
  std::printf("record: %" PRIu64 " synthetic samples in %.2f s (%.2f M/s offered); consumed %" PRIu64
              ", in the file %" PRIu64 ", ring-buffer drops %" PRIu64 " (%s)\n",
              sent, produce, sent / produce / 1e6, consumer.consumed(), r.info().samples, c[MB_CTR_SAMPLES_LOST],
              r.ok() ? "file intact" : r.error().c_str());
  result("profiler_record_offered_per_s", sent / produce, "samples/s");
  result("profiler_record_written", static_cast<double>(r.info().samples), "samples");
  result("profiler_record_offered", static_cast<double>(sent), "samples");
  result("profiler_record_drops", static_cast<double>(c[MB_CTR_SAMPLES_LOST]), "samples");
  unlink(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::string dir = argc > 1 + quick ? argv[1 + quick] : "build/bench";
  try {
    bench_report(dir, quick ? 2000000 : 10000000);
    bench_symbols(quick ? 2000000 : 10000000);
    bench_record(dir, quick ? 1.0 : 3.0, 1000000);
  } catch (const mb::Error& e) {
    std::fprintf(stderr, "profiler_cost: %s%s%s\n", e.what(), e.hint().empty() ? "" : " (hint: ", e.hint().empty() ? "" : (e.hint() + ")").c_str());
    return 1;
  }
  return 0;
}
