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

// The byte budgets of successive intervals' plans at `bytes_per_s` with
// intervals of `interval_ms`: each interval earns rate x interval (kept
// exactly, in byte-milliseconds: no rounding is lost), and what a plan leaves
// unspent carries over to the next, so a rate under a page per interval moves
// a page every few intervals rather than one every interval. The credit is
// capped at one interval's earning or a 2 MiB page, whichever is larger: a
// quiet spell does not buy a burst later, and a rate under 2 MiB per interval
// can still move a huge page. Credit comes only from the rate (it starts at
// 0), so over N intervals at most rate x N x interval is spent.
// membalancer's backend and profiler whatif's comparison policies both take
// their budgets from here.
class IntervalBudget {
 public:
  // bytes_per_s 0: no limit.
  IntervalBudget(uint64_t bytes_per_s, uint64_t interval_ms);

  bool limited() const { return per_interval_ != 0; }
  // Starts an interval: its earning joins the credit (up to the cap); returns
  // the bytes its plan may move. 0 only without a limit (how the policies
  // read "no limit"): a credit under a byte is given as 1, which buys no page.
  uint64_t next();
  // The bytes the interval's plan took (at most what next() gave).
  void spend(uint64_t bytes);

 private:
  unsigned __int128 per_interval_;  // byte-milliseconds earned an interval
  unsigned __int128 cap_;           // byte-milliseconds
  unsigned __int128 credit_ = 0;    // byte-milliseconds
};

}  // namespace mb
