// A process's resident memory, page by page and node by node, including the
// pages no sample ever saw (the coldest of all, which demotion needs).
//
//  - numa_maps_node_pages(): per-node page counts of /proc/PID/numa_maps (the
//    kernel's own view; tier reports and tests use it).
//  - ResidentScanner: walks /proc/PID/maps and /proc/PID/pagemap and yields the
//    present pages that move_pages can move (mapped by this process only) on
//    the asked nodes. The node comes from the page frame number and the
//    memory-block table (root sees frame numbers); without frame numbers it is
//    asked from the kernel with move_pages. A 2 MiB transparent huge page is
//    yielded once, flagged huge.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "membalancer/node_resolver.h"
#include "membalancer/topology.h"

namespace mb {

// Sums the N<node>=<pages> fields of a numa_maps text, in base pages (a line
// with kernelpagesize_kB=2048 counts 512 per page). Lines whose address
// range starts in [start, end) only, when end > start.
std::map<int, uint64_t> parse_numa_maps(const std::string& text, uint64_t start = 0, uint64_t end = 0);
// Of /proc/PID/numa_maps; nullopt when the process is gone.
std::optional<std::map<int, uint64_t>> numa_maps_node_pages(pid_t pid, const std::string& proc_root = "/proc");

struct ResidentPage {
  uint64_t vaddr;
  int node;
  bool huge;
};

struct ResidentScanStats {
  uint64_t vmas = 0;
  uint64_t pages_scanned = 0;  // pagemap entries read
  uint64_t present = 0;
  uint64_t shared_skipped = 0;  // mapped by other processes too: move_pages would not move them
  uint64_t node_queries = 0;    // pages whose node had to be asked with move_pages
};

class ResidentScanner {
 public:
  explicit ResidentScanner(const Topology& topo, const std::string& proc_root = "/proc",
                           NodeResolver::QueryFn query = {});
  ~ResidentScanner();
  ResidentScanner(const ResidentScanner&) = delete;
  ResidentScanner& operator=(const ResidentScanner&) = delete;

  // Calls fn for each movable present page of pid on one of `nodes`, in
  // address order, until fn returns false. Returns false if the process is
  // gone (or its maps cannot be read).
  bool scan(pid_t pid, const std::set<int>& nodes, const std::function<bool(const ResidentPage&)>& fn);

  const ResidentScanStats& stats() const { return stats_; }

 private:
  bool scan_range(int pagemap_fd, pid_t pid, uint64_t start, uint64_t end, const std::set<int>& nodes,
                  const std::function<bool(const ResidentPage&)>& fn);

  const Topology& topo_;
  std::string proc_root_;
  NodeResolver resolver_;
  int kpageflags_fd_ = -1;
  ResidentScanStats stats_;
  std::vector<uint64_t> buf_;
};

}  // namespace mb
