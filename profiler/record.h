// `profiler record`: streams every sample of the tracked processes from the
// BPF ring buffer into a profile file (membalancer/profile_file.h), with the
// processes' names and memory maps and the BPF drop counters.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/profile_file.h"

namespace mb::prof {

struct RecordOptions {
  TrackMode mode = TrackMode::kTree;  // --ppid / --pid / --cgroup, or a command
  pid_t pid = 0;
  std::string cgroup;
  std::vector<std::string> command;  // `-- COMMAND ARGS...`: started and recorded as a tree
  std::string sampler = "auto";
  uint64_t cpu_clock_period_us = 100;
  double duration_s = 0;  // 0: until SIGINT/SIGTERM or the processes are gone
  std::string output;
  bool force = false;
  uint32_t ring_bytes = kDefaultSampleRingBytes;
  MapsClock maps_clock = MapsClock::kAuto;  // --maps-clock
  bool resolve_nodes = true;  // move_pages for samples without a physical address
  int progress = -1;          // -1: when stderr is a terminal
  bool verbose = false;
};

// The consumer of the sample ring buffer: a dedicated thread that reads it
// every 20 ms while samples come (or when a quarter of it fills) and sleeps
// until the next sample once it finds it empty, takes every record,
// optionally fills in the node of samples without one (move_pages), and
// appends them to the writer in batches (under `writer_mutex`, which other
// writers of the file share), reaching the file at least every 250 ms.
class SampleConsumer {
 public:
  static constexpr const char* kThreadName = "mb-samples";  // its thread's comm
  static constexpr std::chrono::milliseconds kWriteEvery{250};

  SampleConsumer(BpfCollector& collector, ProfileWriter& writer, std::mutex& writer_mutex, bool resolve_nodes);
  ~SampleConsumer();
  // Drains what is left in the ring buffer, then joins the thread.
  void stop();
  uint64_t consumed() const { return consumed_.load(); }
  // The processes whose samples were written since the last call: their
  // names and maps are read again soon (an exec, an mmap), while they still
  // run, rather than at the next periodic look, which a short-lived process
  // never sees.
  std::vector<pid_t> take_active();
  // True once writing failed (ENOSPC, EIO...): the thread stopped taking
  // samples. rethrow() throws that error (after stop(): none is pending).
  bool failed() const { return failed_.load(); }
  void rethrow() const {
    if (failed_.load() && error_) std::rethrow_exception(error_);
  }

 private:
  void run();
  BpfCollector& collector_;
  ProfileWriter& writer_;
  std::mutex& mu_;
  bool resolve_;
  std::atomic<bool> stop_{false};
  int stop_fd_;  // an eventfd: stop() wakes the thread's wait
  std::atomic<uint64_t> consumed_{0};
  std::atomic<bool> failed_{false};
  std::mutex active_mu_;
  std::vector<pid_t> active_;  // sorted, distinct
  std::exception_ptr error_;  // set before failed_
  std::thread thread_;
};

// Returns the exit status; throws mb::Error for the one-line messages.
int run_record(const RecordOptions& opts);

}  // namespace mb::prof
