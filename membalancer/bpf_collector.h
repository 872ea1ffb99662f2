// Owner of the membalancer BPF object: configures it between open and load,
// keeps the tracked process set, attaches the sampler, and drains the
// in-kernel page tables and task statistics every interval. Destroying it
// detaches everything.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/records.h"
#include "membalancer/sample_source.h"
#include "membalancer/samplers.h"
#include "membalancer/sysfs.h"  // parse_sample_ring_size
#include "membalancer/topology.h"

struct membalancer_bpf;
struct ring_buffer;
struct bpf_link;
struct bpf_program;

namespace mb {

class AbitSync;

enum class TrackMode { kTree, kPid, kCgroup, kAll };

// What times a recorder's maps changes (CollectorConfig::time_maps_changes),
// cheapest first: fexit on each maps call (BPF trampolines), the
// syscalls:sys_exit_<call> tracepoints (CONFIG_FTRACE_SYSCALLS and tracefs),
// the sys_exit raw tracepoint (every system call's return). kAuto: the
// first of them this kernel offers.
enum class MapsClock { kAuto, kFexit, kSyscallTracepoints, kSysExit };
// --maps-clock NAME: "auto", "fexit", "tracepoints", "sys-exit"; nullopt for
// another name.
std::optional<MapsClock> maps_clock_named(const std::string& name);

struct CollectorConfig {
  TrackMode mode = TrackMode::kTree;
  pid_t pid = 0;                 // --ppid / --pid
  std::string cgroup_path;       // --cgroup
  uint32_t page_slots = 1 << 18; // per-interval BPF page table slots (power of two)
  uint32_t max_tasks = 16384;
  uint32_t max_processes = 65536;
  bool stream_samples = false;   // profiler: one ring-buffer record per sample
  uint32_t sample_ring_bytes = 16 << 20;  // power of two, a multiple of the page size (parse_sample_ring_size)
  // A thread waits on the streamed samples (wait_samples: profiler record's
  // consumer). false: they are taken by poll_samples on the caller's own
  // clock (membalancer --record's interval loop), and no sample wakes anyone.
  bool sample_consumer_waits = true;
  // Tests and benchmarks: load synth_samples, which streams made-up samples
  // through the real ring-buffer path (run_synthetic). A plan without a perf
  // attr then attaches no sampler.
  bool synthetic_source = false;
  // A recorder: time each tracked process's maps changes at the first system
  // call that made them (take_maps_changed_ns).
  bool time_maps_changes = false;
  // Which clock times them: one the kernel lacks is a SystemError (tests
  // and benchmarks force each).
  MapsClock maps_clock = MapsClock::kAuto;
  bool verbose = false;
};

// Bad targets (UsageError, status 2): --pid/--ppid not a live process (see
// process_problem), --cgroup not a cgroup v2 directory. The constructor checks
// too; callers check first, so that bad input is reported before a missing
// privilege.
void check_target(const CollectorConfig& cfg);

// The hint of a perf event that did not open on a CPU with errno `err`:
// privilege (with kernel.perf_event_paranoid's value), else a missing PMU or
// event, where the fault sampler is the way out unless it is the one failing.
std::string perf_open_hint(const std::string& sampler, int err, int perf_event_paranoid);

// Unpacks a slot's 8 per-CPU-node-lane counters.
void slot_lanes(const mb_page_slot& slot, uint16_t lanes[MB_CPU_LANES]);

class BpfCollector : public SampleSource {
 public:
  // Opens, configures and loads the object, seeds the tracked set and
  // attaches the sampler. Throws UsageError/SystemError.
  BpfCollector(const CollectorConfig& cfg, const SamplerPlan& sampler, const Topology& topo);
  ~BpfCollector() override;
  BpfCollector(const BpfCollector&) = delete;
  BpfCollector& operator=(const BpfCollector&) = delete;

  // Swaps the page tables, then hands every slot touched since the last call
  // to fn and clears it. Returns the number of pages delivered.
  //  kMapped    reads the table in place through its memory mapping: no
  //             syscall per slot or batch (the default)
  //  kBatch     BPF_MAP_LOOKUP_BATCH / UPDATE_BATCH in 16K-slot batches
  //  kOneByOne  one bpf() call per slot: the prototype's method
  // The last two are kept as benchmark baselines.
  enum class Drain { kMapped, kBatch, kOneByOne };
  uint64_t drain_pages(const PageFn& fn) override { return drain_pages(fn, Drain::kMapped); }
  uint64_t drain_pages(const PageFn& fn, Drain method);
  uint64_t drain_pages_one_by_one(const PageFn& fn) { return drain_pages(fn, Drain::kOneByOne); }

  // Cumulative per-thread statistics; exited threads are returned one last
  // time, then deleted from the map.
  void drain_tasks(std::vector<TaskSnapshot>* tasks) override;

  // Global counters summed over CPUs (enum mb_counter).
  std::array<uint64_t, MB_NR_COUNTERS> counters() const override;
  // The counters read right after the last swap: they match the pages the
  // last drain delivered, however long the drain and its consumer took.
  const std::array<uint64_t, MB_NR_COUNTERS>& counters_at_swap() const override { return counters_at_swap_; }

  // Delivers process fork/exec/exit events that arrived since the last call
  // (those taken early by take_process_events first, in order).
  void poll_process_events(const std::function<void(const mb_proc_event&)>& fn) override;
  // Takes the events waiting in the ring buffer now (take_process_events)
  // and shows every event not delivered yet.
  void peek_process_events(const std::function<void(const mb_proc_event&)>& fn) override;
  std::vector<std::pair<pid_t, uint32_t>> exec_counts() const override;
  // One process's exec count (nullopt: not tracked), for the mover's
  // workers: holds its own descriptor of the map, so it stays safe to call
  // after the collector is gone (it then answers from a map nothing updates).
  ExecCountFn exec_counter() const;
  // time_maps_changes: when p's maps first changed since the last call for
  // p (the system call's time, CLOCK_MONOTONIC), and forgets it; 0 when not
  // since. Called before reading /proc/PID/maps.
  uint64_t take_maps_changed_ns(pid_t p);
  // What times them, for -v: "fexit on the maps calls", "the
  // syscalls:sys_exit_<call> tracepoints" or "the sys_exit raw tracepoint"
  // ("" when not asked).
  std::string maps_change_clock() const;
  // Readable (poll/epoll) while process events wait in the ring buffer: a
  // loop that must look at a process at once (its maps after an exec, before
  // it exits) waits on it.
  int process_event_fd() const;
  // Called with every process event as it leaves the ring buffer, whether
  // by take_process_events or poll_process_events: what must be read of a
  // process while it lives is read there.
  void set_event_observer(std::function<void(const mb_proc_event&)> fn) { observer_ = std::move(fn); }
  // Takes the events waiting now out of the ring buffer (the observer sees
  // them now) and keeps them for the next poll_process_events: the interval
  // loop keeps its order (events, then pages) while the recorder reads an
  // exec'd process before it is gone.
  void take_process_events();

  // Delivers streamed samples (stream_samples only).
  void poll_samples(const std::function<void(const mb_sample&)>& fn);
  // Waits up to timeout_ms (-1: no limit) for streamed samples, then
  // delivers all that are there. Samples wake the wait only once a quarter
  // of the ring is filled: a consumer reading a stream calls it in a loop
  // with a short timeout, which bounds how long a sample waits. With
  // until_sample (for a consumer whose last read found the ring empty) the
  // first sample committed ends the wait too, so an idle consumer needs no
  // timer. A readable wake_fd (>= 0) ends any wait (a stop). Meant for one
  // dedicated consumer thread: it touches only the sample ring buffer.
  // Returns the number delivered, or -errno (-EINVAL without
  // sample_consumer_waits: no sample would end the wait).
  int wait_samples(int timeout_ms, const std::function<void(const mb_sample&)>& fn, bool until_sample = false,
                   int wake_fd = -1);
  // Readable (poll) once the sample ring buffer woke its waiters (tests).
  int sample_event_fd() const;
  // synthetic_source only: runs synth_samples once (BPF_PROG_TEST_RUN).
  void run_synthetic(const mb_synth_args& args);

  // Detaches every program and closes the perf events: no sample or process
  // event is produced after it, so a last drain of the ring buffers takes
  // all there are and the counters read then match what was delivered. The
  // maps stay readable.
  void stop_sampling();

  // Disables the perf events (quick, unlike detaching: no tracepoint is
  // patched out) and empties the helper module's pid set (its write waits
  // for a pass under way: none comes after it) so that the next drain's
  // counters match its page table; process events go on, and the module's
  // set no longer follows them.
  void pause_sampling();

  // Tracked processes right now (from the BPF map).
  std::vector<pid_t> tracked_processes() const override;

  // Fills the page table with synthetic slots (benchmarks and tests only).
  void fill_active_table_for_test(uint32_t count, uint32_t tgid);

  const SamplerPlan& sampler() const override { return sampler_; }
  uint32_t page_slots() const { return cfg_.page_slots; }
  // BPF memory of the two page tables (from the kernel's fdinfo), bytes.
  uint64_t page_table_kernel_bytes() const;
  int program_fd() const;
  // Whether a map operation of the loop (a counter lookup) works with the
  // capabilities this thread has now (drop_capabilities asks).
  bool maps_usable() const;
  int abit_fd() const { return abit_fd_; }

 private:
  // The programs of one call that changes a process's maps: fexit on its
  // entry point, or its syscalls:sys_exit_<call> tracepoint.
  struct MapsCall {
    const char* name;
    bpf_program* fexit;
    bpf_program* tracepoint;
  };
  std::vector<MapsCall> maps_calls() const;
  // cfg_.maps_clock, or the cheapest the kernel offers (kAuto); probed
  // before the object loads, so that it loads once. Fills
  // syscall_exit_ids_ for kSyscallTracepoints.
  MapsClock choose_maps_clock();
  void attach_maps_clock();
  void release();
  void configure_and_load(const Topology& topo);
  void seed_tracked();
  void attach_sampler();
  void rethrow_callback_error();
  uint64_t read_table_syscalls(int fd, const PageFn& fn, bool one_by_one);
  uint64_t read_table_mapped(mb_page_slot* table, const PageFn& fn);
  int swap_tables();  // returns the index of the drained table

  CollectorConfig cfg_;
  SamplerPlan sampler_;
  membalancer_bpf* skel_ = nullptr;
  // time_maps_changes: what times the maps changes (kAuto: nothing).
  MapsClock maps_clock_ = MapsClock::kAuto;
  std::vector<int> syscall_exit_ids_;  // tracefs ids, in maps_calls() order
  int tables_[2] = {-1, -1};  // tables_[active_] is in page_tables[0]
  mb_page_slot* mapped_[2] = {nullptr, nullptr};
  uint64_t* tracked_bits_ = nullptr;  // the BPF tracked_bits array, mapped
  uint64_t tracked_words_ = 0;
  size_t tracked_bits_bytes_ = 0;
  mb_task_stats* task_table_ = nullptr;  // the BPF thread table, mapped
  uint32_t task_slots_ = 0;
  size_t task_table_bytes_ = 0;
  size_t mapped_bytes_ = 0;
  int active_ = 0;
  std::vector<bpf_link*> links_;
  std::vector<bpf_link*> syscall_exit_links_;  // detached together (stop_sampling)
  std::vector<int> perf_fds_;
  ring_buffer* proc_rb_ = nullptr;
  ring_buffer* sample_rb_ = nullptr;
  int cgroup_fd_ = -1;
  int abit_fd_ = -1;
  int possible_cpus_ = 0;  // libbpf_num_possible_cpus(), > 0 once loaded
  std::unique_ptr<AbitSync> abit_;  // the module's pid set (sampler abit)
  std::vector<pid_t> abit_forks_;
  uint64_t abit_events_lost_ = 0;
  bool abit_paused_ = false;  // pause_sampling emptied the module's set
  std::exception_ptr callback_error_;  // thrown by a consumer inside libbpf
  // Drain buffers, sized once (one batch).
  std::vector<uint32_t> keys_;
  std::vector<mb_page_set> values_;
  std::vector<uint32_t> clear_keys_;
  std::vector<mb_page_set> zeros_;
  std::function<void(const mb_proc_event&)> observer_;
  std::deque<mb_proc_event> pending_events_;  // out of the ring buffer, not delivered yet
  std::function<void(const mb_sample&)> sample_cb_;
  const std::function<void(const mb_sample&)>* wait_cb_ = nullptr;  // wait_samples' consumer
  int consume_samples(const std::function<void(const mb_sample&)>& fn);
  std::array<uint64_t, MB_NR_COUNTERS> counters_at_swap_{};
};

}  // namespace mb
