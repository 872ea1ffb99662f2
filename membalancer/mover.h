// The mover: moves pages between nodes with move_pages(2) on worker threads,
// in batches per process, under a token-bucket rate limit in bytes per second
// that delays work rather than dropping it. The queue is bounded; requests that
// do not fit are counted, never silently lost. Every page's outcome is
// accounted per pid, direction and reason: moved, or failed by errno. A node
// that refuses pages for want of room is marked full and its pages go to
// another node of its tier in the same batch (MoverConfig::same_tier).
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "membalancer/rate_limiter.h"
#include "membalancer/sample_source.h"

namespace mb {

enum class MoveDirection : uint8_t { kPromote, kDemote, kNuma };
enum class MoveReason : uint8_t {
  kHot,        // tier: a hot page of a lower tier, promoted
  kFreeRoom,   // tier: a page below the hot threshold, promoted into free room of an upper tier
  kWatermark,  // tier: a cold page demoted to restore an upper tier's free memory
  kCloser,     // numa: nearer (distance-weighted) to the CPUs that access it
};
const char* direction_name(MoveDirection d);  // "promote", "demote", "numa"
const char* reason_name(MoveReason r);        // "hot", "free-room", "watermark", "closer"

constexpr uint64_t kBasePageBytes = 4096;
constexpr uint64_t kHugePageBytes = 2ull << 20;
constexpr uint64_t kBasePagesPerHuge = kHugePageBytes / kBasePageBytes;  // 512

// One process's pages to one node. Each page is a virtual address; huge[i]
// says page i is a 2 MiB transparent huge page (moved whole: the kernel
// migrates the whole THP for one address in it; counted as 512 base pages).
// huge may be empty (all base pages); otherwise it has one entry per page.
struct MoveRequest {
  pid_t pid = 0;
  int target_node = 0;
  MoveDirection direction = MoveDirection::kNuma;
  MoveReason reason = MoveReason::kCloser;
  std::vector<uint64_t> pages;
  std::vector<bool> huge;
  // The node each page is moved from, as planned (empty: not known). With
  // it the mover counts the pages that left each node (MoverStats::flows).
  std::vector<int> from;
};

// Outcome of the pages of one (pid, direction, reason). Pages are base pages
// (4 KiB): a huge page counts 512 (and 2 MiB of bytes). Once the mover is
// idle, requested == moved + failed() + dropped_queue_full + abandoned +
// cancelled_exec.
struct MoveCounts {
  uint64_t requested = 0;  // pages submitted (queued, or refused as dropped_queue_full)
  uint64_t moved = 0;      // status == target node (also when it was there already), or redirected
  uint64_t redirected = 0; // of moved: on another node of the target's tier, the target being full
  uint64_t bytes_moved = 0;
  // Pages not moved, by the reason move_pages gave: a positive errno
  // (per-page status -errno, or errno of a call that failed whole: ESRCH when
  // the process exited, EPERM, ...), or kElsewhere: the kernel reported the
  // page on a node other than the target.
  std::map<int, uint64_t> failed_by_errno;
  uint64_t dropped_queue_full = 0;  // never attempted: the queue was full
  uint64_t abandoned = 0;           // never attempted: the mover was stopped
  uint64_t cancelled_exec = 0;      // never attempted: the process exec'd (cancel_process)
  double busy_s = 0;                // time spent inside move_pages
  uint64_t failed() const;
  // bytes_moved / busy_s: what move_pages achieved while it ran (0 if idle).
  double move_bytes_per_s() const;
  void add(const MoveCounts& o);
};

// failed_by_errno key for "the page is on another node than the target".
constexpr int kElsewhere = 0;
// "elsewhere" for kElsewhere, else the errno's name ("ENOENT"; "E123" when unknown).
std::string move_failure_name(int key);

// The errnos with which the kernel says a target node has no room for a page:
// a page's status, or (6.1: migrate_pages gives up at the first page it
// cannot allocate) the errno of the whole call.
inline bool target_full_errno(int err) { return err == ENOMEM || err == ENOSPC; }

// One target node's refusals for want of room. A node is marked full when it
// refuses a page; the mark stays until the mover's owner clears it
// (Mover::clear_full), and meanwhile pages meant for it go to another node
// of its tier when one is not marked (MoverConfig::same_tier).
struct TargetFullCounts {
  uint64_t refused = 0;  // pages the kernel refused on it as full (every attempt)
  uint64_t skipped = 0;  // pages meant for it while marked, sent to another node of its tier without a call
  uint64_t taken = 0;    // pages moved to it in place of a full node of its tier
  uint64_t marks = 0;    // times it was marked full
  bool full = false;     // marked now
  uint64_t refused_since_mark = 0;  // pages refused since the current mark (0 when not marked)
};

// Base pages moved into and out of one node (pages whose source was known),
// and those of the batches under way to or from it: the kernel may have
// moved some of them already.
struct NodeFlow {
  uint64_t in = 0;
  uint64_t out = 0;
  uint64_t in_flight = 0;
  // Pages that arrived by a promotion / a demotion (also those whose origin
  // was not known, which `in` leaves out): the tier view's counts.
  uint64_t promoted_in = 0, demoted_in = 0;
  void arrived(MoveDirection d, uint64_t pages) {
    if (d == MoveDirection::kPromote) promoted_in += pages;
    if (d == MoveDirection::kDemote) demoted_in += pages;
  }
};

struct MoverStats {
  using Key = std::tuple<pid_t, MoveDirection, MoveReason>;
  std::map<Key, MoveCounts> by_key;
  // By node, what moved: the tracked processes' pages on a node change by
  // these as well as by what they allocate and free (AllocationReserve
  // tells the two apart).
  std::map<int, NodeFlow> flows;
  std::map<int, TargetFullCounts> target_full;  // by node; only nodes that refused or took pages
  uint64_t queue_overflows = 0;  // requests refused because the queue was full
  uint64_t calls = 0;            // move_pages calls made (moves, and the where-is queries after a partial move)
  double throttled_s = 0;        // time workers waited for rate-limit tokens
  MoveCounts total() const;
  MoveCounts for_direction(MoveDirection d) const;
};

struct MoverConfig {
  // Token bucket over the bytes handed to move_pages (a huge page is 2 MiB),
  // charged per batch before the call; the bucket holds one batch. Work over
  // the rate waits, it is not dropped. 0: unlimited. The default, 200 MiB/s
  // (51200 base pages a second), bounds the memory bandwidth, page copies and
  // TLB shootdowns that migration takes from the application; set it from
  // the option with parse_rate() (rate_limiter.h).
  uint64_t rate_limit_bytes_per_s = 200ull << 20;
  // Base pages per move_pages call at most (a huge page counts 512; a call
  // has at least one address). 0 counts as 1.
  size_t batch_pages = 512;
  // Addresses waiting at most, over all requests (a huge page is one
  // address: the bound is on the queue's memory). A request that does not
  // fit whole is refused.
  size_t queue_pages = 1 << 20;
  int workers = 1;  // threads calling move_pages; < 1 counts as 1
  // Told of the pages of each batch that did not move (status: the node the
  // kernel left the page on, or -errno), from a worker thread, so that a
  // policy can forget them as moved. Optional.
  std::function<void(pid_t pid, const std::vector<std::pair<uint64_t, int>>& failed)> on_failed;
  // Per node, the nodes that may take its pages when it is full (ENOMEM or
  // ENOSPC), best first: tier mode gives the other nodes of its tier,
  // nearest first. Refused pages are tried on them at once, in the same
  // batch, skipping nodes marked full; a node with no entry has no stand-in
  // and its refused pages fail (counted under their errno).
  std::map<int, std::vector<int>> same_tier;
  // Told of the pages of each batch that moved to a stand-in (pid, address,
  // node), from a worker thread, so that a policy records where they are.
  // Optional.
  std::function<void(pid_t pid, const std::vector<std::pair<uint64_t, int>>& moved)> on_redirected;
  // A process's execs so far (SampleSource::exec_count; nullopt: unknown),
  // read when a request is submitted and before each move_pages call of it:
  // a process that exec'd since has its old image's batches cancelled
  // (cancelled_exec) at once, not an interval later when the loop sees the
  // exec. Optional; called from worker threads.
  ExecCountFn exec_count;
};

class Mover {
 public:
  // (pid, count, pages, nodes, status, flags) -> as move_pages(2): 0, or -1
  // with errno, or (kernels since 4.17) the number of pages not migrated,
  // in which case some statuses may be left unwritten. The mover calls it
  // with flags MPOL_MF_MOVE to move, and with nodes == nullptr and flags 0
  // to ask where pages are (for statuses the kernel left unwritten).
  using MoveFn = std::function<long(pid_t, unsigned long, void**, const int*, int*, int)>;
  // Default fn: the real move_pages(2) (libnuma's numa_move_pages).
  explicit Mover(const MoverConfig& cfg, MoveFn fn = {});
  ~Mover();  // stops the workers after the queue drains (or abandon(): see below)
  Mover(const Mover&) = delete;
  Mover& operator=(const Mover&) = delete;

  // Queues a request; false (and counted: queue_overflows, and the pages as
  // dropped_queue_full of its key) when it does not fit in the queue, or as
  // abandoned after abandon(). Throws std::invalid_argument when huge or
  // from is neither empty nor one entry per page.
  bool submit(MoveRequest req);
  // Waits until everything queued so far is done.
  void wait_idle();
  // Drops every request not yet started (counted as abandoned), including
  // batches waiting for rate-limit tokens, lets the batches in flight (inside
  // move_pages) finish, and returns: used on SIGTERM. Later submits are
  // refused and counted as abandoned.
  void abandon();
  // The process exec'd: its addresses planned before mean nothing in the
  // new image. Drops its requests not yet started, including batches
  // waiting for rate-limit tokens and the stand-in retries of batches under
  // way (counted as cancelled_exec); a move_pages call already running
  // cannot be recalled and ends as the kernel answers it (EFAULT, ENOENT, or
  // moved: a page of the new image at an old address). Requests submitted
  // after the call are the new image's and run.
  void cancel_process(pid_t pid);

  // A copy of the accounting so far.
  MoverStats stats() const;
  // Its flows alone (stats().flows), without copying the rest.
  std::map<int, NodeFlow> flows() const;
  size_t queued_pages() const;
  // Ends a node's full mark (its owner saw room on it again, or chose to try
  // it again): pages go to it again first.
  void clear_full(int node);

 private:
  struct Queued {
    MoveRequest req;
    size_t next = 0;  // first page not yet taken into a batch
    std::optional<uint32_t> execs;  // the process's exec count at submit
    uint64_t base_pages_left() const;
  };
  struct Batch;
  void worker();
  bool take_batch(Batch* b);  // called with mu_ held
  void run_batch(Batch* b, MoveCounts* out, std::map<int, NodeFlow>* flows, uint64_t* calls, double* throttled_s);
  std::vector<int> move_call(pid_t pid, std::vector<void*>& addrs, const std::vector<int>& nodes, MoveCounts* out,
                             uint64_t* calls);
  // Waits for the tokens of a call for batch b: false when abandon() or a
  // cancel of b's process interrupts the wait.
  bool charge(const Batch& b, uint64_t bytes, double* throttled_s);
  int next_stand_in(int planned, size_t* next) const;  // called with mu_ held
  bool sleep_unless_stopped(double s);
  bool cancelled_since(const Batch& b) const;  // called with mu_ held
  bool execed_since(const Batch& b) const;     // called without mu_ (a map lookup)
  static thread_local const Batch* charging_;  // the batch this worker waits for tokens for

  MoverConfig cfg_;
  MoveFn fn_;
  std::unique_ptr<RateLimiter> limiter_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // queue not empty, or stopping
  std::condition_variable idle_cv_;  // a batch finished
  std::condition_variable sleep_cv_;  // abandon(), or a cancel: rate-limit waits look again
  std::deque<Queued> queue_;
  size_t queued_pages_ = 0;
  int in_flight_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;
  // cancel_process calls so far, and the pid's latest one's number, kept
  // while batches taken before it may still be under way.
  uint64_t cancels_ = 0;
  std::map<pid_t, uint64_t> cancelled_at_;
  MoverStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace mb
