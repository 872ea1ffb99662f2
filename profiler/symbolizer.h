// Instruction pointers -> function, module and (with debug info) file:line,
// with elfutils' libdwfl. Works on recorded memory maps, so processes that
// have exited are symbolised too (their files must still be there).
// Position-independent executables and shared libraries are placed where
// the maps show their segments (with the files' program headers). Two caches: one libdwfl session per file, and
// one answer per (mapping, address).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "membalancer/profile_file.h"

struct Dwfl;
struct Dwfl_Module;

namespace mb::prof {

struct Symbol {
  std::string function;  // demangled; "[unknown]" when none
  std::string module;    // file name of the mapping, "[kernel]", "[vdso]", ...
  std::string file;      // source file ("" without debug info)
  int line = 0;
  uint64_t offset = 0;   // ip - function start (0 when unknown)
};

class Symbolizer {
 public:
  // recorded_realtime_ns: when the recording started (0: unknown). A file
  // is read only if it is the one recorded: its build-id, or (without) its
  // device, inode and modification time, as the profile describes it
  // (version 2); for a file the profile does not describe, not modified
  // since the recording started.
  explicit Symbolizer(const ProfileProcesses& procs, uint64_t recorded_realtime_ns = 0)
      : procs_(procs), recorded_ns_(recorded_realtime_ns) {}
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // The symbol of ip in process tgid at time_ns (in the mapping of that
  // time: ProfileProcesses::mapping). Cached per mapping and address.
  const Symbol& lookup(uint32_t tgid, uint64_t ip, uint64_t time_ns = UINT64_MAX);

  uint64_t cache_hits() const { return hits_; }
  uint64_t cache_misses() const { return misses_; }

 private:
  struct Segment {  // a PT_LOAD program header
    uint64_t offset, vaddr, filesz;
  };
  struct FileSession {
    Dwfl* dwfl = nullptr;
    Dwfl_Module* mod = nullptr;
    bool pie = false;  // ET_DYN: placed where the loader chose (the maps say where)
    std::vector<Segment> loads;
    int64_t module_bias = 0;  // libdwfl's address of a link-time address, less that address
    std::string refused;  // why the file was not read ("" if it was)
  };
  FileSession* session(const ProfileMap& m);
  // Why the file open at fd is not read ("" when it is).
  std::string refusal(int fd, const ProfileFile* recorded) const;
  // The symbol of ip in mapping m (nullptr: none holds it).
  Symbol resolve(const ProfileMap* m, uint64_t ip);

  struct Key {
    const ProfileMap* map;  // nullptr: unmapped
    uint64_t ip;
    bool operator==(const Key& o) const { return map == o.map && ip == o.ip; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return (k.ip * 0x9E3779B97F4A7C15ULL) ^ reinterpret_cast<uintptr_t>(k.map);
    }
  };
  const ProfileProcesses& procs_;
  uint64_t recorded_ns_ = 0;
  std::unordered_map<Key, Symbol, KeyHash> cache_;
  std::unordered_map<std::string, std::unique_ptr<FileSession>> files_;  // by path and recorded identity
  uint64_t hits_ = 0, misses_ = 0;
};

// "_ZN2mb3fooEv" -> "mb::foo()"; other names unchanged.
std::string demangle(const char* name);

}  // namespace mb::prof
