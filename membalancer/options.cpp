#include "membalancer/options.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "membalancer/cli_numbers.h"
#include "membalancer/error.h"
#include "membalancer/pipeline.h"
#include "membalancer/privilege.h"
#include "membalancer/rate_limiter.h"
#include "membalancer/replay.h"
#include "membalancer/safe_file.h"
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
  s += "  replay:FILE: a recorded profile (profiler record, --record, profiler synth) fed to the same pipeline; "
       "no privileges needed (see --speed, --dry-run)\n";
  return s;
}

// Option values that need parsing after CLI11 has read them as text.
struct RawOptions {
  std::string display = "histogram", region = "2M", max_pages = "1M";
  std::string rate_limit = "200M", min_free = "256M", watermark = "auto";
  std::string load_max = "80", max_move_share = "25";
  std::string speed = "recorded";
  std::string ring_size = kDefaultSampleRing;
  bool all = false;
};

// "5" or "5%": a percentage in (0, 50), as a fraction.
double parse_percent(std::string text, const std::string& what) {
  text = trim(text);
  if (!text.empty() && text.back() == '%') text.pop_back();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(v > 0 && v < 50))
    throw UsageError(what + ": '" + text + "' is not a percentage above 0 and below 50");
  return v / 100.0;
}

// "80" or "80%": a percentage in (0, 100], as a fraction.
double parse_share(std::string text, const std::string& what) {
  text = trim(text);
  if (!text.empty() && text.back() == '%') text.pop_back();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(v > 0 && v <= 100))
    throw UsageError(what + ": '" + text + "' is not a percentage in (0, 100]");
  return v / 100.0;
}

// A root run may read files its user cannot (--config /etc/shadow): only
// text that looks like an option name is quoted from a config file.
bool looks_like_option_name(const std::string& item) {
  return !item.empty() && item.size() <= 64 &&
         item.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
             std::string::npos;
}

// CLI11 quotes a line it cannot parse.
std::string config_error_message(const std::string& msg) {
  const std::string prefix = "INI was not able to parse ";
  if (msg.rfind(prefix, 0) != 0) return msg;
  return looks_like_option_name(msg.substr(prefix.size())) ? msg
                                                           : "a line is neither an option nor a section (not shown)";
}

// The options that choose what is tracked; one of them is given.
bool is_target_key(const std::string& key) { return key == "ppid" || key == "pid" || key == "cgroup" || key == "all"; }
bool has_target(const CLI::App& cmd) {
  return cmd.count("--ppid") + cmd.count("--pid") + cmd.count("--cgroup") + cmd.count("--all") > 0;
}

// CLI11 2.1 hands the empty list of "key = []" to a single value's converter,
// which reads its first element (a crash): such a key is refused while the
// file is read, as is a key given twice or with several values. Section
// markers ("++" opens, "--" closes) carry no value.
//
// Only the section of the command being run applies. CLI11 gives every
// section's values to that command's options, and the commands' options
// share one Options: a [numa] interval would set trace's (the file is read
// after the command line, so the command run is known by then). The keys of
// the other sections are still checked: an unknown key is an error anywhere.
class ConfigWithoutEmptyValues : public CLI::ConfigTOML {
 public:
  explicit ConfigWithoutEmptyValues(const CLI::App* app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
    std::set<std::string> seen;
    for (const auto& item : items) {
      if (item.name == "++" || item.name == "--") continue;
      const std::string key = item.fullname();
      const std::string shown = looks_like_option_name(key) ? key : "a key (not shown)";
      if (item.inputs.empty()) throw CLI::ConfigError(shown + " has an empty value");
      // Every option takes one value: of several, the last would win unsaid.
      // CLI11 gathers a key given twice into one item, and splits an unquoted
      // value at its commas (tiers = 0,1:2 ran as tiers "1:2", node 0 in no tier).
      if (item.inputs.size() > 1)
        throw CLI::ConfigError(shown + " has " + std::to_string(item.inputs.size()) +
                               " values (a list, the key given twice, or unquoted commas); it takes one");
      // A dotted key and the same key in its section are two items.
      if (!seen.insert(key).second) throw CLI::ConfigError(shown + " is given twice");
    }
    std::vector<CLI::ConfigItem> kept;
    for (auto& item : items) {
      const CLI::App* cmd = nullptr;
      if (!item.parents.empty()) {
        auto named = app_->get_subcommands([&](const CLI::App* c) { return c->get_name() == item.parents.front(); });
        if (!named.empty()) cmd = named.front();
      }
      if (!cmd || cmd->parsed()) {
        // A target on the command line replaces the file's, whichever option
        // names it (--ppid over pid = ...), as any option given there does.
        if (cmd && is_target_key(item.name) && has_target(*cmd)) continue;
        kept.push_back(std::move(item));
        continue;
      }
      if (item.name == "++" || item.name == "--") continue;
      const bool known = item.parents.size() == 1 &&
                         (cmd->get_option_no_throw("--" + item.name) ||
                          (item.name.size() == 1 && cmd->get_option_no_throw("-" + item.name)));
      if (!known) throw CLI::ConfigError::Extras(item.fullname());
    }
    return kept;
  }

 private:
  const CLI::App* app_;
};

// A replay's options: what it can and cannot do with a recording.
void validate_replay(Options& o, const CLI::App& cmd, const RawOptions& raw) {
  if (replay_path(o.sampler).empty()) throw UsageError("--sampler replay:FILE: the file is missing");
  if (o.command == "process" || o.command == "autotune")
    throw UsageError("--sampler replay: drives trace, numa and tier; " + o.command + " moves live threads");
  if (cmd.count("--cgroup")) throw UsageError("--cgroup: a replay selects recorded processes with --pid, --ppid or --all");
  if (o.migrate)
    throw UsageError("--migrate: the replayed pages belong to the recorded processes; use --dry-run to apply the "
                     "plans to the model of the recorded memory");
  if (!o.record_path.empty()) throw UsageError("--record: a replay is a recording already");
  if (raw.speed == "max") {
    o.replay_speed = 0;
  } else if (raw.speed != "recorded") {
    std::string t = raw.speed;
    if (!t.empty() && (t.back() == 'x' || t.back() == 'X')) t.pop_back();
    char* end = nullptr;
    o.replay_speed = std::strtod(t.c_str(), &end);
    if (t.empty() || *end || !(o.replay_speed > 0 && o.replay_speed <= 1e6))
      throw UsageError("--speed: '" + raw.speed + "' is not recorded, max or a factor like 10x");
  }
}

void validate(Options& o, const CLI::App& cmd, const RawOptions& raw) {
  const bool replay = o.sampler.rfind("replay", 0) == 0;
  // --all by its value: "all = false" in a config file is counted by CLI11
  // but gives no target.
  int targets = (cmd.count("--ppid") > 0) + (cmd.count("--pid") > 0) + (cmd.count("--cgroup") > 0) + raw.all;
  if (replay) {
    validate_replay(o, cmd, raw);  // no target: every recorded process
  } else if (cmd.count("--speed")) {
    throw UsageError("--speed: only a replay (--sampler replay:FILE) has a speed");
  }
  if (targets > 1 || (targets == 0 && !replay))
    throw UsageError("choose exactly one of --ppid PID, --pid PID, --cgroup PATH or --all");
  if (cmd.count("--ppid")) o.mode = TrackMode::kTree;
  if (cmd.count("--pid")) o.mode = TrackMode::kPid;
  if (cmd.count("--cgroup")) o.mode = TrackMode::kCgroup;
  if (raw.all || targets == 0) o.mode = TrackMode::kAll;
  if ((o.mode == TrackMode::kTree || o.mode == TrackMode::kPid) && o.pid <= 0)
    throw UsageError(std::string(o.mode == TrackMode::kTree ? "--ppid" : "--pid") + ": '" + std::to_string(o.pid) +
                     "' is not a process id");
  if (!replay && !is_sampler_name(o.sampler)) throw UsageError("--sampler: unknown sampler '" + o.sampler + "' (see --help)");
  // Bad input whatever the machine has: said before a missing module or
  // capability, which would only hide it until those are fixed.
  if (o.sampler == "abit" && (o.mode == TrackMode::kAll || o.mode == TrackMode::kCgroup))
    throw UsageError("--sampler abit scans given processes: use it with --ppid or --pid, not --all or --cgroup");
  if (cmd.count("--record")) check_output("--record", o.record_path, o.record_force);
  else if (o.record_force) throw UsageError("--force: replaces only a --record file, and there is none");
  if (cmd.count("--ring-size") && !cmd.count("--record"))
    throw UsageError("--ring-size: sizes the ring buffer of --record, and there is none");
  o.record_ring_bytes = parse_sample_ring_size(raw.ring_size, "--ring-size");
  if (o.interval_ms < 10 || o.interval_ms > 60000)
    throw UsageError("--interval: " + std::to_string(o.interval_ms) + " ms is outside 10..60000");
  if (!(o.duration_s >= 0 && o.duration_s <= 1e9))
    throw UsageError("--duration: must be 0 (until stopped) or a number of seconds up to 1e9");
  static const std::map<std::string, Display> displays = {
      {"histogram", Display::kHistogram}, {"continuous", Display::kContinuous}, {"json", Display::kJson}};
  auto d = displays.find(raw.display);
  if (d == displays.end()) throw UsageError("--display: '" + raw.display + "' is not one of histogram, continuous, json");
  o.display = d->second;
  o.region_bytes = parse_size(raw.region, "--region-size");
  if (o.region_bytes < 4096 || (o.region_bytes & (o.region_bytes - 1)))
    throw UsageError("--region-size: must be a power of two of at least 4K");
  o.max_pages = parse_size(raw.max_pages, "--max-pages");
  if (o.max_pages < 1024) throw UsageError("--max-pages: at least 1024");
  // Two tables of 32-byte slots, allocated whole by the kernel: 2^26 is 4 GiB.
  if (o.bpf_page_slots < 1024 || o.bpf_page_slots > (1u << 26) || (o.bpf_page_slots & (o.bpf_page_slots - 1)))
    throw UsageError("--bpf-page-slots: " + std::to_string(o.bpf_page_slots) +
                     " is not a power of two from 1024 to 67108864 (2^26: two tables of 2 GiB)");
  if (!(o.decay > 0 && o.decay <= 1)) throw UsageError("--decay: must be in (0, 1]");
  if (o.command == "tier" && !cmd.count("--decay")) o.decay = kTierDecay;
  if (o.top < 0 || o.top > 1000) throw UsageError("--top: must be in 0..1000");
  // The kernel's tables: a zero-sized one fails to load (as status 1), and
  // there are at most 4194304 (PID_MAX_LIMIT) threads or processes.
  if (o.max_tasks < 1 || o.max_tasks > (1u << 22)) throw UsageError("--max-tasks: must be in 1..4194304");
  if (o.max_processes < 1 || o.max_processes > (1u << 22)) throw UsageError("--max-processes: must be in 1..4194304");
  if (o.ibs_period < 16) throw UsageError("--ibs-period: at least 16 ops");
  // The kernel refuses an IBS period with any of its low 4 bits set (EINVAL).
  if (o.ibs_period % 16)
    throw UsageError("--ibs-period: " + std::to_string(o.ibs_period) +
                     " is not a multiple of 16 (IBS counts ops in units of 16)");
  if (o.pebs_period < 1) throw UsageError("--pebs-period: at least 1 load");
  // A period another sampler would use is a mistake the user should hear
  // of, not an option that silently does nothing; auto may pick either.
  for (const char* s : {"ibs", "pebs"}) {
    const std::string opt = std::string("--") + s + "-period";
    if (cmd.count(opt) && o.sampler != s && o.sampler != "auto")
      throw UsageError(opt + ": only the " + s + " sampler (or auto) takes it, not --sampler " + o.sampler);
  }
  if (o.command == "trace") return;

  if (o.command == "process" || o.command == "autotune") {
    o.load_max = parse_share(raw.load_max, "--load-max");
    o.max_move_share = parse_share(raw.max_move_share, "--max-move-share");
    if (o.thread_cooldown_intervals > 100000)
      throw UsageError(std::string(o.command == "process" ? "--cooldown" : "--thread-cooldown") +
                       ": at most 100000 intervals");
  }
  if (o.command == "process") return;
  if (o.command == "autotune") {
    if (o.observe_intervals < 1 || o.observe_intervals > 100000) throw UsageError("--observe: must be in 1..100000");
    // Interval numbers are 32 bits: a decision plus this must not wrap.
    if (o.reevaluate_intervals > 100000000)
      throw UsageError("--reevaluate: " + std::to_string(o.reevaluate_intervals) +
                       " is more than 100000000 intervals (0 never re-evaluates)");
    if (o.reevaluate_intervals != 0 && o.reevaluate_intervals < o.observe_intervals)
      throw UsageError("--reevaluate: " + std::to_string(o.reevaluate_intervals) + " is less than --observe " +
                       std::to_string(o.observe_intervals) + " (0 never re-evaluates)");
  }

  o.rate_limit_bytes = parse_rate(raw.rate_limit, "--rate-limit");
  if (o.rate_limit_bytes != 0 && o.rate_limit_bytes < (1u << 20))
    throw UsageError("--rate-limit: at least 1M per second (or 0 for no limit)");
  if (o.move_workers < 1 || o.move_workers > 64) throw UsageError("--move-workers: must be in 1..64");
  if (o.cooldown_intervals > 100000) throw UsageError("--cooldown: at most 100000 intervals");
  // inf would leave no page hot, and say nothing.
  if (!(o.min_hot_heat > 0 && std::isfinite(o.min_hot_heat)))
    throw UsageError("--min-heat: must be a positive finite number");
  if (o.command == "numa" || o.command == "autotune") {
    o.min_free_bytes = parse_size(raw.min_free, "--min-free");
    if (!(o.hysteresis >= 0 && o.hysteresis < 1)) throw UsageError("--hysteresis: must be in [0, 1)");
  }
  if (o.command == "tier") {
    const std::string& w = raw.watermark;
    o.watermark_auto = w == "auto";
    if (o.watermark_auto) {
      // Sized to the allocations (AllocationReserve), at most these.
      o.watermark_low = 0.01;
      o.watermark_high = 0.02;
    } else {
      const auto colon = w.find(':');
      o.watermark_low = parse_percent(w.substr(0, colon), "--watermark");
      // HIGH left out is twice LOW, and within the same bound as a HIGH given.
      if (colon == std::string::npos && !(o.watermark_low < 0.25))
        throw UsageError("--watermark " + w + ": twice it (the high watermark when none is given) is not below 50%; give LOW:HIGH");
      o.watermark_high =
          colon == std::string::npos ? 2 * o.watermark_low : parse_percent(w.substr(colon + 1), "--watermark");
      if (!(o.watermark_high > o.watermark_low))
        throw UsageError("--watermark: the high watermark (" + w.substr(colon + 1) + ") must be above the low one");
    }
    if (trim(o.tiers).empty()) throw UsageError("--tiers: empty (use auto, kernel, cpuless, distance or a spec like \"0:1\")");
  }
}

// Options every mode takes: which processes, sampling, the loop and display.
void add_common(CLI::App* cmd, Options& o, RawOptions& raw) {
  cmd->add_option("--ppid", o.pid, "Track PID and every descendant, present and future, with all threads");
  cmd->add_option("--pid", o.pid, "Track one process (all its threads)");
  cmd->add_option("--cgroup", o.cgroup, "Track every process in this cgroup v2 directory and below");
  cmd->add_flag("--all", raw.all, "Track every process except membalancer itself");
  cmd->add_option("--sampler", o.sampler, sampler_help())->capture_default_str();
  cmd->add_option("--interval", o.interval_ms, "Milliseconds between reports (10..60000)")->capture_default_str();
  cmd->add_option("--duration", o.duration_s, "Seconds to run; 0 runs until SIGINT/SIGTERM or the processes exit")
      ->capture_default_str();
  cmd->add_option("--display", raw.display,
                  "histogram (redraws one page), continuous (a row per interval), json (a line per interval)")
      ->capture_default_str();
  cmd->add_option("--top", o.top, "Hottest regions shown")->capture_default_str();
  cmd->add_option("--region-size", raw.region, "Region granularity of the hottest-regions list")->capture_default_str();
  cmd->add_option("--max-ranges", o.max_ranges, "Accessed page ranges listed per interval in json")->capture_default_str();
  cmd->add_option("--max-pages", raw.max_pages, "Pages the user-space page table holds (about 50 bytes each)")
      ->capture_default_str();
  cmd->add_option("--bpf-page-slots", o.bpf_page_slots,
                  "Slots of the in-kernel page table per interval (power of two; 32 bytes each, twice)")
      ->capture_default_str();
  cmd->add_option("--max-tasks", o.max_tasks, "Threads the in-kernel task table holds")->capture_default_str();
  cmd->add_option("--max-processes", o.max_processes, "Processes the tracked set holds")->capture_default_str();
  cmd->add_option("--decay", o.decay, "Factor applied to page heat each interval, in (0, 1] (default 0.5; tier 0.875)");
  cmd->add_option("--ibs-period", o.ibs_period, "ibs sampler: ops between samples (a multiple of 16)")->capture_default_str();
  cmd->add_option("--pebs-period", o.pebs_period, "pebs sampler: loads between samples")->capture_default_str();
  cmd->add_option("--record", o.record_path,
                  "Also write every sample to FILE in the profiler's format (see 'profiler report'); never "
                  "follows a symlink, never replaces a file without --force");
  cmd->add_flag("--force", o.record_force, "Let --record replace an existing file");
  cmd->add_option("--ring-size", raw.ring_size,
                  "--record: the BPF ring buffer its samples wait in until the interval loop reads them (a power "
                  "of two of whole pages, up to 1G); what a full one cannot take is counted lost")
      ->capture_default_str();
  cmd->add_option("--speed", raw.speed,
                  "Replay only: recorded (as recorded), max (as fast as possible) or a factor like 10x")
      ->capture_default_str();
  cmd->add_flag("--verbose,-v", o.verbose, "Print the topology, libbpf messages and per-interval details");
}

// Options of the modes that move pages.
void add_moving(CLI::App* cmd, Options& o, RawOptions& raw) {
  cmd->add_flag("--migrate", o.migrate, "Move pages; without it the plan is only reported");
  cmd->add_flag("--dry-run", o.dry_run,
                "Plan and commit as if the moves were made, but move nothing (with a replay: the moves are "
                "applied to the model of the recorded memory)");
  cmd->add_option("--rate-limit", raw.rate_limit,
                  "Bytes per second the mover may move (K/M/G suffixes; 0 = no limit); work over it waits")
      ->capture_default_str();
  cmd->add_option("--move-workers", o.move_workers, "Threads calling move_pages")->capture_default_str();
  cmd->add_option("--cooldown", o.cooldown_intervals, "Intervals a moved page is not moved again")->capture_default_str();
  cmd->add_option("--min-heat", o.min_hot_heat,
                  "Heat (decayed samples) a page needs to count as hot; a page seen once is not")
      ->capture_default_str();
}

// Options of the modes that move threads.
void add_threads(CLI::App* cmd, Options& o, RawOptions& raw) {
  cmd->add_option("--load-max", raw.load_max,
                  "Percent busy a target node's CPUs must stay below (it also needs an idle CPU)")
      ->capture_default_str();
  cmd->add_option("--max-move-share", raw.max_move_share,
                  "Percent of the eligible candidates moved per interval (at least one), largest gain first")
      ->capture_default_str();
  cmd->add_flag("--override-pinned", o.override_pinned,
                "Also move threads whose affinity is narrower than their node (pinned by the user)");
}

// numa's page-placement options (numa, and autotune's memory half).
void add_numa(CLI::App* cmd, Options& o, RawOptions& raw) {
  cmd->add_option("--min-free", raw.min_free, "Free memory a target node keeps after the moves")->capture_default_str();
  cmd->add_option("--hysteresis", o.hysteresis,
                  "Move only when the access cost falls by more than this share of the current cost")
      ->capture_default_str();
}

}  // namespace

Options parse_options(int argc, const char* const* argv, int* exit_status) {
  *exit_status = -1;
  Options o;
  CLI::App app{"membalancer: samples a process tree's memory accesses with eBPF and balances its memory"};
  // The last of a repeated option wins: the scripts give a mode's defaults
  // first and pass the user's options after them.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_config("--config", "", "Read options from a TOML or INI file (keys are the long option names)")
      ->check(CLI::Validator(
          [](std::string& path) {
            // A privileged run does what the file says: nobody else may change it.
            const bool privileged = geteuid() == 0 || effective_capabilities() != 0;
            return privileged ? config_file_problem(path, geteuid()) : std::string();
          },
          "FILE"));
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.config_formatter(std::make_shared<ConfigWithoutEmptyValues>(&app));
  app.add_flag("--info", o.info, "Print the features found (BTF, PMUs, helper module) and exit");
  app.require_subcommand(0, 1);

  RawOptions raw;
  CLI::App* trace = app.add_subcommand("trace", "Report where a process tree's memory accesses go; never migrates");
  add_common(trace, o, raw);
  CLI::App* numa = app.add_subcommand(
      "numa", "Move each hot page to the node nearest (by distance) to the CPUs that access it");
  add_common(numa, o, raw);
  add_moving(numa, o, raw);
  add_numa(numa, o, raw);
  CLI::App* tier = app.add_subcommand("tier", "Promote hot pages to faster tiers, demote cold pages to slower ones");
  add_common(tier, o, raw);
  add_moving(tier, o, raw);
  tier->add_option("--tiers", o.tiers,
                   "auto (kernel memory tiers, else CPU-less nodes lowest, else distances), kernel, cpuless, "
                   "distance, or a spec: \"0,1:2:3\" = tier 0 nodes 0 and 1, tier 1 node 2, tier 2 node 3")
      ->capture_default_str();
  tier->add_option("--watermark", raw.watermark,
                   "auto, or LOW[:HIGH] percent of each upper-tier node's memory: below LOW free, its coldest "
                   "pages are demoted until HIGH is free again (HIGH defaults to twice LOW). auto: room for what "
                   "the tracked processes allocate (twice their largest growth in one of the last 4 intervals) "
                   "above the kernel's high watermark, at most 1:2")
      ->capture_default_str();

  CLI::App* process = app.add_subcommand(
      "process", "Move threads to the node holding the memory they access (sched_setaffinity); "
                 "affinities are restored when membalancer stops");
  add_common(process, o, raw);
  process->add_flag("--migrate", o.migrate, "Change thread affinities; without it the moves are only reported");
  process->add_option("--cooldown", o.thread_cooldown_intervals, "Intervals a moved thread is not moved again")
      ->capture_default_str();
  add_threads(process, o, raw);
  CLI::App* autotune = app.add_subcommand(
      "autotune", "Observe, then per process move its threads (memory on one node, threads elsewhere) or its "
                  "memory (numa placement); decide again periodically");
  add_common(autotune, o, raw);
  add_moving(autotune, o, raw);
  autotune->get_option("--migrate")->description(
      "Move threads and pages as decided; without it the decisions and plans are only reported");
  autotune->get_option("--cooldown")->description("Intervals a moved page is not moved again");
  add_numa(autotune, o, raw);
  add_threads(autotune, o, raw);
  autotune->add_option("--thread-cooldown", o.thread_cooldown_intervals, "Intervals a moved thread is not moved again")
      ->capture_default_str();
  autotune->add_option("--observe", o.observe_intervals, "Intervals observed before deciding")->capture_default_str();
  autotune->add_option("--reevaluate", o.reevaluate_intervals,
                       "Decide again every this many intervals, from the last --observe ones (0: never)")
      ->capture_default_str();

  refuse_octal_integers(app);
  try {
    app.parse(argc, argv);
    // CLI11 takes an empty name as no file: the options the user meant to
    // give would be left out without a word.
    if (const CLI::Option* config = app.get_option("--config"); config->count() && config->as<std::string>().empty())
      throw UsageError("--config: the file name is empty");
    CLI::App* parsed = nullptr;
    for (CLI::App* cmd : {trace, numa, tier, process, autotune})
      if (cmd->parsed()) parsed = cmd;
    if (parsed && o.info)
      throw UsageError("--info: prints the features found and exits; not with a command ('" + parsed->get_name() + "')");
    if (parsed) {
      o.command = parsed->get_name();
      validate(o, *parsed, raw);
    } else if (!o.info) {
      throw UsageError("no command given: try 'membalancer trace --ppid PID' (see --help)");
    }
  } catch (const CLI::CallForHelp& e) {
    *exit_status = app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    *exit_status = app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (dynamic_cast<const CLI::ConfigError*>(&e)) msg = config_error_message(msg);
    if (dynamic_cast<const CLI::FileError*>(&e) || dynamic_cast<const CLI::ConfigError*>(&e)) msg = "--config: " + msg;
    // One line: CLI11 messages can carry a trailing newline or a list.
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "membalancer: %s\n", trim(msg).c_str());
    *exit_status = kExitUsage;
  }
  return o;
}

PipelineConfig pipeline_config(const Options& o) {
  PipelineConfig pc;
  pc.max_pages = o.max_pages;
  pc.decay = static_cast<float>(o.decay);
  pc.region_bytes = o.region_bytes;
  pc.top = o.top;
  pc.max_ranges = o.max_ranges;
  return pc;
}

}  // namespace mb
