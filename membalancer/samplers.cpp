#include "membalancer/samplers.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "membalancer/sysfs.h"

namespace mb {

const std::vector<SamplerInfo>& sampler_list() {
  static const std::vector<SamplerInfo> list = {
      {"ibs", "AMD IBS op sampling: data address, physical address, latency, data source"},
      {"pebs", "Intel PEBS precise loads: data address, physical address, latency, data source"},
      {"abit", "helper kernel module: page-table accessed bits of tracked processes"},
      {"fault", "software page-fault events: the faulting address (works everywhere with BPF)"},
  };
  return list;
}

const std::vector<SamplerInfo>& profiler_sampler_list() {
  static const std::vector<SamplerInfo> list = {
      {"cpu-clock", "software cpu-clock timer: user-space instruction pointers, no data address (code view)"},
  };
  return list;
}

bool is_sampler_name(const std::string& name) {
  if (name == "auto") return true;
  for (const auto& s : sampler_list())
    if (s.name == name) return true;
  return false;
}

static std::optional<int> read_pmu_type(const std::string& pmu_dir) {
  auto text = read_text_file(pmu_dir + "/type");
  if (!text) return std::nullopt;
  try {
    return std::stoi(trim(*text));
  } catch (...) {
    return std::nullopt;
  }
}

bool apply_pmu_event(const std::string& event, const std::map<std::string, std::string>& format,
                     perf_event_attr* attr, std::string* why) {
  std::stringstream ss(trim(event));
  std::string term;
  while (std::getline(ss, term, ',')) {
    term = trim(term);
    if (term.empty()) continue;
    std::string name = term, value_text = "1";
    if (auto eq = term.find('='); eq != std::string::npos) {
      name = term.substr(0, eq);
      value_text = term.substr(eq + 1);
    }
    auto f = format.find(name);
    if (f == format.end()) {
      *why = "PMU event term '" + name + "' has no format file";
      return false;
    }
    uint64_t value;
    try {
      value = std::stoull(value_text, nullptr, 0);
    } catch (...) {
      *why = "PMU event term '" + term + "' has a bad value";
      return false;
    }
    // Format: "config:0-7" or "config1:0-15" or "config:8" (ranges may be
    // comma-separated: "config:0-7,21").
    std::string spec = trim(f->second);
    auto colon = spec.find(':');
    if (colon == std::string::npos) {
      *why = "PMU format '" + spec + "' of '" + name + "' is not understood";
      return false;
    }
    std::string field = spec.substr(0, colon);
    __u64* target = field == "config" ? &attr->config
                       : field == "config1" ? &attr->config1
                       : field == "config2" ? &attr->config2
                                            : nullptr;
    if (!target) {
      *why = "PMU format field '" + field + "' is not understood";
      return false;
    }
    std::stringstream rs(spec.substr(colon + 1));
    std::string range;
    int shifted = 0;
    while (std::getline(rs, range, ',')) {
      int lo, hi;
      if (sscanf(range.c_str(), "%d-%d", &lo, &hi) != 2) hi = lo = std::atoi(range.c_str());
      if (lo < 0 || hi > 63 || hi < lo) {
        *why = "PMU format '" + spec + "' has a bad bit range";
        return false;
      }
      int width = hi - lo + 1;
      uint64_t mask = width == 64 ? ~0ULL : ((1ULL << width) - 1);
      *target |= ((value >> shifted) & mask) << lo;
      shifted += width;
    }
  }
  return true;
}

static std::map<std::string, std::string> read_format(const std::string& pmu_dir) {
  std::map<std::string, std::string> out;
  for (const char* name : {"event", "umask", "ldlat", "inv", "cmask", "edge", "any", "frontend"}) {
    if (auto t = read_text_file(pmu_dir + "/format/" + name)) out[name] = trim(*t);
  }
  return out;
}

static perf_event_attr base_attr() {
  perf_event_attr a;
  std::memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.disabled = 0;
  a.exclude_kernel = 0;
  return a;
}

std::optional<SamplerPlan> plan_sampler(const std::string& name, const SamplerOptions& opts, std::string* why) {
  const std::string pmus = opts.sysfs_root + "/bus/event_source/devices";
  SamplerPlan plan;
  plan.name = name;
  if (name == "ibs") {
    auto type = read_pmu_type(pmus + "/ibs_op");
    if (!type) {
      *why = "no ibs_op PMU (" + pmus + "/ibs_op): not an AMD CPU with IBS, or a VM without it";
      return std::nullopt;
    }
    perf_event_attr a = base_attr();
    a.type = *type;
    // IBS counts in units of 16; 0 would make a counting event that never samples.
    a.sample_period = std::max<uint64_t>(opts.ibs_period & ~0xfULL, 16);
    a.sample_type = PERF_SAMPLE_RAW | PERF_SAMPLE_TID | PERF_SAMPLE_CPU;
    plan.kind = MB_SAMPLER_IBS;
    plan.attr = a;
    plan.detail = "ibs_op PMU type " + std::to_string(*type);
    return plan;
  }
  if (name == "pebs") {
    for (const char* pmu : {"cpu", "cpu_core"}) {
      std::string dir = pmus + "/" + pmu;
      auto type = read_pmu_type(dir);
      auto event = read_text_file(dir + "/events/mem-loads");
      if (!type || !event) continue;
      perf_event_attr a = base_attr();
      a.type = *type;
      if (!apply_pmu_event(*event, read_format(dir), &a, why)) return std::nullopt;
      a.sample_period = opts.pebs_period;
      a.precise_ip = 2;
      a.sample_type = PERF_SAMPLE_ADDR | PERF_SAMPLE_TID | PERF_SAMPLE_WEIGHT_STRUCT | PERF_SAMPLE_DATA_SRC |
                      PERF_SAMPLE_PHYS_ADDR;
      plan.kind = MB_SAMPLER_PEBS;
      plan.attr = a;
      plan.detail = std::string(pmu) + "/mem-loads (" + trim(*event) + ")";
      // A hybrid PMU refuses (ENOENT) an event on a CPU it does not cover.
      if (auto cpus = read_text_file(dir + "/cpus")) {
        try {
          plan.cpus = parse_int_list(*cpus, dir + "/cpus");
        } catch (...) {
          plan.cpus.clear();  // unreadable: try every CPU, as before
        }
        if (!plan.cpus.empty()) plan.detail += " on CPUs " + trim(*cpus);
      }
      return plan;
    }
    *why = "no PEBS load event (" + pmus + "/cpu/events/mem-loads): not an Intel CPU with PEBS, or a VM without a PMU";
    return std::nullopt;
  }
  if (name == "fault") {
    perf_event_attr a = base_attr();
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_PAGE_FAULTS;
    a.sample_period = 1;
    a.sample_type = PERF_SAMPLE_ADDR | PERF_SAMPLE_TID;
    plan.kind = MB_SAMPLER_FAULT;
    plan.attr = a;
    plan.detail = "software page-fault events";
    return plan;
  }
  if (name == "cpu-clock") {
    perf_event_attr a = base_attr();
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.sample_period = std::max<uint64_t>(opts.cpu_clock_period_ns, 10000);  // ns of CPU time
    a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID;
    a.exclude_kernel = 1;  // user-space instruction pointers only
    a.exclude_hv = 1;
    plan.kind = MB_SAMPLER_CPU_CLOCK;
    plan.attr = a;
    plan.detail = "software cpu-clock timer every " + std::to_string(a.sample_period / 1000) + " us";
    return plan;
  }
  if (name == "abit") {
    struct stat st;
    if (stat(opts.abit_device.c_str(), &st) != 0) {
      *why = opts.abit_device + " is missing: the helper module membalancer_abit is not loaded";
      return std::nullopt;
    }
    plan.kind = MB_SAMPLER_ABIT;
    plan.detail = "helper module via " + opts.abit_device;
    return plan;
  }
  *why = "unknown sampler '" + name + "'";
  return std::nullopt;
}

}  // namespace mb
