#include "membalancer/recorded_images.h"

#include "membalancer/proc.h"

#include <algorithm>
#include <iterator>
#include <tuple>

namespace mb {

ProcessImage RecordedImages::read(pid_t p) const {
  ProcessImage image;
  // Taken first: a change while /proc is read is in what it shows, or
  // timed for the next read.
  if (take_maps_changed_) image.maps_changed_ns = take_maps_changed_(p);
  image.name = process_name(p);
  image.maps = std::make_shared<const std::vector<ProfileMap>>(read_proc_maps(p));
  return image;
}

ProcessImage RecordedImages::at_fork(pid_t child, pid_t parent) const {
  const ProcessImage* from = find(parent);
  if (from && !from->maps->empty()) return *from;
  ProcessImage image = read(child);
  if (image.name.empty()) image.name = from && !from->name.empty() ? from->name : "?";
  return image;
}

void RecordedImages::put(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProfileProcessEvent ev,
                         const ProcessImage& image) {
  w.add_process(time_ns, static_cast<uint32_t>(p), static_cast<uint32_t>(parent), ev, image.name);
  if (!image.maps->empty()) put_maps(w, time_ns, p, image.maps, false);
}

void RecordedImages::put_maps(ProfileWriter& w, uint64_t time_ns, pid_t p,
                              const std::shared_ptr<const std::vector<ProfileMap>>& maps, bool change,
                              uint64_t effect_ns) {
  // Read while p maps it (at a fork, p's parent's maps are p's too).
  for (const ProfileMap& m : *maps)
    if (m.inode && described_.insert({m.dev, m.inode}).second) w.add_file(read_mapped_file(p, m));
  auto before = written_.find(p);
  if (change && before != written_.end()) {
    // Both sorted by start: what is in one only.
    std::vector<ProfileMap> removed, added;
    auto by_start = [](const ProfileMap& a, const ProfileMap& b) {
      return std::tie(a.start, a.end, a.offset, a.prot, a.path, a.dev, a.inode) <
             std::tie(b.start, b.end, b.offset, b.prot, b.path, b.dev, b.inode);
    };
    const std::vector<ProfileMap>& was = *before->second.maps;
    std::set_difference(was.begin(), was.end(), maps->begin(), maps->end(), std::back_inserter(removed), by_start);
    std::set_difference(maps->begin(), maps->end(), was.begin(), was.end(), std::back_inserter(added), by_start);
    // In time order with the maps before it, whatever the system call's
    // time said (a change read by the look before, an exec since).
    effect_ns = effect_ns ? std::min(std::max(effect_ns, before->second.time_ns), time_ns) : time_ns;
    w.add_maps_change(time_ns, static_cast<uint32_t>(p), removed, added, effect_ns);
    written_[p] = {maps, effect_ns};
  } else {
    w.add_maps(time_ns, static_cast<uint32_t>(p), *maps);
    written_[p] = {maps, time_ns};
  }
}

void RecordedImages::write(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProfileProcessEvent ev,
                           ProcessImage image, const std::string& written_name) {
  if (written_name.empty()) {
    put(w, time_ns, p, parent, ev, image);
  } else {
    ProcessImage shown{written_name, 0, image.maps};
    put(w, time_ns, p, parent, ev, shown);
  }
  ProcessImage& kept = images_[p];
  if (!image.name.empty()) kept.name = std::move(image.name);
  kept.maps = std::move(image.maps);
}

void RecordedImages::write_fork(ProfileWriter& w, uint64_t time_ns, pid_t child, pid_t parent) {
  ProcessImage image = at_fork(child, parent);
  if (find(child)) put(w, time_ns, child, parent, kProcFork, image);
  else write(w, time_ns, child, parent, kProcFork, std::move(image));
}

bool RecordedImages::update(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent, ProcessImage seen) {
  ProcessImage& kept = images_[p];
  bool written = false;
  if (!seen.name.empty() && seen.name != kept.name) {
    w.add_process(time_ns, static_cast<uint32_t>(p), static_cast<uint32_t>(parent), kProcRename, seen.name);
    kept.name = std::move(seen.name);
    written = true;
  }
  if (!seen.maps->empty() && *seen.maps != *kept.maps) {
    // With a rename (an exec whose event was lost) the new program's maps
    // start where its name does, at the look.
    put_maps(w, time_ns, p, seen.maps, true, written ? 0 : seen.maps_changed_ns);
    kept.maps = std::move(seen.maps);
    written = true;
  }
  return written;
}

RecordedImages::Look RecordedImages::look(ProfileWriter& w, uint64_t time_ns, pid_t p, pid_t parent,
                                          ProcessImage seen, ProfileProcessEvent ev,
                                          const std::string& written_name) {
  if (find(p)) return update(w, time_ns, p, parent, std::move(seen)) ? Look::kChanged : Look::kUnchanged;
  if (seen.name.empty()) seen.name = "?";
  write(w, time_ns, p, parent, ev, std::move(seen), written_name);
  return Look::kNew;
}

const ProcessImage* RecordedImages::find(pid_t p) const {
  auto it = images_.find(p);
  return it == images_.end() ? nullptr : &it->second;
}

}  // namespace mb
