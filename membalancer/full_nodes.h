// Waiting on full nodes. When the kernel refuses pages on a node for want of
// room (move_pages ENOMEM/ENOSPC), the mover marks the node full and sends
// its pages to another node of its tier (MoverConfig::same_tier). The memory
// backend then keeps the policies from planning moves into the node until
// either its free memory has grown by what it refused (room again), or a
// backoff has passed, after which it is tried again. The backoff starts at
// kFirstWait intervals and doubles, up to kMaxWait, each time a wait ends by
// the backoff alone; a wait ended by free memory resets it. Node free
// memory alone cannot end a wait early when it never reflected the refusal
// (memory the kernel keeps for itself, a cpuset of the mover's), hence the
// backoff.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "membalancer/policy.h"

namespace mb {

class FullNodeWait {
 public:
  static constexpr uint32_t kFirstWait = 4;  // intervals
  static constexpr uint32_t kMaxWait = 64;

  // Called once per interval `now`. `marked`: the nodes the mover has marked
  // full, each with the bytes refused since it was marked; `free_bytes`: each
  // node's free memory now. Returns the nodes whose wait is over; the caller
  // clears their marks in the mover (Mover::clear_full).
  std::vector<int> update(uint32_t now, const std::map<int, uint64_t>& marked,
                          const std::map<int, uint64_t>& free_bytes);
  bool waiting(int node) const { return waits_.count(node) != 0; }
  // What the policies see of a waiting node (NodeMemory::waiting is set).
  // Tier mode (low_watermark > 0, the policy's configured share): free
  // memory at its low watermark at most, so that it is no demotion target
  // (those need room above it), takes promotions only for as much as it
  // demotes first (no room above the high watermark), and is not itself
  // pushed into demotions by this (those start below the low watermark).
  // With --watermark auto the policy's watermarks can be far below the
  // configured share: the tier policy clamps a waiting node's free memory
  // to the low watermark it works out itself. numa (low_watermark 0): no
  // free memory, below any floor.
  void hide_room(MemoryState& mem, double low_watermark) const;
  // Intervals the node's current wait may last (0 when not waiting).
  uint32_t wait_length(int node) const;

 private:
  struct Wait {
    uint32_t since = 0;         // interval it started
    uint64_t free_at_mark = 0;  // the node's free bytes then
    uint32_t length = 0;        // intervals
  };
  std::map<int, Wait> waits_;
  std::map<int, uint32_t> backoff_;  // length of the node's next wait
};

}  // namespace mb
