// `profiler report`: one pass over a profile's samples builds the aggregate
// (per node, per process, per page, per instruction pointer); regions and
// symbols are derived from it; the tables are printed as text, CSV or JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "membalancer/profile_file.h"
#include "membalancer/flat_map.h"
#include "profiler/process_keys.h"

namespace mb::prof {

inline constexpr int kNodeSlots = MB_MAX_NODES + 1;  // last slot: node unknown
inline constexpr int kLatencyBuckets = 64 * 8;       // log2 x 8 linear steps

struct NodeStats {
  uint64_t accesses = 0;  // samples with a data address on this node
  uint64_t pages = 0;     // distinct pages last seen on this node
  uint64_t latency_samples = 0;
  uint64_t latency[kLatencyBuckets] = {};
  uint64_t source[MB_SRC_NR] = {};
};

struct ProcessStats {
  uint64_t samples = 0;
  uint64_t accesses = 0;  // with a data address
  uint64_t pages = 0;
};

struct PageStats {  // 16 bytes with its key: the table that sees every sample
  uint32_t accesses = 0;
  uint16_t node = MB_NODE_UNKNOWN;
};

struct IpKey {
  uint32_t tgid;
  uint64_t ip;
  bool operator==(const IpKey& o) const { return ip == o.ip && tgid == o.tgid; }
};
struct IpKeyOps {
  static IpKey empty() { return {~0u, ~0ULL}; }
  static uint64_t hash(const IpKey& k) { return (k.ip ^ (static_cast<uint64_t>(k.tgid) << 40)) * 0x9E3779B97F4A7C15ULL; }
};
struct Aggregate {
  uint64_t samples = 0, with_address = 0, with_ip = 0;
  uint64_t first_ns = UINT64_MAX, last_ns = 0;
  NodeStats nodes[kNodeSlots];
  // Keyed by process key (the tgid of pages' keys, of IpKey): see who.
  FlatMap<uint64_t, ProcessStats, U64KeyOps> processes;
  FlatMap<uint64_t, PageStats, U64KeyOps> pages;  // key: mb_page_key(process key, vpn)
  FlatMap<IpKey, uint64_t, IpKeyOps> ips;

  // Who the samples were: with the profile's processes (aggregate_file sets
  // them), a process key is one span of a tgid, so a reused pid or an exec'd
  // program keeps its own pages and code; without, the key is the tgid.
  ProcessKeys keys;
  using Who = ProcessKeys::Who;
  Who who_of(uint64_t key) const { return keys.who(key); }

  void add(const mb_sample* s, size_t n);
  // Per-node and per-process distinct pages (call once after the last add).
  void finish();

 private:
  // The pages of a span split at swaps (ProcessKeys): an address's pages in
  // its parts are one page, in its first part of the same contents.
  void join_parts();
 public:
};

// Reads every readable sample of the file into an aggregate.
void aggregate_file(ProfileReader& reader, Aggregate* agg);

// The latency below which fraction q of a node's samples lie (cycles).
uint64_t latency_percentile(const NodeStats& n, double q);
int latency_bucket(uint32_t latency);

struct RegionRow {
  uint32_t tgid;
  uint32_t key;  // process key (Aggregate::who_of)
  uint64_t start, bytes;
  uint64_t accesses = 0, pages = 0;
  int node = -1;  // node with most accesses (-1 unknown)
  uint64_t hottest_addr = 0;  // its hottest page: where its mapping is looked up
  uint32_t hottest_key = 0;   // the process key of that page (the part of its span)
};
// The n regions (aligned blocks of region_bytes) with the most accesses.
std::vector<RegionRow> hottest_regions(const Aggregate& agg, uint64_t region_bytes, size_t n);

struct PageRow {
  uint32_t tgid;
  uint32_t key;  // process key (Aggregate::who_of)
  uint64_t addr, accesses;
  int node;
};
std::vector<PageRow> hottest_pages(const Aggregate& agg, size_t n);

struct ReportOptions {
  std::string by;  // "" (overview), page, region, node, process, symbol
  size_t top = 10;
  std::string format = "text";  // text, csv, json
  uint64_t region_bytes = 2 << 20;
};

// Prints the report of an aggregate. Returns nothing; throws on bad options.
void print_report(FILE* out, const ProfileReader& reader, const Aggregate& agg, const ReportOptions& opts);

const char* data_source_name(int src);

}  // namespace mb::prof
