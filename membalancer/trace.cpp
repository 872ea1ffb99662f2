#include "membalancer/trace.h"

#include <bpf/libbpf.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <sys/stat.h>

#include "membalancer/clock.h"
#include "membalancer/error.h"
#include "membalancer/exec_follow_up.h"
#include "membalancer/maps_follow_up.h"
#include "membalancer/signal_fd.h"
#include "membalancer/interval_runner.h"
#include "membalancer/memory_backend.h"
#include "membalancer/proc.h"
#include "membalancer/profile_file.h"
#include "membalancer/pipeline.h"
#include "membalancer/recorded_images.h"
#include "membalancer/privilege.h"
#include "membalancer/process_backend.h"
#include "membalancer/replay.h"
#include "membalancer/report_output.h"
#include "membalancer/samplers.h"
#include "membalancer/tiers.h"

namespace mb {

namespace {

bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (!g_verbose && level != LIBBPF_WARN) return 0;
  if (!g_verbose) return 0;  // warnings too: errors reach the user through SystemError
  return vfprintf(stderr, fmt, args);
}

SamplerOptions sampler_options(const Options& o) {
  SamplerOptions so;
  so.ibs_period = o.ibs_period;
  so.pebs_period = o.pebs_period;
  return so;
}

}  // namespace

SamplerPlan named_sampler_plan(const std::string& sampler, const SamplerOptions& so) {
  std::string why;
  auto plan = plan_sampler(sampler, so, &why);
  if (plan) return *plan;
  std::string hint = sampler == "abit" ? "build it with 'make module' and load it with 'insmod kernel/membalancer_abit.ko'"
                                       : "try --sampler fault, which works wherever BPF does";
  throw SystemError("sampler " + sampler + ": " + why, hint);
}

std::unique_ptr<BpfCollector> open_collector(const Options& opts, const CollectorConfig& cfg, const Topology& topo,
                                             const char* program) {
  g_verbose = opts.verbose;
  libbpf_set_print(libbpf_print);
  SamplerOptions so = sampler_options(opts);
  if (opts.sampler != "auto") return std::make_unique<BpfCollector>(cfg, named_sampler_plan(opts.sampler, so), topo);
  std::string reasons;
  for (const auto& s : sampler_list()) {
    if (s.name == "abit" && (cfg.mode == TrackMode::kAll || cfg.mode == TrackMode::kCgroup)) {
      reasons += "; abit: needs --ppid or --pid";
      continue;
    }
    std::string why;
    auto plan = plan_sampler(s.name, so, &why);
    // abit needs more than the others: without it, the next sampler.
    if (plan) why = missing_capability(sampler_needs(s.name), effective_capabilities());
    if (plan && why.empty()) {
      try {
        auto c = std::make_unique<BpfCollector>(cfg, *plan, topo);
        std::fprintf(stderr, "%s: sampler %s (%s)%s\n", program, s.name.c_str(), plan->detail.c_str(),
                     reasons.empty() ? "" : (" - auto skipped" + reasons.substr(1)).c_str());
        return c;
      } catch (const SystemError& e) {
        why = e.what();
        // A load failure is not the sampler's fault: no other will load either.
        if (why.rfind("loading the BPF", 0) == 0 || why.rfind("opening the BPF", 0) == 0) throw;
      }
    }
    reasons += "; " + s.name + ": " + why;
  }
  // The capabilities every live sampler needs were checked before: "run as
  // root" would not help here.
  throw SystemError("no sampler works here" + reasons,
                    "'membalancer --info' shows what this machine offers; the fault sampler needs only BPF and "
                    "software perf events");
}

int print_info() {
  std::string why;
  SamplerOptions so;
  std::printf("BTF:       %s\n", access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? "yes (/sys/kernel/btf/vmlinux)" : "missing");
  // What a run by this user would meet: a sampler the machine has is of no
  // use to a user without the capabilities it needs.
  const CapSet have = effective_capabilities();
  for (const auto& s : sampler_list()) {
    auto plan = plan_sampler(s.name, so, &why);
    std::string status = plan ? "available: " + plan->detail : "unavailable: " + why;
    if (plan) {
      if (std::string missing = missing_capability(sampler_needs(s.name), have); !missing.empty())
        status = "available (" + plan->detail + "), but not to this user: " + missing;
    }
    std::printf("%-10s %s\n", (s.name + ":").c_str(), status.c_str());
  }
  Topology topo = read_topology();
  std::printf("nodes:     %zu\n", topo.nodes.size());
  for (const auto& n : topo.nodes) {
    std::printf("  node %d: %zu cpus, %s total, %s free\n", n.id, n.cpus.size(), format_bytes(n.mem_total_bytes).c_str(),
                format_bytes(n.mem_free_bytes).c_str());
  }
  return 0;
}

int run_mode(const Options& opts) {
  // Signals are taken synchronously with sigtimedwait between intervals, and
  // interrupt a report write that waits for a reader. A closed pipe is an
  // error of the write (EPIPE), which stops membalancer the normal way.
  const sigset_t stop_signals = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // "SIGINT", "SIGTERM", "SIGHUP", or "" when none came within `wait`.
  auto take_stop_signal = [&](const timespec& wait) -> std::string {
    const int sig = sigtimedwait(&stop_signals, nullptr, &wait);
    if (sig <= 0) return "";
    return std::string("SIG") + sigabbrev_np(sig);
  };

  // A replay's machine is the recorded one: its nodes, CPUs and memory.
  const std::string replay = replay_path(opts.sampler);
  std::unique_ptr<ReplaySource> replay_source;
  if (!replay.empty()) {
    ReplayFilter filter;
    filter.mode = opts.mode == TrackMode::kPid || opts.mode == TrackMode::kTree ? opts.mode : TrackMode::kAll;
    filter.pid = opts.pid;
    replay_source = std::make_unique<ReplaySource>(replay, opts.interval_ms, filter);
  }
  Topology topo = replay_source ? replay_source->reader().topology() : read_topology();
  std::fflush(stdout);
  ReportOutput output(STDOUT_FILENO, stop_signals);
  Reporter reporter(opts.display, output.file(), isatty(STDOUT_FILENO));
  if (opts.verbose) std::fputs(describe_topology(topo).c_str(), stderr);
  reporter.topology(topo);

  // Declared before the source, which may point into the backend's model.
  std::unique_ptr<Backend> backend;
  MemoryBackend* memory = nullptr;
  std::unique_ptr<SampleSource> source;
  BpfCollector* live = nullptr;
  ReplaySource* replayed = replay_source.get();
  std::unique_ptr<ProfileProcesses> recorded_names;
  std::unique_ptr<ProfileWriter> recording;
  // --record: each process's name and maps as written last.
  // Every read of a process's maps is a look for the follow-up after a maps
  // change (maps_soon, below).
  MapsChangeFollowUp maps_soon;
  RecordedImages recorded([&live, &maps_soon](pid_t p) {
    maps_soon.looked(p, monotonic_ns());
    return live ? live->take_maps_changed_ns(p) : 0;
  });
  std::string damage_at_start;
  if (replay_source) {
    drop_capabilities(0);  // a recording needs none
    damage_at_start = replay_source->reader().damage();
    if (!damage_at_start.empty()) std::fprintf(stderr, "membalancer: %s: %s\n", replay.c_str(), damage_at_start.c_str());
    // The recorded machine is input here: too few tiers or nodes in it is
    // the file's, not this machine's.
    if (opts.command == "tier") {
      try {
        choose_tiers(opts.tiers, topo);
      } catch (const SystemError&) {
        throw UsageError(replay + ": recorded on a machine of one memory tier; tier mode needs two",
                         "'profiler whatif " + replay + " --fast SIZE' simulates a fast tier of SIZE and a slow one");
      }
    }
    if (opts.command == "numa" && memory_nodes(topo).size() < 2)
      throw UsageError(replay + ": recorded on a machine of one node with memory; numa mode needs two");
    std::fprintf(stderr, "membalancer: sampler replay (%s)\n", replay_source->sampler().detail.c_str());
    recorded_names = std::make_unique<ProfileProcesses>(replay_source->reader().info());
    source = std::move(replay_source);
  } else {
    CollectorConfig cfg;
    cfg.mode = opts.mode;
    cfg.pid = opts.pid;
    cfg.cgroup_path = opts.cgroup;
    cfg.page_slots = opts.bpf_page_slots;
    cfg.max_tasks = opts.max_tasks;
    cfg.max_processes = opts.max_processes;
    cfg.verbose = opts.verbose;
    cfg.stream_samples = !opts.record_path.empty();
    cfg.time_maps_changes = cfg.stream_samples;
    if (cfg.stream_samples) cfg.sample_ring_bytes = opts.record_ring_bytes;
    // Its interval loop takes the samples (before_drain below): no thread
    // waits on them, none is woken for them.
    cfg.sample_consumer_waits = false;
    // Bad input first (status 2), then missing privileges (status 1), then
    // setup; a bad tier spec fails before BPF is loaded.
    check_target(cfg);
    if (opts.command == "tier") choose_tiers(opts.tiers, topo);
    // A sampler this machine lacks before the capabilities to use it.
    if (opts.sampler != "auto") named_sampler_plan(opts.sampler, sampler_options(opts));
    const CapSet keep = privilege_plan(opts, "").keep;
    require_capabilities(privilege_plan(opts, foreign_target(opts.mode, opts.pid, opts.cgroup, keep)).needs);
    if (opts.command == "numa") require_numa_machine(topo);  // before BPF or the --record file
    auto collector = open_collector(opts, cfg, topo, "membalancer");
    live = collector.get();
    source = std::move(collector);
    // --record: the same file `profiler record` writes.
    if (!opts.record_path.empty()) {
      ProfileStart ps;
      ps.sampler = live->sampler().name;
      ps.sampler_kind = live->sampler().kind;
      ps.topology = topo;
      recording = std::make_unique<ProfileWriter>(opts.record_path, ps, opts.record_force);
      const uint64_t now = monotonic_ns();
      for (pid_t p : live->tracked_processes())
        recorded.look(*recording, now, p, parent_of(p).value_or(0), recorded.read(p));
    }
    // Set up: the loop opens nothing that needs more than `keep`.
    const CapSet left = drop_capabilities(keep, [live] { return live->maps_usable(); });
    if (opts.verbose)
      std::fprintf(stderr, "membalancer: capabilities kept after setup: %s\n", capability_names(left).c_str());
  }
  // The backend after the drop: its threads (the mover's workers) inherit
  // the reduced capabilities.
  // The mover cancels an exec'd image's moves by the process's exec count.
  const ExecCountFn exec_count = live ? live->exec_counter() : ExecCountFn{};
  if (opts.command == "numa" || opts.command == "tier") {
    auto m = std::make_unique<MemoryBackend>(opts, topo, exec_count);
    memory = m.get();
    backend = std::move(m);
  }
  if (opts.command == "process") backend = std::make_unique<ProcessBackend>(opts, topo);
  if (opts.command == "autotune")
    backend = std::make_unique<AutotuneBackend>(opts, topo, real_affinity_ops(), "/proc", exec_count);
  // Replayed pages are planned against a model of the recorded memory.
  if (replayed && memory) replayed->set_placement(memory->use_model(0, PlacementModel::Start::kRecorded));

  NodeResolver::QueryFn query;
  Pipeline::NameFn names;
  if (recorded_names) {
    // Names come from the recording, nodes from the model or the samples.
    query = replay_node_query();
    names = [&recorded_names](pid_t p) { return recorded_names->name(static_cast<uint32_t>(p)); };
  }
  PipelineConfig pipeline_cfg = pipeline_config(opts);
  pipeline_cfg.collapse_heat =
      collapse_heat_for(replayed ? replayed->reader().info().sampler_kind : live->sampler().kind);
  Pipeline pipeline(pipeline_cfg, query, names);
  for (pid_t p : source->tracked_processes()) pipeline.process_forked(p);

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  IntervalRunner runner(*source, pipeline, backend.get());
  // --record: processes are written as their events leave the ring buffer,
  // which the wait below takes as they come: a fork with its parent's name
  // and maps (RecordedImages), an exec'd program read before it exits (it
  // may run for milliseconds), and again a few times for the libraries its
  // loader maps.
  ExecFollowUp after_exec;
  // --record: a write that fails (a full disk) ends the recording, not the
  // run at that point: the loop stops the normal way before its next
  // interval (moves dropped, affinities restored, the summary), says what
  // the file holds, and exits with status 1. The samples taken after the
  // failure are counted, not written.
  std::string record_error;
  uint64_t samples_not_written = 0;
  auto record = [&](const std::function<void()>& write) {
    if (!record_error.empty()) return;
    try {
      write();
    } catch (const SystemError& e) {
      record_error = e.what();
    }
  };
  auto take_samples = [&] {
    record([&] { live->poll_samples([&](const mb_sample& smp) { recording->add_sample(smp); }); });
    if (!record_error.empty()) live->poll_samples([&](const mb_sample&) { ++samples_not_written; });
  };
  if (recording) {
    live->set_event_observer([&](const mb_proc_event& ev) {
      const pid_t p = static_cast<pid_t>(ev.tgid);
      const pid_t parent = static_cast<pid_t>(ev.parent_tgid);
      if (ev.type == MB_PROC_FORK) record([&] { recorded.write_fork(*recording, ev.time_ns, p, parent); });
      if (ev.type == MB_PROC_EXEC) {
        // Timed at the exec: the new program's samples are found in them.
        record([&] { recorded.write(*recording, ev.time_ns, p, 0, kProcExec, recorded.read(p)); });
        after_exec.exec(p, monotonic_ns());
      }
      // Read soon, so that a later change is not timed at this one.
      if (ev.type == MB_PROC_MAPS) maps_soon.changed(p, ev.time_ns, monotonic_ns());
      if (ev.type == MB_PROC_EXIT) {
        record([&] { recording->add_process(ev.time_ns, ev.tgid, 0, kProcExit, ""); });
        after_exec.exited(p);
        maps_soon.exited(p);
        recorded.erase(p);
      }
    });
    runner.before_drain = [&] {
      take_samples();
      const uint64_t now = monotonic_ns();
      record([&] { recording->add_counters(now, live->counters()); });
      // Once an interval, what each process mapped since (a forked child's
      // own memory, which its fork record, its parent's maps, lacks; a
      // library loaded late): a rename or a new snapshot when it changed.
      // The events that come meanwhile are taken every few processes: with
      // a thousand processes a round of looks takes seconds in a slow guest,
      // and an exec waiting that long finds its short program gone.
      size_t looked = 0;
      for (pid_t p : live->tracked_processes()) {
        if (!record_error.empty()) break;
        record([&] { recorded.look(*recording, now, p, 0, recorded.read(p)); });
        if (++looked % 16 == 0) live->take_process_events();
      }
    };
  }
  const bool tree_mode = opts.mode == TrackMode::kTree || opts.mode == TrackMode::kPid;
  std::string stop_reason;
  bool final_round = false;
  // --record waits on the stop signals through this fd, with the event fd.
  std::optional<SignalFd> signal_fd;
  if (recording) signal_fd.emplace(stop_signals);

  // --duration is the workload's time: wall time live, the recording's time
  // in a replay (whole intervals of it; at --speed max wall time says
  // nothing about how much was replayed), checked once `interval` is done.
  auto duration_over = [&](uint32_t interval) {
    if (opts.duration_s <= 0) return false;
    const double ran_s = live ? elapsed() : interval * (opts.interval_ms / 1000.0);
    return ran_s >= opts.duration_s - 1e-3;
  };
  for (uint32_t interval = 1; stop_reason.empty(); ++interval) {
    // Sleep until the interval ends, the duration is over, or a signal.
    // A replay at --speed max does not wait; at another speed the recorded
    // interval takes interval / speed of wall time.
    const double speed = live ? 1.0 : opts.replay_speed;
    const double wall_interval_s = speed > 0 ? opts.interval_ms / 1000.0 / speed : 0.0;
    double until = final_round ? elapsed() + 0.05 : interval * wall_interval_s;
    if (opts.duration_s > 0 && speed > 0 && until > opts.duration_s / speed) until = opts.duration_s / speed;
    for (;;) {
      double left = until - elapsed();
      if (left <= 0 || !record_error.empty()) break;
      left = std::min(left, 1.0);  // a bad deadline must not turn into a spin or a hang
      if (recording) {
        const uint64_t now = monotonic_ns();
        for (pid_t p : after_exec.due(now)) record([&] { recorded.update(*recording, now, p, 0, recorded.read(p)); });
        for (pid_t p : maps_soon.due(now)) record([&] { recorded.look(*recording, now, p, 0, recorded.read(p)); });
        if (!after_exec.empty()) left = std::min(left, after_exec.wait_ns(now) / 1e9);
        left = std::min(left, maps_soon.wait_ns(now) / 1e9);
      }
      timespec ts{static_cast<time_t>(left), static_cast<long>((left - static_cast<time_t>(left)) * 1e9)};
      if (recording) {
        // Woken by a stop signal or a process event as well as the clock.
        pollfd fds[2] = {{signal_fd->fd(), POLLIN, 0}, {live->process_event_fd(), POLLIN, 0}};
        ppoll(fds, 2, &ts, nullptr);
        stop_reason = take_stop_signal({0, 0});
        if (!stop_reason.empty()) break;
        if (fds[1].revents & POLLIN) live->take_process_events();
        continue;
      }
      stop_reason = take_stop_signal(ts);
      if (!stop_reason.empty()) break;
    }
    // Signals that arrived while the last interval was being processed.
    if (stop_reason.empty()) stop_reason = take_stop_signal({0, 0});
    // Taken in like a stop signal: this interval is the last.
    if (stop_reason.empty() && !record_error.empty()) stop_reason = "the --record file could not be written";
    if (stop_reason.empty() && !source->advance()) {
      stop_reason = "replay finished";
      break;
    }
    // After a stop signal the last interval is taken in for the report only.
    if (!stop_reason.empty() && backend) backend->hold();
    // The last interval's counters are read after its table swap: samples
    // taken meanwhile were counted but went to a table never drained (up to
    // 1% of the accepted ones under a fork storm). None come once the perf
    // events are off.
    const bool last = !stop_reason.empty() || duration_over(interval);
    if (last && live) live->pause_sampling();
    const double work_start = elapsed();
    IntervalReport r = runner.run(interval, elapsed);
    reporter.interval(r);
    if (output.error()) {
      // The signal that interrupted the write is still pending.
      stop_reason = output.error() == EINTR ? take_stop_signal({0, 0}) : "the report could not be written";
      break;
    }
    if (opts.verbose)
      std::fprintf(stderr, "membalancer: interval %u processed in %.1f ms (table %.1f, drain %.1f; %" PRIu64 " pages)\n",
                   interval, (elapsed() - work_start) * 1e3, runner.table_ms(), runner.drain_ms(),
                   r.pages_this_interval);
    const auto& tracked = runner.tracked();
    if (duration_over(interval) && stop_reason.empty()) stop_reason = "duration";
    // The tracked set empties when the last process exits, possibly just
    // after this interval polled events: one more round, without waiting,
    // takes in its exit event and last pages before stopping.
    if (tree_mode && tracked.empty() && stop_reason.empty()) {
      if (final_round) stop_reason = "tracked processes exited";
      final_round = true;
    }
  }
  const std::string sampler_name = source->sampler().name;
  std::array<uint64_t, MB_NR_COUNTERS> recorded_counters{};
  if (recording) {
    // The events since the last interval's poll go in before the end (they
    // stay pending for the backend's last look); those after it are not
    // the recording's: the observer writes no more once the file is closed
    // (an exec told to the backend at its stop failed the run).
    live->take_process_events();
    take_samples();
    recorded_counters = live->counters();
    record([&] {
      recording->add_counters(monotonic_ns(), recorded_counters);
      recording->finish(monotonic_ns(), recorded_counters[MB_CTR_SAMPLES_LOST]);
    });
    live->set_event_observer(nullptr);
    if (opts.verbose && record_error.empty())
      std::fprintf(stderr, "membalancer: recorded %" PRIu64 " samples (%" PRIu64 " lost) to %s\n",
                   recording->samples_written(), recorded_counters[MB_CTR_SAMPLES_LOST], opts.record_path.c_str());
  }
  // Stop acting (moves not started are dropped, affinities set back) and
  // report first: detaching can take the kernel a while (each tracepoint
  // it leaves is patched out on every CPU). The summary is the intervals'.
  Summary s = pipeline.summary();
  s.elapsed_s = elapsed();
  s.sampler = sampler_name;
  if (backend) {
    runner.tell_waiting_execs();
    backend->stop(s);
  }
  if (!output.error()) reporter.summary(s);
  // Damage met while streaming ends the replay early: said, and status 2.
  const std::string damage = replayed ? replayed->reader().damage() : "";
  source.reset();
  if (opts.verbose) std::fprintf(stderr, "membalancer: stopped: %s\n", stop_reason.c_str());
  if (!record_error.empty()) {
    // What the file holds is what a reader finds: the samples of the chunks
    // written whole; those given to the writer since, and taken after the
    // failure, are not in it.
    const uint64_t in_file = recording->samples_in_file();
    std::fprintf(stderr,
                 "membalancer: --record: %s; the file holds the first %" PRIu64 " samples (%" PRIu64
                 " more not written, %" PRIu64 " lost in the ring buffer) and no end; stopped\n",
                 record_error.c_str(), in_file,
                 recording->samples_written() - in_file + samples_not_written,
                 recorded_counters[MB_CTR_SAMPLES_LOST]);
  }
  // Stopped the normal way (moves dropped, affinities restored); only the
  // report is incomplete, and the user is told.
  if (int err = output.error()) {
    if (err == EINTR)
      std::fprintf(stderr, "membalancer: stopped by %s while nothing read standard output; the summary is not written\n",
                   stop_reason.c_str());
    else
      std::fprintf(stderr, "membalancer: writing the report to standard output: %s; stopped\n", std::strerror(err));
    return kExitSystem;
  }
  if (!record_error.empty()) return kExitSystem;
  if (!damage.empty()) {
    if (damage != damage_at_start) std::fprintf(stderr, "membalancer: %s: %s\n", replay.c_str(), damage.c_str());
    return kExitUsage;
  }
  return 0;
}

}  // namespace mb
