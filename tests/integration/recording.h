// What a recording says of the forked child that execs: its samples by the
// program whose mapping holds their address, before and after its exec.
// Shared by the tests of both recorders (profiler record, membalancer
// --record).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "membalancer/profile_file.h"

namespace mbtest {

struct ChildSamples {
  uint32_t pid = 0;  // the child forked by `parent` that exec'd (0: none recorded)
  // By the mapping's file name ("" anonymous, "unmapped": in none).
  std::map<std::string, uint64_t> before_exec, after_exec;
};

inline ChildSamples samples_of_forked_child(const std::string& file, uint32_t parent) {
  ChildSamples c;
  mb::ProfileReader reader(file);
  if (!reader.ok()) return c;
  std::set<uint32_t> children;
  for (const auto& p : reader.info().processes)
    if (p.event == mb::kProcFork && p.parent == parent) children.insert(p.tgid);
  uint64_t exec_ns = 0;
  for (const auto& p : reader.info().processes)
    if (p.event == mb::kProcExec && children.count(p.tgid)) c.pid = p.tgid, exec_ns = p.time_ns;
  if (!c.pid) return c;
  mb::ProfileProcesses procs(reader.info());
  reader.for_each_batch([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (s[i].tgid != c.pid || !(s[i].flags & MB_ACC_VADDR)) continue;
      const mb::ProfileMap* m = procs.mapping(s[i].tgid, s[i].vaddr, s[i].time_ns);
      const std::string program = !m ? "unmapped" : m->path.substr(m->path.rfind('/') + 1);
      ++(s[i].time_ns < exec_ns ? c.before_exec : c.after_exec)[program];
    }
  });
  return c;
}

inline std::string describe(const std::map<std::string, uint64_t>& by_program) {
  std::string s;
  for (const auto& [program, n] : by_program) s += (s.empty() ? "" : ", ") + program + " " + std::to_string(n);
  return "{" + s + "}";
}

// exectest_first --fork N ... exectest_second: the child's writes to its
// 64 data pages before its exec are in exectest_first's data (its parent's
// program), those after in exectest_second's, at the same addresses.
inline void expect_parents_program_until_exec(const ChildSamples& c) {
  ASSERT_NE(c.pid, 0u) << "the fork and the exec are recorded";
  auto in = [](const std::map<std::string, uint64_t>& m, const std::string& program) {
    auto it = m.find(program);
    return it == m.end() ? uint64_t{0} : it->second;
  };
  EXPECT_GE(in(c.before_exec, "exectest_first"), 32u) << describe(c.before_exec);
  EXPECT_EQ(in(c.before_exec, "exectest_second"), 0u) << describe(c.before_exec);
  EXPECT_GE(in(c.after_exec, "exectest_second"), 32u) << describe(c.after_exec);
  EXPECT_EQ(in(c.after_exec, "exectest_first"), 0u) << describe(c.after_exec);
}

}  // namespace mbtest
