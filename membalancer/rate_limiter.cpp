#include "membalancer/rate_limiter.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

#include "membalancer/error.h"
#include "membalancer/mover.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

double monotonic_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool nanosleep_s(double s) {
  if (s <= 0) return true;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(s);
  ts.tv_nsec = static_cast<long>((s - static_cast<double>(ts.tv_sec)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return true;
}

}  // namespace

RateLimiter::RateLimiter(uint64_t bytes_per_s, uint64_t burst_bytes, Clock clock, Sleep sleep)
    : rate_(bytes_per_s),
      burst_(std::max<uint64_t>(burst_bytes, 1)),
      clock_(clock ? std::move(clock) : Clock(monotonic_s)),
      sleep_(sleep ? std::move(sleep) : Sleep(nanosleep_s)),
      tokens_(static_cast<double>(burst_)),
      last_(clock_()) {}

bool RateLimiter::acquire(uint64_t bytes, double* waited_s) {
  if (waited_s) *waited_s = 0;
  if (rate_ == 0 || bytes == 0) return true;
  double wait;
  {
    std::lock_guard<std::mutex> lock(mu_);
    double now = clock_();
    if (now > last_) {
      tokens_ = std::min(static_cast<double>(burst_), tokens_ + (now - last_) * static_cast<double>(rate_));
      last_ = now;
    }
    tokens_ -= static_cast<double>(bytes);
    // The debt (this caller's and that of callers before it still waiting)
    // is repaid at `rate`: wait until the bucket is back at zero.
    wait = tokens_ < 0 ? -tokens_ / static_cast<double>(rate_) : 0;
  }
  if (wait <= 0) return true;
  if (waited_s) *waited_s = wait;
  if (sleep_(wait)) return true;
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ += static_cast<double>(bytes);  // interrupted: not charged
  return false;
}

uint64_t parse_rate(const std::string& text, const std::string& what) {
  std::string t = trim(text);
  std::string lower;
  for (char c : t) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.size() > 2 && lower.compare(lower.size() - 2, 2, "/s") == 0) t.resize(t.size() - 2);
  try {
    return parse_size(t, what);
  } catch (const UsageError&) {
    throw UsageError(what + ": '" + text + "' is not a rate in bytes per second (examples: 0 for unlimited, 64M, 200M, 1G)");
  }
}

IntervalBudget::IntervalBudget(uint64_t bytes_per_s, uint64_t interval_ms)
    : per_interval_(static_cast<unsigned __int128>(bytes_per_s) * interval_ms),
      cap_(std::max<unsigned __int128>(per_interval_, static_cast<unsigned __int128>(kHugePageBytes) * 1000)) {}

uint64_t IntervalBudget::next() {
  if (!limited()) return 0;
  credit_ = std::min(cap_, credit_ + per_interval_);
  // At most UINT64_MAX / 2: a plan adding to it never wraps.
  constexpr uint64_t kMost = UINT64_MAX / 2;
  const unsigned __int128 bytes = credit_ / 1000;
  return bytes > kMost ? kMost : std::max<uint64_t>(1, static_cast<uint64_t>(bytes));
}

void IntervalBudget::spend(uint64_t bytes) {
  const unsigned __int128 b = static_cast<unsigned __int128>(bytes) * 1000;
  credit_ = b > credit_ ? 0 : credit_ - b;
}

}  // namespace mb
