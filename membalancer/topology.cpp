#include "membalancer/topology.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <sstream>

#include "membalancer/error.h"
#include "membalancer/sysfs.h"

namespace mb {

const NumaNode* Topology::node(int id) const {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

int Topology::distance(int from, int to) const {
  if (const NumaNode* n = node(from)) {
    auto it = n->distance.find(to);
    if (it != n->distance.end()) return it->second;
  }
  return from == to ? 10 : 20;
}

std::vector<int> Topology::cpu_nodes() const {
  std::vector<int> out;
  for (const auto& n : nodes)
    if (!n.cpus.empty()) out.push_back(n.id);
  return out;
}

int Topology::node_of_phys(uint64_t paddr) const {
  if (!mem_block_bytes) return -1;
  uint64_t block = paddr / mem_block_bytes;
  if (block >= mem_block_node.size() || mem_block_node[block] == 0xffff) return -1;
  return mem_block_node[block];
}

std::vector<int> memory_nodes(const Topology& topo) {
  std::vector<int> out;
  for (const auto& n : topo.nodes)
    if (n.mem_total_bytes > 0) out.push_back(n.id);
  return out;
}

int Topology::max_node_id() const { return nodes.empty() ? 0 : nodes.back().id; }

bool parse_node_meminfo(const std::string& text, uint64_t* total, uint64_t* free) {
  std::istringstream in(text);
  std::string line;
  bool got_total = false, got_free = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string node_word, id, key;
    uint64_t kb;
    if (!(ls >> node_word >> id >> key >> kb)) continue;
    if (key == "MemTotal:") *total = kb * 1024, got_total = true;
    if (key == "MemFree:") *free = kb * 1024, got_free = true;
  }
  return got_total && got_free;
}

static std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) out.emplace_back(e->d_name);
  closedir(d);
  return out;
}

static bool numbered(const std::string& name, const std::string& prefix, int* id) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  int v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + (name[i] - '0');
    if (v > (1 << 26)) return false;  // not a real node, tier or block number (and no int overflow)
  }
  *id = v;
  return true;
}

void refresh_node_memory(Topology& topo, const std::string& sysfs_root) {
  for (auto& n : topo.nodes) {
    auto text = read_text_file(sysfs_root + "/devices/system/node/node" + std::to_string(n.id) + "/meminfo");
    if (text) parse_node_meminfo(*text, &n.mem_total_bytes, &n.mem_free_bytes);
  }
}

std::map<int, uint64_t> parse_zoneinfo_high(const std::string& text) {
  // "Node 0, zone   Normal" starts a zone; its "        high     1234" line
  // (pages) follows among the "pages free" block.
  std::map<int, uint64_t> high;
  std::istringstream in(text);
  std::string line;
  int node = -1;
  while (std::getline(in, line)) {
    int n;
    if (std::sscanf(line.c_str(), "Node %d, zone", &n) == 1) {
      node = n;
      continue;
    }
    unsigned long long pages;
    char word[8];
    if (node >= 0 && std::sscanf(line.c_str(), " %7s %llu", word, &pages) == 2 && std::string(word) == "high") {
      high[node] += pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      node = -1;  // one "high" per zone (later ones belong to other counters)
    }
  }
  return high;
}

std::map<int, uint64_t> kernel_high_watermarks(const std::string& zoneinfo_path) {
  auto text = read_text_file(zoneinfo_path);
  return text ? parse_zoneinfo_high(*text) : std::map<int, uint64_t>{};
}

Topology read_topology(const std::string& sysfs_root) {
  Topology topo;
  const std::string node_dir = sysfs_root + "/devices/system/node";
  auto online = read_text_file(node_dir + "/online");
  std::vector<int> ids;
  if (online) {
    ids = parse_int_list(*online, node_dir + "/online");
  } else {
    // No NUMA support compiled in: one node holding every CPU.
    ids = {0};
  }
  for (int id : ids) {
    NumaNode n;
    n.id = id;
    std::string dir = node_dir + "/node" + std::to_string(id);
    if (auto cpus = read_text_file(dir + "/cpulist")) n.cpus = parse_int_list(*cpus, dir + "/cpulist");
    if (auto dist = read_text_file(dir + "/distance")) {
      std::istringstream ds(*dist);
      int d;
      for (size_t i = 0; ds >> d && i < ids.size(); ++i) n.distance[ids[i]] = d;
    }
    topo.nodes.push_back(std::move(n));
  }
  if (!online) {
    auto present = read_text_file(sysfs_root + "/devices/system/cpu/online");
    if (present) topo.nodes[0].cpus = parse_int_list(*present, "cpu/online");
  }
  std::sort(topo.nodes.begin(), topo.nodes.end(), [](auto& a, auto& b) { return a.id < b.id; });
  refresh_node_memory(topo, sysfs_root);

  int max_cpu = -1;
  for (const auto& n : topo.nodes)
    for (int c : n.cpus) max_cpu = std::max(max_cpu, c);
  topo.cpu_node.assign(max_cpu + 1, -1);
  for (const auto& n : topo.nodes)
    for (int c : n.cpus) topo.cpu_node[c] = n.id;

  // Memory blocks: memoryN/ holds a link "nodeM" naming the block's node.
  const std::string mem_dir = sysfs_root + "/devices/system/memory";
  auto bs = read_text_file(mem_dir + "/block_size_bytes");
  const std::string bs_text = bs ? trim(*bs) : "";
  char* bs_end = nullptr;
  errno = 0;
  const uint64_t block_bytes = bs_text.empty() || bs_text[0] == '-' ? 0 : std::strtoull(bs_text.c_str(), &bs_end, 16);
  if (block_bytes > 0 && errno == 0 && *bs_end == '\0') {  // else: no block table, as without the directory
    topo.mem_block_bytes = block_bytes;
    for (const auto& name : list_dir(mem_dir)) {
      int block;
      if (!numbered(name, "memory", &block)) continue;
      for (const auto& entry : list_dir(mem_dir + "/" + name)) {
        int nid;
        if (!numbered(entry, "node", &nid)) continue;
        if (block >= static_cast<int>(topo.mem_block_node.size()))
          topo.mem_block_node.resize(block + 1, 0xffff);
        topo.mem_block_node[block] = static_cast<uint16_t>(nid);
      }
    }
  }
  // Memory tiers (Linux 6.1+): memory_tierN/nodelist; tiers without nodes
  // are left out.
  const std::string tier_dir = sysfs_root + "/devices/virtual/memory_tiering";
  for (const auto& name : list_dir(tier_dir)) {
    int id;
    if (!numbered(name, "memory_tier", &id)) continue;
    auto list = read_text_file(tier_dir + "/" + name + "/nodelist");
    if (!list || trim(*list).empty()) continue;
    topo.kernel_tiers.push_back({id, parse_int_list(*list, tier_dir + "/" + name + "/nodelist")});
  }
  std::sort(topo.kernel_tiers.begin(), topo.kernel_tiers.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return topo;
}

}  // namespace mb
