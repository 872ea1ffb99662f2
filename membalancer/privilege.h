// Capabilities: which ones a run needs, checked before anything is opened, and
// which ones its loop keeps once the BPF programs, perf events and devices are
// set up (docs/reliability.md, "Least privilege and input safety").
//
// Capabilities belong to threads: drop_capabilities() changes the calling
// thread only, and threads started later inherit its sets. It refuses to run
// while other threads exist, so every caller drops before starting any.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mb {

struct Options;
enum class TrackMode;

// A set of capabilities: bit n is CAP number n (linux/capability.h).
using CapSet = uint64_t;
constexpr CapSet cap_bit(int cap) { return CapSet{1} << cap; }

// "CAP_BPF"; "CAP_42" for a number this build does not name.
std::string capability_name(int cap);
// "CAP_BPF, CAP_SYS_PTRACE" (ascending), or "none".
std::string capability_names(CapSet set);

// One capability a run needs before it starts, and what for.
struct CapNeed {
  int cap = -1;
  int alternative = -1;  // also accepted (CAP_SYS_ADMIN grants what CAP_BPF and CAP_PERFMON do)
  std::string why;       // "needed by the fault sampler to load its BPF programs"
};

// What one run needs before setup and keeps (of what it holds) afterwards.
struct PrivilegePlan {
  std::vector<CapNeed> needs;
  CapSet keep = 0;
};

// What a live sampler needs ("auto": what every one of them needs).
std::vector<CapNeed> sampler_needs(const std::string& sampler);

// The plan of a membalancer run, a pure function of its options.
// `foreign_target`: the run acts on processes this one may not touch once it
// has dropped its capabilities (see foreign_target()), e.g. "pid 12 (runs as
// uid 1000)"; empty when it acts only on its own.
PrivilegePlan privilege_plan(const Options& o, const std::string& foreign_target);

// The plan of `profiler record` with SAMPLER: sample, read maps and page nodes.
PrivilegePlan record_privilege_plan(const std::string& sampler, const std::string& foreign_target);

// A description of the first target process that another process, holding only
// `keep` and running with our credentials, could not read or move (its uids or
// gids differ from our real ones, or it holds capabilities outside `keep`; the
// kernel's ptrace and scheduler checks); "" when there is none. --all and
// --cgroup name every process; --ppid PID names PID's present tree.
std::string foreign_target(TrackMode mode, pid_t pid, const std::string& cgroup, CapSet keep,
                           const std::string& proc_root = "/proc");
std::string foreign_process(pid_t pid, CapSet keep, const std::string& proc_root = "/proc");

// The capabilities in this thread's effective set.
CapSet effective_capabilities();

// The first need `have` does not meet, as one line ("missing capability
// CAP_BPF (needed by ...)"), or "" when all are met.
std::string missing_capability(const std::vector<CapNeed>& needs, CapSet have);

// Throws SystemError (status 1) naming the first missing capability.
void require_capabilities(const std::vector<CapNeed>& needs);

// After setup: keeps `keep` (where held) in the effective and permitted sets
// and drops every other capability, from the bounding set too (when
// CAP_SETPCAP allows), clears the inheritable and ambient sets and sets
// no_new_privs, so that no exec can regain them. `bpf_works`, when given, is
// asked with CAP_BPF and CAP_SYS_ADMIN lowered whether the loop's BPF map
// operations still work: kernels before 5.19 with unprivileged BPF disabled
// refuse every bpf() call without them, and then one of them is kept.
// Returns what is left in the effective set.
CapSet drop_capabilities(CapSet keep, const std::function<bool()>& bpf_works = {});

}  // namespace mb
