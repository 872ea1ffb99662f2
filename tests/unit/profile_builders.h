// Profiles built by hand for the report and heatmap tests.
#pragma once

#include <string>

#include "membalancer/profile_file.h"

namespace mb_test {

// A sample of tgid with a data address and an instruction pointer.
inline mb_sample code_and_data(uint32_t tgid, uint64_t ip, uint64_t vaddr, uint64_t t) {
  mb_sample s{};
  s.time_ns = t;
  s.tgid = s.tid = tgid;
  s.vaddr = vaddr;
  s.ip = ip;
  s.flags = MB_ACC_VADDR | MB_ACC_IP;
  return s;
}

// A line of /proc/PID/maps (parse_proc_maps) mapping path at range.
inline std::string maps_line(const char* range, const char* path) {
  return std::string(range) + " r-xp 00000000 08:01 1 " + path + "\n";
}

// A profile of the fault sampler whose recording started at t0 (monotonic).
inline mb::ProfileWriter fault_profile(const std::string& path, uint64_t t0) {
  mb::ProfileStart st;
  st.sampler = "fault";
  st.start_monotonic_ns = t0;
  return mb::ProfileWriter(path, st);
}

// dlclose, then dlopen of another library at the same address, in one
// program: pid 300 ("dl") has /etc/ld.so.cache at 0x700000 and liba.so at
// kSwapLibrary from 100 ms (after t0), anonymous memory at 0x700000 from
// 200 ms, and libb.so in liba.so's place from 300 ms. Its samples, all with
// code at kSwapLibrary + 0x100: data in its heap page 0x600000 at 150 ms and
// 360 ms, in the library's page 0x800 in at 250 ms (2, liba.so) and 350 ms
// (5, libb.so).
constexpr uint64_t kSwapLibrary = 0x7f0000000000;
constexpr uint64_t kSwapMs = 1000000;
inline void write_library_swap(const std::string& path, uint64_t t0) {
  const uint64_t ms = kSwapMs, lib = kSwapLibrary;
  mb::ProfileWriter w = fault_profile(path, t0);
  auto maps = [&](uint64_t t, const char* at_7000, const char* at_lib) {
    w.add_maps(t, 300,
               mb::parse_proc_maps(maps_line("400000-401000", "/nonexistent/dl") + maps_line("600000-601000", "[heap]") +
                                   maps_line("700000-701000", at_7000) + maps_line("7f0000000000-7f0000001000", at_lib)));
  };
  w.add_process(t0 + 100 * ms, 300, 1, mb::kProcSeen, "dl");
  maps(t0 + 100 * ms, "/etc/ld.so.cache", "/nonexistent/liba.so");
  w.add_sample(code_and_data(300, lib + 0x100, 0x600100, t0 + 150 * ms));
  maps(t0 + 200 * ms, "", "/nonexistent/liba.so");
  for (int i = 0; i < 2; ++i) w.add_sample(code_and_data(300, lib + 0x100, lib + 0x800, t0 + 250 * ms + i));
  maps(t0 + 300 * ms, "", "/nonexistent/libb.so");
  for (int i = 0; i < 5; ++i) w.add_sample(code_and_data(300, lib + 0x100, lib + 0x800, t0 + 350 * ms + i));
  w.add_sample(code_and_data(300, lib + 0x100, 0x600100, t0 + 360 * ms));
  w.finish(t0 + 1000 * ms, 0);
}

}  // namespace mb_test
