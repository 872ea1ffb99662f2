// After an exec the new program's loader maps its libraries over the next
// milliseconds, longer on a slow or loaded machine: a recorder that read the
// maps at the exec looks at them again at growing delays, a few times, while
// the program lives (so a short program's library code is not [unmapped]).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

namespace mb {

class ExecFollowUp {
 public:
  // Looks after the exec: 10, 30, 70, 150 and 310 ms (each gap twice the last).
  static constexpr uint64_t kFirstNs = 10 * 1000000ull;
  static constexpr unsigned kLooks = 5;

  void exec(pid_t p, uint64_t now_ns) { next_[p] = {now_ns + kFirstNs, kFirstNs, 1}; }
  void exited(pid_t p) { next_.erase(p); }
  bool empty() const { return next_.empty(); }
  // Nanoseconds until the next look is due (0: now; UINT64_MAX: none).
  uint64_t wait_ns(uint64_t now_ns) const {
    uint64_t w = UINT64_MAX;
    for (const auto& [p, n] : next_) w = std::min(w, n.at > now_ns ? n.at - now_ns : 0);
    return w;
  }
  // The processes to look at now; each is scheduled again or, after its
  // last look, forgotten.
  std::vector<pid_t> due(uint64_t now_ns) {
    std::vector<pid_t> out;
    for (auto it = next_.begin(); it != next_.end();) {
      Next& n = it->second;
      if (n.at > now_ns) {
        ++it;
        continue;
      }
      out.push_back(it->first);
      if (n.looks == kLooks) {
        it = next_.erase(it);
        continue;
      }
      n.gap *= 2;
      n.at += n.gap;
      ++n.looks;
      ++it;
    }
    return out;
  }

 private:
  struct Next {
    uint64_t at, gap;
    unsigned looks;
  };
  std::map<pid_t, Next> next_;
};

}  // namespace mb
