#include "membalancer/options.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "membalancer/error.h"
#include "membalancer/samplers.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

std::string sampler_help() {
  std::string s = "Where accesses come from: auto";
  for (const auto& i : sampler_list()) s += "|" + i.name;
  s += ". auto picks the first that works of";
  for (const auto& i : sampler_list()) s += " " + i.name;
  s += ".\n";
  for (const auto& i : sampler_list()) s += "  " + i.name + ": " + i.description + "\n";
  return s;
}

void validate(Options& o, const CLI::App& trace, const std::string& display, const std::string& region,
              const std::string& max_pages) {
  int targets = (trace.count("--ppid") > 0) + (trace.count("--pid") > 0) + (trace.count("--cgroup") > 0) +
                (trace.count("--all") > 0);
  if (targets != 1)
    throw UsageError("choose exactly one of --ppid PID, --pid PID, --cgroup PATH or --all");
  if (trace.count("--ppid")) o.mode = TrackMode::kTree;
  if (trace.count("--pid")) o.mode = TrackMode::kPid;
  if (trace.count("--cgroup")) o.mode = TrackMode::kCgroup;
  if (trace.count("--all")) o.mode = TrackMode::kAll;
  if ((o.mode == TrackMode::kTree || o.mode == TrackMode::kPid) && o.pid <= 0)
    throw UsageError(std::string(o.mode == TrackMode::kTree ? "--ppid" : "--pid") + ": '" + std::to_string(o.pid) +
                     "' is not a process id");
  if (!is_sampler_name(o.sampler)) throw UsageError("--sampler: unknown sampler '" + o.sampler + "' (see --help)");
  if (o.interval_ms < 10 || o.interval_ms > 60000)
    throw UsageError("--interval: " + std::to_string(o.interval_ms) + " ms is outside 10..60000");
  if (!(o.duration_s >= 0)) throw UsageError("--duration: must be 0 (until stopped) or a positive number of seconds");
  static const std::map<std::string, Display> displays = {
      {"histogram", Display::kHistogram}, {"continuous", Display::kContinuous}, {"json", Display::kJson}};
  auto d = displays.find(display);
  if (d == displays.end()) throw UsageError("--display: '" + display + "' is not one of histogram, continuous, json");
  o.display = d->second;
  o.region_bytes = parse_size(region, "--region-size");
  if (o.region_bytes < 4096 || (o.region_bytes & (o.region_bytes - 1)))
    throw UsageError("--region-size: must be a power of two of at least 4K");
  o.max_pages = parse_size(max_pages, "--max-pages");
  if (o.max_pages < 1024) throw UsageError("--max-pages: at least 1024");
  if (o.bpf_page_slots < 1024 || (o.bpf_page_slots & (o.bpf_page_slots - 1)))
    throw UsageError("--bpf-page-slots: must be a power of two of at least 1024");
  if (!(o.decay > 0 && o.decay <= 1)) throw UsageError("--decay: must be in (0, 1]");
  if (o.top < 0 || o.top > 1000) throw UsageError("--top: must be in 0..1000");
}

}  // namespace

Options parse_options(int argc, const char* const* argv, int* exit_status) {
  *exit_status = -1;
  Options o;
  CLI::App app{"membalancer: samples a process tree's memory accesses with eBPF and balances its memory"};
  app.set_config("--config", "", "Read options from a TOML or INI file (keys are the long option names)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--info", o.info, "Print the features found (BTF, PMUs, helper module) and exit");
  app.require_subcommand(0, 1);

  CLI::App* trace = app.add_subcommand("trace", "Report where a process tree's memory accesses go; never migrates");
  std::string display = "histogram", region = "2M", max_pages = "1M";
  bool all_flag = false;
  trace->add_option("--ppid", o.pid, "Track PID and every descendant, present and future, with all threads");
  trace->add_option("--pid", o.pid, "Track one process (all its threads)");
  trace->add_option("--cgroup", o.cgroup, "Track every process in this cgroup v2 directory and below");
  trace->add_flag("--all", all_flag, "Track every process except membalancer itself");
  trace->add_option("--sampler", o.sampler, sampler_help())->capture_default_str();
  trace->add_option("--interval", o.interval_ms, "Milliseconds between reports (10..60000)")->capture_default_str();
  trace->add_option("--duration", o.duration_s, "Seconds to run; 0 runs until SIGINT/SIGTERM or the processes exit")
      ->capture_default_str();
  trace->add_option("--display", display, "histogram (redraws one page), continuous (a row per interval), json (a line per interval)")
      ->capture_default_str();
  trace->add_option("--top", o.top, "Hottest regions shown")->capture_default_str();
  trace->add_option("--region-size", region, "Region granularity of the hottest-regions list")->capture_default_str();
  trace->add_option("--max-ranges", o.max_ranges, "Accessed page ranges listed per interval in json")->capture_default_str();
  trace->add_option("--max-pages", max_pages, "Pages the user-space page table holds (about 50 bytes each)")
      ->capture_default_str();
  trace->add_option("--bpf-page-slots", o.bpf_page_slots,
                    "Slots of the in-kernel page table per interval (power of two; 32 bytes each, twice)")
      ->capture_default_str();
  trace->add_option("--max-tasks", o.max_tasks, "Threads the in-kernel task table holds")->capture_default_str();
  trace->add_option("--max-processes", o.max_processes, "Processes the tracked set holds")->capture_default_str();
  trace->add_option("--decay", o.decay, "Factor applied to page heat each interval, in (0, 1]")->capture_default_str();
  trace->add_option("--ibs-period", o.ibs_period, "Ops between IBS samples")->capture_default_str();
  trace->add_option("--pebs-period", o.pebs_period, "Loads between PEBS samples")->capture_default_str();
  trace->add_flag("--verbose,-v", o.verbose, "Print libbpf messages and per-interval details");

  try {
    app.parse(argc, argv);
    if (trace->parsed()) {
      o.command = "trace";
      validate(o, *trace, display, region, max_pages);
    } else if (!o.info) {
      throw UsageError("no command given: try 'membalancer trace --ppid PID' (see --help)");
    }
  } catch (const CLI::CallForHelp& e) {
    *exit_status = app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    *exit_status = app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (dynamic_cast<const CLI::FileError*>(&e) || dynamic_cast<const CLI::ConfigError*>(&e)) msg = "--config: " + msg;
    // One line: CLI11 messages can carry a trailing newline or a list.
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "membalancer: %s\n", trim(msg).c_str());
    *exit_status = kExitUsage;
  }
  return o;
}

}  // namespace mb
