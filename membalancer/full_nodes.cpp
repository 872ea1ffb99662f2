#include "membalancer/full_nodes.h"

#include <algorithm>

namespace mb {

std::vector<int> FullNodeWait::update(uint32_t now, const std::map<int, uint64_t>& marked,
                                      const std::map<int, uint64_t>& free_bytes) {
  auto free_of = [&](int n) -> uint64_t {
    auto it = free_bytes.find(n);
    return it == free_bytes.end() ? 0 : it->second;
  };
  std::vector<int> over;
  // Marks cleared by someone else: no wait left.
  std::erase_if(waits_, [&](const auto& w) { return !marked.count(w.first); });
  for (const auto& [node, refused] : marked) {
    auto it = waits_.find(node);
    if (it == waits_.end()) {
      uint32_t& length = backoff_[node];
      if (!length) length = kFirstWait;
      waits_[node] = Wait{now, free_of(node), length};
      continue;
    }
    Wait& w = it->second;
    if (free_of(node) >= w.free_at_mark + std::max<uint64_t>(refused, 1)) {
      backoff_[node] = kFirstWait;  // room again: the node is not short of memory for long
    } else if (now - w.since >= w.length) {
      backoff_[node] = std::min(2 * w.length, kMaxWait);
    } else {
      continue;
    }
    over.push_back(node);
    waits_.erase(it);
  }
  return over;
}

void FullNodeWait::hide_room(MemoryState& mem, double low_watermark) const {
  for (auto& [node, nm] : mem.nodes)
    if (waiting(node)) {
      nm.waiting = true;
      nm.free_bytes = std::min(nm.free_bytes, static_cast<uint64_t>(nm.total_bytes * low_watermark));
    }
}

uint32_t FullNodeWait::wait_length(int node) const {
  auto it = waits_.find(node);
  return it == waits_.end() ? 0 : it->second.length;
}

}  // namespace mb
