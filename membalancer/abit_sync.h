// Keeps the helper module's pid set (one open /dev/membalancer_abit) equal to
// the tracked process set, in batched writes, without ever failing the run:
//  - dels first (they make room), then adds, in writes of at most 4096 bytes
//    cut at line boundaries (the module's limit: one mb_lock wait per write,
//    not per process);
//  - a write the module refuses is replayed one line per write, so that each
//    line's error is known: ESRCH/ENOENT is a process that already left (not
//    an error), anything else on an add (ENOSPC: the module's 4096 pids per
//    file) leaves that process unscanned and counts it in refused();
//  - EINTR (a signal while the module waited for its lock) is retried.
// Refused processes are retried in a sync that deletes some pid (ENOSPC) or
// in every sync (other errors); each is counted once while it stays refused.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mb {

class AbitSync {
 public:
  // One write() on the module's file: bytes written or -errno.
  using WriteFn = std::function<long(const char* buf, size_t len)>;
  explicit AbitSync(WriteFn write, size_t max_write = 4096) : write_(std::move(write)), max_write_(max_write) {}

  // Makes the module's set equal to `want` (the tracked processes).
  // `again`: processes to add even if the module has their pid already
  // (fork events: a new process may have reused a pid whose exit was not
  // seen; the module tells the two apart). `resync`: add every wanted pid
  // again (process events were lost).
  void sync(const std::vector<pid_t>& want, const std::vector<pid_t>& again = {}, bool resync = false);

  // Processes the module could not take, cumulative (each refusal once).
  uint64_t refused() const { return refused_total_; }
  // Tracked processes not scanned right now because the module refused them.
  size_t unscanned() const { return refused_.size(); }
  // Pids the module has, as far as this side knows.
  const std::set<pid_t>& scanned() const { return have_; }
  uint64_t writes() const { return writes_; }

 private:
  long write_retrying(const std::string& buf);
  void send(const std::vector<std::string>& lines);
  void apply(const std::string& line, long result);

  WriteFn write_;
  size_t max_write_;
  std::set<pid_t> have_;
  std::map<pid_t, int> refused_;  // wanted, refused by the module: errno
  bool full_ = false;         // ENOSPC seen in this sync: no more adds
  uint64_t refused_total_ = 0;
  uint64_t writes_ = 0;
};

}  // namespace mb
