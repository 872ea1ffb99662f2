// The node of pages whose samples carried no physical address: asked from the
// kernel with move_pages(2) and no target nodes, which returns each page's
// node (or a negative errno) in `status`. Batched per process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace mb {

struct NodeQueryStats {
  uint64_t pages_asked = 0;
  uint64_t resolved = 0;
  uint64_t not_present = 0;   // -ENOENT: not (or no longer) in memory
  uint64_t not_mapped = 0;    // -EFAULT and other per-page errors
  uint64_t process_gone = 0;  // ESRCH for the whole call
  uint64_t calls = 0;
};

class NodeResolver {
 public:
  // (pid, count, pages, status) -> 0 or -1 with errno, as move_pages(2).
  using QueryFn = std::function<long(pid_t, unsigned long, void**, int*)>;

  explicit NodeResolver(QueryFn query = {}, size_t batch_pages = 1024);

  // Resolves the node of every (tgid, vaddr) of `pages` (sorted or not). For
  // each page calls out(index into pages, node) with node >= 0, or -errno.
  struct Page {
    pid_t pid;
    uint64_t vaddr;
  };
  void resolve(const std::vector<Page>& pages, const std::function<void(size_t, int)>& out);

  const NodeQueryStats& stats() const { return stats_; }

 private:
  QueryFn query_;
  size_t batch_;
  NodeQueryStats stats_;
  std::vector<size_t> order_;
  std::vector<void*> addrs_;
  std::vector<int> status_;
};

}  // namespace mb
