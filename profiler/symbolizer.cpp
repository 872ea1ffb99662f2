#include "profiler/symbolizer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include <cstdlib>
#include <cstring>

namespace mb::prof {

namespace {

const Dwfl_Callbacks kCallbacks = {
    .find_elf = nullptr,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string demangle(const char* name) {
  if (!name) return {};
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (!d || status != 0) {
    std::free(d);
    return name;
  }
  std::string out(d);
  std::free(d);
  return out;
}

Symbolizer::~Symbolizer() {
  for (auto& [path, s] : files_)
    if (s && s->dwfl) dwfl_end(s->dwfl);
}

std::string Symbolizer::refusal(int fd, const ProfileFile* recorded) const {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return "unreadable";
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  const uint64_t mtime = mtime_ns(st);
  if (!recorded) return recorded_ns_ && mtime > recorded_ns_ ? "changed since the recording" : "";
  // The file described when it was recorded: its build-id, when both have
  // one, says whether it is the same build (a copy or a reinstall of it
  // is); without, it must be the same file, unmodified.
  if (!recorded->build_id.empty()) {
    const std::string now = read_build_id(fd);
    if (!now.empty()) return now == recorded->build_id ? "" : "another build since the recording";
  }
  if (st.st_dev != recorded->dev || st.st_ino != recorded->inode || mtime != recorded->mtime_ns)
    return "changed since the recording";
  return "";
}

Symbolizer::FileSession* Symbolizer::session(const ProfileMap& m) {
  const std::string& path = m.path;
  const ProfileFile* recorded = procs_.file(m);
  if (recorded && recorded->path.empty()) recorded = nullptr;  // the recorder could not read it
  std::string key = path;
  if (recorded) key += "\n" + std::to_string(recorded->dev) + ":" + std::to_string(recorded->inode);
  auto it = files_.find(key);
  if (it != files_.end()) return it->second.get();
  auto s = std::make_unique<FileSession>();
  // The file now at the recorded path: opened without blocking (a FIFO put
  // there would hang the open) and read only if it is a regular file that
  // is the one recorded (a replaced binary would give wrong names, silently).
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  s->refused = refusal(fd, recorded);
  if (!s->refused.empty() && fd >= 0) close(fd);
  s->dwfl = s->refused.empty() ? dwfl_begin(&kCallbacks) : nullptr;
  if (!s->dwfl && fd >= 0 && s->refused.empty()) close(fd);
  if (s->dwfl) {
    dwfl_report_begin(s->dwfl);
    // Reported at its link-time addresses (base 0): a PIE's or a library's
    // addresses are then file-relative, and lookups subtract the load base.
    // On success the descriptor belongs to libdwfl.
    s->mod = dwfl_report_elf(s->dwfl, base_name(path).c_str(), path.c_str(), fd, 0, false);
    if (!s->mod) close(fd);
    dwfl_report_end(s->dwfl, nullptr, nullptr);
    if (s->mod) {
      GElf_Addr bias = 0;
      Elf* elf = dwfl_module_getelf(s->mod, &bias);
      GElf_Ehdr ehdr;
      if (elf && gelf_getehdr(elf, &ehdr)) s->pie = ehdr.e_type == ET_DYN;
      s->module_bias = static_cast<int64_t>(bias);
      size_t n = 0;
      if (elf && elf_getphdrnum(elf, &n) == 0)
        for (size_t i = 0; i < n; ++i) {
          GElf_Phdr ph;
          if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD)
            s->loads.push_back({ph.p_offset, ph.p_vaddr, ph.p_filesz});
        }
    }
  }
  FileSession* raw = s.get();
  files_.emplace(std::move(key), std::move(s));
  return raw;
}

Symbol Symbolizer::resolve(const ProfileMap* m, uint64_t ip) {
  Symbol sym;
  sym.function = "[unknown]";
  if (ip >= 0xffff800000000000ULL) {
    sym.module = "[kernel]";
    return sym;
  }
  if (!m) {
    sym.module = "[unmapped]";
    return sym;
  }
  if (m->path.empty() || m->path[0] != '/') {
    sym.module = m->path.empty() ? "[anon]" : m->path;
    return sym;
  }
  bool deleted = false;
  const std::string path = ProfileProcesses::mapped_file(*m, &deleted);
  sym.module = base_name(path);
  if (deleted) {
    // Deleted since it was mapped: a file of that name now is another one
    // (and the path with the suffix is no file of the recording at all).
    sym.module += " (deleted)";
    return sym;
  }
  FileSession* s = session(*m);
  if (s && !s->refused.empty()) sym.module += " (" + s->refused + ")";
  if (!s || !s->mod) return sym;
  // The link-time address of ip. A PIE or a library is loaded at a bias the
  // loader chose: each PT_LOAD segment is mapped at bias + p_vaddr from file
  // offset p_offset (page-aligned down, which keeps their difference). The
  // segment is the one holding ip's file offset; the mapping of offset 0 is
  // no base to go by (lld places each segment a page above its file offset:
  // the code's mapping has offset 0 too, a page above the base).
  uint64_t addr = ip;
  if (s->pie) {
    const uint64_t file_offset = m->offset + (ip - m->start);
    const Segment* seg = nullptr;
    for (const Segment& l : s->loads)
      if (file_offset >= l.offset && file_offset < l.offset + l.filesz) seg = &l;
    if (!seg) return sym;  // not in the file's code or data: no function of it
    addr = ip - (m->start - m->offset + seg->offset - seg->vaddr);
  }
  addr += static_cast<uint64_t>(s->module_bias);
  GElf_Off off = 0;
  GElf_Sym esym;
  const char* name = dwfl_module_addrinfo(s->mod, addr, &off, &esym, nullptr, nullptr, nullptr);
  if (name) {
    sym.function = demangle(name);
    sym.offset = off;
  }
  if (Dwfl_Line* line = dwfl_module_getsrc(s->mod, addr)) {
    int lineno = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
    if (file) {
      sym.file = file;
      sym.line = lineno;
    }
  }
  return sym;
}

const Symbol& Symbolizer::lookup(uint32_t tgid, uint64_t ip, uint64_t time_ns) {
  const ProfileMap* m = ip >= 0xffff800000000000ULL ? nullptr : procs_.mapping(tgid, ip, time_ns);
  Key k{m, ip};
  auto it = cache_.find(k);
  if (it != cache_.end()) {
    ++hits_;
    return it->second;
  }
  ++misses_;
  return cache_.emplace(k, resolve(m, ip)).first->second;
}

}  // namespace mb::prof
