#include "membalancer/bpf_collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "bpf/membalancer.skel.h"
#include "membalancer/abit_sync.h"
#include "membalancer/error.h"
#include "membalancer/proc.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

constexpr uint32_t kDrainBatch = 2048;  // sets (16K slots) per bpf() batch call

const char* kPrivilegeHint = "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE";

int log2_exact(uint64_t v) {
  int b = 0;
  while ((1ULL << b) < v) ++b;
  return b;
}

long perf_event_open(perf_event_attr* attr, pid_t pid, int cpu) {
  return syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

// Whether the kernel loads an fexit program on __x64_sys_<call> for each
// call: a two-instruction program each, found in the kernel's BTF. A kernel
// without BPF trampolines refuses it (this build machine: EPERM). Learnt
// this way, the object loads once: its own load, refused, cost a second
// load of everything.
bool fexit_loads_on(const std::vector<std::string>& calls) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bpf_insn return_0[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0}};
  bool loads = true;
  for (const std::string& call : calls) {
    const int id = btf__find_by_name_kind(vmlinux, ("__x64_sys_" + call).c_str(), BTF_KIND_FUNC);
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FEXIT,
                .attach_btf_id = static_cast<uint32_t>(id));
    const int fd = id > 0 ? bpf_prog_load(BPF_PROG_TYPE_TRACING, "mb_fexit_probe", "GPL", return_0, 2, &opts) : -1;
    if (fd < 0) {
      loads = false;
      break;
    }
    close(fd);
  }
  btf__free(vmlinux);
  return loads;
}

// The tracefs ids of the syscalls:sys_exit_<call> events of every call,
// from the first tracefs that has them all (the two places libbpf looks);
// empty where there are none (no CONFIG_FTRACE_SYSCALLS, no tracefs
// mounted, or no right to read it): that clock is then not offered.
std::vector<int> syscall_exit_event_ids(const std::vector<std::string>& calls) {
  for (const char* tracefs : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    std::vector<int> ids;
    for (const std::string& call : calls) {
      const auto text = read_text_file(std::string(tracefs) + "/events/syscalls/sys_exit_" + call + "/id");
      char* end = nullptr;
      const long id = text ? std::strtol(text->c_str(), &end, 10) : -1;
      if (!text || end == text->c_str() || id <= 0) break;
      ids.push_back(static_cast<int>(id));
    }
    if (ids.size() == calls.size()) return ids;
  }
  return {};
}

}  // namespace

std::optional<MapsClock> maps_clock_named(const std::string& name) {
  if (name == "auto") return MapsClock::kAuto;
  if (name == "fexit") return MapsClock::kFexit;
  if (name == "tracepoints") return MapsClock::kSyscallTracepoints;
  if (name == "sys-exit") return MapsClock::kSysExit;
  return std::nullopt;
}

void check_target(const CollectorConfig& cfg) {
  if (cfg.mode == TrackMode::kTree || cfg.mode == TrackMode::kPid) {
    if (std::string why = process_problem(cfg.pid); !why.empty())
      throw UsageError(std::string(cfg.mode == TrackMode::kTree ? "--ppid " : "--pid ") + std::to_string(cfg.pid) +
                       ": " + why);
  }
  if (cfg.mode == TrackMode::kCgroup) {
    struct stat st;
    struct statfs fs;
    if (stat(cfg.cgroup_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw UsageError("--cgroup " + cfg.cgroup_path + ": not a directory");
    if (statfs(cfg.cgroup_path.c_str(), &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
      throw UsageError("--cgroup " + cfg.cgroup_path + ": not a cgroup v2 directory (under /sys/fs/cgroup)");
  }
}

std::string perf_open_hint(const std::string& sampler, int err, int perf_event_paranoid) {
  if (err == EACCES || err == EPERM) {
    // Debian's kernels add level 3: no perf event without CAP_SYS_ADMIN.
    return perf_event_paranoid > 2 ? "kernel.perf_event_paranoid is " + std::to_string(perf_event_paranoid) +
                                         ": only CAP_SYS_ADMIN opens perf events; run as root, or set it to 2 "
                                         "and grant CAP_PERFMON"
                                   : "run as root or grant CAP_PERFMON (perf_event_paranoid blocks it)";
  }
  // The fault sampler is the fallback: pointing at it again would help no one.
  if (sampler == "fault")
    return "the kernel needs software perf events (CONFIG_PERF_EVENTS); 'membalancer --info' shows what "
           "this machine offers";
  return "this kernel or CPU does not offer it; try --sampler fault";
}

void slot_lanes(const mb_page_slot& slot, uint16_t lanes[MB_CPU_LANES]) {
  for (int l = 0; l < MB_CPU_LANES; ++l) lanes[l] = static_cast<uint16_t>(slot.lanes[l >> 2] >> ((l & 3) * 16));
}

BpfCollector::BpfCollector(const CollectorConfig& cfg, const SamplerPlan& sampler, const Topology& topo)
    : cfg_(cfg), sampler_(sampler) {
  if (cfg_.page_slots < 1024 || (cfg_.page_slots & (cfg_.page_slots - 1)))
    throw UsageError("page table slots must be a power of two >= 1024, got " + std::to_string(cfg_.page_slots));
  if (sampler_.kind == MB_SAMPLER_ABIT && (cfg_.mode == TrackMode::kAll || cfg_.mode == TrackMode::kCgroup))
    throw UsageError("--sampler abit scans given processes: use it with --ppid or --pid, not --all or --cgroup");
  // Bad input is reported before anything is loaded or attached.
  check_target(cfg_);
  try {
    configure_and_load(topo);
    seed_tracked();
    attach_sampler();
  } catch (...) {
    release();  // the destructor does not run for a constructor that threw
    throw;
  }
}

BpfCollector::~BpfCollector() { release(); }

void BpfCollector::stop_sampling() {
  // Each syscalls:sys_exit_<call> event's detach waits for a grace period of
  // its own (about 75 ms each on this build machine's 6.18): waited for
  // together, the eight take about one.
  std::vector<std::thread> detaching;
  for (auto* l : syscall_exit_links_) detaching.emplace_back([l] { bpf_link__destroy(l); });
  for (auto& t : detaching) t.join();
  syscall_exit_links_.clear();
  for (auto* l : links_) bpf_link__destroy(l);
  links_.clear();
  for (int fd : perf_fds_) close(fd);
  perf_fds_.clear();
}

void BpfCollector::pause_sampling() {
  for (int fd : perf_fds_) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  if (abit_) {
    abit_->sync({});
    abit_paused_ = true;
  }
}

void BpfCollector::release() {
  stop_sampling();
  if (proc_rb_) ring_buffer__free(proc_rb_), proc_rb_ = nullptr;
  if (sample_rb_) ring_buffer__free(sample_rb_), sample_rb_ = nullptr;
  abit_.reset();
  if (abit_fd_ >= 0) close(abit_fd_), abit_fd_ = -1;  // the module forgets our pids
  if (cgroup_fd_ >= 0) close(cgroup_fd_), cgroup_fd_ = -1;
  for (int t = 0; t < 2; ++t) {
    if (mapped_[t]) munmap(mapped_[t], mapped_bytes_), mapped_[t] = nullptr;
    if (tables_[t] >= 0) close(tables_[t]), tables_[t] = -1;
  }
  if (tracked_bits_) munmap(tracked_bits_, tracked_bits_bytes_), tracked_bits_ = nullptr;
  if (task_table_) munmap(task_table_, task_table_bytes_), task_table_ = nullptr;
  if (skel_) membalancer_bpf__destroy(skel_), skel_ = nullptr;
}

void BpfCollector::configure_and_load(const Topology& topo) {
  skel_ = membalancer_bpf__open();
  if (!skel_) throw SystemError("opening the BPF object", errno, kPrivilegeHint);

  auto* ro = skel_->rodata;
  ro->sampler_kind = sampler_.kind;
  ro->self_tgid = static_cast<uint32_t>(getpid());
  ro->track_all = cfg_.mode == TrackMode::kAll;
  ro->track_cgroup = cfg_.mode == TrackMode::kCgroup;
  ro->follow_forks = cfg_.mode == TrackMode::kTree;
  ro->stream_samples = cfg_.stream_samples;
  ro->perf_sample_type = sampler_.attr ? sampler_.attr->sample_type : 0;
  const uint32_t sets = cfg_.page_slots / MB_PAGE_WAYS;
  ro->page_set_bits = static_cast<uint32_t>(log2_exact(sets));
  ro->mem_block_shift = topo.mem_block_bytes ? static_cast<uint32_t>(log2_exact(topo.mem_block_bytes)) : 63;

  // The two page tables; page_tables[0] will point at the active one. The
  // first also serves as the inner-map template (libbpf 1.1 cannot resize
  // the template declared in the object).
  // Mappable, so that draining reads them in place: the kernel's batch lookup
  // copies one element at a time (about 1 us each with hardened usercopy).
  LIBBPF_OPTS(bpf_map_create_opts, table_opts, .map_flags = BPF_F_MMAPABLE);
  mapped_bytes_ = (static_cast<size_t>(cfg_.page_slots) * sizeof(mb_page_slot) + getpagesize() - 1) &
                  ~static_cast<size_t>(getpagesize() - 1);
  for (int t = 0; t < 2; ++t) {
    tables_[t] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "mb_page_table", sizeof(uint32_t), sizeof(mb_page_set), sets,
                                &table_opts);
    if (tables_[t] < 0)
      throw SystemError("creating a page table of " + std::to_string(cfg_.page_slots) + " slots", errno,
                        "lower --bpf-page-slots, or raise RLIMIT_MEMLOCK");
    void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, tables_[t], 0);
    if (p == MAP_FAILED) throw SystemError("mapping the page table", errno, "the kernel needs BPF_F_MMAPABLE (5.5+)");
    mapped_[t] = static_cast<mb_page_slot*>(p);
  }
  if (int err = bpf_map__set_inner_map_fd(skel_->maps.page_tables, tables_[0]))
    throw SystemError("configuring the page table template", -err);
  // The thread table is indexed by tid modulo its size: a power of two.
  task_slots_ = std::bit_ceil(std::max<uint32_t>(cfg_.max_tasks, 1));
  ro->task_slot_mask = task_slots_ - 1;
  bpf_map__set_max_entries(skel_->maps.task_stats, task_slots_);
  bpf_map__set_max_entries(skel_->maps.tracked, cfg_.max_processes);
  // A hash is allocated whole at load: one entry where nothing fills it.
  bpf_map__set_max_entries(skel_->maps.maps_changed, cfg_.time_maps_changes ? cfg_.max_processes : 1);
  uint64_t pid_max = 4194304;  // the kernel's ceiling, if pid_max cannot be read
  if (auto text = read_text_file("/proc/sys/kernel/pid_max")) pid_max = std::stoull(trim(*text));
  tracked_words_ = (pid_max + 63) / 64;
  bpf_map__set_max_entries(skel_->maps.tracked_bits, static_cast<uint32_t>(tracked_words_));
  // Per-CPU map values are sized by it: without it no counter can be read.
  possible_cpus_ = libbpf_num_possible_cpus();
  if (possible_cpus_ <= 0)
    throw SystemError("reading the number of possible CPUs (/sys/devices/system/cpu/possible)",
                      possible_cpus_ < 0 ? -possible_cpus_ : EINVAL);
  int ncpus = std::max<int>(possible_cpus_, static_cast<int>(topo.cpu_node.size()));
  bpf_map__set_max_entries(skel_->maps.cpu_info, static_cast<uint32_t>(ncpus));
  bpf_map__set_max_entries(skel_->maps.mem_block_node,
                           static_cast<uint32_t>(std::max<size_t>(topo.mem_block_node.size(), 1)));
  uint32_t ring = cfg_.stream_samples ? cfg_.sample_ring_bytes : static_cast<uint32_t>(getpagesize());
  bpf_map__set_max_entries(skel_->maps.samples, ring);
  // A streamed sample wakes the consumer only once a quarter of the ring
  // waits unread: below that the consumer reads on its timer (wait_samples),
  // and past it three quarters are left for the time it takes to wake.
  ro->sample_wakeup_bytes = cfg_.stream_samples ? ring / 4 : 0;
  ro->sample_consumer_waits = cfg_.sample_consumer_waits;
  bpf_program__set_autoload(skel_->progs.on_perf_sample, sampler_.attr.has_value());
  bpf_program__set_autoload(skel_->progs.on_abit_access, sampler_.kind == MB_SAMPLER_ABIT);
  bpf_program__set_autoload(skel_->progs.synth_samples, cfg_.synthetic_source);
  maps_clock_ = cfg_.time_maps_changes ? choose_maps_clock() : MapsClock::kAuto;
  for (const MapsCall& call : maps_calls()) {
    bpf_program__set_autoload(call.fexit, maps_clock_ == MapsClock::kFexit);
    bpf_program__set_autoload(call.tracepoint, maps_clock_ == MapsClock::kSyscallTracepoints);
  }
  bpf_program__set_autoload(skel_->progs.on_sys_exit, maps_clock_ == MapsClock::kSysExit);
  if (cfg_.synthetic_source && !cfg_.stream_samples)
    throw UsageError("the synthetic sample source needs stream_samples");

  if (membalancer_bpf__load(skel_)) {
    int err = errno;
    if (err == EPERM || (err == EACCES && geteuid() != 0))
      throw SystemError("loading the BPF programs", err, kPrivilegeHint);
    if (err == EACCES)
      throw SystemError("loading the BPF programs: the kernel's verifier rejected them",
                        "run with --verbose for the verifier log, and report it");
    throw SystemError("loading the BPF programs", err,
                      "the kernel needs BPF, BTF (/sys/kernel/btf/vmlinux) and ring buffers (5.8 or later); "
                      "run with --verbose for the verifier log");
  }

  // CPU -> node and lane (lane i counts the i-th node that has CPUs).
  std::vector<int> cpu_nodes = topo.cpu_nodes();
  for (uint32_t cpu = 0; cpu < topo.cpu_node.size(); ++cpu) {
    int node = topo.cpu_node[cpu];
    mb_cpu_info ci{};
    ci.node = node < 0 ? uint16_t{MB_NODE_UNKNOWN} : static_cast<uint16_t>(node);
    auto it = std::find(cpu_nodes.begin(), cpu_nodes.end(), node);
    size_t lane = it - cpu_nodes.begin();
    ci.lane = (it == cpu_nodes.end() || lane >= MB_CPU_LANES) ? uint8_t{MB_LANE_NONE} : static_cast<uint8_t>(lane);
    bpf_map_update_elem(bpf_map__fd(skel_->maps.cpu_info), &cpu, &ci, BPF_ANY);
  }
  // Memory block -> node; blocks not listed map to "unknown".
  int blocks_fd = bpf_map__fd(skel_->maps.mem_block_node);
  uint32_t nblocks = bpf_map__max_entries(skel_->maps.mem_block_node);
  for (uint32_t b = 0; b < nblocks; ++b) {
    uint16_t node = b < topo.mem_block_node.size() ? topo.mem_block_node[b] : uint16_t{MB_NODE_UNKNOWN};
    bpf_map_update_elem(blocks_fd, &b, &node, BPF_ANY);
  }

  tracked_bits_bytes_ = (tracked_words_ * sizeof(uint64_t) + getpagesize() - 1) & ~static_cast<size_t>(getpagesize() - 1);
  void* bits = mmap(nullptr, tracked_bits_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                    bpf_map__fd(skel_->maps.tracked_bits), 0);
  if (bits == MAP_FAILED) throw SystemError("mapping the tracked-process bitmap", errno);
  tracked_bits_ = static_cast<uint64_t*>(bits);
  task_table_bytes_ = (static_cast<size_t>(task_slots_) * sizeof(mb_task_stats) + getpagesize() - 1) &
                      ~static_cast<size_t>(getpagesize() - 1);
  void* tasks = mmap(nullptr, task_table_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                     bpf_map__fd(skel_->maps.task_stats), 0);
  if (tasks == MAP_FAILED) throw SystemError("mapping the thread table", errno);
  task_table_ = static_cast<mb_task_stats*>(tasks);
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.page_tables), &zero, &tables_[0], BPF_ANY))
    throw SystemError("installing the page table", errno);
  active_ = 0;
  keys_.resize(kDrainBatch);
  values_.resize(kDrainBatch);
  clear_keys_.reserve(kDrainBatch);
  zeros_.assign(kDrainBatch, mb_page_set{});

  proc_rb_ = ring_buffer__new(
      bpf_map__fd(skel_->maps.proc_events),
      [](void* ctx, void* data, size_t size) -> int {
        auto* self = static_cast<BpfCollector*>(ctx);
        if (size < sizeof(mb_proc_event)) return 0;
        // Kept before it is observed: an observer that throws loses no event.
        const mb_proc_event ev = *static_cast<mb_proc_event*>(data);
        self->pending_events_.push_back(ev);
        try {
          if (self->observer_) self->observer_(ev);
        } catch (...) {
          self->callback_error_ = std::current_exception();
          return -1;  // stops ring_buffer__consume; rethrown after it
        }
        return 0;
      },
      this, nullptr);
  if (!proc_rb_) throw SystemError("opening the process event ring buffer", errno);
  if (cfg_.stream_samples) {
    sample_rb_ = ring_buffer__new(
        bpf_map__fd(skel_->maps.samples),
        [](void* ctx, void* data, size_t size) -> int {
          auto* self = static_cast<BpfCollector*>(ctx);
          if (size < sizeof(mb_sample)) return 0;
          try {
            if (self->wait_cb_) (*self->wait_cb_)(*static_cast<mb_sample*>(data));
            else if (self->sample_cb_) self->sample_cb_(*static_cast<mb_sample*>(data));
          } catch (...) {
            self->callback_error_ = std::current_exception();
            return -1;
          }
          return 0;
        },
        this, nullptr);
    if (!sample_rb_) throw SystemError("opening the sample ring buffer", errno);
  }

  // Process tree tracepoints first, so no fork is missed while seeding.
  for (bpf_program* prog : {skel_->progs.on_fork, skel_->progs.on_exit, skel_->progs.on_exec}) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      throw SystemError(std::string("attaching ") + bpf_program__name(prog), errno,
                        "the kernel needs BTF-enabled tracepoints (tp_btf, Linux 5.5 or later)");
    links_.push_back(link);
  }
  if (cfg_.time_maps_changes) attach_maps_clock();
}

std::vector<BpfCollector::MapsCall> BpfCollector::maps_calls() const {
  const auto& p = skel_->progs;
  return {{"mmap", p.on_mmap_return, p.on_mmap_exit},
          {"mprotect", p.on_mprotect_return, p.on_mprotect_exit},
          {"munmap", p.on_munmap_return, p.on_munmap_exit},
          {"brk", p.on_brk_return, p.on_brk_exit},
          {"mremap", p.on_mremap_return, p.on_mremap_exit},
          {"shmat", p.on_shmat_return, p.on_shmat_exit},
          {"shmdt", p.on_shmdt_return, p.on_shmdt_exit},
          {"pkey_mprotect", p.on_pkey_mprotect_return, p.on_pkey_mprotect_exit}};
}

MapsClock BpfCollector::choose_maps_clock() {
  std::vector<std::string> names;
  for (const MapsCall& call : maps_calls()) names.push_back(call.name);
  const MapsClock want = cfg_.maps_clock;
  if (want == MapsClock::kSysExit) return want;
  if (want == MapsClock::kAuto || want == MapsClock::kFexit) {
    if (fexit_loads_on(names)) return MapsClock::kFexit;
    if (want == MapsClock::kFexit)
      throw SystemError("timing maps changes by fexit: the kernel refuses fexit on the maps calls (no BPF "
                        "trampolines); try --maps-clock auto");
  }
  syscall_exit_ids_ = syscall_exit_event_ids(names);
  if (!syscall_exit_ids_.empty()) return MapsClock::kSyscallTracepoints;
  if (want == MapsClock::kSyscallTracepoints)
    throw SystemError("timing maps changes by the syscalls:sys_exit_* tracepoints: none readable under "
                      "/sys/kernel/tracing or /sys/kernel/debug/tracing (the kernel needs CONFIG_FTRACE_SYSCALLS, "
                      "and tracefs mounted); try --maps-clock auto");
  return MapsClock::kSysExit;
}

void BpfCollector::attach_maps_clock() {
  auto keep = [&](bpf_program* prog, bpf_link* link, const char* hint) {
    if (!link) throw SystemError(std::string("attaching ") + bpf_program__name(prog), errno, hint);
    links_.push_back(link);
  };
  const std::vector<MapsCall> calls = maps_calls();
  switch (maps_clock_) {
    case MapsClock::kFexit:
      for (const MapsCall& call : calls)
        keep(call.fexit, bpf_program__attach(call.fexit), "the kernel needs BPF trampolines (fexit)");
      return;
    case MapsClock::kSyscallTracepoints:
      for (size_t i = 0; i < calls.size(); ++i) {
        // One perf event (any CPU: the program runs on all) per tracepoint;
        // the link owns it and closes it.
        perf_event_attr attr{};
        attr.type = PERF_TYPE_TRACEPOINT;
        attr.size = sizeof(attr);
        attr.config = static_cast<uint64_t>(syscall_exit_ids_[i]);
        attr.sample_period = 1;
        attr.wakeup_events = 1;
        const long fd = perf_event_open(&attr, -1, 0);
        if (fd < 0)
          throw SystemError(std::string("opening the syscalls:sys_exit_") + calls[i].name + " event", errno,
                            "try --maps-clock sys-exit");
        bpf_link* link = bpf_program__attach_perf_event(calls[i].tracepoint, static_cast<int>(fd));
        if (!link) {
          close(static_cast<int>(fd));
          throw SystemError(std::string("attaching ") + bpf_program__name(calls[i].tracepoint), errno,
                            "try --maps-clock sys-exit");
        }
        syscall_exit_links_.push_back(link);
      }
      return;
    case MapsClock::kSysExit:
      keep(skel_->progs.on_sys_exit, bpf_program__attach(skel_->progs.on_sys_exit),
           "the kernel needs BTF-enabled tracepoints (tp_btf, Linux 5.5 or later)");
      return;
    case MapsClock::kAuto: return;
  }
}

std::string BpfCollector::maps_change_clock() const {
  switch (maps_clock_) {
    case MapsClock::kFexit: return "fexit on the maps calls";
    case MapsClock::kSyscallTracepoints: return "the syscalls:sys_exit_<call> tracepoints";
    case MapsClock::kSysExit: return "the sys_exit raw tracepoint";
    case MapsClock::kAuto: break;
  }
  return "";
}

uint64_t BpfCollector::take_maps_changed_ns(pid_t p) {
  const int fd = bpf_map__fd(skel_->maps.maps_changed);
  const uint32_t key = static_cast<uint32_t>(p);
  uint64_t ns = 0;
  // Read, then deleted: while the entry is there the BPF side leaves it as
  // it is, so a change between the two is in the maps read after.
  if (bpf_map_lookup_elem(fd, &key, &ns) != 0) return 0;
  bpf_map_delete_elem(fd, &key);
  return ns;
}

void BpfCollector::seed_tracked() {
  int fd = bpf_map__fd(skel_->maps.tracked);
  std::vector<pid_t> seeded;
  auto add = [&](pid_t p, pid_t parent, uint32_t flags) {
    mb_tracked t{static_cast<uint32_t>(parent), flags, 0, 0, 0};
    uint32_t key = static_cast<uint32_t>(p);
    if (bpf_map_update_elem(fd, &key, &t, BPF_NOEXIST) && errno != EEXIST)
      throw SystemError("tracking process " + std::to_string(p), errno, "raise --max-processes");
    if (static_cast<uint64_t>(p) / 64 >= tracked_words_)
      throw SystemError("process id " + std::to_string(p) + " is above /proc/sys/kernel/pid_max");
    // Atomic: the fork tracepoint sets other bits of the same word.
    __atomic_fetch_or(&tracked_bits_[p / 64], 1ULL << (p % 64), __ATOMIC_SEQ_CST);
    seeded.push_back(p);
  };
  // A seeded process that exited before its bit was set had its exit event
  // already: take it out again. A zombie too (its parent has not reaped it
  // yet): a child of the tree that exited while the scan saw it stayed
  // tracked for good, and a --ppid run never saw its tree empty.
  auto drop_gone = [&] {
    for (pid_t p : seeded) {
      if (!process_gone(p)) continue;
      uint32_t key = static_cast<uint32_t>(p);
      __atomic_fetch_and(&tracked_bits_[p / 64], ~(1ULL << (p % 64)), __ATOMIC_SEQ_CST);
      bpf_map_delete_elem(fd, &key);
    }
  };
  switch (cfg_.mode) {
    case TrackMode::kAll:
      return;
    case TrackMode::kCgroup: {
      cgroup_fd_ = open(cfg_.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cgroup_fd_ < 0) throw UsageError("--cgroup " + cfg_.cgroup_path + ": " + std::strerror(errno));
      uint32_t zero = 0;
      if (bpf_map_update_elem(bpf_map__fd(skel_->maps.cgroup_filter), &zero, &cgroup_fd_, BPF_ANY))
        throw UsageError("--cgroup " + cfg_.cgroup_path + ": not a cgroup v2 directory (" + std::strerror(errno) + ")");
      return;
    }
    case TrackMode::kPid:
      add(cfg_.pid, parent_of(cfg_.pid).value_or(0), MB_TRACKED_ROOT);
      drop_gone();
      return;
    case TrackMode::kTree: {
      // Twice: a child forked between the scan and its parent's insertion
      // was missed by the fork tracepoint, but the second scan sees it.
      for (int pass = 0; pass < 2; ++pass) {
        auto tree = process_tree(cfg_.pid);
        if (tree.empty()) {
          if (pass == 0) throw UsageError("--ppid " + std::to_string(cfg_.pid) + ": exited while starting");
          return;
        }
        // membalancer itself, started below the root (`--ppid $$`), is not
        // one of the processes it balances: tracked, it would keep the tree
        // from ever emptying.
        for (pid_t p : tree)
          if (p != getpid()) add(p, parent_of(p).value_or(0), p == cfg_.pid ? MB_TRACKED_ROOT : MB_TRACKED_FORKED);
      }
      drop_gone();
      return;
    }
  }
}

void BpfCollector::attach_sampler() {
  if (sampler_.kind == MB_SAMPLER_ABIT) {
    abit_fd_ = open("/dev/membalancer_abit", O_RDWR | O_CLOEXEC);
    if (abit_fd_ < 0)
      throw SystemError("opening /dev/membalancer_abit", errno,
                        "build the helper module with 'make module' and load it with 'insmod kernel/membalancer_abit.ko'");
    bpf_link* link = bpf_program__attach_raw_tracepoint(skel_->progs.on_abit_access, "abit_access");
    if (!link)
      throw SystemError("attaching to the membalancer:abit_access tracepoint", errno,
                        "is the helper module membalancer_abit loaded?");
    links_.push_back(link);
    const int fd = abit_fd_;
    abit_ = std::make_unique<AbitSync>([fd](const char* buf, size_t len) -> long {
      ssize_t r = write(fd, buf, len);
      return r < 0 ? -errno : r;
    });
    abit_->sync(tracked_processes());
    abit_events_lost_ = counters()[MB_CTR_EVENTS_LOST];
    return;
  }
  if (!sampler_.attr && cfg_.synthetic_source) return;  // samples come from run_synthetic
  if (!sampler_.attr) throw SystemError("sampler '" + sampler_.name + "' has nothing to attach");
  perf_event_attr attr = *sampler_.attr;
  std::vector<int> cpus = sampler_.cpus;  // the PMU's own, else every possible CPU
  if (cpus.empty())
    for (int cpu = 0; cpu < possible_cpus_; ++cpu) cpus.push_back(cpu);
  for (int cpu : cpus) {
    long fd = perf_event_open(&attr, -1, cpu);
    if (fd < 0) {
      if (errno == ENODEV || errno == ENXIO) continue;  // CPU offline
      int err = errno;
      std::string what = "opening the " + sampler_.name + " perf event on CPU " + std::to_string(cpu);
      int paranoid = 2;
      if (err == EACCES || err == EPERM) std::ifstream("/proc/sys/kernel/perf_event_paranoid") >> paranoid;
      throw SystemError(what, err, perf_open_hint(sampler_.name, err, paranoid));
    }
    perf_fds_.push_back(static_cast<int>(fd));
    bpf_link* link = bpf_program__attach_perf_event(skel_->progs.on_perf_sample, static_cast<int>(fd));
    if (!link) throw SystemError("attaching the sample program to CPU " + std::to_string(cpu), errno);
    links_.push_back(link);
  }
  if (perf_fds_.empty()) throw SystemError("no online CPU accepted the " + sampler_.name + " perf event");
}

int BpfCollector::swap_tables() {
  int drained = active_;
  int next = tables_[1 - active_];
  uint32_t zero = 0;
  // Updating a map-in-map slot waits for running BPF programs (RCU), so no
  // program is still counting into `drained` when this returns.
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.page_tables), &zero, &next, BPF_ANY))
    throw SystemError("swapping the page tables", errno);
  active_ = 1 - active_;
  counters_at_swap_ = counters();
  return drained;
}

uint64_t BpfCollector::read_table_mapped(mb_page_slot* table, const PageFn& fn) {
  uint64_t delivered = 0;
  for (uint32_t i = 0; i < cfg_.page_slots; ++i) {
    mb_page_slot& slot = table[i];
    if (slot.key == 0) continue;
    fn(slot);
    ++delivered;
    slot = mb_page_slot{};  // no program writes here until the next swap
  }
  return delivered;
}

uint64_t BpfCollector::read_table_syscalls(int fd, const PageFn& fn, bool one_by_one) {
  uint64_t delivered = 0;
  const uint32_t sets = cfg_.page_slots / MB_PAGE_WAYS;
  // Hands the touched slots of one batch of sets to fn, then zeroes those sets.
  auto consume = [&](uint32_t count) {
    clear_keys_.clear();
    for (uint32_t i = 0; i < count; ++i) {
      bool used = false;
      for (const auto& slot : values_[i].way) {
        if (slot.key == 0) continue;
        fn(slot);
        ++delivered;
        used = true;
      }
      if (used) clear_keys_.push_back(keys_[i]);
    }
    if (clear_keys_.empty()) return;
    if (one_by_one) {
      for (uint32_t k : clear_keys_)
        if (bpf_map_update_elem(fd, &k, &zeros_[0], BPF_ANY)) throw SystemError("clearing the page table", errno);
      return;
    }
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t n = static_cast<uint32_t>(clear_keys_.size());
    if (bpf_map_update_batch(fd, clear_keys_.data(), zeros_.data(), &n, &opts))
      throw SystemError("clearing the page table (batch)", errno);
  };

  if (one_by_one) {
    for (uint32_t start = 0; start < sets; start += kDrainBatch) {
      uint32_t count = std::min(kDrainBatch, sets - start);
      for (uint32_t i = 0; i < count; ++i) {
        keys_[i] = start + i;
        if (bpf_map_lookup_elem(fd, &keys_[i], &values_[i])) throw SystemError("reading the page table", errno);
      }
      consume(count);
    }
    return delivered;
  }
  uint32_t in = 0, out = 0;
  for (bool first = true;; first = false) {
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t count = kDrainBatch;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys_.data(), values_.data(), &count, &opts);
    if (err && errno != ENOENT) throw SystemError("reading the page table (batch)", errno);
    consume(count);
    if (err) break;  // ENOENT: past the last set
    in = out;
  }
  return delivered;
}

uint64_t BpfCollector::drain_pages(const PageFn& fn, Drain method) {
  int t = swap_tables();
  switch (method) {
    case Drain::kMapped: return read_table_mapped(mapped_[t], fn);
    case Drain::kBatch: return read_table_syscalls(tables_[t], fn, false);
    case Drain::kOneByOne: return read_table_syscalls(tables_[t], fn, true);
  }
  return 0;
}

void BpfCollector::drain_tasks(std::vector<TaskSnapshot>* tasks) {
  tasks->clear();
  for (uint32_t i = 0; i < task_slots_; ++i) {
    mb_task_stats& e = task_table_[i];
    const uint32_t tid = __atomic_load_n(&e.tid, __ATOMIC_ACQUIRE);
    if (tid == 0) continue;
    tasks->push_back({tid, e});
    tasks->back().stats.tid = tid;
    if (!(tasks->back().stats.flags & MB_TASK_EXITED)) continue;
    // Read for the last time: free the entry, zeroed, for the next thread
    // that claims it (its tid goes last, so a claim finds zeros).
    mb_task_stats cleared{};
    cleared.tid = tid;  // still taken while the rest is zeroed
    std::memcpy(&e, &cleared, sizeof(e));
    __atomic_store_n(&e.tid, 0u, __ATOMIC_RELEASE);
  }
}

std::array<uint64_t, MB_NR_COUNTERS> BpfCollector::counters() const {
  std::array<uint64_t, MB_NR_COUNTERS> total{};
  std::vector<uint64_t> per_cpu(possible_cpus_);  // > 0: checked at load
  int fd = bpf_map__fd(skel_->maps.counters);
  for (uint32_t c = 0; c < MB_NR_COUNTERS; ++c) {
    if (bpf_map_lookup_elem(fd, &c, per_cpu.data())) continue;
    for (uint64_t v : per_cpu) total[c] += v;
  }
  if (abit_) total[MB_CTR_ABIT_REFUSED] = abit_->refused();  // counted here, not in BPF
  total[MB_CTR_SAMPLES] = total[MB_CTR_ACCEPTED] + total[MB_CTR_FILTERED] + total[MB_CTR_NO_ADDRESS] +
                          total[MB_CTR_DECODE_INVALID];
  return total;
}

// The ring-buffer callbacks run inside libbpf (C): an exception thrown by a
// consumer is caught there, stops the consumption, and is rethrown here.
void BpfCollector::rethrow_callback_error() {
  if (!callback_error_) return;
  std::exception_ptr e = std::exchange(callback_error_, nullptr);
  std::rethrow_exception(e);
}

int BpfCollector::process_event_fd() const { return ring_buffer__epoll_fd(proc_rb_); }

int BpfCollector::sample_event_fd() const { return sample_rb_ ? ring_buffer__epoll_fd(sample_rb_) : -1; }

void BpfCollector::take_process_events() {
  ring_buffer__consume(proc_rb_);
  rethrow_callback_error();
}

void BpfCollector::peek_process_events(const std::function<void(const mb_proc_event&)>& fn) {
  take_process_events();
  for (const mb_proc_event& ev : pending_events_) fn(ev);
}

void BpfCollector::poll_process_events(const std::function<void(const mb_proc_event&)>& fn) {
  abit_forks_.clear();
  take_process_events();
  // One at a time off the queue: when fn throws, the events after it stay
  // for the next poll.
  while (!pending_events_.empty()) {
    const mb_proc_event ev = pending_events_.front();
    pending_events_.pop_front();
    if (ev.type == MB_PROC_FORK && abit_) abit_forks_.push_back(static_cast<pid_t>(ev.tgid));
    fn(ev);
  }
  if (abit_ && !abit_paused_) {
    // The module's set follows the tracked set itself, not only its events:
    // a lost event (ring buffer full) leaves no trace in the events. Forks
    // are added again (a pid reused by a new process); after lost events,
    // every pid is.
    const uint64_t lost = counters()[MB_CTR_EVENTS_LOST];
    abit_->sync(tracked_processes(), abit_forks_, lost != abit_events_lost_);
    abit_events_lost_ = lost;
  }
}

void BpfCollector::poll_samples(const std::function<void(const mb_sample&)>& fn) {
  if (!sample_rb_) return;
  sample_cb_ = fn;
  ring_buffer__consume(sample_rb_);
  sample_cb_ = nullptr;
  rethrow_callback_error();
}

int BpfCollector::consume_samples(const std::function<void(const mb_sample&)>& fn) {
  wait_cb_ = &fn;
  int n = ring_buffer__consume(sample_rb_);
  wait_cb_ = nullptr;
  rethrow_callback_error();
  return n;
}

int BpfCollector::wait_samples(int timeout_ms, const std::function<void(const mb_sample&)>& fn, bool until_sample,
                               int wake_fd) {
  if (!sample_rb_ || !cfg_.sample_consumer_waits) return -EINVAL;
  auto* asleep = &skel_->bss->sample_consumer_asleep;
  if (until_sample) {
    // Said before the ring is read, with a full fence between: a sample
    // committed after this read finds the flag and wakes us (mb_stream);
    // one committed before it is read now.
    __atomic_store_n(asleep, 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (int n = consume_samples(fn)) {
      __atomic_store_n(asleep, 0u, __ATOMIC_RELAXED);
      return n;
    }
  }
  // Samples below the fill level come without a wake-up: a timed wait ends
  // with them in the ring, so it is read whether or not it woke.
  pollfd fds[2] = {{ring_buffer__epoll_fd(sample_rb_), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int woke = poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
  const int err = errno;
  if (until_sample) __atomic_store_n(asleep, 0u, __ATOMIC_RELAXED);
  if (woke < 0 && err != EINTR) return -err;
  return consume_samples(fn);
}

void BpfCollector::run_synthetic(const mb_synth_args& args) {
  if (!cfg_.synthetic_source) throw SystemError("the synthetic sample source is not loaded");
  mb_synth_args in = args;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &in, .ctx_size_in = sizeof(in));
  if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.synth_samples), &opts))
    throw SystemError("running the synthetic sample source", errno, "the kernel needs BPF_PROG_TYPE_SYSCALL (5.14+)");
}

std::vector<pid_t> BpfCollector::tracked_processes() const {
  std::vector<pid_t> out;
  int fd = bpf_map__fd(skel_->maps.tracked);
  uint32_t key, next;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    out.push_back(static_cast<pid_t>(next));
    key = next;
    prev = &key;
  }
  // A key deleted under the walk (an exit) sends the kernel back to the
  // first key: a fork storm yields repeats.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::pair<pid_t, uint32_t>> BpfCollector::exec_counts() const {
  std::vector<std::pair<pid_t, uint32_t>> out;
  const int fd = bpf_map__fd(skel_->maps.tracked);
  for (pid_t p : tracked_processes()) {
    const uint32_t key = static_cast<uint32_t>(p);
    mb_tracked t{};
    if (bpf_map_lookup_elem(fd, &key, &t) == 0) out.emplace_back(p, t.execs);  // else exited since
  }
  return out;
}

ExecCountFn BpfCollector::exec_counter() const {
  const int fd = fcntl(bpf_map__fd(skel_->maps.tracked), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw SystemError("duplicating the tracked map's descriptor", errno);
  auto owned = std::shared_ptr<int>(new int(fd), [](int* f) {
    close(*f);
    delete f;
  });
  return [owned](pid_t p) -> std::optional<uint32_t> {
    const uint32_t key = static_cast<uint32_t>(p);
    mb_tracked t{};
    if (bpf_map_lookup_elem(*owned, &key, &t) != 0) return std::nullopt;
    return t.execs;
  };
}

void BpfCollector::fill_active_table_for_test(uint32_t count, uint32_t tgid) {
  // Consecutive pages fill consecutive ways of their home sets, as the BPF
  // side would place them when no set overflows.
  mb_page_slot* table = mapped_[active_];
  const uint32_t bits = static_cast<uint32_t>(log2_exact(cfg_.page_slots / MB_PAGE_WAYS));
  uint32_t placed = 0;
  for (uint64_t vpn = 0x10000; placed < count && placed < cfg_.page_slots; ++vpn) {
    uint64_t key = mb_page_key(tgid, vpn);
    mb_page_slot& s = table[static_cast<size_t>(mb_key_set(key, bits)) * MB_PAGE_WAYS + (key & (MB_PAGE_WAYS - 1))];
    if (s.key != 0) continue;  // a colliding group: skip this page
    s = mb_page_slot{};
    s.key = key;
    s.accesses = 1 + placed % 7;
    s.mem_node1 = 1;  // node 0
    ++placed;
  }
}

uint64_t BpfCollector::page_table_kernel_bytes() const {
  uint64_t total = 0;
  for (int fd : tables_) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::string k;
    uint64_t v;
    while (in >> k) {
      if (k == "memlock:" && in >> v) total += v;
    }
  }
  return total;
}

bool BpfCollector::maps_usable() const {
  std::vector<uint64_t> per_cpu(possible_cpus_);
  uint32_t key = 0;
  return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, per_cpu.data()) == 0;
}

int BpfCollector::program_fd() const { return bpf_program__fd(skel_->progs.on_perf_sample); }

}  // namespace mb
