// What make_profile_v2.cpp and make_profile_v3.cpp start their files with:
// the fault sampler, fixed start times and one node of one CPU, so that the
// bytes depend on the writer only. Uses nothing the version-2 writer lacked.
#pragma once

#include <cstdio>

#include "membalancer/profile_file.h"

// The start of an old version's test file.
inline mb::ProfileStart old_profile_start() {
  mb::ProfileStart st;
  st.sampler = "fault";
  st.sampler_kind = MB_SAMPLER_FAULT;
  st.start_realtime_ns = 1700000000000000000ull;
  st.start_monotonic_ns = 100;
  mb::NumaNode node;
  node.id = 0;
  node.cpus = {0};
  st.topology.nodes.push_back(node);
  return st;
}
