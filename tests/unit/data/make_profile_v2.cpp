// Writes profile-v2.prof with the version-2 ProfileWriter: pid 50 ("app")
// maps app, its heap and liba.so at 100 ns, writes the same maps again at
// 200 (version-2 recorders wrote whole maps at every look), has libb.so in
// liba.so's place from 300, execs app2 at 400 and exits at 500; four code
// and data samples at 150..450. Every field is given, so the bytes depend on
// the writer only. Built against the sources of the last version-2 commit
// by make_old_profile.sh 2, which says how; not built by `make`.
#include <cstdio>
#include <string>

#include "membalancer/profile_file.h"
#include "old_profile_start.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_profile_v2 OUT.prof\n");
    return 2;
  }
  mb::ProfileWriter w(argv[1], old_profile_start(), true);

  const uint64_t dev = 0x801;
  auto file = [&](uint64_t inode, uint64_t mtime_ns, uint64_t size, std::string build_id, const char* path) {
    w.add_file({dev, inode, mtime_ns, size, std::move(build_id), path});
  };
  auto lib = [&](uint64_t end, uint64_t inode, const char* path) {
    return mb::ProfileMap{0x7f0000000000, end, 0, mb::kMapRead | mb::kMapExec, path, dev, inode};
  };
  const mb::ProfileMap app{0x400000, 0x401000, 0, mb::kMapRead | mb::kMapExec, "/nonexistent/app", dev, 77};
  const mb::ProfileMap heap{0x600000, 0x601000, 0, mb::kMapRead | mb::kMapWrite, "[heap]", 0, 0};
  const mb::ProfileMap liba = lib(0x7f0000100000, 78, "/nonexistent/liba.so");

  w.add_process(100, 50, 1, mb::kProcSeen, "app");
  file(77, 5, 4096, "\x01\x02", "/nonexistent/app");
  file(78, 6, 8192, "", "/nonexistent/liba.so");
  w.add_maps(100, 50, {app, heap, liba});
  for (uint64_t t = 150; t < 500; t += 100) {
    mb_sample s{};
    s.time_ns = t;
    s.tgid = s.tid = 50;
    s.vaddr = 0x600010;
    s.ip = 0x7f0000000100;
    s.flags = MB_ACC_VADDR | MB_ACC_IP;
    s.sampler = MB_SAMPLER_FAULT;
    w.add_sample(s);
  }
  w.add_maps(200, 50, {app, heap, liba});
  file(79, 7, 4096, "\x03", "/nonexistent/libb.so");
  w.add_maps(300, 50, {app, heap, lib(0x7f0000080000, 79, "/nonexistent/libb.so")});
  w.add_process(400, 50, 1, mb::kProcExec, "app2");
  file(80, 8, 4096, "", "/nonexistent/app2");
  w.add_maps(400, 50, {{0x400000, 0x402000, 0, mb::kMapRead | mb::kMapExec, "/nonexistent/app2", dev, 80}});
  w.add_process(500, 50, 1, mb::kProcExit, "app2");
  w.finish(600, 0);
  return 0;
}
