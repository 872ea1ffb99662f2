// Writes profile-v3.prof with the version-3 ProfileWriter: pid 50 ("app")
// maps app and liba.so at 100 ns; a maps change written at 300 has libb.so
// in liba.so's place (version 3 has no time of its own for it: it took
// effect when written); code samples in the library at 150, 250 and 350.
// Every field is given, so the bytes depend on the writer only. Built
// against the sources of the last version-3 commit by make_old_profile.sh 3,
// which says how; not built by `make`.
#include <cstdio>
#include <string>

#include "membalancer/profile_file.h"
#include "old_profile_start.h"

// The reader's messages use it (membalancer/report.cpp, not linked here).
namespace mb {
std::string format_hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
}  // namespace mb

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_profile_v3 OUT.prof\n");
    return 2;
  }
  mb::ProfileWriter w(argv[1], old_profile_start(), true);

  const uint64_t dev = 0x801;
  auto lib = [&](uint64_t inode, const char* path) {
    return mb::ProfileMap{0x7f0000000000, 0x7f0000100000, 0, mb::kMapRead | mb::kMapExec, path, dev, inode};
  };
  const mb::ProfileMap app{0x400000, 0x401000, 0, mb::kMapRead | mb::kMapExec, "/nonexistent/app", dev, 77};
  const mb::ProfileMap liba = lib(78, "/nonexistent/liba.so"), libb = lib(79, "/nonexistent/libb.so");

  w.add_process(100, 50, 1, mb::kProcSeen, "app");
  w.add_file({dev, 77, 5, 4096, "\x01\x02", "/nonexistent/app"});
  w.add_file({dev, 78, 6, 8192, "", "/nonexistent/liba.so"});
  w.add_maps(100, 50, {app, liba});
  for (uint64_t t = 150; t < 400; t += 100) {
    mb_sample s{};
    s.time_ns = t;
    s.tgid = s.tid = 50;
    s.vaddr = s.ip = 0x7f0000000100;
    s.flags = MB_ACC_VADDR | MB_ACC_IP;
    s.sampler = MB_SAMPLER_FAULT;
    w.add_sample(s);
  }
  w.add_file({dev, 79, 7, 4096, "\x03", "/nonexistent/libb.so"});
  w.add_maps_change(300, 50, {liba}, {libb});
  w.add_process(500, 50, 1, mb::kProcExit, "app");
  w.finish(600, 0);
  return 0;
}
