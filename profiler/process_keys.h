// Process keys: small numbers standing for the process a sample belongs to,
// for the tables keyed by (process, page) or (process, address) that the
// report and the heatmap build. With the profile's processes, a key is one
// span of a tgid (ProfileProcesses): a reused pid or an exec'd program has
// its own, so the coinciding addresses of two programs never add up. Without
// them (samples alone), the key is the tgid. Split at swaps, a key is one
// part of a span between two swaps (ProfileProcesses::Span::swaps), so that
// an address's samples before and after a library was swapped there are
// looked up (named, symbolised) each in its own mapping; page_owner() joins
// the pages of an address whose mapping did not change back into one. The
// report and the heatmap key their pages the same way through it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "membalancer/flat_map.h"
#include "membalancer/profile_file.h"

namespace mb::prof {

class ProcessKeys {
 public:
  struct Who {
    uint32_t tgid;
    int64_t span;      // of procs()->spans(), -1 when the profile knows nothing of tgid
    uint64_t time_ns;  // a sample's time: lookups (name, mapping, symbol) are at it
    uint32_t program;  // the first key of its span: the same for all its parts
    uint32_t part;     // of its span's parts between swaps, by time (0 unless split)
  };

  ProcessKeys() = default;  // keys are tgids
  explicit ProcessKeys(std::shared_ptr<const ProfileProcesses> procs, bool split_at_swaps = false)
      : procs_(std::move(procs)), split_(split_at_swaps) {}

  // The key of tgid's sample at time_ns. Keys are handed out in the order of
  // their first sample; a span seen again keeps its key. Samples come in runs
  // of one process: the last answer is reused while it holds.
  uint32_t key(uint32_t tgid, uint64_t time_ns) {
    if (tgid == last_tgid_ && time_ns >= lo_ && time_ns < hi_) return last_key_;
    return lookup(tgid, time_ns);
  }
  Who who(uint64_t key) const {
    return procs_ ? who_[key] : Who{static_cast<uint32_t>(key), -1, UINT64_MAX, static_cast<uint32_t>(key), 0};
  }
  // The key tgid's samples at time_ns were given, or -1 when none was.
  int64_t find(uint32_t tgid, uint64_t time_ns) const;
  // The mapping holding addr in key's part of its program (nullptr: none).
  const ProfileMap* mapping(uint32_t key, uint64_t addr) const;
  // The key that key's page at addr counts under: the first part of its
  // program (by time) whose mapping at addr has the same contents
  // (ProfileProcesses::same_contents), so that only an address whose mapping
  // gave way to other contents (a library swapped there) is a page per part;
  // a heap page stays one. key itself unless split. Answers for the keys
  // handed out so far: called after the last key().
  uint32_t page_owner(uint32_t key, uint64_t addr) const;
  // Whether some program's samples fell in more than one part.
  bool any_split() const { return any_split_; }
  bool split_at_swaps() const { return split_; }
  size_t size() const { return who_.size(); }  // keys handed out (with the profile's processes)
  const ProfileProcesses* procs() const { return procs_.get(); }
  const std::shared_ptr<const ProfileProcesses>& shared_procs() const { return procs_; }

 private:
  struct Cursor {  // a tgid's current span: its time range and key
    uint64_t lo = 0, hi = 0;
    uint32_t key = 0;
  };
  struct Place {  // where a time of a tgid falls: its span, part and the part's time range
    int64_t span = -1;
    size_t part = 0;
    uint64_t lo = 0, hi = UINT64_MAX;
  };
  Place place(uint32_t tgid, uint64_t time_ns) const;
  uint32_t lookup(uint32_t tgid, uint64_t time_ns);
  void assign(uint32_t tgid, uint64_t time_ns, Cursor* c);

  std::shared_ptr<const ProfileProcesses> procs_;
  bool split_ = false;
  std::vector<Who> who_;
  FlatMap<uint64_t, Cursor, U64KeyOps> cursors_;
  std::map<std::tuple<uint32_t, int64_t, size_t>, uint32_t> keys_;  // (tgid, span, part) -> key
  std::map<std::pair<uint32_t, int64_t>, uint32_t> programs_;       // (tgid, span) -> its first key
  std::map<uint32_t, std::vector<uint32_t>> parts_;                 // program -> its keys, by part
  bool any_split_ = false;
  uint64_t last_tgid_ = ~0ULL, lo_ = 1, hi_ = 0;  // the last key holds for last_tgid_'s times [lo_, hi_)
  uint32_t last_key_ = 0;
};

}  // namespace mb::prof
