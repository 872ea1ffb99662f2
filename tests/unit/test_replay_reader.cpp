// ReplayReader: a --pid or --ppid the recording never names is refused
// (it replayed nothing, silently).
#include <gtest/gtest.h>

#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "membalancer/replay.h"
#include "tests/unit/temp_tree.h"

using namespace mb;

namespace {

// A fault recording's start on a machine of one node, CPU 0, 1 GiB.
ProfileStart one_node_start() {
  ProfileStart st;
  st.sampler = "fault";
  NumaNode n;
  n.id = 0, n.cpus = {0}, n.mem_total_bytes = 1ULL << 30, n.distance = {{0, 10}};
  st.topology.nodes = {n};
  return st;
}

TEST(ReplayReader, APidNotInTheRecordingIsBadInput) {
  mb_test::TempTree dir("mbreplay");
  const std::string path = dir.path("r.prof");
  {
    ProfileWriter w(path, one_node_start());
    w.add_process(1, 100, 1, kProcSeen, "one");
    w.add_process(2, 101, 100, kProcFork, "two");
    w.finish(0, 0);
  }
  for (TrackMode mode : {TrackMode::kPid, TrackMode::kTree}) {
    try {
      ReplayReader r(path, 1000, ReplayFilter{mode, 5});
      ADD_FAILURE() << "pid 5 accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("not a process of the recording"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("100, 101"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(ReplayReader(path, 1000, ReplayFilter{mode, 101}));
  }
}

// An exec in the recording (5, the kernel's event) is one in the replay, as
// live: the pipeline drops the old image's pages. A rename seen by looking
// (4) is not: it may be a prctl. Untracked processes' execs are not replayed.
TEST(ReplayReader, ExecEventsAreReplayedRenamesAreNot) {
  mb_test::TempTree dir("mbreplay");
  const std::string path = dir.path("r.prof");
  {
    ProfileWriter w(path, one_node_start());
    w.add_process(1, 100, 1, kProcSeen, "sh");
    w.add_process(2, 200, 1, kProcSeen, "other");
    w.add_process(3, 100, 0, kProcRename, "renamed");
    w.add_process(4, 100, 0, kProcExec, "prog");
    w.add_process(5, 200, 0, kProcExec, "prog2");
    w.add_process(6, 100, 0, kProcExit, "prog");
    w.finish(1000000000, 0);
  }
  ReplayReader r(path, 1000, ReplayFilter{TrackMode::kPid, 100});
  ReplayWindow w;
  ASSERT_TRUE(r.next(&w));
  std::vector<std::pair<uint32_t, uint32_t>> got;  // (tgid, type)
  for (const auto& ev : w.events) got.emplace_back(ev.tgid, ev.type);
  EXPECT_EQ(got, (std::vector<std::pair<uint32_t, uint32_t>>{
                     {100, MB_PROC_FORK}, {100, MB_PROC_EXEC}, {100, MB_PROC_EXIT}}));
}

}  // namespace
