// Profile files: what `profiler record` and `membalancer trace --record`
// write, and what `profiler report`/`heatmap` (and later `--sampler replay`)
// read. The byte layout is documented in docs/profile-format.md:
//
//   header (128 bytes: magic, version, start times, sampler)
//   chunk* (16-byte chunk header {type, crc32, payload bytes} + payload,
//           padded to 8 bytes): topology first, then samples (n x 64-byte
//           struct mb_sample), process names, memory maps (whole, or
//           changes from a process's last ones) and counter snapshots in
//           time order, and an END chunk when the file was closed.
//
// The reader maps the file and hands out samples in place, a chunk at a time
// (no copy, no per-record call). A damaged file is not rejected wholesale:
// the reader keeps what precedes the first bad chunk and names the offset.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "membalancer/records.h"
#include "membalancer/topology.h"

namespace mb {

inline constexpr char kProfileMagic[8] = {'M', 'B', 'P', 'R', 'O', 'F', '\r', '\n'};
// Version 2 added the device and inode of mapped files and FILE chunks,
// version 3 the maps change (a process's maps written as what changed),
// version 4 the time a maps change took effect (its first system call);
// version-1 to -3 files are still read (version 1's mappings have neither
// device nor inode).
inline constexpr uint32_t kProfileVersion = 4;
inline constexpr uint32_t kProfileOldestVersion = 1;
inline constexpr uint32_t kProfileHeaderBytes = 128;
inline constexpr uint32_t kProfileChunkHeaderBytes = 16;

enum ProfileChunkType : uint32_t {
  kChunkTopology = 1,
  kChunkSamples = 2,
  kChunkProcess = 3,
  kChunkMaps = 4,
  kChunkCounters = 5,
  kChunkEnd = 6,
  kChunkFile = 7,  // version 2: a mapped file's identity, once per file
  kChunkMapsChange = 8,  // version 3: the mappings removed and added since the process's last maps
};

// The file header as stored (little endian, the host's layout on x86-64).
struct ProfileHeaderDisk {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;        // 128
  uint64_t start_realtime_ns;   // CLOCK_REALTIME when recording started
  uint64_t start_monotonic_ns;  // CLOCK_MONOTONIC then; sample times use this clock
  uint32_t sampler_kind;        // enum mb_sampler_kind
  uint32_t record_bytes;        // sizeof(struct mb_sample) = 64
  char sampler[32];             // sampler name, NUL padded ("fault", "cpu-clock", ...)
  char reserved[52];
  uint32_t header_crc;          // crc32 of bytes 0..123
};
static_assert(sizeof(ProfileHeaderDisk) == kProfileHeaderBytes, "profile header layout");

struct ProfileChunkHeader {
  uint32_t type;   // enum ProfileChunkType
  uint32_t crc;    // crc32 of the payload
  uint64_t bytes;  // payload bytes (the next chunk starts 8-byte aligned after it)
};
static_assert(sizeof(ProfileChunkHeader) == kProfileChunkHeaderBytes, "chunk header layout");

// Process events of kChunkProcess.
enum ProfileProcessEvent : uint32_t {
  kProcSeen = 1,    // present when recording started (or first seen)
  kProcFork = 2,
  kProcExit = 3,
  kProcRename = 4,  // name changed, seen by looking (an exec missed, or a prctl rename)
  kProcExec = 5,    // the kernel's exec event (MB_PROC_EXEC): a new program, its name; the
                    // old image's addresses mean nothing after it
  kProcCommand = 6, // the process `profiler record -- COMMAND` forked for COMMAND, held until
                    // it execs it: until then the profiler's code and memory; the name is
                    // COMMAND's, as the kernel will call it
};

// Permission bits of a mapping.
enum ProfileMapProt : uint32_t { kMapRead = 1, kMapWrite = 2, kMapExec = 4, kMapShared = 8 };

struct ProfileMap {
  uint64_t start = 0, end = 0, offset = 0;
  uint32_t prot = 0;
  std::string path;  // "" for anonymous, "[heap]", "[stack]", or a file
  uint64_t dev = 0, inode = 0;  // of the mapped file (/proc/PID/maps; dev as st_dev); 0: none or unknown
  bool operator==(const ProfileMap&) const = default;
};

// What a mapped file was when the recorder first saw it mapped (kChunkFile):
// the report reads a file at that path only if it is still this one.
struct ProfileFile {
  uint64_t dev = 0, inode = 0;  // as in the mappings of it
  uint64_t mtime_ns = 0;        // CLOCK_REALTIME modification time
  uint64_t size = 0;
  std::string build_id;  // NT_GNU_BUILD_ID's bytes, "" when it has none (or is no ELF file)
  std::string path;
  bool operator==(const ProfileFile&) const = default;
};

struct ProfileProcess {
  uint64_t time_ns = 0;
  uint32_t tgid = 0, parent = 0;
  uint32_t event = kProcSeen;
  std::string name;
};

// A process's maps at time_ns, as the change from its maps before (in file
// order): a MAPS chunk (whole) removes all of them and adds its own, a maps
// change removes and adds some. Mappings are indices of ProfileInfo::mappings.
struct ProfileMapsChange {
  uint64_t time_ns = 0;  // when it took effect (a maps change's first system call, version 4), else when written
  uint32_t tgid = 0;
  bool whole = false;  // a MAPS chunk: the maps before are gone, whatever they were
  std::vector<uint32_t> removed, added;
};

struct ProfileCounters {
  uint64_t time_ns = 0;
  std::vector<uint64_t> values;  // enum mb_counter order, cumulative since the start
};

// Header and the small chunks, read when the file is opened.
struct ProfileInfo {
  uint32_t version = kProfileVersion;
  uint64_t start_realtime_ns = 0, start_monotonic_ns = 0;
  mb_sampler_kind sampler_kind = MB_SAMPLER_NONE;
  std::string sampler;
  Topology topology;
  std::vector<ProfileProcess> processes;  // file order
  // Every distinct mapping of the file once, and each process's maps as
  // their changes: what the reader holds does not grow with the number of
  // times a recorder wrote a mapping that did not change.
  std::vector<ProfileMap> mappings;
  std::vector<ProfileMapsChange> maps_changes;  // file order
  std::vector<ProfileCounters> counters;  // file order
  std::vector<ProfileFile> files;         // file order (version 2)
  bool complete = false;                  // an END chunk closes the file
  uint64_t end_time_ns = 0;
  uint64_t samples = 0;       // records in intact-looking sample chunks
  uint64_t samples_lost = 0;  // ring-buffer drops (MB_CTR_SAMPLES_LOST), last snapshot or END
  uint64_t file_bytes = 0;

  // A MAPS chunk: tgid's maps at time_ns are these (sorted by start).
  void add_maps(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& maps);
  // A maps change: tgid's maps since its last maps (file order), less the
  // mappings at the ranges removed (start, end), plus those added. Returns
  // what is inconsistent ("" when nothing: then it is applied): a process
  // with no maps before, a range it does not map, an added mapping over one
  // it has.
  std::string add_maps_change(uint64_t time_ns, uint32_t tgid, const std::vector<std::pair<uint64_t, uint64_t>>& removed,
                              const std::vector<ProfileMap>& added);
  // tgid's maps after its last maps chunk (file order); empty when none.
  std::vector<ProfileMap> last_maps(uint32_t tgid) const;

 private:
  uint32_t mapping_id(const ProfileMap& m);
  struct MapHash {
    size_t operator()(const ProfileMap& m) const;
  };
  std::unordered_map<ProfileMap, uint32_t, MapHash> mapping_ids_;
  std::unordered_map<uint32_t, std::map<uint64_t, uint32_t>> current_;  // tgid -> its maps now: start -> mapping
};

// What the recording lost, from the file's last counter snapshot (END's
// samples_lost for samples when larger): nothing is silently dropped.
struct ProfileLosses {
  uint64_t samples = 0;    // MB_CTR_SAMPLES_LOST: the sample ring buffer was full
  uint64_t events = 0;     // MB_CTR_EVENTS_LOST: process events (forks, execs, exits) lost
  uint64_t untracked = 0;  // MB_CTR_TRACKED_FULL: new processes not tracked (table full)
  bool any() const { return samples || events || untracked; }
  // "" when none; else "12 samples lost (ring buffer full), 1 process event lost, ..."
  std::string describe() const;
};
ProfileLosses profile_losses(const ProfileInfo& info);

// Reads /proc/PID/maps (or text in that format). Empty when the process is gone.
// Mappings are sorted by start; a file's device and inode are kept.
std::vector<ProfileMap> read_proc_maps(pid_t pid, const std::string& proc_root = "/proc");
std::vector<ProfileMap> parse_proc_maps(const std::string& text);

// A file's modification time in ns since the epoch.
uint64_t mtime_ns(const struct stat& st);
// The ELF build-id (NT_GNU_BUILD_ID) of the file open at fd, "" when none.
std::string read_build_id(int fd);
// The identity of the file of mapping m, read now: through
// /proc/PID/map_files (the very file mapped, even if another was put at its
// path since), else at its path. Empty path when neither is a regular file.
ProfileFile read_mapped_file(pid_t pid, const ProfileMap& m, const std::string& proc_root = "/proc");

// What the writer needs to start a file.
struct ProfileStart {
  std::string sampler;
  mb_sampler_kind sampler_kind = MB_SAMPLER_NONE;
  Topology topology;
  uint64_t start_realtime_ns = 0;   // 0: now
  uint64_t start_monotonic_ns = 0;  // 0: now
};

// Writes one profile file. Samples are buffered and written as chunks of up
// to kChunkRecords records; the small records are written at once (after the
// buffered samples, so the file stays in time order). Not thread-safe: one
// thread writes (the recorder's consumer thread).
class ProfileWriter {
 public:
  static constexpr size_t kChunkRecords = 8192;  // 512 KiB of samples per chunk

  // Creates path without following a symlink, mode 0644. An existing file is
  // an error (UsageError) unless force, which replaces it (still no symlink).
  ProfileWriter(const std::string& path, const ProfileStart& start, bool force = false);
  ~ProfileWriter();  // closes without an END chunk if finish() was not called
  ProfileWriter(const ProfileWriter&) = delete;
  ProfileWriter& operator=(const ProfileWriter&) = delete;

  void add_sample(const mb_sample& s) {
    buf_.push_back(s);
    if (buf_.size() >= kChunkRecords) flush();
  }
  void add_samples(const mb_sample* s, size_t n);
  void add_process(uint64_t time_ns, uint32_t tgid, uint32_t parent, ProfileProcessEvent event,
                   const std::string& name);
  void add_maps(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& maps);
  // tgid's maps changed since the last maps written of it: the mappings of
  // `removed` are gone, those of `added` are new (version 3), since
  // effect_ns (version 4; 0: since time_ns, when the change was seen).
  void add_maps_change(uint64_t time_ns, uint32_t tgid, const std::vector<ProfileMap>& removed,
                       const std::vector<ProfileMap>& added, uint64_t effect_ns = 0);
  // A mapped file's identity; written before the first maps that hold it.
  void add_file(const ProfileFile& f);
  // Cumulative BPF counters (drops among them); the last snapshot counts.
  void add_counters(uint64_t time_ns, const std::array<uint64_t, MB_NR_COUNTERS>& counters);
  // Writes the buffered samples as one chunk.
  void flush();
  // After a write failed (SystemError: a full disk), every later write
  // throws at once and the destructor writes nothing: the file ends where
  // the failure left it, which a reader reports as its damage.
  // Flushes, writes the END chunk and closes. samples_lost: MB_CTR_SAMPLES_LOST.
  void finish(uint64_t end_time_ns, uint64_t samples_lost);
  // After a failure: closes and removes the file, if the name is still the
  // file this writer created (never another one put there since).
  void discard();

  uint64_t bytes_written() const { return bytes_ + buf_.size() * sizeof(mb_sample); }
  uint64_t samples_written() const { return samples_ + buf_.size(); }
  // Samples in whole chunks in the file: after a failed write, those a
  // reader finds (the buffered ones and a chunk cut short are not).
  uint64_t samples_in_file() const { return samples_; }
  const std::string& path() const { return path_; }

 private:
  void write_start(const ProfileStart& start);
  void write_chunk(uint32_t type, const void* payload, size_t bytes);
  void write_all(const void* p, size_t n);

  std::string path_;
  int fd_ = -1;
  std::string failed_;  // the failed write's error, "" while none failed
  dev_t dev_ = 0;  // the file created, for discard()
  ino_t ino_ = 0;
  uint64_t bytes_ = 0, samples_ = 0;
  std::vector<mb_sample> buf_;
};

// Reads one profile file (maps it). The constructor throws UsageError when the
// file cannot be opened or its header is not a profile of a known version.
// Damage after the header does not throw: error() names the offset, and
// everything before it stays readable.
class ProfileReader {
 public:
  explicit ProfileReader(const std::string& path);
  ~ProfileReader();
  ProfileReader(const ProfileReader&) = delete;
  ProfileReader& operator=(const ProfileReader&) = delete;

  const ProfileInfo& info() const { return info_; }

  // Streams the samples in file order, one chunk at a time, in place. Stops
  // at a chunk whose checksum fails (error() then says so). Returns the
  // number of samples delivered.
  using BatchFn = std::function<void(const mb_sample* samples, size_t n)>;
  uint64_t for_each_batch(const BatchFn& fn);

  // Pull-style streaming: each call gives the next chunk's samples. The
  // file's pages before the previous chunk leave the mapping (a long replay's
  // resident memory does not grow with the file; read again, they come back
  // from the file).
  class Cursor {
   public:
    bool next(const mb_sample** samples, size_t* n);

   private:
    friend class ProfileReader;
    explicit Cursor(ProfileReader* r) : r_(r) {}
    ProfileReader* r_;
    size_t i_ = 0;
  };
  Cursor samples() { return Cursor(this); }

  // "" when the file is intact and complete so far; otherwise one line
  // naming the offset and what is wrong there.
  const std::string& error() const { return error_; }
  uint64_t error_offset() const { return error_offset_; }
  bool ok() const { return error_.empty(); }
  const std::string& path() const { return path_; }

 private:
  void index();
  void fail(uint64_t offset, const std::string& what);
  bool check_chunk(size_t i);
  void release_before(uint64_t offset);

  struct Chunk {
    uint64_t offset;  // of the chunk header
    uint32_t crc;
    uint64_t bytes;
    bool checked;
  };
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t released_ = 0;  // the mapping's pages before this offset were dropped
  ProfileInfo info_;
  std::vector<Chunk> sample_chunks_;
  std::string error_;
  uint64_t error_offset_ = 0;
};

// Process names and memory maps of a profile, for attribution: which process
// a tgid was and which mapping held an address at a time. A tgid's time is
// cut into spans, each one program's address space: a new span starts when
// the pid is reused (an exit, then a new process), at an exec (the kernel's
// event) and at a rename (an exec seen by looking). Within a span each
// mapping is held once with the time it was mapped (from one look to the
// look that found it gone): the mapping of a sample's time answers first (an
// unmap and a remap there, a library placed over the loader's reservation,
// is the same program).
class ProfileProcesses {
 public:
  // A mapping a span's program had from from_ns until to_ns (UINT64_MAX:
  // until the span ends).
  struct MapRange {
    const ProfileMap* map;
    uint64_t from_ns, to_ns;
  };
  struct Span {
    uint32_t tgid = 0;
    uint32_t life = 0;       // index of lives(): the process it belongs to
    uint64_t begin_ns = 0;   // covers [begin_ns, end_ns); a tgid's spans tile all time
    uint64_t end_ns = UINT64_MAX;
    std::string name;        // "" when unknown
    std::vector<MapRange> maps;      // by start address, then time
    std::vector<uint64_t> max_end;   // max_end[i]: the highest end of maps[0..i]
    bool has_maps = false;           // a maps chunk was written in it
    // When one mapping at an address gave way to another of other contents
    // (same_contents: a library closed and another opened there), by time:
    // an address's samples on either side are of different mappings.
    std::vector<uint64_t> swaps;
    // The profiler's child before it ran `-- COMMAND` (kProcCommand): named
    // by the command, its samples are the profiler's starting it.
    bool before_command = false;
  };
  struct Life {  // one process: a pid from its start (or the recording's) to its exit
    uint32_t tgid = 0, parent = 0;
    uint64_t start_ns = 0;  // its first event's time
    bool exited = false;
  };

  explicit ProfileProcesses(const ProfileInfo& info);
  std::string name(uint32_t tgid) const;  // the last name known, "" when unknown
  uint32_t parent(uint32_t tgid) const;
  // The span of tgid at time_ns, or -1 when the profile knows nothing of tgid.
  int64_t span_at(uint32_t tgid, uint64_t time_ns) const;
  const std::vector<Span>& spans() const { return spans_; }
  const std::vector<Life>& lives() const { return lives_; }
  // When a span's program started: its exec, or its process's first event.
  uint64_t started_ns(size_t span) const {
    return std::max(spans_[span].begin_ns, lives_[spans_[span].life].start_ns);
  }
  // A span's name as the tables show it: "app (before exec)" for the
  // profiler's child before it ran app.
  std::string label(size_t span) const;
  // The name tgid had at time_ns ("" when unknown).
  std::string name_at(uint32_t tgid, uint64_t time_ns) const;
  // The mapping holding addr at time_ns, in the span of that time: the one
  // mapped then, else the first mapped after it, else the last before it;
  // else the first of the process's next spans. nullptr when none.
  const ProfileMap* mapping(uint32_t tgid, uint64_t addr, uint64_t time_ns = UINT64_MAX) const;
  // The (mapping, time range) records held: each mapping once per time it
  // was mapped in a span, however often it was written.
  size_t mappings_held() const;
  // Whether a and b map the same thing the same way: the same file placed
  // at the same address (start - offset; another part of it, a changed
  // protection, a grown or split mapping are the same), or anonymous memory
  // of the same kind ("", "[heap]", "[stack]").
  static bool same_contents(const ProfileMap& a, const ProfileMap& b);
  // "anon", "heap", "stack", "vdso", or the file's path.
  static std::string mapping_kind(const ProfileMap* m);
  // The identity recorded of m's file (version 2), or nullptr.
  const ProfileFile* file(const ProfileMap& m) const;
  // The mapped file's path without the " (deleted)" /proc/PID/maps adds to
  // a file deleted since it was mapped (*deleted says so).
  static std::string mapped_file(const ProfileMap& m, bool* deleted = nullptr);

 private:
  // The range of span's maps holding addr that answers for time_ns (see mapping()).
  static const MapRange* range_at(const Span& span, uint64_t addr, uint64_t time_ns);

  std::vector<Span> spans_;  // a tgid's spans together, by time
  std::vector<Life> lives_;
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> by_tgid_;  // tgid -> (first span, count)
  std::map<std::pair<uint64_t, uint64_t>, const ProfileFile*> files_;  // (dev, inode) -> the first record
};

}  // namespace mb
