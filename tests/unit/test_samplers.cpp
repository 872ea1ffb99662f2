// Unit tests for membalancer/samplers.h: PMU event strings against format
// specs, and sampler plans against fake sysfs trees.

#include <gtest/gtest.h>

#include <linux/perf_event.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "membalancer/bpf_collector.h"
#include "membalancer/samplers.h"
#include "temp_tree.h"

namespace fs = std::filesystem;

namespace {

using Format = std::map<std::string, std::string>;

perf_event_attr zero_attr() {
  perf_event_attr a;
  std::memset(&a, 0, sizeof(a));
  return a;
}

const Format kIntelFormat = {
    {"event", "config:0-7"}, {"umask", "config:8-15"}, {"ldlat", "config1:0-15"},
    {"inv", "config:23"},    {"cmask", "config:24-31"}, {"frontend", "config1:0-23"},
};

TEST(ApplyPmuEvent, SimpleFields) {
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0xcd,umask=0x1,ldlat=3", kIntelFormat, &a, &why)) << why;
  EXPECT_EQ(a.config, 0x1cdu);
  EXPECT_EQ(a.config1, 3u);
  EXPECT_EQ(a.config2, 0u);
}

TEST(ApplyPmuEvent, TrailingNewlineSpacesAndDecimal) {
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event(" event=0xd0 , umask=129\n", kIntelFormat, &a, &why)) << why;
  EXPECT_EQ(a.config, 0x81d0u);
}

TEST(ApplyPmuEvent, TermWithoutValueIsOne) {
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0x3c,inv,cmask=2", kIntelFormat, &a, &why)) << why;
  EXPECT_EQ(a.config, 0x3cull | (1ull << 23) | (2ull << 24));
}

TEST(ApplyPmuEvent, SplitRanges) {
  Format f = {{"event", "config:0-7,21-22"}};
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0x2ab", f, &a, &why)) << why;
  // Low 8 bits 0xab at 0-7, the next two bits (0b10) at 21-22.
  EXPECT_EQ(a.config, 0xabull | (2ull << 21));

  Format g = {{"event", "config:0-3,8,32-35"}};
  perf_event_attr b = zero_attr();
  ASSERT_TRUE(mb::apply_pmu_event("event=0x3f5", g, &b, &why)) << why;
  // 0x3f5 = 11 1111 0101, consumed low bits first: 0101 -> bits 0-3, 1 -> bit 8,
  // the next four (1111) -> bits 32-35.
  EXPECT_EQ(b.config, 0x5ull | (1ull << 8) | (0xfull << 32));
}

TEST(ApplyPmuEvent, ValueWiderThanTheFieldIsMasked) {
  Format f = {{"event", "config:0-7"}};
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0x1ff", f, &a, &why));
  EXPECT_EQ(a.config, 0xffu);
}

TEST(ApplyPmuEvent, WholeWordAndConfig2) {
  Format f = {{"event", "config2:0-63"}};
  perf_event_attr a = zero_attr();
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0xffffffffffffffff", f, &a, &why)) << why;
  EXPECT_EQ(a.config2, ~0ull);
  EXPECT_EQ(a.config, 0u);
}

TEST(ApplyPmuEvent, KeepsBitsAlreadySet) {
  perf_event_attr a = zero_attr();
  a.config = 1ull << 40;
  std::string why;
  ASSERT_TRUE(mb::apply_pmu_event("event=0x1", kIntelFormat, &a, &why));
  EXPECT_EQ(a.config, (1ull << 40) | 1);
}

TEST(ApplyPmuEvent, Errors) {
  struct Case {
    std::string event;
    Format format;
    std::string why_has;
  } cases[] = {
      {"event=0x1,foo=2", kIntelFormat, "'foo'"},
      {"=5", kIntelFormat, "no format"},
      {"event=zz", kIntelFormat, "bad value"},
      {"event=", kIntelFormat, "bad value"},
      {"event=0x1", {{"event", "config"}}, "not understood"},
      {"event=0x1", {{"event", "config3:0-7"}}, "config3"},
      {"event=0x1", {{"event", "config:7-0"}}, "bad bit range"},
      {"event=0x1", {{"event", "config:0-64"}}, "bad bit range"},
  };
  for (const auto& c : cases) {
    perf_event_attr a = zero_attr();
    std::string why;
    EXPECT_FALSE(mb::apply_pmu_event(c.event, c.format, &a, &why)) << c.event;
    EXPECT_NE(why.find(c.why_has), std::string::npos) << c.event << ": " << why;
  }
}

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.sysfs_root = root_;
    opts_.abit_device = root_ + "/dev/membalancer_abit";
  }
  void write(const std::string& rel, const std::string& content) { tree_.write(rel, content); }
  void intel_pmu(const std::string& pmu) {
    const std::string d = "bus/event_source/devices/" + pmu + "/";
    write(d + "type", "4\n");
    write(d + "events/mem-loads", "event=0xcd,umask=0x1,ldlat=3\n");
    write(d + "events/mem-stores", "event=0xd0,umask=0x82\n");
    write(d + "format/event", "config:0-7\n");
    write(d + "format/umask", "config:8-15\n");
    write(d + "format/ldlat", "config1:0-15\n");
    write(d + "format/inv", "config:23\n");
  }
  mb_test::TempTree tree_{"mb_samplers"};
  const std::string& root_ = tree_.path();
  mb::SamplerOptions opts_;
};

TEST_F(FakeSysfs, IbsPresent) {
  write("bus/event_source/devices/ibs_op/type", "11\n");
  opts_.ibs_period = 0x10007;
  std::string why;
  auto plan = mb::plan_sampler("ibs", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->name, "ibs");
  EXPECT_EQ(plan->kind, MB_SAMPLER_IBS);
  ASSERT_TRUE(plan->attr.has_value());
  EXPECT_EQ(plan->attr->type, 11u);
  EXPECT_EQ(plan->attr->size, sizeof(perf_event_attr));
  EXPECT_EQ(plan->attr->sample_period, 0x10000u);
  EXPECT_EQ(plan->attr->sample_period % 16, 0u);
  EXPECT_TRUE(plan->attr->sample_type & PERF_SAMPLE_RAW);
  EXPECT_EQ(plan->attr->freq, 0u);
  EXPECT_NE(plan->detail.find("11"), std::string::npos) << plan->detail;
}

TEST_F(FakeSysfs, IbsPeriodBelowSixteenStillSamples) {
  write("bus/event_source/devices/ibs_op/type", "11\n");
  opts_.ibs_period = 5;
  std::string why;
  auto plan = mb::plan_sampler("ibs", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  // A period of 0 would make a counting event that never samples.
  EXPECT_EQ(plan->attr->sample_period, 16u);
}

TEST_F(FakeSysfs, IbsMissing) {
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("ibs", opts_, &why).has_value());
  EXPECT_NE(why.find(root_ + "/bus/event_source/devices/ibs_op"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos);
}

TEST_F(FakeSysfs, IbsTypeUnreadable) {
  write("bus/event_source/devices/ibs_op/type", "garbage\n");
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("ibs", opts_, &why).has_value());
  EXPECT_NE(why.find("ibs_op"), std::string::npos) << why;
}

TEST_F(FakeSysfs, PebsPresent) {
  intel_pmu("cpu");
  opts_.pebs_period = 777;
  std::string why;
  auto plan = mb::plan_sampler("pebs", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->kind, MB_SAMPLER_PEBS);
  ASSERT_TRUE(plan->attr.has_value());
  const perf_event_attr& a = *plan->attr;
  EXPECT_EQ(a.type, 4u);
  EXPECT_EQ(a.config, 0x1cdu);
  EXPECT_EQ(a.config1, 3u);
  EXPECT_EQ(a.precise_ip, 2u);
  EXPECT_EQ(a.sample_period, 777u);
  for (uint64_t bit : {PERF_SAMPLE_ADDR, PERF_SAMPLE_DATA_SRC, PERF_SAMPLE_WEIGHT_STRUCT, PERF_SAMPLE_PHYS_ADDR,
                       PERF_SAMPLE_TID})
    EXPECT_TRUE(a.sample_type & bit) << std::hex << bit;
  EXPECT_FALSE(a.sample_type & PERF_SAMPLE_WEIGHT) << "WEIGHT and WEIGHT_STRUCT are exclusive";
  EXPECT_NE(plan->detail.find("cpu/mem-loads"), std::string::npos) << plan->detail;
}

TEST_F(FakeSysfs, PebsOnHybridCpuCore) {
  intel_pmu("cpu_core");
  std::string why;
  auto plan = mb::plan_sampler("pebs", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->attr->config, 0x1cdu);
  EXPECT_NE(plan->detail.find("cpu_core/mem-loads"), std::string::npos) << plan->detail;
  EXPECT_TRUE(plan->cpus.empty());  // no cpus file: every CPU
}

// A hybrid part's cpu_core PMU covers the performance cores only, and the
// kernel refuses its events on the others: the plan names the CPUs to open
// on (it used to open on every CPU and fail as a whole on the first E-core).
TEST_F(FakeSysfs, PebsOnHybridOpensOnTheCpusThePmuCovers) {
  intel_pmu("cpu_core");
  write("bus/event_source/devices/cpu_core/cpus", "0-3,8\n");
  std::string why;
  auto plan = mb::plan_sampler("pebs", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->cpus, (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_NE(plan->detail.find("on CPUs 0-3,8"), std::string::npos) << plan->detail;
}

TEST_F(FakeSysfs, PebsMissingEvent) {
  // An AMD or virtual PMU: a cpu PMU without mem-loads.
  write("bus/event_source/devices/cpu/type", "4\n");
  write("bus/event_source/devices/cpu/format/event", "config:0-7\n");
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("pebs", opts_, &why).has_value());
  EXPECT_NE(why.find(root_ + "/bus/event_source/devices/cpu/events/mem-loads"), std::string::npos) << why;
}

TEST_F(FakeSysfs, PebsEventWithoutFormat) {
  intel_pmu("cpu");
  fs::remove(fs::path(root_) / "bus/event_source/devices/cpu/format/ldlat");
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("pebs", opts_, &why).has_value());
  EXPECT_NE(why.find("ldlat"), std::string::npos) << why;
}

TEST_F(FakeSysfs, FaultAlwaysAvailable) {
  opts_.sysfs_root = root_ + "/does-not-exist";
  std::string why;
  auto plan = mb::plan_sampler("fault", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->kind, MB_SAMPLER_FAULT);
  ASSERT_TRUE(plan->attr.has_value());
  EXPECT_EQ(plan->attr->type, static_cast<uint32_t>(PERF_TYPE_SOFTWARE));
  EXPECT_EQ(plan->attr->config, static_cast<uint64_t>(PERF_COUNT_SW_PAGE_FAULTS));
  EXPECT_EQ(plan->attr->sample_period, 1u);
  EXPECT_TRUE(plan->attr->sample_type & PERF_SAMPLE_ADDR);
  EXPECT_TRUE(plan->attr->sample_type & PERF_SAMPLE_TID);
}

TEST_F(FakeSysfs, AbitNeedsTheDevice) {
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("abit", opts_, &why).has_value());
  EXPECT_NE(why.find(opts_.abit_device), std::string::npos) << why;
  write("dev/membalancer_abit", "");
  why.clear();
  auto plan = mb::plan_sampler("abit", opts_, &why);
  ASSERT_TRUE(plan.has_value()) << why;
  EXPECT_EQ(plan->kind, MB_SAMPLER_ABIT);
  EXPECT_FALSE(plan->attr.has_value());
  EXPECT_NE(plan->detail.find(opts_.abit_device), std::string::npos);
}

TEST_F(FakeSysfs, UnknownSampler) {
  std::string why;
  EXPECT_FALSE(mb::plan_sampler("bogus", opts_, &why).has_value());
  EXPECT_NE(why.find("'bogus'"), std::string::npos) << why;
}

TEST(SamplerList, OrderAndNames) {
  const auto& list = mb::sampler_list();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].name, "ibs");
  EXPECT_EQ(list[1].name, "pebs");
  EXPECT_EQ(list[2].name, "abit");
  EXPECT_EQ(list[3].name, "fault");
  for (const auto& s : list) {
    EXPECT_FALSE(s.description.empty()) << s.name;
    EXPECT_TRUE(mb::is_sampler_name(s.name)) << s.name;
  }
  EXPECT_TRUE(mb::is_sampler_name("auto"));
  EXPECT_FALSE(mb::is_sampler_name(""));
  EXPECT_FALSE(mb::is_sampler_name("IBS"));
  EXPECT_FALSE(mb::is_sampler_name("ibs "));
  EXPECT_FALSE(mb::is_sampler_name("bogus"));
}

}  // namespace

// What a user is told when a sampler's perf event does not open: the fault
// sampler's own failure used to end with "try --sampler fault".
TEST(PerfOpenHint, FaultIsNotItsOwnWayOut) {
  EXPECT_NE(mb::perf_open_hint("ibs", EINVAL, 2).find("try --sampler fault"), std::string::npos);
  EXPECT_NE(mb::perf_open_hint("pebs", ENOENT, 2).find("try --sampler fault"), std::string::npos);
  const std::string fault = mb::perf_open_hint("fault", EINVAL, 2);
  EXPECT_EQ(fault.find("--sampler fault"), std::string::npos) << fault;
  EXPECT_NE(fault.find("software perf events"), std::string::npos) << fault;
  EXPECT_NE(mb::perf_open_hint("fault", EACCES, 3).find("perf_event_paranoid is 3"), std::string::npos);
  EXPECT_NE(mb::perf_open_hint("fault", EPERM, 2).find("CAP_PERFMON"), std::string::npos);
}
