// ReplayReader: a --pid or --ppid the recording never names is refused
// (it replayed nothing, silently).
#include <gtest/gtest.h>

#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "membalancer/replay.h"
#include "tests/unit/temp_tree.h"

using namespace mb;

namespace {

TEST(ReplayReader, APidNotInTheRecordingIsBadInput) {
  mb_test::TempTree dir("mbreplay");
  const std::string path = dir.path("r.prof");
  {
    ProfileStart st;
    st.sampler = "fault";
    NumaNode n;
    n.id = 0, n.cpus = {0}, n.mem_total_bytes = 1ULL << 30, n.distance = {{0, 10}};
    st.topology.nodes = {n};
    ProfileWriter w(path, st);
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

}  // namespace
