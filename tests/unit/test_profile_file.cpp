// Profile file format: round trip of every record kind, file creation rules,
// and damage at several offsets -> an error naming the offset, with the
// readable prefix still delivered.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>

#include <gtest/gtest.h>

#include "membalancer/error.h"
#include "membalancer/exec_follow_up.h"
#include "membalancer/profile_file.h"
#include "tests/unit/temp_tree.h"

using namespace mb;

namespace {

mb_sample sample(uint64_t i) {
  mb_sample s{};
  s.time_ns = 1000 + i;
  s.tgid = 100 + static_cast<uint32_t>(i % 3);
  s.tid = s.tgid + 1;
  s.cpu = static_cast<uint32_t>(i % 4);
  s.cpu_node = 0;
  s.mem_node = static_cast<uint16_t>(i % 2);
  s.vaddr = 0x7f0000000000ULL + i * 4096;
  s.paddr = i * 8192;
  s.ip = 0x401000 + i;
  s.latency = static_cast<uint32_t>(i * 3);
  s.data_source = MB_SRC_LOCAL_DRAM;
  s.flags = MB_ACC_VADDR | MB_ACC_IP | MB_ACC_LATENCY;
  s.sampler = MB_SAMPLER_FAULT;
  return s;
}

Topology two_nodes() {
  Topology t;
  NumaNode a, b;
  a.id = 0, a.cpus = {0, 1}, a.mem_total_bytes = 1ULL << 30, a.distance = {{0, 10}, {1, 20}};
  b.id = 1, b.mem_total_bytes = 2ULL << 30, b.distance = {{0, 20}, {1, 10}};
  t.nodes = {a, b};
  return t;
}

// Writes n samples in chunks of `chunk`, plus one of each other record.
std::string write_file(const mb_test::TempTree& dir, uint64_t n, size_t chunk = 1000) {
  std::string path = dir.path("p.prof");
  ProfileStart st;
  st.sampler = "fault";
  st.sampler_kind = MB_SAMPLER_FAULT;
  st.topology = two_nodes();
  st.start_monotonic_ns = 500;
  st.start_realtime_ns = 1700000000000000000ULL;
  ProfileWriter w(path, st);
  w.add_process(600, 100, 1, kProcSeen, "first");
  w.add_maps(600, 100, parse_proc_maps("7f0000000000-7f0001000000 rw-p 00000000 00:00 0 \n"
                                       "555555554000-555555556000 r-xp 00001000 08:01 1234 /usr/bin/x y\n"));
  for (uint64_t i = 0; i < n; ++i) {
    w.add_sample(sample(i));
    if ((i + 1) % chunk == 0) w.flush();
  }
  // (A recorder describes a file before the maps holding it; a reader takes it anywhere.)
  w.add_file({makedev(8, 1), 1234, 1600000000123456789ULL, 4096, std::string("\x5a\x00\xff", 3), "/usr/bin/x y"});
  std::array<uint64_t, MB_NR_COUNTERS> c{};
  c[MB_CTR_SAMPLES_LOST] = 7;
  w.add_counters(900, c);
  w.add_process(950, 100, 1, kProcExit, "first");
  w.finish(1000, 7);
  return path;
}

std::vector<mb_sample> read_all(ProfileReader& r) {
  std::vector<mb_sample> out;
  r.for_each_batch([&](const mb_sample* s, size_t n) { out.insert(out.end(), s, s + n); });
  return out;
}

void patch(const std::string& path, uint64_t offset, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  close(fd);
}

// Offset of the k-th chunk header (0 = topology).
uint64_t chunk_offset(const std::string& path, int k) {
  std::ifstream in(path, std::ios::binary);
  uint64_t off = kProfileHeaderBytes;
  for (int i = 0; i < k; ++i) {
    ProfileChunkHeader h;
    in.seekg(static_cast<std::streamoff>(off));
    in.read(reinterpret_cast<char*>(&h), sizeof(h));
    off += kProfileChunkHeaderBytes + ((h.bytes + 7) & ~7ULL);
  }
  return off;
}

}  // namespace

TEST(ProfileFile, RoundTripsEveryRecordKind) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 2500);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // a profile is its owner's (safe_file.h)
  ProfileReader r(path);
  EXPECT_TRUE(r.ok()) << r.error();
  const ProfileInfo& info = r.info();
  EXPECT_EQ(info.version, kProfileVersion);
  EXPECT_EQ(info.sampler, "fault");
  EXPECT_EQ(info.sampler_kind, MB_SAMPLER_FAULT);
  EXPECT_EQ(info.start_monotonic_ns, 500u);
  EXPECT_EQ(info.start_realtime_ns, 1700000000000000000ULL);
  ASSERT_EQ(info.topology.nodes.size(), 2u);
  EXPECT_EQ(info.topology.nodes[0].cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(info.topology.nodes[1].mem_total_bytes, 2ULL << 30);
  EXPECT_EQ(info.topology.distance(0, 1), 20);
  EXPECT_TRUE(info.complete);
  EXPECT_EQ(info.samples, 2500u);
  EXPECT_EQ(info.samples_lost, 7u);
  ASSERT_EQ(info.processes.size(), 2u);
  EXPECT_EQ(info.processes[0].name, "first");
  EXPECT_EQ(info.processes[1].event, kProcExit);
  ASSERT_EQ(info.maps_changes.size(), 1u);
  const std::vector<ProfileMap> maps = info.last_maps(100);
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].path, "/usr/bin/x y");  // sorted by start; spaces kept
  EXPECT_EQ(maps[0].offset, 0x1000u);
  EXPECT_EQ(maps[0].prot, kMapRead | kMapExec);
  EXPECT_EQ(maps[0].dev, makedev(8, 1));
  EXPECT_EQ(maps[0].inode, 1234u);
  EXPECT_EQ(maps[1].path, "");
  EXPECT_EQ(maps[1].inode, 0u);
  ASSERT_EQ(info.files.size(), 1u);
  EXPECT_EQ(info.files[0], (ProfileFile{makedev(8, 1), 1234, 1600000000123456789ULL, 4096,
                                        std::string("\x5a\x00\xff", 3), "/usr/bin/x y"}));
  auto all = read_all(r);
  ASSERT_EQ(all.size(), 2500u);
  for (uint64_t i = 0; i < all.size(); ++i) {
    mb_sample want = sample(i);
    ASSERT_EQ(std::memcmp(&all[i], &want, sizeof(want)), 0) << "record " << i;
  }
  ProfileProcesses procs(info);
  EXPECT_EQ(procs.name(100), "first");
  EXPECT_EQ(ProfileProcesses::mapping_kind(procs.mapping(100, 0x7f0000001234)), "anon");
  EXPECT_EQ(procs.mapping(100, 0x7f0001000000), nullptr);
  EXPECT_EQ(procs.file(maps[0]), &info.files[0]) << "a mapping finds its file by device and inode";
  EXPECT_EQ(procs.file(maps[1]), nullptr);
}

// A version-1 file (written by the version-1 writer: tests/unit/data/
// profile-v1.prof, the fuzz seed two_chunks.prof) still reads whole: its
// mappings have no device or inode, and no file is described.
TEST(ProfileFile, ReadsAVersion1File) {
  ProfileReader r("tests/unit/data/profile-v1.prof");
  EXPECT_TRUE(r.ok()) << r.error();
  const ProfileInfo& info = r.info();
  EXPECT_EQ(info.version, 1u);
  EXPECT_TRUE(info.complete);
  EXPECT_EQ(info.samples, 5u);
  EXPECT_EQ(read_all(r).size(), 5u);
  EXPECT_EQ(info.samples_lost, 3u);
  ASSERT_EQ(info.processes.size(), 2u);
  EXPECT_EQ(info.processes[1].name, "app-child");
  ASSERT_EQ(info.maps_changes.size(), 1u);
  const std::vector<ProfileMap> maps = info.last_maps(42);
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].path, "/usr/bin/app");
  EXPECT_EQ(maps[0].end, 0x402000u);
  EXPECT_EQ(maps[2].path, "[stack]");
  for (const auto& m : maps) EXPECT_EQ(m.inode, 0u);
  EXPECT_TRUE(info.files.empty());
  ProfileProcesses procs(info);
  EXPECT_EQ(procs.mapping(42, 0x401000)->path, "/usr/bin/app");
  EXPECT_EQ(procs.file(*procs.mapping(42, 0x401000)), nullptr);
}

// A version-2 file (tests/unit/data/profile-v2.prof, written by the
// version-2 writer: make_old_profile.sh 2 there regenerates it; whole maps at
// every change) reads as it did: the mapping
// at each address and time is the one the version-2 reader found, and each
// mapping written again unchanged is held once. Pid 50 maps app, its heap and
// liba.so at 100, writes them again at 200, has libb.so at liba.so's address
// from 300, and execs app2 at 400.
TEST(ProfileFile, ReadsAVersion2FileAsBefore) {
  ProfileReader r("tests/unit/data/profile-v2.prof");
  ASSERT_TRUE(r.ok()) << r.error();
  const ProfileInfo& info = r.info();
  EXPECT_EQ(info.version, 2u);
  EXPECT_EQ(info.samples, 4u);
  EXPECT_EQ(info.files.size(), 4u);
  EXPECT_EQ(info.maps_changes.size(), 4u);
  EXPECT_EQ(info.mappings.size(), 5u);
  ProfileProcesses procs(info);
  EXPECT_EQ(procs.spans().size(), 2u);
  EXPECT_EQ(procs.mappings_held(), 5u);  // the version-2 reader held 10: every copy
  struct Want {
    uint64_t addr, time_ns;
    const char* path;  // "-": none
  };
  // What the version-2 reader answered.
  const Want want[] = {
      {0x400100, 50, "/nonexistent/app"},     {0x400100, 150, "/nonexistent/app"},
      {0x400100, 250, "/nonexistent/app"},    {0x400100, 350, "/nonexistent/app"},
      {0x400100, 450, "/nonexistent/app2"},   {0x400100, 550, "/nonexistent/app2"},
      {0x401800, 50, "/nonexistent/app2"},    {0x401800, 150, "/nonexistent/app2"},
      {0x401800, 250, "/nonexistent/app2"},   {0x401800, 350, "/nonexistent/app2"},
      {0x401800, 450, "/nonexistent/app2"},   {0x401800, 550, "/nonexistent/app2"},
      {0x600100, 50, "[heap]"},               {0x600100, 150, "[heap]"},
      {0x600100, 250, "[heap]"},              {0x600100, 350, "[heap]"},
      {0x600100, 450, "-"},                   {0x600100, 550, "-"},
      {0x7f0000000100, 50, "/nonexistent/liba.so"},  {0x7f0000000100, 150, "/nonexistent/liba.so"},
      {0x7f0000000100, 250, "/nonexistent/liba.so"}, {0x7f0000000100, 350, "/nonexistent/libb.so"},
      {0x7f0000000100, 450, "-"},                    {0x7f0000000100, 550, "-"},
      {0x7f00000a0000, 50, "/nonexistent/liba.so"},  {0x7f00000a0000, 150, "/nonexistent/liba.so"},
      {0x7f00000a0000, 250, "/nonexistent/liba.so"}, {0x7f00000a0000, 350, "/nonexistent/liba.so"},
      {0x7f00000a0000, 450, "-"},                    {0x7f00000a0000, 550, "-"},
  };
  for (const Want& w : want) {
    const ProfileMap* m = procs.mapping(50, w.addr, w.time_ns);
    EXPECT_EQ(m ? m->path : "-", w.path) << std::hex << w.addr << " at " << std::dec << w.time_ns;
  }
  EXPECT_EQ(procs.file(*procs.mapping(50, 0x7f0000000100, 350)), &info.files[2]);
}

// A version-3 file (tests/unit/data/profile-v3.prof, written by the
// version-3 writer: make_old_profile.sh 3 there regenerates it): its maps
// change has no time of its own and takes effect when written (300), as the
// version-3 reader had it. Pid 50 has liba.so at 0x7f0000000000 from 100,
// libb.so there from 300.
TEST(ProfileFile, ReadsAVersion3FileAsBefore) {
  ProfileReader r("tests/unit/data/profile-v3.prof");
  ASSERT_TRUE(r.ok()) << r.error();
  const ProfileInfo& info = r.info();
  EXPECT_EQ(info.version, 3u);
  EXPECT_EQ(info.samples, 3u);
  ASSERT_EQ(info.maps_changes.size(), 2u);
  EXPECT_EQ(info.maps_changes[1].time_ns, 300u);
  ProfileProcesses procs(info);
  for (auto [time_ns, path] : {std::pair<uint64_t, const char*>{150, "/nonexistent/liba.so"},
                               {250, "/nonexistent/liba.so"},
                               {350, "/nonexistent/libb.so"}}) {
    const ProfileMap* m = procs.mapping(50, 0x7f0000000100, time_ns);
    EXPECT_EQ(m ? m->path : "-", path) << time_ns;
  }
}

// A maps change written at a look (300) took effect at the first system call
// that made it (200, version 4): the samples between, written before the
// change in the file, are of the new mapping; those before it of the old.
TEST(ProfileFile, AMapsChangeTakesEffectBeforeItIsWritten) {
  mb_test::TempTree dir("mbprof");
  const std::string path = dir.path("early.prof");
  const ProfileMap liba{0x7f0000000000, 0x7f0000001000, 0, kMapRead | kMapExec, "/usr/lib/liba.so", 0x801, 11};
  const ProfileMap libb{0x7f0000000000, 0x7f0000001000, 0, kMapRead | kMapExec, "/usr/lib/libb.so", 0x801, 22};
  {
    ProfileWriter w(path, ProfileStart{});
    w.add_process(100, 50, 1, kProcSeen, "app");
    w.add_maps(100, 50, {liba});
    for (uint64_t t : {150, 250}) {
      mb_sample smp{};
      smp.time_ns = t;
      smp.tgid = smp.tid = 50;
      smp.vaddr = smp.ip = 0x7f0000000100;
      smp.flags = MB_ACC_VADDR | MB_ACC_IP;
      w.add_sample(smp);
    }
    w.add_maps_change(300, 50, {liba}, {libb}, 200);
    w.add_maps_change(400, 50, {libb}, {liba}, 900);  // "after" its look: taken as at the look
    w.finish(1000, 0);
  }
  ProfileReader r(path);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.info().version, kProfileVersion);
  ASSERT_EQ(r.info().maps_changes.size(), 3u);
  EXPECT_EQ(r.info().maps_changes[1].time_ns, 200u);
  EXPECT_EQ(r.info().maps_changes[2].time_ns, 400u);
  ProfileProcesses procs(r.info());
  std::vector<std::string> found;
  r.for_each_batch([&](const mb_sample* smp, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const ProfileMap* m = procs.mapping(smp[i].tgid, smp[i].vaddr, smp[i].time_ns);
      found.push_back(m ? m->path : "-");
    }
  });
  EXPECT_EQ(found, (std::vector<std::string>{"/usr/lib/liba.so", "/usr/lib/libb.so"}));
  EXPECT_EQ(procs.mapping(50, 0x7f0000000100, 350)->path, "/usr/lib/libb.so");
  EXPECT_EQ(procs.mapping(50, 0x7f0000000100, 450)->path, "/usr/lib/liba.so");
}

// A maps change is relative to the process's maps before it: one for a
// process with no maps, or removing a mapping it does not have, or adding one
// over a mapping it has, is damage named at its offset; what precedes it is
// kept.
TEST(ProfileFile, AnInconsistentMapsChangeIsDamageAtItsOffset) {
  const ProfileMap lib{0x400000, 0x401000, 0, kMapRead | kMapExec, "/usr/bin/x"};
  const ProfileMap anon{0x600000, 0x601000, 0, kMapRead | kMapWrite, ""};
  struct Case {
    std::function<void(ProfileWriter&)> write;  // the bad change, after pid 9's maps {lib}
    const char* error;
  } cases[] = {
      {[&](ProfileWriter& w) { w.add_maps_change(300, 8, {}, {anon}); }, "maps change of process 8: no maps of it before"},
      {[&](ProfileWriter& w) { w.add_maps_change(300, 9, {anon}, {}); },
       "maps change of process 9: removes 0x600000-0x601000, which it does not map"},
      {[&](ProfileWriter& w) { w.add_maps_change(300, 9, {{0x400000, 0x402000, 0, 0, ""}}, {}); },
       "maps change of process 9: removes 0x400000-0x402000, which it does not map"},
      {[&](ProfileWriter& w) { w.add_maps_change(300, 9, {}, {{0x400800, 0x402000, 0, 0, ""}}); },
       "maps change of process 9: adds 0x400800-0x402000 over a mapping it has"},
  };
  for (const Case& c : cases) {
    mb_test::TempTree dir("mbprof");
    const std::string path = dir.path("bad.prof");
    uint64_t bad = 0;
    {
      ProfileWriter w(path, ProfileStart{});
      w.add_maps(100, 9, {lib});
      w.add_maps_change(200, 9, {}, {anon});  // a good one
      w.add_maps_change(250, 9, {anon}, {});
      bad = w.bytes_written();
      c.write(w);
      w.finish(400, 0);
    }
    ProfileReader r(path);
    EXPECT_EQ(r.error(), "offset " + std::to_string(bad) + ": " + c.error);
    EXPECT_EQ(r.error_offset(), bad);
    EXPECT_EQ(r.info().maps_changes.size(), 3u) << c.error;
    EXPECT_EQ(r.info().last_maps(9), std::vector<ProfileMap>{lib}) << "the bad change is not applied";
    ProfileProcesses procs(r.info());
    ASSERT_NE(procs.mapping(9, 0x600100, 220), nullptr);
    EXPECT_EQ(procs.mapping(9, 0x600100, 220)->path, "");
    EXPECT_EQ(procs.mapping(9, 0x400100, 220)->path, "/usr/bin/x");
  }
}

// /proc/PID/maps' device (major:minor, hex) and inode are kept: they tell
// the file mapped from another put at its path since.
TEST(ProfileFile, ProcMapsKeepTheDeviceAndInode) {
  auto maps = parse_proc_maps("7f00-8f00 r-xp 00001000 fd:01 1310731 /usr/lib/libc.so.6\n"
                              "9f00-af00 rw-p 00000000 00:00 0 \n");
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].dev, makedev(0xfd, 0x01));
  EXPECT_EQ(maps[0].inode, 1310731u);
  EXPECT_EQ(maps[0].offset, 0x1000u);
  EXPECT_EQ(maps[1].dev, 0u);
  EXPECT_EQ(maps[1].inode, 0u);
  // This process's own executable: the device and inode stat() gives.
  struct stat st;
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  ASSERT_EQ(stat(self, &st), 0);
  bool found = false;
  for (const auto& m : read_proc_maps(getpid())) {
    if (m.path != self) continue;
    found = true;
    EXPECT_EQ(m.dev, st.st_dev);
    EXPECT_EQ(m.inode, st.st_ino);
  }
  EXPECT_TRUE(found);
}

TEST(ProfileFile, PullCursorSeesTheSameSamples) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 20000, 3000);
  ProfileReader r(path);
  auto cur = r.samples();
  const mb_sample* s;
  size_t n, total = 0, chunks = 0;
  while (cur.next(&s, &n)) total += n, ++chunks;
  EXPECT_EQ(total, 20000u);
  EXPECT_GE(chunks, 7u);
}

// Resident kB of this process's mapping of `path` (/proc/self/smaps).
uint64_t mapped_rss_kb(const std::string& path) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  uint64_t kb = 0;
  while (std::getline(f, line)) {
    // A mapping's first line starts "start-end perms ..."; its fields "Key:".
    const std::string first = line.substr(0, line.find(' '));
    if (first.find('-') != std::string::npos && first.find(':') == std::string::npos)
      in = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    if (in && line.rfind("Rss:", 0) == 0) kb += std::stoull(line.substr(4));
  }
  return kb;
}

// A replay of a large file keeps no more of it mapped than the chunks it is
// reading: its resident memory does not grow with the file. What was let go
// reads back the same.
TEST(ProfileFile, StreamingLetsGoOfWhatItRead) {
  mb_test::TempTree dir("mbprof");
  const uint64_t n = 200000;  // 12.8 MB of samples, chunks of 512 KiB
  std::string path = write_file(dir, n, ProfileWriter::kChunkRecords);
  ProfileReader r(path);
  EXPECT_LE(mapped_rss_kb(path), 256u) << "the index walk keeps nothing";
  auto cur = r.samples();
  const mb_sample* s;
  size_t k, seen = 0;
  uint64_t most = 0;
  while (cur.next(&s, &k)) {
    for (size_t i = 0; i < k; ++i, ++seen) ASSERT_EQ(s[i].vaddr, sample(seen).vaddr) << seen;
    most = std::max(most, mapped_rss_kb(path));
  }
  EXPECT_EQ(seen, n);
  EXPECT_LE(most, 3u * 512 + 256) << "at most the chunk before, this one and read-around";
  const auto again = read_all(r);
  ASSERT_EQ(again.size(), n);
  for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(again[i].time_ns, sample(i).time_ns) << i;
}

TEST(ProfileFile, CreationNeverFollowsSymlinksNorTruncatesWithoutForce) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 10);
  ProfileStart st;
  EXPECT_THROW(ProfileWriter(path, st, false), UsageError);
  EXPECT_EQ(ProfileReader(path).info().samples, 10u);  // untouched
  std::string link = dir.path("link.prof"), target = dir.path("target");
  std::ofstream(target) << "keep";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THROW(ProfileWriter(link, st, true), UsageError);
  std::ifstream in(target);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "keep");
  {
    ProfileWriter w(path, st, true);  // --force replaces it
    w.finish(0, 0);
  }
  EXPECT_EQ(ProfileReader(path).info().samples, 0u);
}

TEST(ProfileFile, RejectsABadHeaderNamingTheOffset) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 10);
  patch(path, 0, "X");
  try {
    ProfileReader r(path);
    FAIL() << "accepted a bad magic";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("offset 0"), std::string::npos) << e.what();
  }
  mb_test::TempTree dir2("mbprof");
  std::string v = write_file(dir2, 1);
  patch(v, 8, std::string("\x09\0\0\0", 4));
  try {
    ProfileReader r(v);
    FAIL() << "accepted version 9";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("version 9"), std::string::npos) << e.what();
  }
  std::string shortf = dir.path("short");
  std::ofstream(shortf) << "MBPROF";
  EXPECT_THROW(ProfileReader r(shortf), UsageError);
}

TEST(ProfileFile, DamagedSampleChunkKeepsThePrefix) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 5000, 1000);
  // Chunks: topology, process, maps, then samples of 1000 each.
  uint64_t third = chunk_offset(path, 5);
  patch(path, third + kProfileChunkHeaderBytes + 100, "garbage");
  ProfileReader r(path);
  auto all = read_all(r);
  EXPECT_EQ(all.size(), 2000u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error_offset(), third);
  EXPECT_NE(r.error().find("offset " + std::to_string(third)), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("checksum"), std::string::npos) << r.error();
  EXPECT_EQ(r.info().samples, 2000u);
}

TEST(ProfileFile, TruncatedFileKeepsThePrefix) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 5000, 1000);
  uint64_t fourth = chunk_offset(path, 6);
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(fourth + 500)), 0);
  ProfileReader r(path);
  EXPECT_EQ(read_all(r).size(), 3000u);
  EXPECT_EQ(r.error_offset(), fourth);
  EXPECT_NE(r.error().find("truncated"), std::string::npos) << r.error();
  EXPECT_FALSE(r.info().complete);
  // Cut at a chunk boundary: intact chunks, but no end chunk.
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(fourth)), 0);
  ProfileReader r2(path);
  EXPECT_EQ(read_all(r2).size(), 3000u);
  EXPECT_EQ(r2.error_offset(), fourth);
  EXPECT_NE(r2.error().find("end chunk"), std::string::npos) << r2.error();
}

// A writer whose write failed (a full disk; here the file size limit) writes
// nothing more, not from its next chunk nor from its destructor: the file
// ends where the failure left it, and what it holds stays what a reader
// finds. Before, the next chunk wrote the failed samples again after the
// piece cut short. (In a child: the limit is the process's.)
TEST(ProfileFile, AFailedWriteIsTheEndOfTheFile) {
  mb_test::TempTree dir("mbprof");
  const std::string path = dir.path("full.prof");
  constexpr rlim_t kLimit = 200000;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    const rlim_t room = lim.rlim_cur;
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    lim.rlim_cur = kLimit;
    setrlimit(RLIMIT_FSIZE, &lim);
    try {
      ProfileWriter w(path, ProfileStart{});
      try {
        for (uint64_t i = 0; i < ProfileWriter::kChunkRecords; ++i) w.add_sample(sample(i));
        code = 10;  // 512 KiB written under a 200 KB limit
      } catch (const SystemError& e) {
        if (!std::strstr(e.what(), std::strerror(EFBIG))) code = 11;
      }
      lim.rlim_cur = room;  // room again: still nothing is written
      setrlimit(RLIMIT_FSIZE, &lim);
      try {
        w.add_process(1, 100, 0, kProcSeen, "p");
        if (!code) code = 12;
      } catch (const SystemError&) {
      }
      if (w.samples_in_file() != 0) code = 13;
    } catch (...) {
      code = 14;
    }
    _exit(code);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "10: no failure, 11: another error, 12: written after it, 13: samples counted, 14: threw";
  struct stat sb{};
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(static_cast<rlim_t>(sb.st_size), kLimit);
  ProfileReader r(path);
  EXPECT_EQ(read_all(r).size(), 0u);
  EXPECT_NE(r.error().find("truncated chunk"), std::string::npos) << r.error();
}

TEST(ProfileFile, CorruptChunkHeaderOrSmallChunkNamesItsOffset) {
  mb_test::TempTree dir("mbprof");
  std::string path = write_file(dir, 3000, 1000);
  uint64_t second = chunk_offset(path, 4);
  patch(path, second, std::string("\x63\0\0\0", 4));  // type 99
  ProfileReader r(path);
  EXPECT_EQ(read_all(r).size(), 1000u);
  EXPECT_EQ(r.error_offset(), second);
  EXPECT_NE(r.error().find("unknown chunk type 99"), std::string::npos) << r.error();

  mb_test::TempTree dir2("mbprof");
  std::string p2 = write_file(dir2, 10);
  uint64_t maps = chunk_offset(p2, 2);
  patch(p2, maps + kProfileChunkHeaderBytes + 20, "\x7f");
  ProfileReader r2(p2);
  EXPECT_EQ(r2.error_offset(), maps);
  EXPECT_TRUE(r2.info().maps_changes.empty());
  EXPECT_EQ(r2.info().processes.size(), 1u);  // what precedes it
  EXPECT_EQ(read_all(r2).size(), 0u);          // samples come after the damage
}

// Topologies no machine has are damage, named at the topology's offset: they
// were taken as they were (whatif simulated a node -1, or 2^64-1 bytes).
TEST(ProfileFile, AnImpossibleTopologyIsDamage) {
  mb_test::TempTree dir("mbprof");
  struct Case {
    std::function<void(Topology&)> edit;
    const char* says;
  };
  const std::vector<Case> cases = {
      {[](Topology& t) { t.nodes[0].id = -1; }, "node -1: want a node id"},
      {[](Topology& t) { t.nodes[1].id = 0; }, "node 0 appears twice"},
      {[](Topology& t) { t.nodes[0].mem_total_bytes = UINT64_MAX; }, "bytes of memory"},
      {[](Topology& t) { t.nodes[0].mem_total_bytes = t.nodes[1].mem_total_bytes = 1ULL << 62; }, "bytes of memory"},
      {[](Topology& t) { t.nodes[0].cpus = {-5}; }, "CPU -5"},
      {[](Topology& t) { t.nodes[0].distance[1] = -10; }, "distance -10"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.path("t.prof");
    unlink(path.c_str());
    ProfileStart st;
    st.sampler = "fault";
    st.topology = two_nodes();
    c.edit(st.topology);
    {
      ProfileWriter w(path, st);
      w.finish(0, 0);
    }
    ProfileReader r(path);
    EXPECT_NE(r.error().find(c.says), std::string::npos) << r.error();
    EXPECT_EQ(r.error_offset(), kProfileHeaderBytes) << r.error();
    EXPECT_TRUE(r.info().topology.nodes.empty());
  }
}

// A file cut off right after its header: the message says so, rather than
// "without an end chunk" (c_hdronly.prof of the review).
TEST(ProfileFile, CutOffAfterTheHeaderSaysSo) {
  mb_test::TempTree dir("mbprof");
  const std::string path = write_file(dir, 10);
  ASSERT_EQ(truncate(path.c_str(), kProfileHeaderBytes), 0);
  ProfileReader r(path);
  EXPECT_NE(r.error().find("ends right after its header"), std::string::npos) << r.error();
}

// The looks at an exec'd program's maps: 10, 30, 70, 150 and 310 ms after
// the exec, then none; an exit ends them.
TEST(ExecFollowUp, LooksAtGrowingDelaysThenStops) {
  const uint64_t ms = 1000000;
  mb::ExecFollowUp f;
  EXPECT_EQ(f.wait_ns(0), UINT64_MAX);
  f.exec(7, 1000 * ms);
  f.exec(8, 1000 * ms);
  EXPECT_EQ(f.wait_ns(1000 * ms), 10 * ms);
  EXPECT_TRUE(f.due(1009 * ms).empty());
  std::vector<uint64_t> looks;
  for (uint64_t t = 1000 * ms; t <= 2000 * ms; t += ms) {
    auto d = f.due(t);
    if (std::find(d.begin(), d.end(), 7) != d.end()) looks.push_back(t / ms - 1000);
    if (t == 1040 * ms) {
      f.exited(8);
      EXPECT_EQ(f.wait_ns(t), 30 * ms);  // 7's next look, at 70
    }
  }
  EXPECT_EQ(looks, (std::vector<uint64_t>{10, 30, 70, 150, 310}));
  EXPECT_TRUE(f.empty());
}
