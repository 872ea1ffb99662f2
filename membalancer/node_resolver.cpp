#include "membalancer/node_resolver.h"

#include <numa.h>
#include <numaif.h>

#include <algorithm>
#include <cerrno>

namespace mb {

NodeResolver::NodeResolver(QueryFn query, size_t batch_pages)
    : query_(std::move(query)), batch_(std::max<size_t>(batch_pages, 1)) {
  if (!query_) {
    query_ = [](pid_t pid, unsigned long count, void** pages, int* status) -> long {
      return numa_move_pages(pid, count, pages, nullptr, status, 0);
    };
  }
}

void NodeResolver::resolve(const std::vector<Page>& pages, const std::function<void(size_t, int)>& out) {
  order_.resize(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) order_[i] = i;
  std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
    return pages[a].pid != pages[b].pid ? pages[a].pid < pages[b].pid : pages[a].vaddr < pages[b].vaddr;
  });
  for (size_t begin = 0; begin < order_.size();) {
    pid_t pid = pages[order_[begin]].pid;
    size_t end = begin;
    while (end < order_.size() && end - begin < batch_ && pages[order_[end]].pid == pid) ++end;
    size_t n = end - begin;
    addrs_.resize(n);
    status_.assign(n, -ENOENT);
    for (size_t i = 0; i < n; ++i) addrs_[i] = reinterpret_cast<void*>(pages[order_[begin + i]].vaddr);
    ++stats_.calls;
    stats_.pages_asked += n;
    if (query_(pid, n, addrs_.data(), status_.data()) != 0) {
      int err = errno;
      if (err == ESRCH) stats_.process_gone += n;
      else stats_.not_mapped += n;
      for (size_t i = 0; i < n; ++i) out(order_[begin + i], -err);
    } else {
      for (size_t i = 0; i < n; ++i) {
        int s = status_[i];
        if (s >= 0) ++stats_.resolved;
        else if (s == -ENOENT) ++stats_.not_present;
        else ++stats_.not_mapped;
        out(order_[begin + i], s);
      }
    }
    begin = end;
  }
}

}  // namespace mb
