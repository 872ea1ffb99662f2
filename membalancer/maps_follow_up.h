// A recorder times a process's maps change at the first maps call since it
// last read the maps (the BPF side's maps_changed). Read only every 0.5 s,
// a library swapped after an unrelated mmap in the same half second was
// timed at that mmap: the old library's samples between the two counted for
// the new one. The BPF side says when a process makes its first maps call
// since the last read (MB_PROC_MAPS), and the recorder reads its maps again
// soon, so the next change has its own time. Not sooner than kMinGapNs
// after the process's last read: a process that maps all the time is read
// at most that often (and, as the BPF side sends one event per read, sends
// no more events than that either).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace mb {

class MapsChangeFollowUp {
 public:
  static constexpr uint64_t kMinGapNs = 20 * 1000000ull;

  // p's maps were read at now_ns (the time taken before the read took the
  // BPF side's entry), whatever the reason: no follow-up is due for them.
  void looked(pid_t p, uint64_t now_ns) {
    last_read_[p] = now_ns;
    due_at_.erase(p);
  }
  // MB_PROC_MAPS: p's maps first changed at changed_ns since a read. A read
  // after that time has taken it already; else one is due now, or
  // kMinGapNs after the last.
  void changed(pid_t p, uint64_t changed_ns, uint64_t now_ns) {
    const auto last = last_read_.find(p);
    if (last != last_read_.end() && last->second > changed_ns) return;
    const uint64_t at = last == last_read_.end() ? now_ns : std::max(now_ns, last->second + kMinGapNs);
    due_at_.try_emplace(p, at);
  }
  void exited(pid_t p) {
    last_read_.erase(p);
    due_at_.erase(p);
  }
  // Nanoseconds until the next read is due (0: now; UINT64_MAX: none).
  uint64_t wait_ns(uint64_t now_ns) const {
    uint64_t w = UINT64_MAX;
    for (const auto& [p, at] : due_at_) w = std::min(w, at > now_ns ? at - now_ns : 0);
    return w;
  }
  // The processes to read now, taken out of the schedule.
  std::vector<pid_t> due(uint64_t now_ns) {
    std::vector<pid_t> out;
    for (auto it = due_at_.begin(); it != due_at_.end();) {
      if (it->second > now_ns) {
        ++it;
        continue;
      }
      out.push_back(it->first);
      it = due_at_.erase(it);
    }
    return out;
  }

 private:
  std::unordered_map<pid_t, uint64_t> last_read_;
  std::map<pid_t, uint64_t> due_at_;
};

}  // namespace mb
