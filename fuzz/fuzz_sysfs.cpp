// libFuzzer target: the kernel-text parsers of membalancer/sysfs.h,
// membalancer/topology.h and membalancer/profile_file.h, and read_topology()
// on a fake sysfs tree built from the input.
//
// The first byte chooses the parser (byte % 6), the rest is its text:
//   0  parse_int_list ("0-3,8")     UsageError or a list; the list joined
//                                   with ',' parses back to itself
//   1  parse_size ("64M")           UsageError or bytes; the decimal
//                                   number parses back to itself
//   2  trim                         no white space left at either end,
//                                   idempotent
//   3  parse_node_meminfo           never throws
//   4  parse_proc_maps              never throws; sorted by start
//   5  read_topology(root)          UsageError or a topology whose tables
//                                   agree with each other (see below)
//
// Mode 5 input: two bytes of presence mask (bit i: file i exists), then the
// present files' contents in order, separated by NUL bytes. Files:
//    0 devices/system/node/online         1 devices/system/cpu/online
//    2 node0/cpulist  3 node0/distance    4 node0/meminfo
//    5 node1/cpulist  6 node1/distance    7 node1/meminfo
//    8 node2/cpulist  9 node2/distance   10 node2/meminfo
//   11 devices/system/memory/block_size_bytes
//   12 memory blocks: lines "memoryN/nodeM" made as directories below
//      devices/system/memory (names taken verbatim, at most 64 lines)
//   13 memory_tiering/memory_tier4/nodelist
//   14 memory_tiering/memory_tier5/nodelist
// (node dirs are below devices/system/node, memory_tiering below
// devices/virtual). A tree whose node/online lists more than 64 nodes is
// skipped: the kernel has at most a few hundred, each costs three file reads.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "membalancer/sysfs.h"
#include "membalancer/tiers.h"
#include "membalancer/topology.h"

namespace fs = std::filesystem;

namespace {

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

void fuzz_int_list(const std::string& text) {
  std::vector<int> v;
  try {
    v = mb::parse_int_list(text, "fuzz");
  } catch (const mb::UsageError&) {
    return;
  }
  for (int x : v) FUZZ_CHECK(x >= 0 && x <= (1 << 22), std::to_string(x));
  if (v.size() > 10000) return;
  std::string joined;
  for (size_t i = 0; i < v.size(); ++i) joined += (i ? "," : "") + std::to_string(v[i]);
  std::vector<int> again;
  try {
    again = mb::parse_int_list(joined, "fuzz");
  } catch (const mb::UsageError& e) {
    mb_fuzz::fail("'" + joined + "' does not parse back: " + e.what());
  }
  FUZZ_CHECK(again == v, "'" + joined + "' parses back to another list");
}

void fuzz_size(const std::string& text) {
  uint64_t v;
  try {
    v = mb::parse_size(text, "fuzz");
  } catch (const mb::UsageError&) {
    return;
  }
  uint64_t again = 0;
  try {
    again = mb::parse_size(std::to_string(v), "fuzz");
  } catch (const mb::UsageError& e) {
    // A size over 18 decimal digits is refused by design (parse_nonneg);
    // units can make one (e.g. 999999T), which then only round-trips with a unit.
    if (std::to_string(v).size() <= 18) mb_fuzz::fail(std::to_string(v) + " does not parse back: " + e.what());
    return;
  }
  FUZZ_CHECK(again == v, std::to_string(v) + " parses back to " + std::to_string(again));
}

void fuzz_trim(const std::string& text) {
  std::string t = mb::trim(text);
  FUZZ_CHECK(t.empty() || (!space(t.front()) && !space(t.back())), "'" + t + "'");
  FUZZ_CHECK(mb::trim(t) == t, "not idempotent");
  FUZZ_CHECK(text.find(t) != std::string::npos, "not a substring");
}

void fuzz_meminfo(const std::string& text) {
  uint64_t total = 0, free = 0;
  (void)mb::parse_node_meminfo(text, &total, &free);
}

void fuzz_proc_maps(const std::string& text) {
  auto maps = mb::parse_proc_maps(text);
  for (size_t i = 0; i < maps.size(); ++i) {
    if (i) FUZZ_CHECK(maps[i - 1].start <= maps[i].start, "not sorted");
    FUZZ_CHECK(maps[i].prot <= 15, std::to_string(maps[i].prot));
  }
}

const char* const kFiles[] = {
    "devices/system/node/online",
    "devices/system/cpu/online",
    "devices/system/node/node0/cpulist",
    "devices/system/node/node0/distance",
    "devices/system/node/node0/meminfo",
    "devices/system/node/node1/cpulist",
    "devices/system/node/node1/distance",
    "devices/system/node/node1/meminfo",
    "devices/system/node/node2/cpulist",
    "devices/system/node/node2/distance",
    "devices/system/node/node2/meminfo",
    "devices/system/memory/block_size_bytes",
    nullptr,  // memory blocks
    "devices/virtual/memory_tiering/memory_tier4/nodelist",
    "devices/virtual/memory_tiering/memory_tier5/nodelist",
};
constexpr int kNrFiles = sizeof(kFiles) / sizeof(kFiles[0]);

bool safe_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

void put(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  mb_fuzz::write_file(p.string(), content.data(), content.size());
}

void fuzz_topology(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const unsigned mask = data[0] | (data[1] << 8);
  std::vector<std::string> parts;
  {
    std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
    size_t start = 0;
    for (;;) {
      size_t z = rest.find('\0', start);
      parts.push_back(rest.substr(start, z == std::string::npos ? std::string::npos : z - start));
      if (z == std::string::npos) break;
      start = z + 1;
    }
  }
  // The tree, rebuilt for each input.
  static const fs::path root = fs::path(mb_fuzz::scratch_dir()) / "sys";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  size_t next = 0;
  for (int i = 0; i < kNrFiles; ++i) {
    if (!(mask & (1u << i))) continue;
    const std::string content = next < parts.size() ? parts[next] : std::string();
    ++next;
    if (i == 0) {  // more than 64 nodes: not a machine, and slow
      try {
        if (mb::parse_int_list(content, "online").size() > 64) return;
      } catch (const mb::UsageError&) {
      }
    }
    if (kFiles[i]) {
      put(root / kFiles[i], content);
      continue;
    }
    std::istringstream lines(content);
    std::string line;
    for (int n = 0; n < 64 && std::getline(lines, line); ++n) {
      auto slash = line.find('/');
      std::string block = line.substr(0, slash);
      std::string entry = slash == std::string::npos ? "" : line.substr(slash + 1);
      if (!safe_name(block)) continue;
      fs::path dir = root / "devices/system/memory" / block;
      fs::create_directories(dir, ec);
      if (safe_name(entry)) fs::create_directories(dir / entry, ec);
    }
  }

  mb::Topology topo;
  try {
    topo = mb::read_topology(root.string());
  } catch (const mb::UsageError&) {
    return;
  } catch (const std::exception& e) {
    mb_fuzz::unexpected_exception("read_topology", e);
  }
  // The tables agree with each other.
  for (size_t i = 1; i < topo.nodes.size(); ++i) FUZZ_CHECK(topo.nodes[i - 1].id <= topo.nodes[i].id, "nodes not sorted");
  for (const auto& n : topo.nodes)
    for (int c : n.cpus) {
      FUZZ_CHECK(c >= 0 && static_cast<size_t>(c) < topo.cpu_node.size(), "cpu " + std::to_string(c));
      FUZZ_CHECK(topo.node(topo.cpu_node[c]) != nullptr, "cpu_node of cpu " + std::to_string(c));
    }
  for (int c : topo.cpu_node) FUZZ_CHECK(c == -1 || topo.node(c) != nullptr, "cpu_node " + std::to_string(c));
  for (size_t i = 1; i < topo.kernel_tiers.size(); ++i)
    FUZZ_CHECK(topo.kernel_tiers[i - 1].id <= topo.kernel_tiers[i].id, "kernel tiers not sorted");
  uint64_t sink = 0;
  if (topo.mem_block_bytes) {
    for (size_t b = 0; b < topo.mem_block_node.size() && b < 1024; ++b) {
      int n = topo.node_of_phys(b * topo.mem_block_bytes);
      FUZZ_CHECK(n == -1 || n == topo.mem_block_node[b], "node_of_phys of block " + std::to_string(b));
    }
    sink += static_cast<uint64_t>(topo.node_of_phys(~0ull));
  }
  for (const auto& a : topo.nodes)
    for (const auto& b : topo.nodes) sink += static_cast<uint64_t>(topo.distance(a.id, b.id));
  sink += topo.cpu_nodes().size() + mb::memory_nodes(topo).size() + static_cast<uint64_t>(topo.max_node_id());
  // What the tier mode makes of it: tiers, or SystemError (fewer than two).
  for (const char* how : {"auto", "kernel", "cpuless", "distance"}) {
    try {
      mb::Tiers t = mb::choose_tiers(how, topo);
      FUZZ_CHECK(t.size() >= 2, how);
      for (const auto& tier : t.tiers) FUZZ_CHECK(!tier.empty(), std::string(how) + ": empty tier");
      sink += t.describe().size();
    } catch (const mb::SystemError&) {
    } catch (const std::exception& e) {
      mb_fuzz::unexpected_exception("choose_tiers", e);
    }
  }
  static volatile uint64_t g_sink;
  g_sink = g_sink + sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 6) {
      case 0: fuzz_int_list(text); break;
      case 1: fuzz_size(text); break;
      case 2: fuzz_trim(text); break;
      case 3: fuzz_meminfo(text); break;
      case 4: fuzz_proc_maps(text); break;
      case 5: fuzz_topology(data + 1, size - 1); break;
    }
  } catch (const std::exception& e) {
    mb_fuzz::unexpected_exception("a parser", e);
  }
  return 0;
}
