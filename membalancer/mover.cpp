#include "membalancer/mover.h"

#include <numa.h>
#include <numaif.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <stdexcept>

namespace mb {

namespace {

// A status the kernel never writes: the page's status was left unwritten.
constexpr int kUnset = INT_MIN;
// move_call's status of a page the kernel never got to: it stopped at an
// earlier page's node, which had no room.
constexpr int kNotTried = INT_MIN + 1;

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
    case MoveReason::kFreeRoom: return "free-room";
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
  redirected += o.redirected;
  bytes_moved += o.bytes_moved;
  for (const auto& [err, pages] : o.failed_by_errno) failed_by_errno[err] += pages;
  dropped_queue_full += o.dropped_queue_full;
  abandoned += o.abandoned;
  cancelled_exec += o.cancelled_exec;
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
  std::vector<int> from;  // -1: not known
  uint64_t base_pages = 0;
  uint64_t bytes = 0;
  uint64_t taken_at = 0;  // Mover::cancels_ when taken
  std::optional<uint32_t> execs;  // its requests' exec count at submit
  MoverStats::Key key() const { return {pid, direction, reason}; }
  void clear() {
    addrs.clear();
    nodes.clear();
    huge.clear();
    from.clear();
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
                                             [this](double s) { return sleep_unless_stopped(s); });
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
  if (!req.from.empty() && req.from.size() != req.pages.size())
    throw std::invalid_argument("mover: request for pid " + std::to_string(req.pid) + " has " +
                                std::to_string(req.from.size()) + " source nodes for " +
                                std::to_string(req.pages.size()) + " pages");
  if (req.pages.empty()) return true;
  uint64_t base = req.pages.size();
  for (bool h : req.huge)
    if (h) base += kBasePagesPerHuge - 1;
  std::optional<uint32_t> execs = cfg_.exec_count ? cfg_.exec_count(req.pid) : std::nullopt;
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
  queue_.push_back(Queued{std::move(req), 0, execs});
  work_cv_.notify_one();
  return true;
}

uint64_t Mover::Queued::base_pages_left() const {
  uint64_t base = 0;
  for (size_t i = next; i < req.pages.size(); ++i) base += (!req.huge.empty() && req.huge[i]) ? kBasePagesPerHuge : 1;
  return base;
}

bool Mover::take_batch(Batch* b) {
  b->clear();
  if (queue_.empty()) return false;
  const MoveRequest& first = queue_.front().req;
  b->taken_at = cancels_;
  b->pid = first.pid;
  b->direction = first.direction;
  b->reason = first.reason;
  b->execs = queue_.front().execs;
  while (!queue_.empty()) {
    Queued& q = queue_.front();
    const MoveRequest& r = q.req;
    // An image's pages are not batched with another's.
    if (r.pid != b->pid || r.direction != b->direction || r.reason != b->reason || q.execs != b->execs) break;
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
      b->from.push_back(r.from.empty() ? -1 : r.from[q.next]);
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

thread_local const Mover::Batch* Mover::charging_ = nullptr;

bool Mover::sleep_unless_stopped(double s) {
  std::unique_lock<std::mutex> lock(mu_);
  auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
  return !sleep_cv_.wait_for(lock, d,
                             [this] { return abandoned_ || (charging_ && cancelled_since(*charging_)); });
}

bool Mover::charge(const Batch& b, uint64_t bytes, double* throttled_s) {
  if (!limiter_) return true;
  double asked = 0;
  auto t0 = std::chrono::steady_clock::now();
  charging_ = &b;
  bool ok = limiter_->acquire(bytes, &asked);
  charging_ = nullptr;
  if (asked > 0) *throttled_s += since_s(t0);
  return ok;
}

int Mover::next_stand_in(int planned, size_t* next) const {
  auto it = cfg_.same_tier.find(planned);
  if (it == cfg_.same_tier.end()) return -1;
  while (*next < it->second.size()) {
    const int n = it->second[(*next)++];
    auto f = stats_.target_full.find(n);
    if (n != planned && (f == stats_.target_full.end() || !f->second.full)) return n;
  }
  return -1;
}

std::vector<int> Mover::move_call(pid_t pid, std::vector<void*>& addrs, const std::vector<int>& nodes,
                                  MoveCounts* out, uint64_t* calls) {
  const size_t n = addrs.size();
  std::vector<int> status(n, kUnset);
  auto t0 = std::chrono::steady_clock::now();
  long r = fn_(pid, n, addrs.data(), nodes.data(), status.data(), MPOL_MF_MOVE);
  int err = errno;
  out->busy_s += since_s(t0);
  ++*calls;
  if (r < 0 && err <= 0) err = EIO;
  // The whole call failed (ESRCH: the process is gone; EPERM...): every page.
  if (r < 0 && !target_full_errno(err)) return std::vector<int>(n, -err);
  // Statuses the kernel left unwritten: it stopped after a failed migration
  // and returned the number of pages not moved, or, with no room on a
  // target, failed the whole call with ENOMEM. Ask where those pages are.
  std::vector<size_t> unset;
  for (size_t i = 0; i < n; ++i)
    if (status[i] == kUnset) unset.push_back(i);
  if (unset.empty()) return status;
  // The kernel moves pages in runs of one target node and writes a run's
  // statuses once it is through: the first unwritten page is in the run
  // that found no room (r < 0) or left pages behind (r > 0). A run ends at
  // a change of node or at a page whose status was written at once, so the
  // run is the unwritten pages from there on for that node, and every
  // unwritten page after it was never tried.
  const int full_node = r < 0 ? nodes[unset[0]] : -1;
  size_t run_end = unset[0];
  while (run_end < n && status[run_end] == kUnset && nodes[run_end] == nodes[unset[0]]) ++run_end;
  std::vector<void*> qaddrs(unset.size());
  std::vector<int> qstatus(unset.size(), kUnset);
  for (size_t j = 0; j < unset.size(); ++j) qaddrs[j] = addrs[unset[j]];
  t0 = std::chrono::steady_clock::now();
  long qr = fn_(pid, qaddrs.size(), qaddrs.data(), nullptr, qstatus.data(), 0);
  int qerr = errno;
  out->busy_s += since_s(t0);
  ++*calls;
  for (size_t j = 0; j < unset.size(); ++j) {
    int& s = status[unset[j]];
    if (qr < 0) s = -(qerr > 0 ? qerr : EIO);
    else s = qstatus[j] == kUnset ? -EIO : qstatus[j];
    // After a "no room" failure, a page of that node still off it was
    // refused; one for another node was not tried. After a run that left
    // pages behind (a pinned page, say), a page of that run still off its
    // node failed; one after the run was not tried.
    if (s >= 0 && s != nodes[unset[j]]) {
      if (r < 0) s = nodes[unset[j]] == full_node ? -err : kNotTried;
      else if (unset[j] >= run_end) s = kNotTried;
    }
  }
  return status;
}

bool Mover::execed_since(const Batch& b) const {
  if (!b.execs || !cfg_.exec_count) return false;
  const std::optional<uint32_t> now = cfg_.exec_count(b.pid);
  return now && *now != *b.execs;
}

bool Mover::cancelled_since(const Batch& b) const {
  auto it = cancelled_at_.find(b.pid);
  return it != cancelled_at_.end() && it->second > b.taken_at;
}

void Mover::run_batch(Batch* b, MoveCounts* out, std::map<int, NodeFlow>* flows, uint64_t* calls,
                      double* throttled_s) {
  const size_t n = b->addrs.size();
  auto weight = [&](size_t i) -> uint64_t { return b->huge[i] ? kBasePagesPerHuge : 1; };
  auto cancelled = [&] {
    if (execed_since(*b)) return true;
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_since(*b);
  };
  if (!charge(*b, b->bytes, throttled_s)) {  // abandon() or an exec while waiting for tokens: never started
    (cancelled() ? out->cancelled_exec : out->abandoned) += b->base_pages;
    return;
  }
  // Per page: the node planned, and how far down its stand-ins it got.
  const std::vector<int> planned = b->nodes;
  std::vector<size_t> next(n, 0);
  // Pages meant for a node marked full go to its first stand-in that is not,
  // without asking the full node; with none, the node is tried anyway (it
  // may have room again).
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      auto f = stats_.target_full.find(planned[i]);
      if (f == stats_.target_full.end() || !f->second.full) continue;
      const int alt = next_stand_in(planned[i], &next[i]);
      if (alt < 0) continue;
      f->second.skipped += weight(i);
      b->nodes[i] = alt;
    }
  }
  std::vector<std::pair<uint64_t, int>> failed, redirected;
  auto fail = [&](size_t i, int s) {
    out->failed_by_errno[s >= 0 ? kElsewhere : -s] += weight(i);
    if (cfg_.on_failed) failed.emplace_back(reinterpret_cast<uint64_t>(b->addrs[i]), s);
  };
  // Rounds: the batch, then the pages refused as full on their stand-ins
  // (and those the kernel did not get to, on their node), until every page
  // has an outcome. Each round settles at least the first page the kernel
  // stopped at, so rounds end.
  std::vector<size_t> round(n);
  for (size_t i = 0; i < n; ++i) round[i] = i;
  std::vector<void*> addrs = b->addrs;
  std::vector<int> nodes = b->nodes;
  while (!round.empty()) {
    if (cancelled()) {  // the first round's tokens or a retry's were paid in vain
      for (size_t i : round) out->cancelled_exec += weight(i);
      break;
    }
    const std::vector<int> status = move_call(b->pid, addrs, nodes, out, calls);
    struct Refusal {
      size_t page;
      int node;
      int status;
    };
    std::vector<Refusal> refused;
    std::vector<std::pair<size_t, int>> again;  // page, node: not tried yet
    std::map<int, uint64_t> taken;               // stand-in -> pages it took
    for (size_t j = 0; j < round.size(); ++j) {
      const size_t i = round[j];
      const int s = status[j];
      const uint64_t w = weight(i);
      if (s == nodes[j]) {
        out->moved += w;
        out->bytes_moved += w * kBasePageBytes;
        if (b->from[i] >= 0 && b->from[i] != s) {  // not there already
          (*flows)[s].in += w;
          (*flows)[b->from[i]].out += w;
        }
        if (b->from[i] != s) (*flows)[s].arrived(b->direction, w);
        if (s != planned[i]) {
          out->redirected += w;
          taken[s] += w;
          if (cfg_.on_redirected) redirected.emplace_back(reinterpret_cast<uint64_t>(b->addrs[i]), s);
        }
      } else if (s < 0 && target_full_errno(-s)) {
        refused.push_back({i, nodes[j], s});
      } else if (s == kNotTried) {
        again.emplace_back(i, nodes[j]);
      } else {
        fail(i, s);
      }
    }
    round.clear();
    addrs.clear();
    nodes.clear();
    for (auto [i, node] : again) {  // already paid for
      round.push_back(i);
      addrs.push_back(b->addrs[i]);
      nodes.push_back(node);
    }
    uint64_t retry_bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto [node, pages] : taken) stats_.target_full[node].taken += pages;
      for (const Refusal& r : refused) {
        TargetFullCounts& f = stats_.target_full[r.node];
        f.refused += weight(r.page);
        f.refused_since_mark += weight(r.page);
        if (!f.full) {
          f.full = true;
          ++f.marks;
        }
      }
      // Marked first, so that a page does not go to a stand-in that has
      // just refused another.
      for (const Refusal& r : refused) {
        const int alt = next_stand_in(planned[r.page], &next[r.page]);
        if (alt < 0) {
          fail(r.page, r.status);
          continue;
        }
        round.push_back(r.page);
        addrs.push_back(b->addrs[r.page]);
        nodes.push_back(alt);
        retry_bytes += weight(r.page) * kBasePageBytes;
      }
    }
    // A retry is a move_pages call like any other: it pays its tokens.
    if (!round.empty() && !charge(*b, retry_bytes, throttled_s)) {
      const bool exec = cancelled();
      for (size_t i : round) (exec ? out->cancelled_exec : out->abandoned) += weight(i);
      break;
    }
  }
  if (cfg_.on_failed && !failed.empty()) cfg_.on_failed(b->pid, failed);
  if (cfg_.on_redirected && !redirected.empty()) cfg_.on_redirected(b->pid, redirected);
}

void Mover::worker() {
  Batch b;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (!take_batch(&b)) return;  // stopping, and the queue is drained
    ++in_flight_;
    // The batch's pages under way, by node they go to or come from.
    std::map<int, uint64_t> under_way;
    for (size_t i = 0; i < b.addrs.size(); ++i) {
      if (b.from[i] < 0) continue;
      const uint64_t w = b.huge[i] ? kBasePagesPerHuge : 1;
      under_way[b.nodes[i]] += w;
      under_way[b.from[i]] += w;
    }
    for (const auto& [n, pages] : under_way) stats_.flows[n].in_flight += pages;
    if (!queue_.empty()) work_cv_.notify_one();
    lock.unlock();
    MoveCounts c;
    std::map<int, NodeFlow> flows;
    uint64_t calls = 0;
    double throttled = 0;
    run_batch(&b, &c, &flows, &calls, &throttled);
    lock.lock();
    for (const auto& [n, pages] : under_way) stats_.flows[n].in_flight -= pages;
    stats_.by_key[b.key()].add(c);
    for (const auto& [n, f] : flows) {
      stats_.flows[n].in += f.in;
      stats_.flows[n].out += f.out;
      stats_.flows[n].promoted_in += f.promoted_in;
      stats_.flows[n].demoted_in += f.demoted_in;
    }
    stats_.calls += calls;
    stats_.throttled_s += throttled;
    --in_flight_;
    if (in_flight_ == 0) cancelled_at_.clear();  // no batch taken before a cancel is left
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
  for (const Queued& q : queue_)
    stats_.by_key[{q.req.pid, q.req.direction, q.req.reason}].abandoned += q.base_pages_left();
  queue_.clear();
  queued_pages_ = 0;
  sleep_cv_.notify_all();
  idle_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void Mover::cancel_process(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->req.pid != pid) {
      ++it;
      continue;
    }
    stats_.by_key[{pid, it->req.direction, it->req.reason}].cancelled_exec += it->base_pages_left();
    queued_pages_ -= it->req.pages.size() - it->next;
    it = queue_.erase(it);
  }
  // Batches already taken check this before each move_pages call.
  if (in_flight_ > 0) cancelled_at_[pid] = ++cancels_;
  sleep_cv_.notify_all();
  idle_cv_.notify_all();
}

MoverStats Mover::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::map<int, NodeFlow> Mover::flows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_.flows;
}

size_t Mover::queued_pages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_pages_;
}

void Mover::clear_full(int node) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = stats_.target_full.find(node);
  if (f == stats_.target_full.end()) return;
  f->second.full = false;
  f->second.refused_since_mark = 0;
}

}  // namespace mb
