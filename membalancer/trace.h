// The sampling loop every mode runs: sample the tracked processes, drain and
// report each interval; `trace` only reports, the other modes' backends
// (backend.h) act on each interval.
#pragma once

#include <memory>
#include <string>

#include "membalancer/bpf_collector.h"
#include "membalancer/options.h"
#include "membalancer/topology.h"

namespace mb {

int run_mode(const Options& opts);

// The plan of a sampler named on the command line (not "auto", not a
// replay), or a SystemError naming what this machine lacks for it, with a
// hint. Checked before capabilities: granting them would not help.
SamplerPlan named_sampler_plan(const std::string& sampler, const SamplerOptions& so);

// Opens the collector with the requested sampler; for "auto", the first of
// sampler_list() that opens, printing one line saying which and why,
// prefixed with `program` (membalancer, profiler): the program the user ran.
std::unique_ptr<BpfCollector> open_collector(const Options& opts, const CollectorConfig& cfg, const Topology& topo,
                                             const char* program);

// --info: what this machine offers.
int print_info();

}  // namespace mb
