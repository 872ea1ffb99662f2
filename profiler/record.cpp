#include "profiler/record.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "membalancer/clock.h"
#include "membalancer/error.h"
#include "membalancer/exec_follow_up.h"
#include "membalancer/maps_follow_up.h"
#include "membalancer/signal_fd.h"
#include "membalancer/node_resolver.h"
#include "membalancer/options.h"
#include "membalancer/privilege.h"
#include "membalancer/proc.h"
#include "membalancer/profile_file.h"
#include "membalancer/recorded_images.h"
#include "membalancer/report.h"
#include "membalancer/safe_file.h"
#include "membalancer/trace.h"

namespace mb::prof {

namespace {

// The command of `-- COMMAND`, forked now and held until release(): the
// collector must track it before it runs a single instruction of its own.
class HeldChild {
 public:
  explicit HeldChild(const std::vector<std::string>& argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) throw SystemError("creating a pipe", errno);
    pid_ = fork();
    if (pid_ < 0) throw SystemError("forking the command", errno);
    if (pid_ == 0) {
      close(p[1]);
      // Signals blocked by the recorder must not stay blocked in the command.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      // Capabilities given to the profiler through the ambient set (systemd
      // AmbientCapabilities=, setpriv --ambient-caps) are for recording, not
      // for the command; exec clears every other one a non-root user holds.
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
      char go;
      if (read(p[0], &go, 1) != 1) _exit(127);  // the recorder gave up
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      // `profiler record -- COMMAND` starts the user's command (issue 6); the
      // daemon, membalancer, never runs a program.
      execvp(args[0], args.data());
      std::fprintf(stderr, "profiler: %s: %s\n", argv[0].c_str(), std::strerror(errno));
      _exit(127);
    }
    close(p[0]);
    go_fd_ = p[1];
  }
  ~HeldChild() {
    if (go_fd_ >= 0) close(go_fd_);  // never released: the child exits 127
    if (pid_ > 0 && !reaped_) {
      bool killed = false;
      terminate(0, &killed);
    }
  }
  // Seconds a command has to exit after SIGTERM before it gets SIGKILL.
  static constexpr double kGraceSeconds = 3;
  // Ends the command: `passed`, the stop signal it was sent already, or else
  // SIGTERM, then kGraceSeconds for it to exit; SIGKILL after that, or at
  // once when another stop signal arrives (the recorder keeps them blocked:
  // sigtimedwait takes them). Returns its exit status; *killed tells whether
  // SIGKILL was needed.
  int terminate(int passed, bool* killed) {
    int status = 0;
    if (exited(&status)) return status;
    if (!passed) kill(pid_, SIGTERM);
    const sigset_t stop = stop_signal_set();
    const uint64_t deadline = monotonic_ns() + static_cast<uint64_t>(kGraceSeconds * 1e9);
    while (!exited(&status)) {
      const uint64_t now = monotonic_ns();
      if (now < deadline) {
        timespec ts{0, static_cast<long>(std::min<uint64_t>(deadline - now, 50 * 1000000ULL))};
        if (sigtimedwait(&stop, nullptr, &ts) <= 0) continue;  // look again; a second signal kills at once
      }
      kill(pid_, SIGKILL);
      *killed = true;
      return wait();
    }
    return status;
  }
  void release() {
    char go = 'g';
    if (write(go_fd_, &go, 1) != 1) throw SystemError("starting the command", errno);
    close(go_fd_);
    go_fd_ = -1;
  }
  // True once the command has exited (reaped); *status is its exit status.
  bool exited(int* status) {
    if (reaped_) {
      *status = status_;
      return true;
    }
    int st;
    if (waitpid(pid_, &st, WNOHANG) != pid_) return false;
    reaped_ = true;
    *status = status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }
  // Blocks until the command exits; its exit status.
  int wait() {
    int status = 0;
    while (!exited(&status)) {
      int st;
      if (waitpid(pid_, &st, 0) == pid_) {
        reaped_ = true;
        return status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      if (errno != EINTR) return -1;
    }
    return status;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int go_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// What the kernel will call COMMAND once exec'd (its comm): the file name
// execvp runs, without its directory, cut to 15 bytes.
std::string command_comm(const std::string& command) {
  return std::filesystem::path(command).filename().string().substr(0, 15);
}

// `-- COMMAND` is looked up as execvp will, so that a typo is bad input
// (status 2) rather than a recording of a process that exits with 127.
void check_command(const std::string& name) {
  auto runnable = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) throw UsageError("-- COMMAND: the command name is empty");
  if (name.find('/') != std::string::npos) {
    if (!runnable(name)) throw UsageError("-- " + name + ": not an executable file");
    return;
  }
  const char* env = std::getenv("PATH");
  const std::string path = env ? env : "/bin:/usr/bin";
  for (size_t a = 0;; ) {
    size_t b = path.find(':', a);
    std::string dir = path.substr(a, b == std::string::npos ? b : b - a);
    if (runnable((dir.empty() ? "." : dir) + "/" + name)) return;
    if (b == std::string::npos) break;
    a = b + 1;
  }
  throw UsageError("-- " + name + ": command not found in PATH");
}

std::string group_digits(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace

SampleConsumer::SampleConsumer(BpfCollector& collector, ProfileWriter& writer, std::mutex& writer_mutex,
                               bool resolve_nodes)
    : collector_(collector), writer_(writer), mu_(writer_mutex), resolve_(resolve_nodes),
      stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) throw SystemError("creating an eventfd", errno);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), kThreadName);
    run();
  });
}

SampleConsumer::~SampleConsumer() {
  stop();
  close(stop_fd_);
}

void SampleConsumer::stop() {
  stop_ = true;
  const uint64_t one = 1;
  // Fails only on a counter at its maximum, which is readable all the same.
  [[maybe_unused]] const ssize_t w = write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void SampleConsumer::run() {
  std::vector<mb_sample> batch;
  batch.reserve(1 << 16);
  NodeResolver resolver;
  std::vector<NodeResolver::Page> pages;
  std::vector<size_t> where;
  std::vector<pid_t> seen;
  const std::function<void(const mb_sample&)> take = [&](const mb_sample& s) {
    batch.push_back(s);
    if (seen.empty() || seen.back() != static_cast<pid_t>(s.tgid)) seen.push_back(static_cast<pid_t>(s.tgid));
  };
  auto flush_batch = [&] {
    if (batch.empty()) return;
    if (resolve_) {
      // Fault samples carry no physical address: ask the kernel where the
      // page lives now (it was just faulted in).
      pages.clear();
      where.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!(batch[i].flags & MB_ACC_VADDR) || batch[i].mem_node != MB_NODE_UNKNOWN) continue;
        pages.push_back({static_cast<pid_t>(batch[i].tgid), batch[i].vaddr & ~0xfffULL});
        where.push_back(i);
      }
      if (!pages.empty())
        resolver.resolve(pages, [&](size_t i, int node) {
          if (node >= 0) batch[where[i]].mem_node = static_cast<uint16_t>(node);
        });
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      writer_.add_samples(batch.data(), batch.size());
      consumed_ += batch.size();
    }
    batch.clear();
  };
  // The processes of the samples taken, published after every wait (a batch
  // may take seconds to fill).
  auto publish_seen = [&] {
    if (seen.empty()) return;
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    std::lock_guard<std::mutex> lock(active_mu_);
    std::vector<pid_t> merged;
    std::set_union(active_.begin(), active_.end(), seen.begin(), seen.end(), std::back_inserter(merged));
    active_.swap(merged);
    seen.clear();
  };
  // Rounded up: a wait that ends early would only wait again.
  auto ms_until = [](std::chrono::steady_clock::time_point t) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  // A failed write (a full disk) must not end the process from this thread:
  // the error goes to the recording loop, which stops and reports it.
  try {
    auto written_at = std::chrono::steady_clock::now();
    bool unwritten = false;  // samples given to the writer since its last flush
    bool empty = false;      // the last read found the ring empty
    for (;;) {
      const bool last = stop_.load();
      // While samples come they do not wake this thread (unless a quarter of
      // the ring fills): it reads them every 20 ms. That bounds how late a
      // process with samples is published for the recording loop's look at
      // it (every 100 ms at most), where a stream woke it for nearly every
      // sample. Once a read finds the ring empty, it sleeps until the next
      // sample (which wakes it at once, so that bound holds), a stop, or the
      // file's write that is due: an idle recorder costs it no wake-up.
      int timeout_ms = 20;
      if (last) timeout_ms = 0;
      else if (empty) timeout_ms = unwritten ? ms_until(written_at + kWriteEvery) : -1;
      int n = collector_.wait_samples(timeout_ms, take, empty && !last, stop_fd_);
      if (n < 0 && n != -EINTR) break;
      empty = n == 0;
      publish_seen();
      // While the ring buffer keeps delivering, write in large batches, but
      // reach the file at least four times a second: a recorder killed
      // (SIGKILL, OOM) loses at most that much, and a fault sample's node is
      // asked for while the page is where it was faulted in.
      const auto now = std::chrono::steady_clock::now();
      const bool due = now - written_at >= kWriteEvery;
      if (batch.size() >= (1 << 15) || n == 0 || last || due) {
        unwritten = unwritten || !batch.empty();
        flush_batch();
      }
      if (due) {
        std::lock_guard<std::mutex> lock(mu_);
        writer_.flush();
        written_at = now;
        unwritten = false;
      }
      if (last && n <= 0) break;
    }
    flush_batch();
  } catch (...) {
    error_ = std::current_exception();
    failed_ = true;
  }
}

std::vector<pid_t> SampleConsumer::take_active() {
  std::lock_guard<std::mutex> lock(active_mu_);
  std::vector<pid_t> out;
  out.swap(active_);
  return out;
}

int run_record(const RecordOptions& opts) {
  if (opts.output.empty()) throw UsageError("-o FILE is required");
  check_output("-o", opts.output, opts.force);
  if (opts.sampler != "auto" && !is_sampler_name(opts.sampler) && opts.sampler != "cpu-clock")
    throw UsageError("--sampler " + opts.sampler + ": unknown (see --help)");

  const sigset_t stop_signals = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<HeldChild> child;
  CollectorConfig cfg;
  cfg.mode = opts.mode;
  cfg.pid = opts.pid;
  cfg.cgroup_path = opts.cgroup;
  // Bad input before missing privileges.
  if (opts.command.empty()) check_target(cfg);
  else check_command(opts.command[0]);
  if (!opts.command.empty()) {
    child = std::make_unique<HeldChild>(opts.command);
    cfg.mode = TrackMode::kTree;
    cfg.pid = child->pid();
  }
  // A held command starts with our capabilities: it counts as foreign when we
  // hold more than the loop keeps.
  SamplerOptions so;
  so.cpu_clock_period_ns = opts.cpu_clock_period_us * 1000;
  // A sampler this machine lacks before the capabilities to use it.
  if (opts.sampler != "auto") named_sampler_plan(opts.sampler, so);
  const CapSet keep = record_privilege_plan(opts.sampler, "").keep;
  const PrivilegePlan privileges =
      record_privilege_plan(opts.sampler, foreign_target(cfg.mode, cfg.pid, cfg.cgroup_path, keep));
  require_capabilities(privileges.needs);
  cfg.stream_samples = true;
  cfg.time_maps_changes = true;
  cfg.maps_clock = opts.maps_clock;
  cfg.sample_ring_bytes = opts.ring_bytes;
  cfg.verbose = opts.verbose;
  // The in-kernel page table is not what the profiler reads: keep it small.
  cfg.page_slots = 1 << 12;

  Options o;  // the daemon's sampler selection (auto order, hints)
  o.sampler = opts.sampler;
  o.verbose = opts.verbose;
  o.mode = cfg.mode;
  Topology topo = read_topology();
  std::unique_ptr<BpfCollector> collector;
  if (opts.sampler == "cpu-clock")
    collector = std::make_unique<BpfCollector>(cfg, named_sampler_plan("cpu-clock", so), topo);
  else
    collector = open_collector(o, cfg, topo, "profiler");
  const SamplerPlan plan = collector->sampler();
  const uint64_t t_start = monotonic_ns();
  ProfileStart ps;
  ps.sampler = plan.name;
  ps.sampler_kind = plan.kind;
  ps.topology = topo;
  ps.start_monotonic_ns = t_start;
  ProfileWriter writer(opts.output, ps, opts.force);
  std::mutex wmu;  // the writer: samples from the consumer, the rest from here
  // Set up: drop what the loop does not need, before the consumer thread
  // starts (it inherits this thread's capabilities). The held command was
  // forked before and keeps the credentials we were started with.
  const CapSet left = drop_capabilities(privileges.keep, [&] { return collector->maps_usable(); });
  if (opts.verbose) {
    std::fprintf(stderr, "profiler: capabilities kept after setup: %s\n", capability_names(left).c_str());
    std::fprintf(stderr, "profiler: maps changes timed by %s\n", collector->maps_change_clock().c_str());
  }

  // Process names and maps: written when first seen and whenever they
  // change (the images store holds what was written last; only this thread
  // uses it: the consumer writes samples alone).
  // Every read of a process's maps is a look for the follow-up after a maps
  // change (maps_soon, below).
  MapsChangeFollowUp maps_soon;
  RecordedImages images([&](pid_t p) {
    maps_soon.looked(p, monotonic_ns());
    return collector->take_maps_changed_ns(p);
  });
  // Processes first seen within the last second and unchanged since: looked
  // at again as soon as their samples arrive (below).
  std::map<pid_t, uint64_t> quick_until;  // pid -> mono_ns deadline
  auto note_process = [&](pid_t p, pid_t parent, ProfileProcessEvent ev = kProcSeen) {
    ProcessImage seen = images.read(p);
    std::lock_guard<std::mutex> lock(wmu);
    const uint64_t now = monotonic_ns();
    // The held command is the profiler until it execs: the file names it by
    // the command it is about to run, and "profiler" is remembered, so that
    // a look after a lost exec event sees the new name.
    const auto seen_as = images.look(writer, now, p, parent, std::move(seen), ev,
                                     ev == kProcCommand ? command_comm(opts.command[0]) : std::string());
    if (seen_as == RecordedImages::Look::kNew) quick_until[p] = now + 1000000000ull;
    if (seen_as == RecordedImages::Look::kChanged) quick_until.erase(p);
  };
  // A fork, at the fork event's time (so that it stays before an exec that
  // followed at once), with its parent's name and maps (RecordedImages),
  // also when a look took the child in while the event waited.
  auto note_fork = [&](pid_t p, pid_t parent, uint64_t fork_ns) {
    const bool fresh = !images.find(p);
    std::lock_guard<std::mutex> lock(wmu);
    images.write_fork(writer, fork_ns, p, parent);
    if (fresh) quick_until[p] = monotonic_ns() + 1000000000ull;
  };
  // Processes that exec'd a moment ago, looked at again a few times: at the
  // exec the new program's loader has not mapped its libraries yet, and a
  // short program is gone before the quick look below.
  ExecFollowUp after_exec;
  // An exec (the kernel's event, read at once): the new program's name and
  // maps, timed at the exec, so that its samples from then on are found in
  // them. A process gone before we looked keeps its old name ("" says so).
  auto note_exec = [&](pid_t p, uint64_t exec_ns) {
    ProcessImage image = images.read(p);
    std::lock_guard<std::mutex> lock(wmu);
    const uint64_t now = monotonic_ns();
    images.write(writer, exec_ns, p, 0, kProcExec, std::move(image));
    quick_until[p] = now + 1000000000ull;  // a new program: its first second again
    after_exec.exec(p, now);
  };
  for (pid_t p : collector->tracked_processes())
    note_process(p, parent_of(p).value_or(0), child && p == child->pid() ? kProcCommand : kProcSeen);

  // The consumer: a dedicated thread waiting on the ring buffer (epoll).
  SampleConsumer consumer(*collector, writer, wmu, opts.resolve_nodes && plan.kind == MB_SAMPLER_FAULT);

  const bool progress = opts.progress < 0 ? isatty(STDERR_FILENO) : opts.progress > 0;
  const bool tree_mode = cfg.mode == TrackMode::kTree || cfg.mode == TrackMode::kPid;
  if (child) child->release();
  auto elapsed = [&] { return (monotonic_ns() - t_start) / 1e9; };
  std::string stop_reason;
  static const std::string kTreeExited = "tracked processes exited";
  double next_refresh = 0.5, next_counters = 1.0, next_progress = 0.25;
  int command_status = 0;
  bool command_done = false;
  int signal_passed = 0;  // the signal that stopped us, sent to the command too
  bool exits_seen = false;  // since the last look at the tracked set
  auto counters = collector->counters();

  // Process events as they come: an exec is read at once (the program may
  // run for milliseconds only).
  auto take_events = [&] {
    collector->poll_process_events([&](const mb_proc_event& ev) {
      pid_t p = static_cast<pid_t>(ev.tgid);
      if (ev.type == MB_PROC_FORK) note_fork(p, static_cast<pid_t>(ev.parent_tgid), ev.time_ns);
      if (ev.type == MB_PROC_EXEC) note_exec(p, ev.time_ns);
      if (ev.type == MB_PROC_MAPS) maps_soon.changed(p, ev.time_ns, monotonic_ns());
      if (ev.type == MB_PROC_EXIT) {
        std::lock_guard<std::mutex> lock(wmu);
        const ProcessImage* image = images.find(p);
        writer.add_process(ev.time_ns, ev.tgid, 0, kProcExit, image ? image->name : "");
        images.erase(p);
        quick_until.erase(p);
        after_exec.exited(p);
        maps_soon.exited(p);
        exits_seen = true;
      }
    });
  };
  // Looks at many processes (each reads its /proc maps) take the events that
  // came meanwhile every few processes: with a thousand processes tracked a
  // round of looks took seconds in the VM's software CPU, and a program
  // exec'd meanwhile had exited before its exec event was read (its samples
  // all [unmapped]).
  size_t looked = 0;
  auto look_at = [&](pid_t p) {
    note_process(p, parent_of(p).value_or(0));
    if (++looked % 16 == 0) take_events();
  };

  // The loop wakes for a stop signal, a process event, a look after an
  // exec or a maps change, or every 0.1 s.
  const SignalFd signal_fd(stop_signals);
  double next_tick = 0;
  while (stop_reason.empty()) {
    uint64_t wait_ns = 100 * 1000000ull;
    if (opts.duration_s > 0) {
      double left = opts.duration_s - elapsed();
      if (left <= 0) {
        stop_reason = "duration";
        break;
      }
      if (left < 0.1) wait_ns = static_cast<uint64_t>(left * 1e9);
    }
    wait_ns = std::min({wait_ns, after_exec.wait_ns(monotonic_ns()), maps_soon.wait_ns(monotonic_ns())});
    pollfd fds[2] = {{signal_fd.fd(), POLLIN, 0}, {collector->process_event_fd(), POLLIN, 0}};
    const timespec ts{static_cast<time_t>(wait_ns / 1000000000ull), static_cast<long>(wait_ns % 1000000000ull)};
    ppoll(fds, 2, &ts, nullptr);
    const timespec no_wait{0, 0};
    int sig = sigtimedwait(&stop_signals, nullptr, &no_wait);
    if (sig > 0) {
      stop_reason = std::string("SIG") + sigabbrev_np(sig);
      if (child) kill(child->pid(), sig);  // the command is ours: pass it on
      signal_passed = sig;
      break;
    }
    take_events();
    for (pid_t p : after_exec.due(monotonic_ns())) note_process(p, 0);  // the libraries mapped since
    for (pid_t p : maps_soon.due(monotonic_ns())) note_process(p, 0);  // before a later change is timed here
    // The rest at most every 0.1 s, however often events wake the loop; the
    // end of the tree as soon as an exit says so.
    const double now = elapsed();
    const bool tick = now >= next_tick;
    if (!tick) {
      if (exits_seen && tree_mode && collector->tracked_processes().empty()) stop_reason = kTreeExited;
      exits_seen = false;
      continue;
    }
    next_tick = now + 0.1;
    exits_seen = false;
    // Processes that had samples and are as first seen: an exec is seen
    // while they run (a command shorter than the refresh below had only the
    // maps of the profiler it was forked from: its code was all [unmapped]).
    // Only in their first second, until their first change: after that the
    // refresh below takes over, so neither a process whose maps change all
    // the time nor one whose maps never do is read ten times a second.
    const uint64_t t_quick = monotonic_ns();
    for (pid_t p : consumer.take_active())
      if (auto q = quick_until.find(p); q != quick_until.end()) {
        if (t_quick < q->second) look_at(p);
        else quick_until.erase(q);
      }
    if (now >= next_refresh) {  // new mappings, and execs whose events were lost
      for (pid_t p : collector->tracked_processes()) look_at(p);
      next_refresh = now + 0.5;
    }
    if (now >= next_counters) {
      counters = collector->counters();
      std::lock_guard<std::mutex> lock(wmu);
      writer.add_counters(monotonic_ns(), counters);
      next_counters = now + 1.0;
    }
    if (progress && now >= next_progress) {
      uint64_t bytes;
      {
        std::lock_guard<std::mutex> lock(wmu);
        bytes = writer.bytes_written();
      }
      std::fprintf(stderr, "\rprofiler: %6.1f s  %s samples  %s written  %s dropped   ", now,
                   group_digits(consumer.consumed()).c_str(), format_bytes(bytes).c_str(),
                   group_digits(counters[MB_CTR_SAMPLES_LOST]).c_str());
      std::fflush(stderr);
      next_progress = now + 0.25;
    }
    if (child && !command_done && child->exited(&command_status)) command_done = true;
    if (tree_mode && collector->tracked_processes().empty()) stop_reason = kTreeExited;
    if (consumer.failed()) break;  // a failed write: reported below
  }
  const double recorded_s = elapsed();  // the summary's time: the recording's, not the command's end
  // Last samples: sampling stops first, then the consumer drains the ring
  // buffer once more and stops, so every sample the counters count is in the
  // file or counted lost (the samples of a still running command, between
  // the last drain and the detach, used to be neither).
  // A failed write ends here: the destructors stop the command (SIGTERM, then
  // SIGKILL) and main() prints the one line, status 1.
  collector->stop_sampling();
  consumer.stop();
  consumer.rethrow();
  counters = collector->counters();
  const std::string sampler_name = plan.name;
  collector.reset();  // detach
  writer.add_counters(monotonic_ns(), counters);
  const uint64_t samples = writer.samples_written();
  writer.finish(monotonic_ns(), counters[MB_CTR_SAMPLES_LOST]);
  if (progress) std::fputc('\n', stderr);
  bool killed = false;
  if (child && !command_done && stop_reason == kTreeExited) {
    // The tree is gone: the command exited on its own, and may just not have
    // been reaped when the loop looked.
    command_status = child->wait();
    command_done = true;
  } else if (child && !command_done) {
    // Recording is over (duration or a signal): so is the command. One that
    // ignores the signal gets SIGKILL after a grace period, or at a second one.
    command_status = child->terminate(signal_passed, &killed);
  }
  std::fprintf(stderr, "profiler: %s samples (%s) from sampler %s in %.1f s to %s; %s dropped; stopped: %s\n",
               group_digits(samples).c_str(), format_bytes(writer.bytes_written()).c_str(), sampler_name.c_str(),
               recorded_s, opts.output.c_str(), group_digits(counters[MB_CTR_SAMPLES_LOST]).c_str(),
               stop_reason.c_str());
  if (counters[MB_CTR_EVENTS_LOST] || counters[MB_CTR_TRACKED_FULL]) {
    ProfileLosses lost;
    lost.events = counters[MB_CTR_EVENTS_LOST];
    lost.untracked = counters[MB_CTR_TRACKED_FULL];
    std::fprintf(stderr, "profiler: also %s\n", lost.describe().c_str());
  }
  if (killed)
    std::fprintf(stderr, "profiler: the command did not exit after SIG%s: killed (SIGKILL)\n",
                 sigabbrev_np(signal_passed ? signal_passed : SIGTERM));
  else if (child && command_status != 0)
    std::fprintf(stderr, "profiler: the command exited with status %d\n", command_status);
  // A command that ended on its own gives record its status, as a shell would
  // (128 + N when signal N killed it): `profiler record -- make test && ...`
  // keeps its meaning. One the recording stopped (--duration, SIGINT,
  // SIGTERM, SIGHUP) ended as asked: the recording is what counts.
  return child && command_done ? command_status : 0;
}

}  // namespace mb::prof
