// A token bucket in bytes per second that delays callers rather than
// refusing them. The mover charges each move_pages batch before the call.
//
// Tokens refill at `rate` bytes per second up to `burst` bytes (the bucket
// starts full). acquire(n) takes n tokens at once; when that leaves the
// bucket negative, the caller waits until the debt is repaid. So over any
// interval T the bytes let through are at most burst + rate * T, a charge
// larger than the bucket is still let through (after its wait), and
// concurrent callers queue up in the order they reserved their tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace mb {

class RateLimiter {
 public:
  // Seconds on a monotonic clock.
  using Clock = std::function<double()>;
  // Waits `seconds`; returns false if the wait was interrupted (the caller
  // gives up: its tokens are returned).
  using Sleep = std::function<bool(double seconds)>;

  // bytes_per_s 0: unlimited (acquire never waits). Default clock:
  // CLOCK_MONOTONIC; default sleep: nanosleep.
  RateLimiter(uint64_t bytes_per_s, uint64_t burst_bytes, Clock clock = {}, Sleep sleep = {});

  // Takes `bytes` tokens, first waiting (through Sleep) as long as needed.
  // Returns false when the wait was interrupted; the bytes are then not
  // charged. *waited_s (if given) gets the time asked of Sleep.
  bool acquire(uint64_t bytes, double* waited_s = nullptr);

  uint64_t rate() const { return rate_; }
  uint64_t burst() const { return burst_; }

 private:
  uint64_t rate_;
  uint64_t burst_;
  Clock clock_;
  Sleep sleep_;
  std::mutex mu_;
  double tokens_;  // may be negative: bytes reserved by callers still waiting
  double last_;    // clock at the last refill
};

// "200M", "1G", "64MiB/s", "0" -> bytes per second (K, M, G, T are powers of
// 1024; 0 means unlimited). Throws UsageError naming `what` (the option).
uint64_t parse_rate(const std::string& text, const std::string& what);

// The bytes one interval's plan may move at `bytes_per_s` with intervals of
// `interval_ms`: rate x interval, at least one base page (a rate under a page
// per interval still moves one page each interval; it never rounds down to 0,
// which plans read as "no limit"), computed without wrapping (at most
// UINT64_MAX / 2). 0 = no limit: bytes_per_s 0 only. membalancer's backend and
// profiler whatif's comparison policies both take their budget from here.
uint64_t interval_budget_bytes(uint64_t bytes_per_s, uint64_t interval_ms);

}  // namespace mb
