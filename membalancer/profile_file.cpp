#include "membalancer/profile_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <elfutils/libdwelf.h>
#include <libelf.h>
#include <zlib.h>

#include <algorithm>
#include <set>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <iterator>
#include <tuple>
#include <unordered_map>
#include <sstream>

#include "membalancer/clock.h"
#include "membalancer/error.h"
#include "membalancer/report.h"
#include "membalancer/safe_file.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

uint32_t crc_of(const void* p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  const auto* b = static_cast<const Bytef*>(p);
  while (n > 0) {  // zlib takes uInt lengths
    uInt step = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = crc32(c, b, step);
    b += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}

size_t align8(size_t n) { return (n + 7) & ~size_t{7}; }

// Little builders and readers for chunk payloads.
struct Out {
  std::string b;
  template <typename T>
  void put(T v) { b.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
  void str(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    b += s;
    b.append(align8(b.size()) - b.size(), '\0');
  }
};

struct In {
  const uint8_t* p;
  size_t n, at = 0;
  bool bad = false;
  template <typename T>
  T get() {
    T v{};
    if (at + sizeof(T) > n) { bad = true; return v; }
    std::memcpy(&v, p + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str() {
    uint32_t len = get<uint32_t>();
    if (bad || at + len > n) { bad = true; return {}; }
    std::string s(reinterpret_cast<const char*>(p + at), len);
    at = align8(at + len);
    return s;
  }
};

std::string encode_topology(const Topology& t) {
  Out o;
  o.put<uint32_t>(static_cast<uint32_t>(t.nodes.size()));
  o.put<uint32_t>(0);
  for (const auto& n : t.nodes) {
    o.put<int32_t>(n.id);
    o.put<uint32_t>(static_cast<uint32_t>(n.cpus.size()));
    o.put<uint64_t>(n.mem_total_bytes);
    o.put<uint32_t>(static_cast<uint32_t>(n.distance.size()));
    o.put<uint32_t>(0);
    for (int c : n.cpus) o.put<int32_t>(c);
    for (auto [to, d] : n.distance) {
      o.put<int32_t>(to);
      o.put<int32_t>(d);
    }
    o.b.append(align8(o.b.size()) - o.b.size(), '\0');
  }
  return o.b;
}

// The recorded topology; "" when it reads well, else what is wrong with it.
// Values no machine has (a negative node id or CPU, the same node twice,
// more memory than 2^62 bytes, a distance outside 0..255) are damage: taken
// as they are, they made whatif simulate nonsense.
std::string decode_topology(In& in, Topology* t) {
  constexpr int kMaxNodeId = 1023;               // the kernel's MAX_NUMNODES at most
  constexpr uint64_t kMaxMemory = 1ULL << 62;    // per node and in all
  t->machine = "the recorded machine";
  uint32_t count = in.get<uint32_t>();
  in.get<uint32_t>();
  if (in.bad) return "topology: cut short";
  if (count > 4096) return "topology: " + std::to_string(count) + " nodes (at most 4096)";
  uint64_t memory = 0;
  std::set<int> ids;
  for (uint32_t i = 0; i < count && !in.bad; ++i) {
    NumaNode n;
    n.id = in.get<int32_t>();
    uint32_t ncpus = in.get<uint32_t>();
    n.mem_total_bytes = in.get<uint64_t>();
    uint32_t ndist = in.get<uint32_t>();
    in.get<uint32_t>();
    if (in.bad) return "topology: cut short";
    const std::string node = "topology: node " + std::to_string(n.id);
    if (n.id < 0 || n.id > kMaxNodeId) return node + ": want a node id from 0 to " + std::to_string(kMaxNodeId);
    if (!ids.insert(n.id).second) return node + " appears twice";
    if (n.mem_total_bytes > kMaxMemory || (memory += n.mem_total_bytes) > kMaxMemory)
      return node + ": " + std::to_string(n.mem_total_bytes) + " bytes of memory (at most 2^62 in all)";
    if (ncpus > (1u << 20) || ndist > 4096) return node + ": " + std::to_string(ncpus) + " CPUs, " +
                                                   std::to_string(ndist) + " distances (too many)";
    for (uint32_t c = 0; c < ncpus; ++c) {
      int cpu = in.get<int32_t>();
      if (in.bad) return "topology: cut short";
      if (cpu < 0 || cpu >= (1 << 20)) return node + ": CPU " + std::to_string(cpu) + " (want 0 to 1048575)";
      n.cpus.push_back(cpu);
      if (t->cpu_node.size() <= static_cast<size_t>(cpu)) t->cpu_node.resize(cpu + 1, -1);
      t->cpu_node[cpu] = n.id;
    }
    for (uint32_t d = 0; d < ndist; ++d) {
      int to = in.get<int32_t>();
      const int dist = in.get<int32_t>();
      if (in.bad) return "topology: cut short";
      if (dist < 0 || dist > 255)
        return node + ": distance " + std::to_string(dist) + " to node " + std::to_string(to) + " (want 0 to 255)";
      n.distance[to] = dist;
    }
    in.at = align8(in.at);
    t->nodes.push_back(std::move(n));
  }
  return in.bad ? "topology: cut short" : "";
}

}  // namespace

// ---- /proc/PID/maps ----------------------------------------------------------

std::vector<ProfileMap> parse_proc_maps(const std::string& text) {
  std::vector<ProfileMap> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // start-end perms offset major:minor inode [path]
    unsigned long long s, e, off, ino = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {};
    int consumed = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu%n", &s, &e, perms, &off, &major, &minor, &ino,
               &consumed) < 4)
      continue;
    ProfileMap m;
    m.start = s;
    m.end = e;
    m.offset = off;
    if (ino) m.dev = makedev(major, minor), m.inode = ino;
    if (perms[0] == 'r') m.prot |= kMapRead;
    if (perms[1] == 'w') m.prot |= kMapWrite;
    if (perms[2] == 'x') m.prot |= kMapExec;
    if (perms[3] == 's') m.prot |= kMapShared;
    if (consumed > 0 && static_cast<size_t>(consumed) < line.size()) m.path = trim(line.substr(consumed));
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const ProfileMap& a, const ProfileMap& b) { return a.start < b.start; });
  return out;
}

std::vector<ProfileMap> read_proc_maps(pid_t pid, const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(pid) + "/maps");
  if (!text) return {};
  return parse_proc_maps(*text);
}

uint64_t mtime_ns(const struct stat& st) {
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL + static_cast<uint64_t>(st.st_mtim.tv_nsec);
}

std::string read_build_id(int fd) {
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf) return {};
  const void* bits = nullptr;
  const ssize_t n = dwelf_elf_gnu_build_id(elf, &bits);
  std::string id = n > 0 && bits ? std::string(static_cast<const char*>(bits), static_cast<size_t>(n)) : "";
  elf_end(elf);
  return id;
}

ProfileFile read_mapped_file(pid_t pid, const ProfileMap& m, const std::string& proc_root) {
  ProfileFile f;
  f.dev = m.dev;
  f.inode = m.inode;
  char range[64];
  std::snprintf(range, sizeof range, "/%llx-%llx", static_cast<unsigned long long>(m.start),
                static_cast<unsigned long long>(m.end));
  // Read, never written: O_NONBLOCK so that a FIFO put at the path cannot hang.
  const int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  int fd = open((proc_root + "/" + std::to_string(pid) + "/map_files" + range).c_str(), flags);
  // A file deleted since it was mapped: another of its name is not it.
  bool deleted = false;
  ProfileProcesses::mapped_file(m, &deleted);
  if (fd < 0 && !deleted) fd = open(m.path.c_str(), flags);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    f.mtime_ns = mtime_ns(st);
    f.size = static_cast<uint64_t>(st.st_size);
    f.build_id = read_build_id(fd);
    f.path = m.path;
  }
  if (fd >= 0) close(fd);
  return f;
}

// ---- maps as changes ---------------------------------------------------------------------

size_t ProfileInfo::MapHash::operator()(const ProfileMap& m) const {
  size_t h = std::hash<std::string>()(m.path);
  for (uint64_t v : {m.start, m.end, m.offset, m.dev, m.inode, uint64_t{m.prot}}) h = (h ^ v) * 0x100000001b3ULL;
  return h;
}

uint32_t ProfileInfo::mapping_id(const ProfileMap& m) {
  auto [it, fresh] = mapping_ids_.try_emplace(m, static_cast<uint32_t>(mappings.size()));
  if (fresh) mappings.push_back(m);
  return it->second;
}

void ProfileInfo::add_maps(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& maps) {
  std::map<uint64_t, uint32_t>& now = current_[tgid];
  ProfileMapsChange c{time_ns, tgid, true, {}, {}};
  std::map<uint64_t, uint32_t> next;
  for (const ProfileMap& m : maps) next[m.start] = mapping_id(m);
  // Held as the change from the maps before: a mapping written again as it
  // was costs nothing more.
  for (auto [start, id] : now)
    if (auto it = next.find(start); it == next.end() || it->second != id) c.removed.push_back(id);
  for (auto [start, id] : next)
    if (auto it = now.find(start); it == now.end() || it->second != id) c.added.push_back(id);
  now = std::move(next);
  maps_changes.push_back(std::move(c));
}

std::string ProfileInfo::add_maps_change(uint64_t time_ns, uint32_t tgid,
                                         const std::vector<std::pair<uint64_t, uint64_t>>& removed,
                                         const std::vector<ProfileMap>& added) {
  const std::string who = "maps change of process " + std::to_string(tgid);
  auto cur = current_.find(tgid);
  if (cur == current_.end()) return who + ": no maps of it before";
  std::map<uint64_t, uint32_t> next = cur->second;  // applied only when all of it is consistent
  ProfileMapsChange c{time_ns, tgid, false, {}, {}};
  auto range = [](uint64_t start, uint64_t end) { return format_hex(start) + "-" + format_hex(end); };
  for (auto [start, end] : removed) {
    auto it = next.find(start);
    if (it == next.end() || mappings[it->second].end != end)
      return who + ": removes " + range(start, end) + ", which it does not map";
    c.removed.push_back(it->second);
    next.erase(it);
  }
  for (const ProfileMap& m : added) {
    auto after = next.lower_bound(m.start);
    const bool over = m.end <= m.start || (after != next.end() && after->first < m.end) ||
                      (after != next.begin() && mappings[std::prev(after)->second].end > m.start);
    if (over) return who + ": adds " + range(m.start, m.end) + " over a mapping it has";
    const uint32_t id = mapping_id(m);
    next[m.start] = id;
    c.added.push_back(id);
  }
  cur->second = std::move(next);
  maps_changes.push_back(std::move(c));
  return "";
}

std::vector<ProfileMap> ProfileInfo::last_maps(uint32_t tgid) const {
  std::vector<ProfileMap> out;
  if (auto it = current_.find(tgid); it != current_.end())
    for (auto [start, id] : it->second) out.push_back(mappings[id]);
  return out;
}

// ---- losses ---------------------------------------------------------------------------

ProfileLosses profile_losses(const ProfileInfo& info) {
  ProfileLosses l;
  l.samples = info.samples_lost;
  if (!info.counters.empty()) {
    const auto& v = info.counters.back().values;
    auto at = [&](int c) { return static_cast<size_t>(c) < v.size() ? v[static_cast<size_t>(c)] : 0; };
    l.samples = std::max(l.samples, at(MB_CTR_SAMPLES_LOST));
    l.events = at(MB_CTR_EVENTS_LOST);
    l.untracked = at(MB_CTR_TRACKED_FULL);
  }
  return l;
}

std::string ProfileLosses::describe() const {
  std::string s;
  auto add = [&](uint64_t n, const char* one, const char* many, const char* why) {
    if (!n) return;
    s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + (n == 1 ? one : many) + " " + why;
  };
  add(samples, "sample", "samples", "lost (sample ring buffer full)");
  add(events, "process event", "process events", "lost (event ring buffer full)");
  add(untracked, "new process", "new processes", "not tracked (process table full)");
  return s;
}

// ---- writer ---------------------------------------------------------------------------

ProfileWriter::ProfileWriter(const std::string& path, const ProfileStart& start, bool force) : path_(path) {
  fd_ = open_output(path, force, kProfileMode);
  struct stat st;
  if (fstat(fd_, &st) == 0) dev_ = st.st_dev, ino_ = st.st_ino;
  try {
    write_start(start);
  } catch (...) {
    discard();  // no header-only file left behind
    throw;
  }
  buf_.reserve(kChunkRecords);
}

void ProfileWriter::discard() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buf_.clear();
  struct stat st;
  if (ino_ && lstat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_)
    unlink(path_.c_str());
}

void ProfileWriter::write_start(const ProfileStart& start) {
  ProfileHeaderDisk h{};
  std::memcpy(h.magic, kProfileMagic, sizeof(h.magic));
  h.version = kProfileVersion;
  h.header_bytes = kProfileHeaderBytes;
  h.start_realtime_ns = start.start_realtime_ns ? start.start_realtime_ns : clock_ns(CLOCK_REALTIME);
  h.start_monotonic_ns = start.start_monotonic_ns ? start.start_monotonic_ns : clock_ns(CLOCK_MONOTONIC);
  h.sampler_kind = start.sampler_kind;
  h.record_bytes = sizeof(mb_sample);
  std::strncpy(h.sampler, start.sampler.c_str(), sizeof(h.sampler) - 1);
  h.header_crc = crc_of(&h, offsetof(ProfileHeaderDisk, header_crc));
  write_all(&h, sizeof(h));
  std::string topo = encode_topology(start.topology);
  write_chunk(kChunkTopology, topo.data(), topo.size());
}

ProfileWriter::~ProfileWriter() {
  if (fd_ < 0) return;
  try {
    if (failed_.empty()) flush();
  } catch (...) {
  }
  close(fd_);
}

void ProfileWriter::write_all(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd_, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      SystemError e("writing " + path_, errno);
      failed_ = e.what();
      throw e;
    }
    c += w;
    n -= static_cast<size_t>(w);
    bytes_ += static_cast<uint64_t>(w);
  }
}

void ProfileWriter::write_chunk(uint32_t type, const void* payload, size_t bytes) {
  if (fd_ < 0) throw SystemError("writing " + path_ + ": the file is closed");
  // Nothing after a failed write: a chunk written whole after one cut short
  // would only be read as part of the damaged one.
  if (!failed_.empty()) throw SystemError(failed_);
  ProfileChunkHeader ch{type, crc_of(payload, bytes), bytes};
  static const char zeros[8] = {};
  size_t pad = align8(bytes) - bytes;
  iovec iov[3] = {{&ch, sizeof(ch)}, {const_cast<void*>(payload), bytes}, {const_cast<char*>(zeros), pad}};
  size_t total = sizeof(ch) + bytes + pad;
  ssize_t w = writev(fd_, iov, 3);
  if (w < 0 && errno != EINTR) {
    SystemError e("writing " + path_, errno);
    failed_ = e.what();
    throw e;
  }
  if (w == static_cast<ssize_t>(total)) {
    bytes_ += total;
    return;
  }
  // A short write (or EINTR): finish the rest piece by piece.
  size_t done = w > 0 ? static_cast<size_t>(w) : 0;
  bytes_ += done;
  for (auto& v : iov) {
    if (done >= v.iov_len) {
      done -= v.iov_len;
      continue;
    }
    write_all(static_cast<char*>(v.iov_base) + done, v.iov_len - done);
    done = 0;
  }
}

void ProfileWriter::add_samples(const mb_sample* s, size_t n) {
  for (size_t i = 0; i < n; ++i) add_sample(s[i]);
}

void ProfileWriter::flush() {
  if (buf_.empty()) return;
  write_chunk(kChunkSamples, buf_.data(), buf_.size() * sizeof(mb_sample));
  samples_ += buf_.size();
  buf_.clear();
}

void ProfileWriter::add_process(uint64_t time_ns, uint32_t tgid, uint32_t parent, ProfileProcessEvent event,
                                const std::string& name) {
  flush();
  Out o;
  o.put<uint64_t>(time_ns);
  o.put<uint32_t>(tgid);
  o.put<uint32_t>(parent);
  o.put<uint32_t>(event);
  o.str(name);
  write_chunk(kChunkProcess, o.b.data(), o.b.size());
}

namespace {

// A mapping as MAPS and maps changes store it.
void put_mapping(Out& o, const ProfileMap& m) {
  o.put<uint64_t>(m.start);
  o.put<uint64_t>(m.end);
  o.put<uint64_t>(m.offset);
  o.put<uint64_t>(m.dev);
  o.put<uint64_t>(m.inode);
  o.put<uint32_t>(m.prot);
  o.str(m.path);
}

ProfileMap get_mapping(In& in, uint32_t version) {
  ProfileMap e;
  e.start = in.get<uint64_t>();
  e.end = in.get<uint64_t>();
  e.offset = in.get<uint64_t>();
  if (version >= 2) {
    e.dev = in.get<uint64_t>();
    e.inode = in.get<uint64_t>();
  }
  e.prot = in.get<uint32_t>();
  e.path = in.str();
  return e;
}

}  // namespace

void ProfileWriter::add_maps(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& maps) {
  flush();
  Out o;
  o.put<uint64_t>(time_ns);
  o.put<uint32_t>(tgid);
  o.put<uint32_t>(static_cast<uint32_t>(maps.size()));
  for (const auto& m : maps) put_mapping(o, m);
  write_chunk(kChunkMaps, o.b.data(), o.b.size());
}

void ProfileWriter::add_maps_change(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& removed,
                                    const std::vector<ProfileMap>& added, uint64_t effect_ns) {
  flush();
  Out o;
  o.put<uint64_t>(time_ns);
  o.put<uint32_t>(tgid);
  o.put<uint32_t>(static_cast<uint32_t>(removed.size()));
  o.put<uint32_t>(static_cast<uint32_t>(added.size()));
  o.put<uint32_t>(0);
  o.put<uint64_t>(effect_ns ? effect_ns : time_ns);
  for (const auto& m : removed) {
    o.put<uint64_t>(m.start);
    o.put<uint64_t>(m.end);
  }
  for (const auto& m : added) put_mapping(o, m);
  write_chunk(kChunkMapsChange, o.b.data(), o.b.size());
}

void ProfileWriter::add_file(const ProfileFile& f) {
  flush();
  Out o;
  o.put<uint64_t>(f.dev);
  o.put<uint64_t>(f.inode);
  o.put<uint64_t>(f.mtime_ns);
  o.put<uint64_t>(f.size);
  o.str(f.build_id);
  o.str(f.path);
  write_chunk(kChunkFile, o.b.data(), o.b.size());
}

void ProfileWriter::add_counters(uint64_t time_ns, const std::array<uint64_t, MB_NR_COUNTERS>& counters) {
  flush();
  Out o;
  o.put<uint64_t>(time_ns);
  o.put<uint32_t>(MB_NR_COUNTERS);
  o.put<uint32_t>(0);
  for (uint64_t v : counters) o.put<uint64_t>(v);
  write_chunk(kChunkCounters, o.b.data(), o.b.size());
}

void ProfileWriter::finish(uint64_t end_time_ns, uint64_t samples_lost) {
  flush();
  Out o;
  o.put<uint64_t>(end_time_ns ? end_time_ns : clock_ns(CLOCK_MONOTONIC));
  o.put<uint64_t>(samples_);
  o.put<uint64_t>(samples_lost);
  write_chunk(kChunkEnd, o.b.data(), o.b.size());
  if (close(fd_) != 0) {
    fd_ = -1;
    throw SystemError("closing " + path_, errno);
  }
  fd_ = -1;
}

// ---- reader ---------------------------------------------------------------------------

ProfileReader::ProfileReader(const std::string& path) : path_(path) {
  // O_NONBLOCK: a FIFO must not hang the open; it is refused below.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw UsageError(path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw UsageError(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  info_.file_bytes = size_;
  if (size_ < kProfileHeaderBytes) {
    close(fd);
    throw UsageError(path + ": offset 0: not a membalancer profile (" + std::to_string(size_) +
                     " bytes, shorter than the 128-byte header)");
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw SystemError("mapping " + path, errno);
  data_ = static_cast<const uint8_t*>(p);
  madvise(p, size_, MADV_SEQUENTIAL);
  try {
    ProfileHeaderDisk h;
    std::memcpy(&h, data_, sizeof(h));
    if (std::memcmp(h.magic, kProfileMagic, sizeof(h.magic)) != 0)
      throw UsageError(path + ": offset 0: not a membalancer profile (bad magic)");
    if (h.version < kProfileOldestVersion || h.version > kProfileVersion)
      throw UsageError(path + ": offset 8: profile format version " + std::to_string(h.version) +
                       " is not supported (this program reads versions " + std::to_string(kProfileOldestVersion) +
                       " to " + std::to_string(kProfileVersion) + ")");
    if (h.header_crc != crc_of(&h, offsetof(ProfileHeaderDisk, header_crc)))
      throw UsageError(path + ": offset 0: the header is corrupt (checksum mismatch)");
    if (h.header_bytes != kProfileHeaderBytes || h.record_bytes != sizeof(mb_sample))
      throw UsageError(path + ": offset 12: unexpected header or record size");
    info_.version = h.version;
    info_.start_realtime_ns = h.start_realtime_ns;
    info_.start_monotonic_ns = h.start_monotonic_ns;
    info_.sampler_kind = static_cast<mb_sampler_kind>(h.sampler_kind);
    info_.sampler.assign(h.sampler, strnlen(h.sampler, sizeof(h.sampler)));
    index();
  } catch (...) {
    munmap(const_cast<uint8_t*>(data_), size_);
    throw;
  }
}

ProfileReader::~ProfileReader() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void ProfileReader::fail(uint64_t offset, const std::string& what) {
  if (!error_.empty()) return;
  error_offset_ = offset;
  error_ = "offset " + std::to_string(offset) + ": " + what;
}

// Walks the chunk headers once. Small chunks are decoded (and their
// checksums verified) now; sample chunks are checked when streamed.
void ProfileReader::index() {
  uint64_t off = kProfileHeaderBytes;
  bool first = true;
  while (off < size_) {
    if (info_.complete) {
      fail(off, "data after the end chunk");
      break;
    }
    if (size_ - off < kProfileChunkHeaderBytes) {
      fail(off, "truncated chunk header (" + std::to_string(size_ - off) + " bytes left)");
      break;
    }
    ProfileChunkHeader ch;
    std::memcpy(&ch, data_ + off, sizeof(ch));
    const uint64_t payload = off + kProfileChunkHeaderBytes;
    const uint32_t last_type = info_.version >= 3 ? kChunkMapsChange : info_.version >= 2 ? kChunkFile : kChunkEnd;
    if (ch.type < kChunkTopology || ch.type > last_type) {
      fail(off, "unknown chunk type " + std::to_string(ch.type) + " (corrupt file?)");
      break;
    }
    if (ch.bytes > size_ - payload) {
      fail(off, "truncated chunk: " + std::to_string(ch.bytes) + " payload bytes announced, " +
                    std::to_string(size_ - payload) + " present");
      break;
    }
    if (first && ch.type != kChunkTopology) {
      fail(off, "the first chunk is not the topology");
      break;
    }
    first = false;
    if (ch.type == kChunkSamples) {
      if (ch.bytes % sizeof(mb_sample) != 0) {
        fail(off, "sample chunk of " + std::to_string(ch.bytes) + " bytes is not a whole number of records");
        break;
      }
      sample_chunks_.push_back({off, ch.crc, ch.bytes, false});
      info_.samples += ch.bytes / sizeof(mb_sample);
    } else {
      if (crc_of(data_ + payload, ch.bytes) != ch.crc) {
        fail(off, "checksum mismatch in a chunk of type " + std::to_string(ch.type));
        break;
      }
      In in{data_ + payload, ch.bytes};
      bool stop = false;  // damage named already
      switch (ch.type) {
        case kChunkTopology:
          if (std::string why = decode_topology(in, &info_.topology); !why.empty()) {
            info_.topology = Topology{};  // nothing of a damaged topology is used
            fail(off, why);
            stop = true;
          }
          break;
        case kChunkProcess: {
          ProfileProcess p;
          p.time_ns = in.get<uint64_t>();
          p.tgid = in.get<uint32_t>();
          p.parent = in.get<uint32_t>();
          p.event = in.get<uint32_t>();
          p.name = in.str();
          if (!in.bad) info_.processes.push_back(std::move(p));
          break;
        }
        case kChunkMaps: {
          const uint64_t time_ns = in.get<uint64_t>();
          const uint32_t tgid = in.get<uint32_t>();
          uint32_t n = in.get<uint32_t>();
          std::vector<ProfileMap> maps;
          for (uint32_t i = 0; i < n && !in.bad; ++i) maps.push_back(get_mapping(in, info_.version));
          if (!in.bad) info_.add_maps(time_ns, tgid, maps);
          break;
        }
        case kChunkMapsChange: {
          const uint64_t time_ns = in.get<uint64_t>();
          const uint32_t tgid = in.get<uint32_t>();
          const uint32_t nremoved = in.get<uint32_t>(), nadded = in.get<uint32_t>();
          in.get<uint32_t>();
          // Its samples after the first system call that made it are of
          // its maps, though written (and seen) later; never after it was seen.
          const uint64_t effect_ns = info_.version >= 4 ? std::min(in.get<uint64_t>(), time_ns) : time_ns;
          std::vector<std::pair<uint64_t, uint64_t>> removed;
          std::vector<ProfileMap> added;
          for (uint32_t i = 0; i < nremoved && !in.bad; ++i) {
            const uint64_t start = in.get<uint64_t>();
            removed.emplace_back(start, in.get<uint64_t>());
          }
          for (uint32_t i = 0; i < nadded && !in.bad; ++i) added.push_back(get_mapping(in, info_.version));
          if (in.bad) break;
          if (std::string why = info_.add_maps_change(effect_ns, tgid, removed, added); !why.empty()) {
            fail(off, why);
            stop = true;
          }
          break;
        }
        case kChunkCounters: {
          ProfileCounters c;
          c.time_ns = in.get<uint64_t>();
          uint32_t n = in.get<uint32_t>();
          in.get<uint32_t>();
          for (uint32_t i = 0; i < n && i < 1024 && !in.bad; ++i) c.values.push_back(in.get<uint64_t>());
          if (!in.bad) {
            if (c.values.size() > MB_CTR_SAMPLES_LOST) info_.samples_lost = c.values[MB_CTR_SAMPLES_LOST];
            info_.counters.push_back(std::move(c));
          }
          break;
        }
        case kChunkFile: {
          ProfileFile f;
          f.dev = in.get<uint64_t>();
          f.inode = in.get<uint64_t>();
          f.mtime_ns = in.get<uint64_t>();
          f.size = in.get<uint64_t>();
          f.build_id = in.str();
          f.path = in.str();
          if (!in.bad) info_.files.push_back(std::move(f));
          break;
        }
        case kChunkEnd: {
          info_.end_time_ns = in.get<uint64_t>();
          in.get<uint64_t>();
          uint64_t lost = in.get<uint64_t>();
          if (!in.bad) {
            info_.complete = true;
            info_.samples_lost = lost;
          }
          break;
        }
      }
      if (stop) break;
      if (in.bad) {
        fail(off, "malformed payload in a chunk of type " + std::to_string(ch.type));
        break;
      }
    }
    off = payload + align8(ch.bytes);
  }
  if (error_.empty() && first)
    fail(size_, "the file ends right after its header: no topology, no samples (cut off)");
  if (error_.empty() && !info_.complete) fail(size_, "the file ends without an end chunk (recording interrupted?)");
  // The walk mapped the pages around every chunk header: none is needed now.
  madvise(const_cast<uint8_t*>(data_), size_, MADV_DONTNEED);
}

bool ProfileReader::check_chunk(size_t i) {
  Chunk& c = sample_chunks_[i];
  if (c.checked) return true;
  if (crc_of(data_ + c.offset + kProfileChunkHeaderBytes, c.bytes) != c.crc) {
    // The samples from here on are not delivered; correct the count.
    uint64_t rest = 0;
    for (size_t j = i; j < sample_chunks_.size(); ++j) rest += sample_chunks_[j].bytes / sizeof(mb_sample);
    info_.samples -= rest;
    sample_chunks_.resize(i);
    error_.clear();  // an earlier structural error lies after this one
    fail(c.offset, "checksum mismatch in a sample chunk (" + std::to_string(c.bytes / sizeof(mb_sample)) +
                       " records)");
    return false;
  }
  c.checked = true;
  return true;
}

void ProfileReader::release_before(uint64_t offset) {
  const uint64_t end = offset & ~(static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) - 1);
  if (end <= released_) return;
  // A private read-only file mapping: dropped pages read back from the file.
  madvise(const_cast<uint8_t*>(data_) + released_, end - released_, MADV_DONTNEED);
  released_ = end;
}

bool ProfileReader::Cursor::next(const mb_sample** samples, size_t* n) {
  if (i_ >= r_->sample_chunks_.size() || !r_->check_chunk(i_)) return false;
  if (i_ > 0) r_->release_before(r_->sample_chunks_[i_ - 1].offset);
  const Chunk& c = r_->sample_chunks_[i_++];
  *samples = reinterpret_cast<const mb_sample*>(r_->data_ + c.offset + kProfileChunkHeaderBytes);
  *n = c.bytes / sizeof(mb_sample);
  return true;
}

uint64_t ProfileReader::for_each_batch(const BatchFn& fn) {
  uint64_t total = 0;
  Cursor c = samples();
  const mb_sample* s;
  size_t n;
  while (c.next(&s, &n)) {
    fn(s, n);
    total += n;
  }
  return total;
}

// ---- processes and maps -------------------------------------------------------------

static const char kDeletedSuffix[] = " (deleted)";

std::string ProfileProcesses::mapped_file(const ProfileMap& m, bool* deleted) {
  const size_t n = sizeof(kDeletedSuffix) - 1;
  const bool gone = !m.path.empty() && m.path[0] == '/' && m.path.size() > n &&
                    m.path.compare(m.path.size() - n, n, kDeletedSuffix) == 0;
  if (deleted) *deleted = gone;
  return gone ? m.path.substr(0, m.path.size() - n) : m.path;
}


const ProfileFile* ProfileProcesses::file(const ProfileMap& m) const {
  if (!m.inode) return nullptr;
  auto it = files_.find({m.dev, m.inode});
  return it == files_.end() ? nullptr : it->second;
}

namespace {

// A tgid's maps changes in time order, each the change from the one before.
// A recorder writes them in time order but for a fork's maps taken in after
// a look at the child: then each one's maps are rebuilt in file order (the
// order of the changes) and compared anew in time order.
std::vector<ProfileMapsChange> in_time_order(std::vector<const ProfileMapsChange*> changes) {
  std::vector<ProfileMapsChange> out;
  const bool sorted = std::is_sorted(changes.begin(), changes.end(), [](const ProfileMapsChange* a, const ProfileMapsChange* b) {
    return a->time_ns < b->time_ns;
  });
  if (sorted) {
    for (const ProfileMapsChange* c : changes) out.push_back(*c);
    return out;
  }
  std::vector<std::pair<uint64_t, std::set<uint32_t>>> states;  // (time, maps), file order
  std::set<uint32_t> now;
  for (const ProfileMapsChange* c : changes) {
    if (c->whole) now.clear();
    for (uint32_t id : c->removed) now.erase(id);
    now.insert(c->added.begin(), c->added.end());
    states.emplace_back(c->time_ns, now);
  }
  std::stable_sort(states.begin(), states.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const std::set<uint32_t> none;
  for (size_t i = 0; i < states.size(); ++i) {
    const std::set<uint32_t>& before = i ? states[i - 1].second : none;
    ProfileMapsChange c{states[i].first, changes[0]->tgid, i == 0, {}, {}};
    std::set_difference(before.begin(), before.end(), states[i].second.begin(), states[i].second.end(),
                        std::back_inserter(c.removed));
    std::set_difference(states[i].second.begin(), states[i].second.end(), before.begin(), before.end(),
                        std::back_inserter(c.added));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

ProfileProcesses::ProfileProcesses(const ProfileInfo& info) {
  for (const ProfileFile& f : info.files) files_.emplace(std::make_pair(f.dev, f.inode), &f);
  // Each tgid's process events and maps changes, in time order (file order
  // among equal times; an event before maps of the same time: the recorder
  // writes a new name before the maps that go with it).
  std::map<uint32_t, std::vector<const ProfileMapsChange*>> changes_of;
  for (const auto& c : info.maps_changes) changes_of[c.tgid].push_back(&c);
  std::map<uint32_t, std::vector<ProfileMapsChange>> changes;
  for (auto& [tgid, v] : changes_of) changes[tgid] = in_time_order(std::move(v));
  struct Item {
    uint64_t time_ns;
    const ProfileProcess* proc;
    const ProfileMapsChange* maps;
  };
  std::map<uint32_t, std::vector<Item>> items;
  for (const auto& p : info.processes) items[p.tgid].push_back({p.time_ns, &p, nullptr});
  for (const auto& [tgid, v] : changes)
    for (const auto& c : v) items[tgid].push_back({c.time_ns, nullptr, &c});
  for (auto& entry : items) {
    // Named, not a structured binding: clang 14 (the fuzz build) cannot
    // capture those in the lambdas below.
    const uint32_t tgid = entry.first;
    std::vector<Item>& v = entry.second;
    std::stable_sort(v.begin(), v.end(), [](const Item& a, const Item& b) {
      return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : (a.proc != nullptr) > (b.proc != nullptr);
    });
    const uint32_t first = static_cast<uint32_t>(spans_.size());
    uint64_t exited_at = 0;
    bool alive = false;
    // The process's maps (mapping ids) and, for the span they were opened
    // in, the index of each one's open range.
    std::set<uint32_t> maps_now;
    std::unordered_map<uint32_t, size_t> open;
    size_t open_span = SIZE_MAX;
    auto new_span = [&](uint64_t begin, const std::string& name) {
      if (spans_.size() > first) spans_.back().end_ns = begin;
      Span sp;
      sp.tgid = tgid;
      sp.life = static_cast<uint32_t>(lives_.size() - 1);
      sp.begin_ns = spans_.size() > first ? begin : 0;
      sp.name = name;
      spans_.push_back(std::move(sp));
    };
    // A new process: it starts after the previous one's exit (its own first
    // event comes when the recorder notices it, later).
    auto new_life = [&](const Item& it, uint32_t parent, const std::string& name) {
      Life l;
      l.tgid = tgid;
      l.parent = parent;
      l.start_ns = it.time_ns;
      lives_.push_back(l);
      alive = true;
      new_span(lives_.size() > 1 && lives_[lives_.size() - 2].tgid == tgid && lives_[lives_.size() - 2].exited
                   ? std::min(exited_at + 1, it.time_ns)
                   : it.time_ns,
               name);
    };
    for (const Item& it : v) {
      if (const ProfileProcess* p = it.proc) {
        if (p->event == kProcExit) {
          if (!alive) new_life(it, p->parent, p->name);
          if (spans_.back().name.empty()) spans_.back().name = p->name;
          lives_.back().exited = true;
          exited_at = it.time_ns;
          alive = false;
        } else if (!alive) {
          new_life(it, p->parent, p->name);
          spans_.back().before_command = p->event == kProcCommand;
        } else {
          if (p->parent && !lives_.back().parent) lives_.back().parent = p->parent;
          // The kernel's exec event: a new address space even under the
          // same name (a program that execs itself, sh running sh). The
          // profiler's held child changes only by running the command: any
          // news of it is that exec (its event lost, a rename under the
          // command's own name).
          const bool exec = (p->event == kProcExec && spans_.back().has_maps) || spans_.back().before_command;
          if (exec) {
            new_span(it.time_ns, p->name.empty() ? spans_.back().name : p->name);
          } else if (!p->name.empty() && p->name != spans_.back().name) {
            if (spans_.back().name.empty() && !spans_.back().has_maps) spans_.back().name = p->name;
            else new_span(it.time_ns, p->name);  // an exec (or a rename)
          }
        }
      } else {
        // A remap within one program (the loader placing a library over its
        // reservation, dlopen, a JIT) is no new span: the same memory would
        // count as two processes' pages. mapping() asks for the mapping of
        // the sample's time first.
        if (!alive) new_life(it, 0, "");
        const ProfileMapsChange& c = *it.maps;
        Span& sp = spans_.back();
        sp.has_maps = true;
        const size_t here = spans_.size() - 1;
        if (c.whole) maps_now.clear();
        for (uint32_t id : c.removed) {
          maps_now.erase(id);
          if (auto o = open.find(id); o != open.end() && open_span == here) {
            sp.maps[o->second].to_ns = c.time_ns;
            open.erase(o);
          }
        }
        maps_now.insert(c.added.begin(), c.added.end());
        // A span's first maps are all its process's maps then; the ranges
        // of the span before end with it.
        if (open_span != here) open.clear(), open_span = here;
        for (uint32_t id : maps_now)
          if (open.try_emplace(id, sp.maps.size()).second) sp.maps.push_back({&info.mappings[id], c.time_ns, UINT64_MAX});
      }
    }
    for (size_t i = first; i < spans_.size(); ++i) {
      Span& sp = spans_[i];
      std::stable_sort(sp.maps.begin(), sp.maps.end(), [](const MapRange& a, const MapRange& b) {
        return a.map->start != b.map->start ? a.map->start < b.map->start : a.from_ns < b.from_ns;
      });
      uint64_t high = 0;
      for (const MapRange& r : sp.maps) sp.max_end.push_back(high = std::max(high, r.map->end));
      // A mapping gone, and other contents at its addresses later.
      for (const MapRange& r : sp.maps) {
        if (r.to_ns == UINT64_MAX) continue;
        size_t j = std::lower_bound(sp.maps.begin(), sp.maps.end(), r.map->end,
                                    [](const MapRange& x, uint64_t end) { return x.map->start < end; }) - sp.maps.begin();
        while (j-- > 0 && sp.max_end[j] > r.map->start) {
          const MapRange& o = sp.maps[j];
          if (o.from_ns >= r.to_ns && o.map->end > r.map->start && !same_contents(*o.map, *r.map)) {
            sp.swaps.push_back(r.to_ns);
            break;
          }
        }
      }
      std::sort(sp.swaps.begin(), sp.swaps.end());
      sp.swaps.erase(std::unique(sp.swaps.begin(), sp.swaps.end()), sp.swaps.end());
    }
    by_tgid_[tgid] = {first, static_cast<uint32_t>(spans_.size() - first)};
  }
}

size_t ProfileProcesses::mappings_held() const {
  size_t n = 0;
  for (const Span& sp : spans_) n += sp.maps.size();
  return n;
}

int64_t ProfileProcesses::span_at(uint32_t tgid, uint64_t time_ns) const {
  auto it = by_tgid_.find(tgid);
  if (it == by_tgid_.end()) return -1;
  auto b = spans_.begin() + it->second.first, e = b + it->second.second;
  // The last span beginning at or before time_ns (the first begins at 0).
  auto s = std::upper_bound(b + 1, e, time_ns, [](uint64_t t, const Span& sp) { return t < sp.begin_ns; });
  return (s - 1) - spans_.begin();
}

std::string ProfileProcesses::name_at(uint32_t tgid, uint64_t time_ns) const {
  const int64_t s = span_at(tgid, time_ns);
  return s < 0 ? std::string() : spans_[static_cast<size_t>(s)].name;
}

std::string ProfileProcesses::label(size_t span) const {
  const Span& sp = spans_[span];
  return sp.before_command && !sp.name.empty() ? sp.name + " (before exec)" : sp.name;
}

std::string ProfileProcesses::name(uint32_t tgid) const {
  auto it = by_tgid_.find(tgid);
  if (it == by_tgid_.end()) return {};
  for (uint32_t i = it->second.second; i-- > 0;)
    if (!spans_[it->second.first + i].name.empty()) return spans_[it->second.first + i].name;
  return {};
}

uint32_t ProfileProcesses::parent(uint32_t tgid) const {
  auto it = by_tgid_.find(tgid);
  if (it == by_tgid_.end()) return 0;
  for (uint32_t i = it->second.second; i-- > 0;)
    if (uint32_t p = lives_[spans_[it->second.first + i].life].parent) return p;
  return 0;
}

const ProfileProcesses::MapRange* ProfileProcesses::range_at(const Span& sp, uint64_t addr, uint64_t time_ns) {
  const MapRange *then = nullptr, *after = nullptr, *before = nullptr;
  size_t i = std::upper_bound(sp.maps.begin(), sp.maps.end(), addr,
                              [](uint64_t a, const MapRange& r) { return a < r.map->start; }) - sp.maps.begin();
  // Back from the last mapping starting at or below addr, while one of them
  // may still reach over it.
  while (i-- > 0 && sp.max_end[i] > addr) {
    const MapRange& r = sp.maps[i];
    if (addr >= r.map->end) continue;
    if (time_ns >= r.from_ns && time_ns < r.to_ns) then = &r;
    else if (r.from_ns > time_ns) after = !after || r.from_ns < after->from_ns ? &r : after;
    else if (!before || std::tie(r.to_ns, r.from_ns) > std::tie(before->to_ns, before->from_ns)) before = &r;
  }
  return then ? then : after ? after : before;
}

const ProfileMap* ProfileProcesses::mapping(uint32_t tgid, uint64_t addr, uint64_t time_ns) const {
  const int64_t s = span_at(tgid, time_ns);
  if (s < 0) return nullptr;
  // Mapped then, mapped since, or unmapped since: all of the span agree.
  if (const MapRange* r = range_at(spans_[static_cast<size_t>(s)], addr, time_ns)) return r->map;
  // Not mapped in its span: the next spans of the process. An exec is seen
  // when the recorder next looks (up to 0.5 s later), so the new program's
  // first samples fall before it; what the old one did not map is the new one's.
  for (size_t n = static_cast<size_t>(s) + 1; n < spans_.size() && spans_[n].tgid == tgid &&
                                              spans_[n].life == spans_[static_cast<size_t>(s)].life;
       ++n)
    if (const MapRange* r = range_at(spans_[n], addr, 0)) return r->map;
  return nullptr;
}

bool ProfileProcesses::same_contents(const ProfileMap& a, const ProfileMap& b) {
  if (a.path != b.path || a.dev != b.dev || a.inode != b.inode) return false;
  const bool file = !a.path.empty() && a.path[0] == '/';
  return !file || a.start - a.offset == b.start - b.offset;
}

std::string ProfileProcesses::mapping_kind(const ProfileMap* m) {
  if (!m) return "unmapped";
  if (m->path.empty()) return "anon";
  if (m->path == "[heap]") return "heap";
  if (m->path.rfind("[stack", 0) == 0) return "stack";
  if (m->path == "[vdso]" || m->path == "[vvar]" || m->path == "[vsyscall]") return m->path.substr(1, m->path.size() - 2);
  if (m->path[0] == '[') return m->path;
  return m->path;
}

}  // namespace mb
