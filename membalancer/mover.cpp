#include "membalancer/mover.h"

#include <numa.h>
#include <numaif.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace mb {

namespace {

// A status the kernel never writes: the page's status was left unwritten.
constexpr int kUnset = INT_MIN;

double since_s(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* direction_name(MoveDirection d) {
  switch (d) {
    case MoveDirection::kPromote: return "promote";
    case MoveDirection::kDemote: return "demote";
    case MoveDirection::kNuma: return "numa";
  }
  return "?";
}

const char* reason_name(MoveReason r) {
  switch (r) {
    case MoveReason::kHot: return "hot";
    case MoveReason::kWatermark: return "watermark";
    case MoveReason::kCloser: return "closer";
  }
  return "?";
}

std::string move_failure_name(int key) {
  if (key == kElsewhere) return "elsewhere";
  if (const char* n = strerrorname_np(key)) return n;
  return "E" + std::to_string(key);
}

uint64_t MoveCounts::failed() const {
  uint64_t n = 0;
  for (const auto& [err, pages] : failed_by_errno) n += pages;
  return n;
}

double MoveCounts::move_bytes_per_s() const {
  return busy_s > 0 ? static_cast<double>(bytes_moved) / busy_s : 0;
}

void MoveCounts::add(const MoveCounts& o) {
  requested += o.requested;
  moved += o.moved;
  bytes_moved += o.bytes_moved;
  for (const auto& [err, pages] : o.failed_by_errno) failed_by_errno[err] += pages;
  dropped_queue_full += o.dropped_queue_full;
  abandoned += o.abandoned;
  busy_s += o.busy_s;
}

MoveCounts MoverStats::total() const {
  MoveCounts t;
  for (const auto& [key, c] : by_key) t.add(c);
  return t;
}

MoveCounts MoverStats::for_direction(MoveDirection d) const {
  MoveCounts t;
  for (const auto& [key, c] : by_key)
    if (std::get<1>(key) == d) t.add(c);
  return t;
}

// Consecutive pages of one (pid, direction, reason), possibly from several
// queued requests; the target node is per page.
struct Mover::Batch {
  pid_t pid = 0;
  MoveDirection direction = MoveDirection::kNuma;
  MoveReason reason = MoveReason::kCloser;
  std::vector<void*> addrs;
  std::vector<int> nodes;
  std::vector<uint8_t> huge;
  std::vector<int> status;
  uint64_t base_pages = 0;
  uint64_t bytes = 0;
  MoverStats::Key key() const { return {pid, direction, reason}; }
  void clear() {
    addrs.clear();
    nodes.clear();
    huge.clear();
    base_pages = bytes = 0;
  }
};

Mover::Mover(const MoverConfig& cfg, MoveFn fn) : cfg_(cfg), fn_(std::move(fn)) {
  cfg_.batch_pages = std::max<size_t>(cfg_.batch_pages, 1);
  cfg_.workers = std::max(cfg_.workers, 1);
  if (!fn_) {
    fn_ = [](pid_t pid, unsigned long count, void** pages, const int* nodes, int* status, int flags) -> long {
      return numa_move_pages(pid, count, pages, nodes, status, flags);
    };
  }
  if (cfg_.rate_limit_bytes_per_s) {
    // The bucket holds one full batch (or one huge page, whichever is more).
    uint64_t burst = std::max<uint64_t>(cfg_.batch_pages * kBasePageBytes, kHugePageBytes);
    limiter_ = std::make_unique<RateLimiter>(cfg_.rate_limit_bytes_per_s, burst, RateLimiter::Clock{},
                                             [this](double s) { return sleep_unless_abandoned(s); });
  }
  threads_.reserve(static_cast<size_t>(cfg_.workers));
  for (int i = 0; i < cfg_.workers; ++i) threads_.emplace_back([this] { worker(); });
}

Mover::~Mover() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool Mover::submit(MoveRequest req) {
  if (!req.huge.empty() && req.huge.size() != req.pages.size())
    throw std::invalid_argument("mover: request for pid " + std::to_string(req.pid) + " has " +
                                std::to_string(req.huge.size()) + " huge-page flags for " +
                                std::to_string(req.pages.size()) + " pages");
  if (req.pages.empty()) return true;
  uint64_t base = req.pages.size();
  for (bool h : req.huge)
    if (h) base += kBasePagesPerHuge - 1;
  std::lock_guard<std::mutex> lock(mu_);
  MoveCounts& c = stats_.by_key[{req.pid, req.direction, req.reason}];
  c.requested += base;
  if (abandoned_ || stopping_) {
    c.abandoned += base;
    return false;
  }
  if (req.pages.size() > cfg_.queue_pages - std::min(queued_pages_, cfg_.queue_pages)) {
    ++stats_.queue_overflows;
    c.dropped_queue_full += base;
    return false;
  }
  queued_pages_ += req.pages.size();
  queue_.push_back(Queued{std::move(req), 0});
  work_cv_.notify_one();
  return true;
}

bool Mover::take_batch(Batch* b) {
  b->clear();
  if (queue_.empty()) return false;
  const MoveRequest& first = queue_.front().req;
  b->pid = first.pid;
  b->direction = first.direction;
  b->reason = first.reason;
  while (!queue_.empty()) {
    Queued& q = queue_.front();
    const MoveRequest& r = q.req;
    if (r.pid != b->pid || r.direction != b->direction || r.reason != b->reason) break;
    bool full = false;
    while (q.next < r.pages.size()) {
      bool huge = !r.huge.empty() && r.huge[q.next];
      uint64_t w = huge ? kBasePagesPerHuge : 1;
      if (!b->addrs.empty() && b->base_pages + w > cfg_.batch_pages) {
        full = true;
        break;
      }
      b->addrs.push_back(reinterpret_cast<void*>(r.pages[q.next]));
      b->nodes.push_back(r.target_node);
      b->huge.push_back(huge);
      b->base_pages += w;
      b->bytes += w * kBasePageBytes;
      ++q.next;
      --queued_pages_;
    }
    if (q.next == r.pages.size()) queue_.pop_front();
    if (full) break;
  }
  return true;
}

bool Mover::sleep_unless_abandoned(double s) {
  std::unique_lock<std::mutex> lock(mu_);
  auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
  return !abandon_cv_.wait_for(lock, d, [this] { return abandoned_; });
}

void Mover::run_batch(Batch* b, MoveCounts* out, uint64_t* calls, double* throttled_s) {
  size_t n = b->addrs.size();
  auto weight = [&](size_t i) -> uint64_t { return b->huge[i] ? kBasePagesPerHuge : 1; };
  if (limiter_) {
    double asked = 0;
    auto t0 = std::chrono::steady_clock::now();
    bool ok = limiter_->acquire(b->bytes, &asked);
    if (asked > 0) *throttled_s += since_s(t0);
    if (!ok) {  // abandon() while waiting for tokens: never started
      out->abandoned += b->base_pages;
      return;
    }
  }
  b->status.assign(n, kUnset);
  auto t0 = std::chrono::steady_clock::now();
  long r = fn_(b->pid, n, b->addrs.data(), b->nodes.data(), b->status.data(), MPOL_MF_MOVE);
  int err = errno;
  out->busy_s += since_s(t0);
  ++*calls;
  std::vector<std::pair<uint64_t, int>> failed;
  auto report_failed = [&] {
    if (cfg_.on_failed && !failed.empty() && !b->nodes.empty()) cfg_.on_failed(b->pid, b->nodes[0], failed);
  };
  if (r < 0) {  // the whole call failed: ESRCH (process gone), EPERM, ENOMEM...
    if (err <= 0) err = EIO;
    out->failed_by_errno[err] += b->base_pages;
    if (cfg_.on_failed)
      for (size_t i = 0; i < n; ++i) failed.emplace_back(reinterpret_cast<uint64_t>(b->addrs[i]), -err);
    report_failed();
    return;
  }
  // Statuses the kernel left unwritten (it stopped after a failed migration
  // and returned the number of pages not moved): ask where those pages are.
  std::vector<size_t> unset;
  for (size_t i = 0; i < n; ++i)
    if (b->status[i] == kUnset) unset.push_back(i);
  if (!unset.empty()) {
    std::vector<void*> qaddrs(unset.size());
    std::vector<int> qstatus(unset.size(), kUnset);
    for (size_t j = 0; j < unset.size(); ++j) qaddrs[j] = b->addrs[unset[j]];
    t0 = std::chrono::steady_clock::now();
    long qr = fn_(b->pid, qaddrs.size(), qaddrs.data(), nullptr, qstatus.data(), 0);
    int qerr = errno;
    out->busy_s += since_s(t0);
    ++*calls;
    for (size_t j = 0; j < unset.size(); ++j) {
      if (qr < 0) b->status[unset[j]] = -(qerr > 0 ? qerr : EIO);
      else b->status[unset[j]] = qstatus[j] == kUnset ? -EIO : qstatus[j];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    int s = b->status[i];
    uint64_t w = weight(i);
    if (s == b->nodes[i]) {
      out->moved += w;
      out->bytes_moved += w * kBasePageBytes;
    } else if (s >= 0) {
      out->failed_by_errno[kElsewhere] += w;
      if (cfg_.on_failed) failed.emplace_back(reinterpret_cast<uint64_t>(b->addrs[i]), s);
    } else {
      out->failed_by_errno[-s] += w;
      if (cfg_.on_failed) failed.emplace_back(reinterpret_cast<uint64_t>(b->addrs[i]), s);
    }
  }
  report_failed();
}

void Mover::worker() {
  Batch b;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (!take_batch(&b)) return;  // stopping, and the queue is drained
    ++in_flight_;
    if (!queue_.empty()) work_cv_.notify_one();
    lock.unlock();
    MoveCounts c;
    uint64_t calls = 0;
    double throttled = 0;
    run_batch(&b, &c, &calls, &throttled);
    lock.lock();
    stats_.by_key[b.key()].add(c);
    stats_.calls += calls;
    stats_.throttled_s += throttled;
    --in_flight_;
    idle_cv_.notify_all();
  }
}

void Mover::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && in_flight_ == 0; });
}

void Mover::abandon() {
  std::unique_lock<std::mutex> lock(mu_);
  abandoned_ = true;
  for (const Queued& q : queue_) {
    uint64_t base = 0;
    for (size_t i = q.next; i < q.req.pages.size(); ++i)
      base += (!q.req.huge.empty() && q.req.huge[i]) ? kBasePagesPerHuge : 1;
    stats_.by_key[{q.req.pid, q.req.direction, q.req.reason}].abandoned += base;
  }
  queue_.clear();
  queued_pages_ = 0;
  abandon_cv_.notify_all();
  idle_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

MoverStats Mover::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

size_t Mover::queued_pages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_pages_;
}

}  // namespace mb
