// Samplers: where accesses come from (--sampler). The perf-based ones (ibs,
// pebs, fault) are a perf_event_attr opened on every CPU with the BPF sample
// program attached; abit is the helper module's tracepoint. The registry is
// filled in one function, in `auto` order.
#pragma once

#include <linux/perf_event.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/records.h"

namespace mb {

struct SamplerOptions {
  std::string sysfs_root = "/sys";
  std::string abit_device = "/dev/membalancer_abit";
  uint64_t ibs_period = 0x10000;  // ops between IBS samples (multiple of 16)
  uint64_t pebs_period = 1000;    // loads between PEBS samples
  uint64_t cpu_clock_period_ns = 100000;  // cpu-clock: one sample per 100 us of CPU time (10 kHz)
};

// What a sampler needs, decided before anything is opened.
struct SamplerPlan {
  std::string name;                  // "ibs", "pebs", "fault", "abit"
  mb_sampler_kind kind = MB_SAMPLER_NONE;
  std::optional<perf_event_attr> attr;  // perf-based samplers
  // The CPUs the PMU covers (its sysfs `cpus` file: a hybrid part's cpu_core
  // PMU opens only on the performance cores); empty: every CPU.
  std::vector<int> cpus;
  std::string detail;                // e.g. "ibs_op PMU type 11"
};

struct SamplerInfo {
  std::string name;
  std::string description;
};

// Sorted for --help; auto tries them in this order.
const std::vector<SamplerInfo>& sampler_list();
// Samplers only the profiler offers (never tried by auto): cpu-clock, where
// code runs (instruction pointers, no data address). plan_sampler knows them.
const std::vector<SamplerInfo>& profiler_sampler_list();
bool is_sampler_name(const std::string& name);

// Builds the plan for one named sampler, or returns nullopt and sets *why to
// one line naming what is missing (PMU, event, device).
std::optional<SamplerPlan> plan_sampler(const std::string& name, const SamplerOptions& opts, std::string* why);

// Parses a sysfs PMU event ("event=0xcd,umask=0x1,ldlat=3") using the PMU's
// format files ("config:0-7", "config1:0-15") from `format` (name -> spec)
// into attr.config / config1 / config2. Returns false and sets *why on error.
bool apply_pmu_event(const std::string& event, const std::map<std::string, std::string>& format,
                     perf_event_attr* attr, std::string* why);

}  // namespace mb
