#include "membalancer/resident.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <sstream>

#include "membalancer/records.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

constexpr uint64_t kPageSize = 1ULL << MB_PAGE_SHIFT;
// /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPfnMask = (1ULL << 55) - 1;
constexpr uint64_t kExclusive = 1ULL << 56;
constexpr uint64_t kPresent = 1ULL << 63;
// /proc/kpageflags bits.
constexpr uint64_t kKpfCompoundHead = 1ULL << 15;
constexpr uint64_t kKpfThp = 1ULL << 22;

}  // namespace

std::map<int, uint64_t> parse_numa_maps(const std::string& text, uint64_t start, uint64_t end) {
  std::map<int, uint64_t> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word;
    if (!(ls >> word)) continue;
    uint64_t addr = std::strtoull(word.c_str(), nullptr, 16);
    if (end > start && (addr < start || addr >= end)) continue;
    uint64_t per_page = 1;
    std::map<int, uint64_t> line_nodes;
    while (ls >> word) {
      if (word.size() > 1 && word[0] == 'N' && word[1] >= '0' && word[1] <= '9') {
        auto eq = word.find('=');
        if (eq == std::string::npos) continue;
        line_nodes[std::atoi(word.c_str() + 1)] += std::strtoull(word.c_str() + eq + 1, nullptr, 10);
      } else if (word.rfind("kernelpagesize_kB=", 0) == 0) {
        uint64_t kb = std::strtoull(word.c_str() + 18, nullptr, 10);
        if (kb >= 4) per_page = kb / 4;
      }
    }
    for (auto& [n, c] : line_nodes) out[n] += c * per_page;
  }
  return out;
}

std::optional<std::map<int, uint64_t>> numa_maps_node_pages(pid_t pid, const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(pid) + "/numa_maps");
  if (!text) return std::nullopt;
  return parse_numa_maps(*text);
}

ResidentScanner::ResidentScanner(const Topology& topo, const std::string& proc_root, NodeResolver::QueryFn query)
    : topo_(topo), proc_root_(proc_root), resolver_(std::move(query)) {
  kpageflags_fd_ = open((proc_root_ + "/kpageflags").c_str(), O_RDONLY | O_CLOEXEC);
  buf_.resize(4096);
}

ResidentScanner::~ResidentScanner() {
  if (kpageflags_fd_ >= 0) close(kpageflags_fd_);
}

bool ResidentScanner::scan(pid_t pid, const std::set<int>& nodes, const std::function<bool(const ResidentPage&)>& fn) {
  const std::string dir = proc_root_ + "/" + std::to_string(pid);
  auto maps = read_text_file(dir + "/maps");
  if (!maps) return false;
  int fd = open((dir + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::istringstream in(*maps);
  std::string line;
  bool more = true;
  while (more && std::getline(in, line)) {
    uint64_t start = 0, end = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &start, &end, perms) != 3) continue;
    // Kernel-provided mappings never move; neither do mappings nobody can read.
    if (line.find("[vsyscall]") != std::string::npos || line.find("[vvar]") != std::string::npos ||
        line.find("[vdso]") != std::string::npos || perms[0] != 'r')
      continue;
    ++stats_.vmas;
    more = scan_range(fd, pid, start, end, nodes, fn);
  }
  close(fd);
  return true;
}

bool ResidentScanner::scan_range(int fd, pid_t pid, uint64_t start, uint64_t end, const std::set<int>& nodes,
                                 const std::function<bool(const ResidentPage&)>& fn) {
  std::vector<NodeResolver::Page> unknown;  // present pages without a frame number
  uint64_t skip_until = 0;                  // inside a huge page already yielded
  for (uint64_t addr = start; addr < end;) {
    const uint64_t n = std::min<uint64_t>(buf_.size(), (end - addr) / kPageSize);
    ssize_t got = pread(fd, buf_.data(), n * 8, static_cast<off_t>(addr / kPageSize * 8));
    if (got <= 0) break;
    const uint64_t entries = static_cast<uint64_t>(got) / 8;
    stats_.pages_scanned += entries;
    for (uint64_t i = 0; i < entries; ++i) {
      const uint64_t va = addr + i * kPageSize;
      const uint64_t e = buf_[i];
      if (!(e & kPresent) || va < skip_until) continue;
      ++stats_.present;
      if (!(e & kExclusive)) {
        ++stats_.shared_skipped;
        continue;
      }
      const uint64_t pfn = e & kPfnMask;
      if (!pfn) {
        unknown.push_back({pid, va});
        continue;
      }
      bool huge = false;
      uint64_t flags = 0;
      if ((va & ((1ULL << MB_HUGE_PAGE_SHIFT) - 1)) == 0 && (pfn & (MB_HUGE_BASE_PAGES - 1)) == 0 && kpageflags_fd_ >= 0 &&
          pread(kpageflags_fd_, &flags, 8, static_cast<off_t>(pfn * 8)) == 8)
        huge = (flags & kKpfThp) && (flags & kKpfCompoundHead);
      if (huge) skip_until = va + (1ULL << MB_HUGE_PAGE_SHIFT);
      const int node = topo_.node_of_phys(pfn * kPageSize);
      if (node < 0) {
        unknown.push_back({pid, va});
        continue;
      }
      if (nodes.count(node) && !fn({va, node, huge})) return false;
    }
    addr += entries * kPageSize;
  }
  if (unknown.empty()) return true;
  // No frame numbers (no CAP_SYS_ADMIN) or no memory-block table: ask.
  stats_.node_queries += unknown.size();
  bool more = true;
  resolver_.resolve(unknown, [&](size_t i, int node) {
    if (more && node >= 0 && nodes.count(node)) more = fn({unknown[i].vaddr, node, false});
  });
  return more;
}

}  // namespace mb
