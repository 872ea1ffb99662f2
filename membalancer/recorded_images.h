// What a recorder (profiler record, membalancer --record) last wrote of each
// process it follows: its name and maps. A fork is written with its
// parent's: a child's address space and name at its fork are its parent's,
// and a child read once its fork event is taken in may have exec'd already
// (on a slow or busy machine), which would date its new program back to the
// fork. Its exec event then writes the new program's. A first sighting, a
// fork and an exec write a process's whole maps; a look that finds them
// changed writes the change from the maps last written of it (a maps
// change). Each mapped file is described once (device, inode, modification
// time, build-id), before the first maps that hold it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "membalancer/profile_file.h"

namespace mb {

struct ProcessImage {
  std::string name;  // "" when the process was gone
  // When its maps first changed since they were last read (the system
  // call's time, taken before reading them); 0 when not known.
  uint64_t maps_changed_ns = 0;
  // Shared by a parent and the children forked from it since; never null.
  std::shared_ptr<const std::vector<ProfileMap>> maps = std::make_shared<const std::vector<ProfileMap>>();
};

class RecordedImages {
 public:
  // take_maps_changed(p): when p's maps first changed since the last call
  // for p (0: not known), as BpfCollector::take_maps_changed_ns; none: every
  // maps change is timed at the look that found it.
  using TakeMapsChanged = std::function<uint64_t(pid_t)>;
  explicit RecordedImages(TakeMapsChanged take_maps_changed = {}) : take_maps_changed_(std::move(take_maps_changed)) {}
  // What /proc shows of p now (no name and no maps: gone), with when its
  // maps changed since the last read.
  ProcessImage read(pid_t p) const;
  // Writes p's process record (event `ev`, image.name, or written_name when
  // given) and image.maps when there are some, at time_ns, and remembers
  // them; an empty name keeps the name remembered.
  void write(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProfileProcessEvent ev, ProcessImage image,
             const std::string& written_name = {});
  // Writes child's fork at time_ns with its image at the fork (its parent's),
  // and remembers that image, unless the child is known already: a look
  // took it in while its fork event waited, and what it saw, later than the
  // fork, stays (the fork record still comes first in time).
  void write_fork(ProfileWriter& w, uint64_t time_ns, pid_t child, pid_t parent);
  // A look at a process written before: a new name is written as a rename,
  // changed maps as a maps change, at time_ns (a gone process changes
  // nothing). The change takes effect at seen.maps_changed_ns when known
  // (not before the maps last written of p, and not with a rename: an exec
  // missed is timed at the look). Returns whether anything was written.
  bool update(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProcessImage seen);
  // A look at p (seen: what /proc shows now): when p is new, written whole
  // as write() does (event `ev`, named "?" when it was gone), else as
  // update().
  enum class Look { kNew, kChanged, kUnchanged };
  Look look(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProcessImage seen,
            ProfileProcessEvent ev = kProcSeen, const std::string& written_name = {});
  const ProcessImage* find(pid_t p) const;
  void erase(pid_t p) {
    images_.erase(p);
    written_.erase(p);
  }

 private:
  // child's image at its fork: its parent's as last written, or, a parent
  // never read (or gone when read), what /proc shows of the child now (named
  // "?" when it is gone too).
  ProcessImage at_fork(pid_t child, pid_t parent) const;
  void put(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProfileProcessEvent ev,
           const ProcessImage& image);
  // Writes p's maps (whole, or as the change from the maps last written of
  // p when `change`), after the files of them not described yet.
  // A change takes effect at effect_ns (0: at time_ns).
  void put_maps(ProfileWriter& w, uint64_t time_ns, pid_t p, const std::shared_ptr<const std::vector<ProfileMap>>& maps,
                bool change, uint64_t effect_ns = 0);

  TakeMapsChanged take_maps_changed_;
  std::unordered_map<pid_t, ProcessImage> images_;
  // The maps last written of each process (what a maps change is relative
  // to) and when they took effect: a fork's maps taken in after a look are
  // not the ones kept.
  struct Written {
    std::shared_ptr<const std::vector<ProfileMap>> maps;
    uint64_t time_ns = 0;
  };
  std::unordered_map<pid_t, Written> written_;
  std::set<std::pair<uint64_t, uint64_t>> described_;  // (dev, inode) of the files written
};

}  // namespace mb
