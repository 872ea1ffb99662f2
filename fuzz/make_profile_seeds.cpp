// Writes the seed corpus of the profile_reader fuzz target (fuzz/corpus/
// profile_reader/): tiny profiles made with mb::ProfileWriter, and damaged
// copies of them. A one-off tool, not built by `make`; rerun it when the
// profile format changes:
//   make build/libmembalancer.a
//   g++ -std=c++20 -Iinclude -Ibuild -I. fuzz/make_profile_seeds.cpp build/libmembalancer.a -lz
//       -o /tmp/make_profile_seeds
//   /tmp/make_profile_seeds fuzz/corpus/profile_reader

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "membalancer/profile_file.h"

namespace {

mb::Topology two_nodes() {
  mb::Topology t;
  for (int i = 0; i < 2; ++i) {
    mb::NumaNode n;
    n.id = i;
    n.cpus = {2 * i, 2 * i + 1};
    n.mem_total_bytes = 1ull << 30;
    n.distance = {{0, i == 0 ? 10 : 20}, {1, i == 1 ? 10 : 20}};
    t.nodes.push_back(n);
  }
  return t;
}

mb::ProfileStart start(const mb::Topology& t) {
  mb::ProfileStart s;
  s.sampler = "fault";
  s.sampler_kind = MB_SAMPLER_FAULT;
  s.topology = t;
  s.start_realtime_ns = 1700000000000000000ull;
  s.start_monotonic_ns = 1000;
  return s;
}

mb_sample sample(uint64_t t, uint32_t tgid, uint64_t vaddr, uint16_t node, uint16_t flags) {
  mb_sample s{};
  s.time_ns = t;
  s.tgid = s.tid = tgid;
  s.cpu = 1;
  s.cpu_node = 0;
  s.mem_node = node;
  s.vaddr = vaddr;
  s.paddr = 0x100000 + vaddr;
  s.ip = 0x401234;
  s.latency = 300;
  s.data_source = 6;
  s.flags = flags;
  s.sampler = MB_SAMPLER_FAULT;
  return s;
}

// A small complete profile; `end` false leaves out the END chunk.
void write_small(const std::string& path, bool end, bool two_chunks) {
  mb::ProfileWriter w(path, start(two_nodes()), true);
  w.add_process(1001, 42, 1, mb::kProcSeen, "app");
  w.add_maps(1002, 42, {{0x400000, 0x402000, 0, mb::kMapRead | mb::kMapExec, "/usr/bin/app"},
                        {0x7f0000000000, 0x7f0000200000, 0, mb::kMapRead | mb::kMapWrite, ""},
                        {0x7ffff0000000, 0x7ffff0021000, 0, mb::kMapRead | mb::kMapWrite, "[stack]"}});
  const uint16_t all = MB_ACC_VADDR | MB_ACC_PADDR | MB_ACC_LOAD | MB_ACC_LATENCY | MB_ACC_SRC | MB_ACC_IP;
  w.add_sample(sample(2000, 42, 0x7f0000001000, 0, all));
  w.add_sample(sample(2001, 42, 0x7f0000002008, 1, MB_ACC_VADDR | MB_ACC_STORE));
  w.add_sample(sample(2002, 42, 0x7ffff0000100, MB_NODE_UNKNOWN, MB_ACC_VADDR));
  if (two_chunks) {
    w.add_process(2003, 43, 42, mb::kProcFork, "app-child");
    w.add_sample(sample(2004, 43, 0x401000, 70, MB_ACC_IP | MB_ACC_VADDR | MB_ACC_HUGE));
    w.add_sample(sample(2005, 43, 0, 0, MB_ACC_IP));
  }
  std::array<uint64_t, MB_NR_COUNTERS> c{};
  c[MB_CTR_SAMPLES_LOST] = 3;
  w.add_counters(2006, c);
  if (end) w.finish(3000, 3);
}

// Maps written as changes (version 3): a library swapped at the same
// address (taking effect at 2300, its munmap, before it was written:
// version 4), an anonymous mapping added and removed, and a fork's whole
// maps. maps_changes_v3.prof is this file as the version-3 writer wrote it.
void write_maps_changes(const std::string& path) {
  mb::ProfileWriter w(path, start(two_nodes()), true);
  const mb::ProfileMap app{0x400000, 0x402000, 0, mb::kMapRead | mb::kMapExec, "/usr/bin/app", 0x801, 11};
  const mb::ProfileMap liba{0x7f0000000000, 0x7f0000010000, 0, mb::kMapRead | mb::kMapExec, "/usr/lib/liba.so", 0x801, 12};
  const mb::ProfileMap libb{0x7f0000000000, 0x7f0000008000, 0, mb::kMapRead | mb::kMapExec, "/usr/lib/libb.so", 0x801, 13};
  const mb::ProfileMap anon{0x7f0000200000, 0x7f0000400000, 0, mb::kMapRead | mb::kMapWrite, ""};
  w.add_process(1001, 42, 1, mb::kProcSeen, "app");
  w.add_maps(1002, 42, {app, liba});
  w.add_sample(sample(1500, 42, 0x7f0000001000, 0, MB_ACC_VADDR | MB_ACC_IP));
  w.add_maps_change(2000, 42, {}, {anon});
  w.add_maps_change(2500, 42, {liba}, {libb}, 2300);
  w.add_sample(sample(2600, 42, 0x7f0000201000, 1, MB_ACC_VADDR | MB_ACC_IP));
  w.add_process(2700, 43, 42, mb::kProcFork, "app");
  w.add_maps(2700, 43, {app, libb, anon});
  w.add_maps_change(2800, 43, {anon}, {});
  w.finish(3000, 0);
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spit(const std::string& p, const std::string& b) { std::ofstream(p, std::ios::binary) << b; }

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  {
    mb::Topology one;
    one.nodes.resize(1);
    one.nodes[0].id = 0;
    one.nodes[0].cpus = {0};
    one.nodes[0].mem_total_bytes = 1 << 20;
    mb::ProfileWriter w(dir + "/empty.prof", start(one), true);
    w.finish(2000, 0);
  }
  write_small(dir + "/small.prof", true, false);
  write_small(dir + "/two_chunks.prof", true, true);
  write_small(dir + "/no_end.prof", false, true);
  write_maps_changes(dir + "/maps_changes.prof");
  const std::string small = slurp(dir + "/small.prof");
  spit(dir + "/header_only.prof", small.substr(0, mb::kProfileHeaderBytes));
  spit(dir + "/short.prof", small.substr(0, 100));
  spit(dir + "/truncated.prof", small.substr(0, small.size() * 2 / 3));
  // A flipped payload byte (a checksum mismatch) in the first chunk of a type.
  auto damage = [&](uint32_t type, const std::string& name) {
    std::string b = small;
    for (size_t off = mb::kProfileHeaderBytes; off + mb::kProfileChunkHeaderBytes <= b.size();) {
      mb::ProfileChunkHeader ch;
      std::memcpy(&ch, b.data() + off, sizeof(ch));
      if (ch.type == type) {
        b[off + mb::kProfileChunkHeaderBytes + ch.bytes / 2] ^= 0x55;
        break;
      }
      off += mb::kProfileChunkHeaderBytes + ((ch.bytes + 7) & ~uint64_t{7});
    }
    spit(dir + "/" + name, b);
  };
  damage(mb::kChunkSamples, "bad_crc_samples.prof");
  damage(mb::kChunkMaps, "bad_crc_maps.prof");
  std::string magic = small;
  magic[0] = 'X';
  spit(dir + "/bad_magic.prof", magic);
  std::string version = small;
  version[8] = 99;  // no version this reader knows
  spit(dir + "/bad_version.prof", version);
  std::printf("seeds written to %s\n", dir.c_str());
  return 0;
}
