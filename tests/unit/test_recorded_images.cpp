// RecordedImages, the recorders' store of what they wrote of each process:
// a fork is written with its parent's name and maps, at the fork's time,
// also after a look took the child in first.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

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

struct Recording {
  mb_test::TempTree dir{"mb_recorded_images"};
  std::string path = dir.path("r.prof");
  ProfileWriter w{path, ProfileStart{}};
  RecordedImages images;
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
  EXPECT_EQ(info.maps.size(), 3u);
}
