// Benchmark 2: draining 1M page entries.
//
//   baseline  the AMD prototype's method (membalancer/memstats_user.c): one
//             BPF_MAP_TYPE_HASH entry per page, drained by a loop of
//             bpf_map_get_next_key + bpf_map_lookup_elem per key, then one
//             bpf_map_delete_elem per key. Here: a hash of 1M entries, key the
//             u64 page key mb_page_key(tgid, vpn), value 32 bytes (an
//             mb_page_slot). The prototype's value is 816 bytes, so the
//             smaller value only makes the baseline faster. The keys are
//             collected while iterating and deleted afterwards: the
//             prototype deletes while iterating, which restarts
//             get_next_key from the first key (quadratic); we do not copy
//             that bug, which again only favours the baseline.
//   ours      BpfCollector::drain_pages (default Drain::kMapped: the table is
//             a BPF_F_MMAPABLE array of 8-page sets, read and cleared in place
//             through its mapping after the swap has waited for running
//             programs), on a collector table holding 1M pages
//             (fill_active_table_for_test)
//   also      Drain::kBatch (BPF_MAP_LOOKUP_BATCH to read, BPF_MAP_UPDATE_BATCH
//             of zeros to clear touched sets, 2048-set batches) and
//             Drain::kOneByOne (one bpf() call per 8-page set to read, one per
//             touched set to clear), for reference
// All run in the same process, interleaved, the hash refilled (not timed)
// before each prototype drain and the collector table before each of ours.
// Wall time of each drain (the table swap included for ours); the median of
// several repetitions.
//
// A breakdown of the batch method on a bare array map of the collector
// table's shape follows (read vs clear).
//
// Usage: drain_cost [SLOTS [ENTRIES [REPETITIONS]]]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "membalancer/bpf_collector.h"
#include "membalancer/error.h"
#include "membalancer/records.h"
#include "membalancer/samplers.h"
#include "membalancer/topology.h"

namespace {

constexpr uint32_t kBatchSets = 2048;  // as BpfCollector's kDrainBatch (sets)
constexpr uint32_t kFillChunk = 65536;  // hash fill: entries per update_batch

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

// The same pages fill_active_table_for_test places: consecutive vpns from
// 0x10000 of one tgid, each in its home set (way = low key bits), skipping
// pages whose slot an earlier group already took.
std::vector<uint64_t> page_keys(uint32_t slots, uint32_t count, uint32_t tgid) {
  const uint32_t sets = slots / MB_PAGE_WAYS;
  uint32_t bits = 0;
  while ((1u << bits) < sets) ++bits;
  std::vector<uint8_t> used(slots);
  std::vector<uint64_t> keys;
  keys.reserve(count);
  for (uint64_t vpn = 0x10000; keys.size() < count && keys.size() < slots; ++vpn) {
    uint64_t key = mb_page_key(tgid, vpn);
    size_t i = static_cast<size_t>(mb_key_set(key, bits)) * MB_PAGE_WAYS + (key & (MB_PAGE_WAYS - 1));
    if (used[i]) continue;
    used[i] = 1;
    keys.push_back(key);
  }
  return keys;
}

// The prototype's per-page hash map: key u64 page key, value 32 bytes.
class PrototypeMap {
 public:
  explicit PrototypeMap(const std::vector<uint64_t>& keys) : keys_(keys) {
    // Preallocated (no BPF_F_NO_PREALLOC), as the prototype's maps.
    fd_ = bpf_map_create(BPF_MAP_TYPE_HASH, "proto_pages", sizeof(uint64_t), sizeof(mb_page_slot),
                         static_cast<uint32_t>(keys.size()), nullptr);
    check(fd_ >= 0, "creating the prototype's hash map");
    vals_.resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      vals_[i].key = keys[i];
      vals_[i].accesses = 1 + i % 7;
      vals_[i].mem_node1 = 1;
    }
  }
  ~PrototypeMap() { close(fd_); }

  // Not timed: puts every page in (update_batch in chunks).
  void fill() {
    for (size_t off = 0; off < keys_.size(); off += kFillChunk) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(kFillChunk, keys_.size() - off));
      check(bpf_map_update_batch(fd_, keys_.data() + off, vals_.data() + off, &n, &opts) == 0,
            "filling the prototype's hash map");
    }
  }

  // Timed: the prototype's drain. Walks the map with get_next_key, reads each
  // entry with lookup_elem and hands it to fn, then deletes every entry
  // visited with delete_elem. Returns the number of entries drained.
  // walk_s/delete_s: the two parts of the time.
  template <class Fn>
  uint64_t drain(Fn&& fn, double* walk_s, double* delete_s) {
    double t0 = bench::now_s();
    std::vector<uint64_t> seen;
    seen.reserve(keys_.size());
    uint64_t key = 0, next = 0;
    mb_page_slot value;
    const uint64_t* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      check(bpf_map_lookup_elem(fd_, &next, &value) == 0, "prototype drain: lookup_elem");
      fn(value);
      seen.push_back(next);
      key = next;
      prev = &key;
    }
    check(errno == ENOENT, "prototype drain: get_next_key");
    double t1 = bench::now_s();
    for (uint64_t k : seen) check(bpf_map_delete_elem(fd_, &k) == 0, "prototype drain: delete_elem");
    *walk_s = t1 - t0;
    *delete_s = bench::now_s() - t1;
    return seen.size();
  }

  bool empty() const {
    uint64_t next;
    return bpf_map_get_next_key(fd_, nullptr, &next) != 0;
  }

 private:
  const std::vector<uint64_t>& keys_;
  std::vector<mb_page_slot> vals_;
  int fd_ = -1;
};

struct Breakdown {
  double read_s, clear_s;
  uint32_t touched_sets;
};

// The batch drain's two steps, timed separately on a plain array map of the
// collector table's shape (8-page sets) holding the same pages.
Breakdown breakdown(uint32_t slots, const std::vector<uint64_t>& pages) {
  Breakdown b{};
  const uint32_t sets = slots / MB_PAGE_WAYS;
  uint32_t bits = 0;
  while ((1u << bits) < sets) ++bits;
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_table", 4, sizeof(mb_page_set), sets, nullptr);
  check(fd >= 0, "creating a bench array");
  std::vector<mb_page_set> content(sets);
  for (uint64_t key : pages) {
    mb_page_slot& s = content[mb_key_set(key, bits)].way[key & (MB_PAGE_WAYS - 1)];
    s.key = key, s.accesses = 1;
  }
  {
    std::vector<uint32_t> fill_keys;
    std::vector<mb_page_set> fill_vals;
    for (uint32_t i = 0; i < sets; ++i) {
      bool used = false;
      for (const auto& w : content[i].way) used |= w.key != 0;
      if (used) fill_keys.push_back(i), fill_vals.push_back(content[i]);
    }
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t n = static_cast<uint32_t>(fill_keys.size());
    check(bpf_map_update_batch(fd, fill_keys.data(), fill_vals.data(), &n, &opts) == 0, "filling");
  }
  std::vector<uint32_t> bk(kBatchSets), clear;
  std::vector<mb_page_set> bv(kBatchSets), zeros(kBatchSets);
  clear.reserve(sets);
  uint64_t seen = 0;
  double t0 = bench::now_s();
  uint32_t in = 0, out = 0;
  for (bool first = true;; first = false) {
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t count = kBatchSets;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, bk.data(), bv.data(), &count, &opts);
    check(!err || errno == ENOENT, "lookup batch");
    for (uint32_t i = 0; i < count; ++i) {
      bool used = false;
      for (const auto& w : bv[i].way)
        if (w.key) ++seen, used = true;
      if (used) clear.push_back(bk[i]);
    }
    if (err) break;
    in = out;
  }
  double t1 = bench::now_s();
  for (size_t off = 0; off < clear.size(); off += kBatchSets) {
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(kBatchSets, clear.size() - off));
    check(bpf_map_update_batch(fd, clear.data() + off, zeros.data(), &n, &opts) == 0, "clear batch");
  }
  double t2 = bench::now_s();
  b.read_s = t1 - t0;
  b.clear_s = t2 - t1;
  b.touched_sets = static_cast<uint32_t>(clear.size());
  close(fd);
  if (seen != pages.size())
    std::printf("  warning: breakdown saw %lu used slots, expected %zu\n", (unsigned long)seen, pages.size());
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t slots = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 0)) : 1u << 21;
  uint32_t entries = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 0)) : 1u << 20;
  int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  bench::raise_memlock();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    auto [fault_plan, cfg] = bench::fault_collector(getpid());  // tracked, but the handler never samples itself: the tables stay as filled
    cfg.page_slots = slots;
    mb::Topology topo = mb::read_topology("/sys");
    mb::BpfCollector collector(cfg, fault_plan, topo);
    const uint32_t kTgid = 4242;
    std::vector<uint64_t> pages = page_keys(slots, entries, kTgid);
    if (pages.size() != entries) throw std::runtime_error("the table cannot hold " + std::to_string(entries) + " pages");
    PrototypeMap proto(pages);
    std::printf("drain_cost: %u pages; ours: a table of %u slots (%u sets of %d, %.0f MiB); prototype: a hash of %u "
                "entries (8-byte key, %zu-byte value); %d repetitions each\n",
                entries, slots, slots / MB_PAGE_WAYS, MB_PAGE_WAYS, slots * 32.0 / (1 << 20), entries,
                sizeof(mb_page_slot), reps);

    using Drain = mb::BpfCollector::Drain;
    enum { kProto, kMapped, kBatchM, kPerSet, kMethods };
    const Drain methods[] = {Drain::kMapped, Drain::kMapped, Drain::kBatch, Drain::kOneByOne};
    const char* names[] = {"prototype", "drain_pages", "batch", "one-per-set"};
    std::vector<double> times[kMethods], walk, del;
    uint64_t sum = 0;
    auto fn = [&](const mb_page_slot& s) { sum += s.accesses; };
    for (int r = 0; r < reps; ++r) {
      for (int m = 0; m < kMethods; ++m) {
        uint64_t n;
        double dt;
        if (m == kProto) {
          proto.fill();
          double w, d, t0 = bench::now_s();
          n = proto.drain(fn, &w, &d);
          dt = bench::now_s() - t0;
          walk.push_back(w), del.push_back(d);
          if (!proto.empty()) throw std::runtime_error("the prototype's drain left entries in the hash");
        } else {
          collector.fill_active_table_for_test(entries, kTgid);
          double t0 = bench::now_s();
          n = collector.drain_pages(fn, methods[m]);
          dt = bench::now_s() - t0;
          // The drained table must come back empty: swap the other (empty)
          // table out, then drain this one again.
          collector.drain_pages(fn);
          uint64_t left = collector.drain_pages(fn);
          if (left) throw std::runtime_error(std::string(names[m]) + " left " + std::to_string(left) + " slots set");
        }
        if (n != entries)
          throw std::runtime_error(std::string(names[m]) + " drained " + std::to_string(n) + " pages, expected " +
                                   std::to_string(entries));
        times[m].push_back(dt);
        std::printf("  rep %d %-12s %8.4f s\n", r, names[m], dt);
      }
    }
    double mp = bench::median(times[kProto]), mm = bench::median(times[kMapped]);
    double mb = bench::median(times[kBatchM]), ms = bench::median(times[kPerSet]);
    std::printf("drain_cost: prototype (hash; get_next_key + lookup_elem, then delete_elem, per page) median %.4f s  "
                "(%.0f ns/page)\n",
                mp, mp * 1e9 / entries);
    std::printf("drain_cost:   of which get_next_key + lookup_elem walk median %.4f s, delete_elem per key median "
                "%.4f s\n",
                bench::median(walk), bench::median(del));
    std::printf("drain_cost: drain_pages (mapped)   median %.4f s  (%.0f ns/page)\n", mm, mm * 1e9 / entries);
    std::printf("drain_cost: batch syscalls         median %.4f s  (%.0f ns/page)\n", mb, mb * 1e9 / entries);
    std::printf("drain_cost: one bpf() call per set median %.4f s  (%.0f ns/page)\n", ms, ms * 1e9 / entries);
    std::printf("drain_cost: drain_pages is %.1fx faster than the prototype's drain (batch syscalls: %.1fx, one call "
                "per set: %.1fx)\n",
                mp / mm, mp / mb, mp / ms);
    bench::result("drain_entries", entries, "");
    bench::result("drain_slots", slots, "");
    bench::result("drain_prototype_s", mp, "s");
    bench::result("drain_prototype_walk_s", bench::median(walk), "s");
    bench::result("drain_prototype_delete_s", bench::median(del), "s");
    bench::result("drain_mapped_s", mm, "s");
    bench::result("drain_batch_s", mb, "s");
    bench::result("drain_one_by_one_s", ms, "s");
    bench::result("drain_speedup", mp / mm, "x");
    bench::result("drain_batch_speedup", mp / mb, "x");
    bench::result("drain_one_by_one_speedup", mp / ms, "x");

    std::vector<double> rd, cl;
    uint32_t touched = 0;
    for (int r = 0; r < 3; ++r) {
      Breakdown b = breakdown(slots, pages);
      rd.push_back(b.read_s), cl.push_back(b.clear_s), touched = b.touched_sets;
    }
    std::printf("drain_cost: batch method on a bare array of %u sets: lookup_batch of all sets %.4f s, update_batch "
                "of zeros for the %u touched sets %.4f s\n",
                slots / MB_PAGE_WAYS, bench::median(rd), touched, bench::median(cl));
    bench::result("drain_part_read_s", bench::median(rd), "s");
    bench::result("drain_part_clear_s", bench::median(cl), "s");
    bench::result("drain_part_touched_sets", touched, "");
    if (sum == 1) std::printf(" ");
  } catch (const std::exception& e) {
    std::printf("FAIL drain_cost: %s\n", e.what());
    return 1;
  }
  return 0;
}
