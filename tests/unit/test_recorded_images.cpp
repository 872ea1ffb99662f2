// RecordedImages, the recorders' store of what they wrote of each process:
// a fork is written with its parent's name and maps, at the fork's time,
// also after a look took the child in first.
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
