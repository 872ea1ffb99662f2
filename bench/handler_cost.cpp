// Benchmark 1: cost of the BPF sample handler per sample.
//
// Two perf_event programs run on the same events at the same time:
//   baseline  bpf/minimal.bpf.c  on_perf_sample_minimal (increments a counter)
//   ours      bpf/membalancer.bpf.c on_perf_sample, loaded and attached by
//             mb::BpfCollector with the `fault` sampler, tracking one pid
// Each is attached to its own set of per-CPU software page-fault perf events
// opened with the sampler's attr (sample_period 1: every fault is a sample).
// The kernel's BPF run-time statistics (BPF_ENABLE_STATS) give run_time_ns and
// run_cnt of each program.
//
// The load: two child processes that fault at a steady rate (madvise
// MADV_DONTNEED over a region, then touch every page). In "tracked" phases
// child A (the pid given to the collector) faults: the real handler takes its
// full path (tracked tgid, page slot find/claim, task stats). In "untracked"
// phases child B faults: the handler stops at the filter. The collector drains
// its tables every interval (1 s, the daemon's default) as the daemon would,
// so page slots are claimed again every interval. The region size (PAGES,
// default 8192 = 32 MiB) sets how many distinct page slots the handler
// touches: with 64 pages they all stay in the CPU caches. Other processes on the machine fault too (they take the
// filtered path); the handler's own counters say how many runs took each
// path, and the two phase kinds give two equations for the two per-path costs.
//
// --parts (diagnostics) also loads bench/handler_parts.bpf.c once per stage of
// the sample path (filter, cpu info, slot find, slot update, task lookup,
// task update; then the whole path plus the clock call that only streamed
// samples make), each instance with its own maps and perf events, to show what each
// stage adds. They all run on every fault, which slows the whole run down:
// the headline numbers come from a run without --parts.
//
// Usage: handler_cost [--parts] [PHASE_SECONDS [REPETITIONS [PAGES [DRAIN_MS]]]]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "membalancer/bpf_collector.h"
#include "membalancer/error.h"
#include "membalancer/records.h"
#include "membalancer/samplers.h"
#include "membalancer/topology.h"
// After records.h: the skeleton's .bss names struct mb_page_slot.
#include "bench/handler_parts.skel.h"
#include "bpf/minimal.skel.h"

namespace {

constexpr size_t kPage = 4096;

struct Control {
  volatile int state[2];         // per child: 0 idle, 1 fault, 2 exit
  volatile uint64_t touched[2];  // pages touched
};

[[noreturn]] void child_main(Control* ctl, int idx, size_t pages) {
  char* region = static_cast<char*>(
      mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (region == MAP_FAILED) _exit(1);
  for (;;) {
    int s = ctl->state[idx];
    if (s == 2) _exit(0);
    if (s == 0) {
      usleep(1000);
      continue;
    }
    madvise(region, pages * kPage, MADV_DONTNEED);
    for (size_t p = 0; p < pages; ++p) region[p * kPage] = 1;
    __atomic_fetch_add(&ctl->touched[idx], pages, __ATOMIC_RELAXED);
  }
}

struct ProgStats {
  uint64_t run_time_ns = 0, run_cnt = 0, recursion_misses = 0;
};

ProgStats prog_stats(int fd) {
  bpf_prog_info info;
  std::memset(&info, 0, sizeof(info));
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) throw mb::SystemError("bpf_obj_get_info_by_fd", errno);
  return {info.run_time_ns, info.run_cnt, info.recursion_misses};
}

long perf_event_open(perf_event_attr* attr, int cpu) {
  return syscall(SYS_perf_event_open, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

// Per-CPU perf events with `attr`, each running prog.
struct Attachment {
  std::vector<int> fds;
  std::vector<bpf_link*> links;
  void attach(bpf_program* prog, const perf_event_attr& a) {
    perf_event_attr attr = a;
    for (int cpu = 0; cpu < libbpf_num_possible_cpus(); ++cpu) {
      long fd = perf_event_open(&attr, cpu);
      if (fd < 0) {
        if (errno == ENODEV || errno == ENXIO) continue;
        throw mb::SystemError("perf_event_open", errno);
      }
      fds.push_back(static_cast<int>(fd));
      bpf_link* l = bpf_program__attach_perf_event(prog, static_cast<int>(fd));
      if (!l) throw mb::SystemError(std::string("attaching ") + bpf_program__name(prog), errno);
      links.push_back(l);
    }
  }
  void detach() {
    for (auto* l : links) bpf_link__destroy(l);
    for (int fd : fds) close(fd);
    links.clear();
    fds.clear();
  }
  ~Attachment() { detach(); }
};

// One instance of handler_parts.bpf.c cut off at `stage`, with its own two
// (mmapable) page tables that are swapped and cleared like the collector's.
class PartInstance {
 public:
  static constexpr uint32_t kBits = 18;  // as CollectorConfig::page_slots
  PartInstance(int stage, pid_t tracked_pid, const perf_event_attr& attr) : stage_(stage) {
    skel_ = handler_parts_bpf::open();
    if (!skel_) throw mb::SystemError("opening handler_parts.bpf.o", errno);
    auto* ro = skel_->rodata;
    ro->sampler_kind = MB_SAMPLER_FAULT;
    ro->self_tgid = static_cast<uint32_t>(getpid());
    ro->follow_forks = false;
    ro->page_set_bits = kBits - MB_PAGE_GROUP_SHIFT;  // sets of MB_PAGE_WAYS slots
    ro->bench_stage = static_cast<uint32_t>(stage);
    LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_MMAPABLE);
    for (int i = 0; i < 2; ++i) {
      tables_[i] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_pages", 4, sizeof(mb_page_set),
                                 1u << (kBits - MB_PAGE_GROUP_SHIFT), &mopts);
      if (tables_[i] < 0) throw mb::SystemError("creating a page table", errno);
      views_[i] = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, tables_[i], 0);
      if (views_[i] == MAP_FAILED) throw mb::SystemError("mmap of a page table", errno);
    }
    bpf_map__set_inner_map_fd(skel_->maps.page_tables, tables_[0]);
    int ncpus = libbpf_num_possible_cpus();
    bpf_map__set_max_entries(skel_->maps.cpu_info, static_cast<uint32_t>(ncpus));
    // One word of the tracked bitmap per 64 pids, up to the tracked pid's.
    bpf_map__set_max_entries(skel_->maps.tracked_bits, static_cast<uint32_t>(tracked_pid / 64 + 1));
    if (handler_parts_bpf::load(skel_)) throw mb::SystemError("loading handler_parts.bpf.o", errno);
    for (uint32_t cpu = 0; cpu < static_cast<uint32_t>(ncpus); ++cpu) {
      mb_cpu_info ci{};
      ci.node = 0;
      ci.lane = 0;
      bpf_map_update_elem(bpf_map__fd(skel_->maps.cpu_info), &cpu, &ci, BPF_ANY);
    }
    mb_tracked t{};
    t.flags = MB_TRACKED_ROOT;
    uint32_t key = static_cast<uint32_t>(tracked_pid), zero = 0;
    bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked), &key, &t, BPF_ANY);
    uint32_t word = key / 64;
    uint64_t bits = 1ULL << (key % 64);  // this object's bitmap holds only this pid
    bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked_bits), &word, &bits, BPF_ANY);
    bpf_map_update_elem(bpf_map__fd(skel_->maps.page_tables), &zero, &tables_[0], BPF_ANY);
    perf_.attach(skel_->progs.on_perf_sample_part, attr);
  }
  ~PartInstance() {
    perf_.detach();
    for (int i = 0; i < 2; ++i) {
      if (views_[i] && views_[i] != MAP_FAILED) munmap(views_[i], bytes());
      if (tables_[i] >= 0) close(tables_[i]);
    }
    handler_parts_bpf::destroy(skel_);
  }
  // What the collector's drain does to the table: swap, then clear.
  void drain() {
    uint32_t zero = 0;
    bpf_map_update_elem(bpf_map__fd(skel_->maps.page_tables), &zero, &tables_[1 - active_], BPF_ANY);
    std::memset(views_[active_], 0, bytes());
    active_ = 1 - active_;
  }
  int prog_fd() const { return bpf_program__fd(skel_->progs.on_perf_sample_part); }
  int stage() const { return stage_; }

 private:
  static size_t bytes() { return (size_t{1} << kBits) * sizeof(mb_page_slot); }
  int stage_;
  handler_parts_bpf* skel_ = nullptr;
  int tables_[2] = {-1, -1};
  void* views_[2] = {nullptr, nullptr};
  int active_ = 0;
  Attachment perf_;
};

const char* kStageNames[] = {
    "filter (tracked-set bit, counters)",
    "+ cpu info",
    "+ page slot find/claim",
    "+ page slot update",
    "+ thread table entry find/claim",
    "+ thread stats update = whole path",
    "whole path + bpf_ktime_get_ns",
};
constexpr int kStages = 7;

struct Phase {  // deltas summed over the phases of one kind
  std::vector<double> ns, runs;  // per program: 0 real, 1 minimal, 2.. stages
  double accepted = 0, filtered = 0, touched = 0, seconds = 0, slots_drained = 0, recursion_misses = 0;
};

// Per-path costs of a program from its time in both phase kinds:
// time = accepted * full + filtered * filt.
void solve(const Phase& tr, const Phase& un, size_t prog, double* full, double* filt) {
  double a1 = tr.accepted, f1 = tr.filtered, t1 = tr.ns[prog];
  double a2 = un.accepted, f2 = un.filtered, t2 = un.ns[prog];
  double det = a1 * f2 - a2 * f1;
  if (a1 > 0 && f2 > 0 && std::abs(det) > 1e-9 * a1 * f2) {
    *full = (t1 * f2 - t2 * f1) / det;
    *filt = (a1 * t2 - a2 * t1) / det;
  } else {
    *full = t1 / tr.runs[prog];
    *filt = t2 / un.runs[prog];
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool parts = argc > 1 && std::string(argv[1]) == "--parts";
  if (parts) --argc, ++argv;
  double phase_s = argc > 1 ? std::atof(argv[1]) : 2.0;
  int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  size_t pages = argc > 3 ? std::strtoul(argv[3], nullptr, 0) : 8192;
  int drain_ms = argc > 4 ? std::atoi(argv[4]) : 1000;  // the daemon's default interval
  bench::raise_memlock();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  auto* ctl = static_cast<Control*>(
      mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::memset(const_cast<Control*>(ctl), 0, sizeof(Control));
  pid_t kids[2];
  for (int i = 0; i < 2; ++i) {
    kids[i] = fork();
    if (kids[i] == 0) child_main(ctl, i, pages);
  }
  auto stop_children = [&] {
    for (int i = 0; i < 2; ++i) ctl->state[i] = 2;
    for (pid_t k : kids) waitpid(k, nullptr, 0);
  };

  // Run-time statistics stay on while this fd is open.
  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    std::printf("SKIP handler_cost: bpf_enable_stats(BPF_STATS_RUN_TIME) failed: %s (needs root, Linux 5.8+)\n",
                std::strerror(errno));
    stop_children();
    return 2;
  }

  int rc = 0;
  try {
    auto [fault_plan, cfg] = bench::fault_collector(kids[0]);
    mb::Topology topo = mb::read_topology("/sys");
    mb::BpfCollector collector(cfg, fault_plan, topo);

    std::unique_ptr<minimal_bpf, void (*)(minimal_bpf*)> minimal(minimal_bpf::open_and_load(),
                                                                 minimal_bpf::destroy);
    if (!minimal) throw mb::SystemError("loading minimal.bpf.o", errno);
    Attachment minimal_perf;
    minimal_perf.attach(minimal->progs.on_perf_sample_minimal, *fault_plan.attr);

    std::vector<std::unique_ptr<PartInstance>> stages;
    if (parts)
      for (int s = 0; s < kStages; ++s) stages.push_back(std::make_unique<PartInstance>(s, kids[0], *fault_plan.attr));

    std::vector<int> prog_fds = {collector.program_fd(), bpf_program__fd(minimal->progs.on_perf_sample_minimal)};
    for (auto& st : stages) prog_fds.push_back(st->prog_fd());

    std::printf("handler_cost: fault sampler on %zu CPUs, child A (tracked) pid %d, child B (untracked) pid %d, "
                "%zu pages per pass, drains every %d ms, %d x (%.1f s tracked + %.1f s untracked)%s\n",
                minimal_perf.fds.size(), kids[0], kids[1], pages, drain_ms, reps, phase_s, phase_s,
                parts ? ", with the stage programs" : "");

    std::vector<mb::TaskSnapshot> tasks;
    uint64_t sink = 0;
    auto drain = [&] {
      double n = collector.drain_pages([&](const mb_page_slot& s) { sink += s.accesses; });
      for (auto& st : stages) st->drain();
      return n;
    };
    auto run_phase = [&](int child, Phase* ph) {
      drain();  // start from an empty table
      std::vector<ProgStats> a, b;
      for (int fd : prog_fds) a.push_back(prog_stats(fd));
      auto ca = collector.counters();
      uint64_t touched0 = ctl->touched[child];
      double t0 = bench::now_s();
      ctl->state[child] = 1;
      double drained = 0;
      double next = t0 + drain_ms / 1000.0;
      while (bench::now_s() - t0 < phase_s) {
        usleep(10000);
        if (bench::now_s() < next) continue;
        next += drain_ms / 1000.0;
        drained += drain();
        collector.drain_tasks(&tasks);
      }
      ctl->state[child] = 0;
      // Let the pass in flight finish: the child is idle once its count of
      // touched pages stops moving.
      for (uint64_t last = ~0ULL; last != ctl->touched[child];) {
        last = ctl->touched[child];
        usleep(100000);
      }
      for (int fd : prog_fds) b.push_back(prog_stats(fd));
      auto cb = collector.counters();
      double secs = bench::now_s() - t0;
      drained += drain();
      ph->ns.resize(prog_fds.size());
      ph->runs.resize(prog_fds.size());
      for (size_t i = 0; i < prog_fds.size(); ++i) {
        ph->ns[i] += static_cast<double>(b[i].run_time_ns - a[i].run_time_ns);
        ph->runs[i] += static_cast<double>(b[i].run_cnt - a[i].run_cnt);
        ph->recursion_misses += static_cast<double>(b[i].recursion_misses - a[i].recursion_misses);
      }
      ph->accepted += static_cast<double>(cb[MB_CTR_ACCEPTED] - ca[MB_CTR_ACCEPTED]);
      ph->filtered += static_cast<double>(cb[MB_CTR_FILTERED] - ca[MB_CTR_FILTERED]);
      ph->touched += static_cast<double>(ctl->touched[child] - touched0);
      ph->seconds += secs;
      ph->slots_drained += drained;
    };

    Phase tracked, untracked;
    for (int r = 0; r < reps; ++r) {
      run_phase(0, &tracked);
      run_phase(1, &untracked);
    }

    auto describe = [](const char* name, const Phase& p) {
      std::printf("  %-9s phases: %.0f faults/s in the child; real handler %.0f runs (%.0f accepted, %.0f filtered), "
                  "%.1f ns/run mixed; minimal %.0f runs, %.1f ns/run\n",
                  name, p.touched / p.seconds, p.runs[0], p.accepted, p.filtered, p.ns[0] / p.runs[0], p.runs[1],
                  p.ns[1] / p.runs[1]);
    };
    describe("tracked", tracked);
    describe("untracked", untracked);
    if (tracked.recursion_misses + untracked.recursion_misses > 0)
      std::printf("  note: %.0f recursion misses (runs skipped by the kernel)\n",
                  tracked.recursion_misses + untracked.recursion_misses);

    double full_ns, filt_ns;
    solve(tracked, untracked, 0, &full_ns, &filt_ns);
    double min_ns = (tracked.ns[1] + untracked.ns[1]) / (tracked.runs[1] + untracked.runs[1]);
    double accept_frac = tracked.accepted / tracked.runs[0];
    double new_slot_frac = tracked.accepted > 0 ? tracked.slots_drained / tracked.accepted : 0;
    const char* tag = parts ? "handler_parts" : "handler";

    std::printf("%s: minimal program          %7.1f ns/sample\n", tag, min_ns);
    std::printf("%s: on_perf_sample, tracked  %7.1f ns/sample  (%.2fx minimal; %.1f%% of the tracked phases' runs "
                "were accepted, %.1f%% of accepted samples claimed a new page slot)\n",
                tag, full_ns, full_ns / min_ns, 100 * accept_frac, 100 * new_slot_frac);
    std::printf("%s: on_perf_sample, filtered %7.1f ns/sample  (%.2fx minimal)\n", tag, filt_ns, filt_ns / min_ns);
    std::string p = std::string(tag) + "_";
    bench::result((p + "minimal_ns").c_str(), min_ns, "ns");
    bench::result((p + "full_ns").c_str(), full_ns, "ns");
    bench::result((p + "full_ratio").c_str(), full_ns / min_ns, "x");
    bench::result((p + "filtered_ns").c_str(), filt_ns, "ns");
    bench::result((p + "filtered_ratio").c_str(), filt_ns / min_ns, "x");
    bench::result((p + "accept_fraction").c_str(), accept_frac, "");
    bench::result((p + "new_slot_fraction").c_str(), new_slot_frac, "");
    bench::result((p + "faults_per_s").c_str(), tracked.touched / tracked.seconds, "/s");
    bench::result((p + "samples").c_str(), tracked.accepted, "");

    double prev = min_ns;
    for (size_t i = 0; i < stages.size(); ++i) {
      double f, u;
      solve(tracked, untracked, 2 + i, &f, &u);
      if (i < 6)
        std::printf("handler_parts: stage %zu %-40s %7.1f ns/sample tracked (+%6.1f)\n", i, kStageNames[i], f,
                    f - prev);
      else
        std::printf("handler_parts: stage %zu %-40s %7.1f ns/sample tracked (%+6.1f vs stage 5)\n", i,
                    kStageNames[i], f, f - prev);
      bench::result(("stage" + std::to_string(i) + "_ns").c_str(), f, "ns");
      if (i < 6) prev = f;
    }
    if (sink == 42) std::printf(" ");
  } catch (const std::exception& e) {
    std::printf("FAIL handler_cost: %s\n", e.what());
    rc = 1;
  }
  stop_children();
  close(stats_fd);
  return rc;
}
