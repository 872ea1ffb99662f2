// Benchmark 3: memory per tracked page at 1M pages.
//
// BPF: a collector with a 1M-slot page table (page_slots = 1<<20; there are
// two tables, the active one and the one being drained). Bytes come from the
// kernel's accounting (memlock in /proc/self/fdinfo, BpfCollector::
// page_table_kernel_bytes), cross-checked with `bpftool map show` (bytes_memlock).
// User space: mb::PageTable with capacity 1M filled with 1M entries
// (memory_bytes), plus the collector's fixed drain buffers amortized over 1M
// pages; cross-checked with the process's VmRSS growth while building and
// filling the table.
// Baseline: the AMD prototype keeps 816 bytes of BPF map memory per page.
#include <bpf/bpf.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "membalancer/bpf_collector.h"
#include "membalancer/page_table.h"
#include "membalancer/samplers.h"
#include "membalancer/topology.h"

namespace {

constexpr double kPrototypeBytesPerPage = 816;
// BpfCollector's drain buffers: kDrainBatch (16384) keys, values, clear keys
// and zeros, allocated once (bpf_collector.cpp).
constexpr double kDrainBatch = 16384;
constexpr double kDrainBufferBytes = kDrainBatch * (4 + sizeof(mb_page_slot) + 4 + sizeof(mb_page_slot));

// Map ids of this process's BPF maps named `name`.
std::vector<uint32_t> my_map_ids(const char* name) {
  std::vector<uint32_t> ids;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    bpf_map_info info;
    std::memset(&info, 0, sizeof(info));
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::strcmp(info.name, name) == 0) ids.push_back(info.id);
  }
  closedir(d);
  return ids;
}

// bytes_memlock of a map as `bpftool map show id N` prints it, or 0.
uint64_t bpftool_memlock(uint32_t id) {
  std::string cmd = "bpftool map show id " + std::to_string(id) + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return 0;
  char line[512];
  uint64_t bytes = 0;
  while (std::fgets(line, sizeof(line), p.get())) {
    if (const char* m = std::strstr(line, "memlock ")) bytes = std::strtoull(m + 8, nullptr, 10);
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t pages = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 0)) : 1u << 20;
  bench::raise_memlock();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // User space first, before the collector's allocations blur the RSS.
  uint64_t rss0 = bench::proc_status_bytes("VmRSS");
  double user_table_bytes, rss_delta;
  uint64_t stored;
  {
    mb::PageTable table(pages);
    uint16_t lanes[MB_CPU_LANES] = {1, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < pages; ++i) table.add(mb_page_key(4242, 0x10000 + i * 3), 1 + i % 5, lanes, 0);
    stored = table.size();
    rss_delta = static_cast<double>(bench::proc_status_bytes("VmRSS") - rss0);
    user_table_bytes = static_cast<double>(table.memory_bytes());
    std::printf("memory_cost: user-space PageTable(%u): %lu entries stored, %zu slots of %zu bytes = %.1f MiB; "
                "VmRSS grew %.1f MiB\n",
                pages, (unsigned long)stored, table.slot_count(), sizeof(mb::PageEntry), user_table_bytes / (1 << 20),
                rss_delta / (1 << 20));
  }
  if (stored != pages) std::printf("  warning: only %lu of %u pages were stored\n", (unsigned long)stored, pages);
  double user_per_page = (user_table_bytes + kDrainBufferBytes) / pages;
  double rss_per_page = rss_delta / pages;
  std::printf("memory_cost: user space %.1f bytes/page (table %.1f + drain buffers %.1f); RSS growth %.1f bytes/page\n",
              user_per_page, user_table_bytes / pages, kDrainBufferBytes / pages, rss_per_page);

  try {
    auto [fault_plan, cfg] = bench::fault_collector(getpid());
    cfg.page_slots = pages;
    mb::Topology topo = mb::read_topology("/sys");
    mb::BpfCollector collector(cfg, fault_plan, topo);
    uint64_t kernel = collector.page_table_kernel_bytes();
    uint64_t tool = 0;
    auto ids = my_map_ids("mb_page_table");
    for (uint32_t id : ids) tool += bpftool_memlock(id);
    double bpf_per_page = static_cast<double>(kernel) / pages;
    std::printf("memory_cost: BPF page tables (2 x %u slots of %zu bytes): fdinfo memlock %.1f MiB = %.1f bytes/page; "
                "bpftool map show (ids",
                pages, sizeof(mb_page_slot), kernel / 1048576.0, bpf_per_page);
    for (uint32_t id : ids) std::printf(" %u", id);
    std::printf(") %.1f MiB = %.1f bytes/page\n", tool / 1048576.0, static_cast<double>(tool) / pages);
    std::printf("memory_cost: prototype baseline %.0f bytes/page in BPF\n", kPrototypeBytesPerPage);
    bench::result("mem_pages", pages, "");
    bench::result("mem_bpf_bytes_per_page", bpf_per_page, "B");
    bench::result("mem_bpf_bpftool_bytes_per_page", static_cast<double>(tool) / pages, "B");
    bench::result("mem_prototype_bytes_per_page", kPrototypeBytesPerPage, "B");
    bench::result("mem_user_bytes_per_page", user_per_page, "B");
    bench::result("mem_user_table_bytes_per_page", user_table_bytes / pages, "B");
    bench::result("mem_user_rss_bytes_per_page", rss_per_page, "B");
  } catch (const std::exception& e) {
    std::printf("FAIL memory_cost: %s\n", e.what());
    return 1;
  }
  return 0;
}
