// RecordedImages, the recorders' store of what they wrote of each process:
// a fork is written with its parent's name and maps, at the fork's time,
// also after a look took the child in first.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "membalancer/profile_file.h"
#include "membalancer/recorded_images.h"
#include "tests/unit/temp_tree.h"

using namespace mb;

namespace {

ProcessImage image(const std::string& name, const std::string& maps) {
  ProcessImage i;
  i.name = name;
  i.maps = std::make_shared<const std::vector<ProfileMap>>(parse_proc_maps(maps));
  return i;
}

// Two programs at the same address: what a non-PIE program and the one it
// execs look like.
const char* kParentMaps = "400000-401000 r-xp 00000000 08:01 11 /usr/bin/parent\n";
const char* kNewMaps = "400000-401000 r-xp 00000000 08:01 22 /usr/bin/new\n";
// A library dlclose'd, and another dlopen'ed in its place.
const char* kLibA = "400000-401000 r-xp 00000000 08:01 11 /usr/lib/liba.so\n";
const char* kLibB = "400000-401000 r-xp 00000000 08:01 22 /usr/lib/libb.so\n";

struct Recording {
  // When each pid's maps last changed, as the BPF side tells a look (taken
  // and forgotten by each read).
  std::map<pid_t, uint64_t> changed_at;
  mb_test::TempTree dir{"mb_recorded_images"};
  std::string path = dir.path("r.prof");
  ProfileWriter w{path, ProfileStart{}};
  RecordedImages images{[this](pid_t p) { return std::exchange(changed_at[p], 0); }};
  // What a look at p reads: name, maps, and when they changed.
  ProcessImage seen(pid_t p, const std::string& name, const char* maps) {
    ProcessImage i = image(name, maps);
    i.maps_changed_ns = std::exchange(changed_at[p], 0);
    return i;
  }
  // The program mapped at 0x400000 in `pid` at `time_ns` ("" none), once finished.
  std::string program_at(pid_t pid, uint64_t time_ns) {
    ProfileReader reader(path);
    ProfileProcesses procs(reader.info());
    const ProfileMap* m = procs.mapping(static_cast<uint32_t>(pid), 0x400800, time_ns);
    return m ? m->path : "";
  }
};

}  // namespace

TEST(RecordedImages, AForkIsItsParentsProgramUntilItsExec) {
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, image("parent", kParentMaps));
  r.images.write_fork(r.w, 200, 60, 50);
  ASSERT_NE(r.images.find(60), nullptr);
  EXPECT_EQ(r.images.find(60)->name, "parent");
  EXPECT_EQ(r.images.find(60)->maps, r.images.find(50)->maps) << "shared, not copied";
  r.images.write(r.w, 300, 60, 0, kProcExec, image("new", kNewMaps));
  r.w.finish(1000, 0);
  EXPECT_EQ(r.program_at(60, 250), "/usr/bin/parent");
  EXPECT_EQ(r.program_at(60, 350), "/usr/bin/new");
}

// A look (profiler record's refresh of the tracked set) took the child in
// after its exec, while its fork event still waited: the fork is written
// all the same, at its time and with its parent's program, and what the
// look saw stays what is known of the child.
TEST(RecordedImages, AForkTakenInAfterALookIsStillWritten) {
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, image("parent", kParentMaps));
  r.images.write(r.w, 400, 60, 50, kProcSeen, image("new", kNewMaps));
  r.images.write_fork(r.w, 200, 60, 50);
  EXPECT_EQ(r.images.find(60)->name, "new");
  r.w.finish(1000, 0);
  EXPECT_EQ(r.program_at(60, 250), "/usr/bin/parent");
  EXPECT_EQ(r.program_at(60, 450), "/usr/bin/new");
}

// Each mapped file is described once, before the first maps holding it,
// with what was read of it then: its device, inode, time and build-id.
TEST(RecordedImages, EachMappedFileIsDescribedOnce) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  struct stat st;
  ASSERT_EQ(stat(self, &st), 0);
  char line[4300];
  std::snprintf(line, sizeof line, "400000-401000 r-xp 00000000 %x:%x %llu %s\n", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), self);
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, image("parent", line));
  r.images.write_fork(r.w, 200, 60, 50);
  r.images.write(r.w, 300, 70, 1, kProcSeen, image("other", line));
  r.w.finish(1000, 0);
  ProfileReader reader(r.path);
  const ProfileInfo& info = reader.info();
  ASSERT_EQ(info.files.size(), 1u);
  const ProfileFile& f = info.files[0];
  EXPECT_EQ(f.path, self);
  EXPECT_EQ(f.dev, st.st_dev);
  EXPECT_EQ(f.inode, st.st_ino);
  EXPECT_EQ(f.mtime_ns, mtime_ns(st));
  EXPECT_EQ(f.size, static_cast<uint64_t>(st.st_size));
  int fd = open(self, O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(f.build_id, read_build_id(fd));
  close(fd);
  EXPECT_FALSE(f.build_id.empty());
  EXPECT_EQ(info.maps_changes.size(), 3u);
}

// A process that maps and unmaps all the time: each look found one mapping
// gone and another new. The recorders wrote its whole maps at each look (50
// looks, 50 times the whole maps in the file) and the reader held every
// copy; now a look writes what changed, and the reader holds each mapping
// once with the time it was mapped, answering as before.
TEST(RecordedImages, AChurningProcessCostsItsChangesNotItsMapsAtEachLook) {
  Recording r;
  std::string base;  // 40 mappings of a library that stay
  char line[160];
  for (int i = 0; i < 40; ++i) {
    std::snprintf(line, sizeof line, "%x-%x r-xp %08x 08:01 33 /usr/lib/x86_64-linux-gnu/libchurn.so.1\n",
                  0x10000000 + i * 0x1000, 0x10001000 + i * 0x1000, i * 0x1000);
    base += line;
  }
  auto churned = [&](int look) {  // the base and the anonymous mapping of this look
    std::snprintf(line, sizeof line, "%x-%x rw-p 00000000 00:00 0 \n", 0x20000000 + look * 0x1000,
                  0x20001000 + look * 0x1000);
    return image("churn", base + line);
  };
  const uint64_t ms = 1000000;
  r.images.write(r.w, 100 * ms, 70, 1, kProcSeen, churned(0));
  const uint64_t whole = r.w.bytes_written();  // the header, the topology and one whole maps
  for (int look = 1; look <= 50; ++look)
    EXPECT_EQ(r.images.look(r.w, (100 + 500 * look) * ms, 70, 1, churned(look)), RecordedImages::Look::kChanged);
  const uint64_t changes = r.w.bytes_written() - whole;
  r.w.finish(30000 * ms, 0);
  // A change: its chunk header, 32 bytes (with its effect time), one range
  // removed (16), one mapping added (44 + its empty path's 8).
  EXPECT_EQ(changes, 50u * (16 + 32 + 16 + 48)) << "whole maps are " << whole << " bytes";

  ProfileReader reader(r.path);
  ASSERT_TRUE(reader.ok()) << reader.error();
  EXPECT_EQ(reader.info().version, kProfileVersion);
  EXPECT_EQ(reader.info().maps_changes.size(), 51u);
  EXPECT_EQ(reader.info().mappings.size(), 40u + 51u);  // each mapping once
  ProfileProcesses procs(reader.info());
  EXPECT_EQ(procs.mappings_held(), 40u + 51u);
  for (int look = 0; look <= 50; ++look) {
    const uint64_t t = (100 + 500 * look + 1) * ms;
    const ProfileMap* anon = procs.mapping(70, 0x20000010 + look * 0x1000, t);
    ASSERT_NE(anon, nullptr) << look;
    EXPECT_EQ(anon->start, 0x20000000u + look * 0x1000);
    const ProfileMap* lib = procs.mapping(70, 0x10027010, t);
    ASSERT_NE(lib, nullptr) << look;
    EXPECT_EQ(lib->offset, 0x27000u);
  }
  EXPECT_EQ(reader.info().last_maps(70), *churned(50).maps);
}

// A look took the child in before its fork event: its fork's maps (its
// parent's, timed at the fork) are written after the maps the look saw. A
// change is relative to the maps last written (the fork's), and the reader
// puts each in its time.
TEST(RecordedImages, AChangeAfterAForkTakenInLateIsRelativeToTheForksMaps) {
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, image("parent", kParentMaps));
  const char* kChildMaps = "400000-401000 r-xp 00000000 08:01 11 /usr/bin/parent\n"
                           "600000-601000 rw-p 00000000 00:00 0 \n";
  r.images.look(r.w, 300, 60, 50, image("parent", kChildMaps));
  r.images.write_fork(r.w, 200, 60, 50);
  EXPECT_EQ(r.images.look(r.w, 400, 60, 50, image("parent", kNewMaps)), RecordedImages::Look::kChanged);
  r.w.finish(1000, 0);
  ProfileReader reader(r.path);
  ASSERT_TRUE(reader.ok()) << reader.error();
  EXPECT_EQ(r.program_at(60, 250), "/usr/bin/parent");
  EXPECT_EQ(r.program_at(60, 450), "/usr/bin/new");
  ProfileProcesses procs(reader.info());
  const ProfileMap* anon = procs.mapping(60, 0x600100, 350);
  ASSERT_NE(anon, nullptr);
  EXPECT_EQ(anon->start, 0x600000u);
  EXPECT_EQ(reader.info().last_maps(60), parse_proc_maps(kNewMaps));
}

// A library swapped at one address between two looks (dlclose, then dlopen
// at once): the change takes effect at the first system call that made it,
// not at the look that found it, so the new library's first samples (its
// page faults come right after it is mapped) are its own.
TEST(RecordedImages, AMapsChangeTakesEffectAtItsFirstSystemCall) {
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, r.seen(50, "app", kLibA));
  r.changed_at[50] = 200;  // the munmap of liba.so
  EXPECT_EQ(r.images.look(r.w, 300, 50, 1, r.seen(50, "app", kLibB)), RecordedImages::Look::kChanged);
  r.w.finish(1000, 0);
  EXPECT_EQ(r.program_at(50, 150), "/usr/lib/liba.so");
  EXPECT_EQ(r.program_at(50, 250), "/usr/lib/libb.so") << "between the unmap and the look";
  EXPECT_EQ(r.program_at(50, 350), "/usr/lib/libb.so");
}

// read() takes the time of the change from the BPF side before it reads the
// maps, and forgets it: the next look's change is timed by its own calls.
TEST(RecordedImages, ReadTakesTheTimeOfTheChangeOnce) {
  Recording r;
  r.changed_at[getpid()] = 42;
  EXPECT_EQ(r.images.read(getpid()).maps_changed_ns, 42u);
  EXPECT_EQ(r.images.read(getpid()).maps_changed_ns, 0u);
  EXPECT_EQ(RecordedImages().read(getpid()).maps_changed_ns, 0u) << "no clock: timed at the look";
}

// The system call's time never puts a change before the maps it changes
// (an exec written since, or a change the look before already found), nor
// a missed exec's new maps before its name: those stay at the look.
TEST(RecordedImages, AChangeStaysAfterTheMapsBeforeItAndWithARename) {
  Recording r;
  r.images.write(r.w, 100, 50, 1, kProcSeen, r.seen(50, "app", kParentMaps));
  r.images.write(r.w, 300, 50, 0, kProcExec, r.seen(50, "app", kLibA));
  r.changed_at[50] = 200;  // before the exec: a call of the program before it
  r.images.look(r.w, 400, 50, 0, r.seen(50, "app", kLibB));
  r.images.write(r.w, 500, 60, 1, kProcSeen, r.seen(60, "one", kLibA));
  r.changed_at[60] = 550;
  r.images.look(r.w, 600, 60, 0, r.seen(60, "two", kLibB));  // renamed: an exec whose event was lost
  r.w.finish(1000, 0);
  EXPECT_EQ(r.program_at(50, 250), "/usr/bin/parent");
  EXPECT_EQ(r.program_at(50, 350), "/usr/lib/libb.so") << "the change from the exec's maps, at the exec";
  EXPECT_EQ(r.program_at(60, 575), "/usr/lib/liba.so");
  EXPECT_EQ(r.program_at(60, 650), "/usr/lib/libb.so");
}
