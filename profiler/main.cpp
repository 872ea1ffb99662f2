// profiler: record, report and draw memory-access profiles, or synthesise
// them (docs/profiler.md).
// Thin: parses the command line and calls profiler/*.cpp.
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "membalancer/bpf_collector.h"
#include "membalancer/cli_numbers.h"
#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "membalancer/rate_limiter.h"
#include "membalancer/report_output.h"
#include "membalancer/safe_file.h"
#include "membalancer/samplers.h"
#include "membalancer/sysfs.h"
#include "profiler/heatmap.h"
#include "profiler/record.h"
#include "profiler/report.h"
#include "profiler/synth.h"
#include "profiler/whatif.h"

namespace {

using namespace mb;

// whatif --tiers: at most this many sizes (all tiers but the last).
constexpr size_t kMaxWhatifSizes = 7;

// "a, b,,c" -> {"a", "b", "", "c"} (trimmed); "" -> {}.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  for (size_t a = 0; !text.empty() && a != std::string::npos;) {
    const size_t b = text.find(',', a);
    items.push_back(trim(text.substr(a, b == std::string::npos ? b : b - a)));
    a = b == std::string::npos ? b : b + 1;
  }
  return items;
}

// Output files (write_output, check_output): membalancer/safe_file.h.

// The picture an -o name asks for, by its extension.
enum class Picture { kSvg, kPng };
Picture picture_kind(const std::string& path) {
  auto ends_with = [&](const char* ext) { return path.size() > 4 && path.compare(path.size() - 4, 4, ext) == 0; };
  if (ends_with(".svg")) return Picture::kSvg;
  if (ends_with(".png")) return Picture::kPng;
  throw UsageError("-o " + path + ": want a name ending in .svg or .png");
}

// A damaged file: what was readable was reported; say where it broke.
// --sweep's jobs by default: the CPUs this process may run on, at most 4
// (each job holds a whole simulation in memory).
unsigned default_sweep_jobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(std::clamp(CPU_COUNT(&set), 1, 4));
}

int damaged(const ProfileReader& r) {
  std::fprintf(stderr, "profiler: %s: %s (reported what precedes it: %" PRIu64 " samples)\n", r.path().c_str(),
               r.error().c_str(), r.info().samples);
  return kExitUsage;
}

// write_output (membalancer/safe_file.h), and a failed write leaves no
// partial file: the one created is removed (if the name still holds it).
void write_picture(const std::string& path, const void* data, size_t n, bool force) {
  const int fd = open_output(path, force, kOutputMode);
  struct stat made;
  const bool known = fstat(fd, &made) == 0;
  const char* p = static_cast<const char*>(data);
  int err = 0;
  while (n > 0 && !err) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno != EINTR) err = errno;
    if (w > 0) p += w, n -= static_cast<size_t>(w);
  }
  if (close(fd) != 0 && !err) err = errno;
  if (!err) return;
  struct stat now;
  if (known && lstat(path.c_str(), &now) == 0 && S_ISREG(now.st_mode) && now.st_dev == made.st_dev &&
      now.st_ino == made.st_ino)
    unlink(path.c_str());
  throw SystemError("writing " + path, err);
}

// whatif: the largest tier size taken (2^62 bytes): the simulation counts
// bytes in signed 64 bits; larger sizes would wrap instead of answering.
constexpr uint64_t kMaxTierBytes = 1ULL << 62;
uint64_t tier_size(const std::string& text, const std::string& what) {
  const uint64_t b = parse_size(text, what);
  if (b > kMaxTierBytes) throw UsageError(what + " '" + text + "': at most 4194304T (2^62 bytes)");
  return b;
}

// whatif on a damaged file: what precedes the damage was simulated and
// printed; the damage is bad input, as for report.
int whatif_damaged(const std::string& path, const prof::WhatifResult& r) {
  std::fprintf(stderr, "profiler: %s: %s (simulated what precedes it: %" PRIu64 " samples)\n", path.c_str(),
               r.damage.c_str(), r.samples);
  return kExitUsage;
}

// The end of what went to stdout: a write that failed (a full disk, a closed
// pipe: SIGPIPE is ignored) is one line and status 1, never a silent 0.
void finish_stdout() {
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int err = flush_failed && errno ? errno : EIO;
  if (flush_failed || std::ferror(stdout)) throw SystemError("writing the output (stdout)", err);
}

// Before and during a long computation: a reader that left already (`| head`
// that took its lines from an earlier part, `| true`) ends it at once, with
// the error finish_stdout would give at the end.
void check_stdout_reader() {
  if (output_reader_left(STDOUT_FILENO)) throw SystemError("writing the output (stdout)", EPIPE);
}

std::string samplers_help() {
  std::string s = "where samples come from: auto (first that works of";
  for (const auto& i : sampler_list()) s += " " + i.name;
  s += ")";
  for (const auto& i : sampler_list()) s += "\n  " + i.name + ": " + i.description;
  for (const auto& i : profiler_sampler_list()) s += "\n  " + i.name + ": " + i.description;
  return s;
}

int run(int argc, char** argv) {
  // `record ... -- COMMAND ARGS`: everything after the first "--" is the command.
  std::vector<std::string> command;
  std::vector<const char*> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    if (std::strcmp(args[i], "--") == 0) {
      for (size_t j = i + 1; j < args.size(); ++j) command.push_back(args[j]);
      args.resize(i);
      break;
    }
  }

  CLI::App app{"profiler: record which memory a process tree touches (sampled with eBPF), then report it by node,\n"
               "process, region, page and code, or draw it as a heatmap; or synthesise a deterministic trace (synth).\n"
               "Files: docs/profile-format.md."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "profiler (membalancer) profile format " + std::to_string(kProfileVersion));

  // NaN passes CLI::Range (every comparison with it is false): refused here.
  const CLI::Validator finite([](std::string& v) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    return end != v.c_str() && *end == '\0' && std::isfinite(d) ? std::string() : "'" + v + "' is not a finite number";
  }, "NUMBER");

  prof::RecordOptions ro;
  std::string pid_s, ppid_s, ring_s = kDefaultSampleRing, maps_clock_s = "auto";
  bool quiet = false;
  CLI::App* rec = app.add_subcommand("record", "Record every sample of a process tree into a profile file");
  auto* o_ppid = rec->add_option("--ppid", ro.pid, "PID and every descendant, present and future");
  auto* o_pid = rec->add_option("--pid", ro.pid, "one process (its threads, not its children)");
  auto* o_cg = rec->add_option("--cgroup", ro.cgroup, "every process of a cgroup v2 directory and below");
  o_ppid->excludes(o_pid)->excludes(o_cg);
  o_pid->excludes(o_cg);
  rec->add_option("--sampler", ro.sampler, samplers_help())->default_str("auto");
  rec->add_option("--cpu-clock-period", ro.cpu_clock_period_us, "cpu-clock: microseconds of CPU time per sample")
      ->default_str("100")->check(CLI::Range(10, 1000000));
  rec->add_option("--duration", ro.duration_s, "stop after S seconds (0: at SIGINT/SIGTERM or when the processes are gone)")
      ->check(finite)
      ->check(CLI::Range(0.0, 1e9));
  rec->add_option("-o,--output", ro.output, "the profile file to create")->required();
  rec->add_flag("--force", ro.force, "replace FILE if it exists (a symlink is never followed)");
  rec->add_option("--ring-size", ring_s, "BPF sample ring buffer (power of two, e.g. 32M)")->default_str(kDefaultSampleRing);
  bool no_resolve = false;
  rec->add_flag("--no-resolve-nodes", no_resolve, "do not ask the kernel (move_pages) for the node of samples without one");
  rec->add_flag("-q,--quiet", quiet, "no progress line even on a terminal");
  rec->add_flag("-v,--verbose", ro.verbose, "libbpf and verifier messages");
  rec->footer("Usage: profiler record (--ppid PID | --pid PID | --cgroup PATH | -- COMMAND ARGS...) -o FILE [options]\n"
              "With -- COMMAND, the command is started by the profiler and recorded from its first instruction,\n"
              "with every process it spawns; recording stops when the last of them exits.\n"
              "Progress (elapsed, samples, bytes written, drops) is shown when stderr is a terminal.");

  prof::ReportOptions rep;
  std::string report_file, region_s = "2M";
  CLI::App* repc = app.add_subcommand("report", "Summarise a profile: nodes, processes, hottest regions and pages, code");
  repc->add_option("FILE", report_file, "profile file")->required();
  repc->add_option("--by", rep.by, "only one table: page, region, node, process or symbol (default: all)")
      ->check(CLI::IsMember({"page", "region", "node", "process", "symbol"}));
  repc->add_option("--top", rep.top, "rows per table")->default_str("10")->check(CLI::Range(1, 1000000));
  repc->add_option("--format", rep.format, "text, csv (one table: --by, default region) or json")
      ->default_str("text")->check(CLI::IsMember({"text", "csv", "json"}));
  repc->add_option("--region", region_s, "region size for --by region, e.g. 64K, 2M, 1G")->default_str("2M");
  repc->footer("Code (symbol) rows need instruction pointers: record with --sampler cpu-clock (or fault).\n"
               "A damaged file is reported up to the damage; the error names the offset (exit status 2).");

  std::string hm_file, hm_out;
  bool hm_force = false;
  prof::HeatmapOptions ho;
  CLI::App* hm = app.add_subcommand("heatmap", "Draw time x address x access density as SVG or PNG");
  hm->add_option("FILE", hm_file, "profile file")->required();
  hm->add_option("-o,--output", hm_out, "OUT.svg or OUT.png")->required();
  hm->add_option("--pid", ho.pid, "one process (default: all, each its own band)");
  hm->add_option("--width", ho.cols, "time bins")->default_str("240")->check(CLI::Range(8, 4000));
  hm->add_option("--height", ho.rows, "address bins (about)")->default_str("160")->check(CLI::Range(8, 4000));
  hm->add_flag("--force", hm_force, "replace OUT if it exists");

  // synth: options as text where they take sizes or need "was it given".
  prof::SynthConfig sc;
  std::string sy_pattern, sy_footprint, sy_hot, sy_fast, sy_out;
  double sy_share = 0, sy_skew = 0, sy_thp = 0, sy_thp_split = 0;
  bool sy_force = false;
  CLI::App* sy =
      app.add_subcommand("synth", "Write a deterministic synthetic trace (gups, hotset, zipf, phase) as a profile");
  sy->add_option("--pattern", sy_pattern, "gups | hotset | zipf | phase")->required();
  sy->add_option("--footprint", sy_footprint, "bytes of memory accessed, whole 4K pages (e.g. 1G)")->required();
  // CLI11 would wrap "-5" around into a huge unsigned number: digits only.
  // Beyond 2^64 - 1 CLI11 would saturate silently: refused, with what was typed.
  const CLI::Validator whole([](std::string& v) {
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return "'" + v + "' is not a whole number";
    errno = 0;
    std::strtoull(v.c_str(), nullptr, 10);
    return errno == ERANGE ? "'" + v + "' is more than 18446744073709551615" : std::string();
  }, "UINT");
  sy->add_option("--samples", sc.samples, "number of samples")->required()->check(whole);
  sy->add_option("--seed", sc.seed, "PRNG seed: the same arguments give the same file")->default_str("1")->check(whole);
  auto* o_hot = sy->add_option("--hot-size", sy_hot, "hotset, phase: bytes of the hot set (default footprint/10)");
  auto* o_share =
      sy->add_option("--hot-share", sy_share, "hotset, phase: fraction of samples sent to the hot set (default 0.9)")
                     ->check(finite);
  auto* o_skew = sy->add_option("--skew", sy_skew, "zipf: exponent s of P(rank r) ~ 1/r^s (default 0.99)")->check(finite);
  sy->add_option("--rate", sc.rate, "samples per second of trace time")->default_str("1000000")->check(whole);
  auto* o_fast = sy->add_option("--fast", sy_fast, "node 0 size, for first-touch placement (default footprint/4)");
  sy->add_option("--tgid", sc.tgid, "process id of the samples")->default_str("1000")->check(whole);
  auto* o_thp = sy->add_option("--thp", sy_thp,
                               "samples say their page's size, and this fraction of the 2 MiB ranges collapses "
                               "into huge pages during the trace")
                    ->check(finite);
  auto* o_thp_split =
      sy->add_option("--thp-split", sy_thp_split, "with --thp: the fraction of the collapsed ranges that split later")
          ->check(finite);
  sy->add_option("-o,--output", sy_out, "the profile file to create")->required();
  sy->add_flag("--force", sy_force, "replace FILE if it exists (a symlink is never followed)");
  sy->footer("Usage: profiler synth --pattern gups|hotset|zipf|phase --footprint SIZE --samples N [--seed S] -o FILE\n"
             "gups: uniform over the pages; hotset: --hot-share of the samples to a hot range, the rest uniform;\n"
             "zipf: page ranks Zipf(--skew), ranks scattered over the footprint; phase: hotset whose hot range\n"
             "moves to another, non-overlapping one for the second half of the samples.\n"
             "--thp F [--thp-split F]: F of the 2 MiB ranges collapse into huge pages at a sample drawn by the seed\n"
             "(some split again later); every sample then says its page's size.\n"
             "Topology: node 0 (CPUs 0-1, --fast bytes), node 1 (no CPUs, the footprint). Details: docs/profiler.md.");

  // whatif: sizes as text.
  prof::WhatifOptions wo;
  std::string wi_fast, wi_tiers, wi_sweep, wi_rate = "200M", wi_start = "recorded", wi_format = "text", wi_out,
      wi_policies;
  bool wi_force = false;
  unsigned wi_jobs = 0;  // 0: default_sweep_jobs()
  CLI::App* wi = app.add_subcommand("whatif",
                                    "Replay FILE against a two-tier (or N-tier) memory: the fast tier's hit ratio "
                                    "per policy, and the oracle's");
  wi->add_option("FILE", wo.path, "profile file (profiler record, membalancer --record, profiler synth)")->required();
  wi->add_option("--fast", wi_fast,
                 "fast tier size (default: the recorded size of the fastest tier; a recording of one tier needs it)");
  auto* o_tiers =
      wi->add_option("--tiers", wi_tiers,
                     "SIZE,SIZE,...: N tiers, fastest first, of these sizes and a last one holding the rest "
                     "(--tiers 4G,16G: 4G, 16G, the rest); one size is --fast. More than two tiers: membalancer "
                     "and the oracle only (the other rules are two-tier rules)");
  wi->add_option("--policy", wi_policies,
                 "comma-separated: membalancer, amd-topk, memtis, tpp, linux-tiering, memtierd-age (default: all); the oracle always");
  wi->add_option("--start", wi_start,
                 "where pages start: recorded (where the recording found them) or slow (the last tier)")
      ->capture_default_str();
  wi->add_option("--interval", wo.interval_ms, "milliseconds of recorded time per policy round")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  wi->add_option("--rate-limit", wi_rate, "bytes per second moved at most, as membalancer's mover (0 = no limit)")
      ->capture_default_str();
  auto* o_sweep = wi->add_option("--sweep", wi_sweep, "FROM:TO:STEP fast-tier sizes: hit ratio against size (e.g. 1G:16G:1G)");
  wi->add_option("--jobs", wi_jobs,
                 "with --sweep: sizes simulated at once, each on a CPU and with its own memory (default: the "
                 "CPUs this process may use, at most 4, and no more than the available memory holds)")
      ->check(CLI::Range(1, 256));
  wi->add_option("--format", wi_format, "text | csv | json")->capture_default_str();
  wi->add_option("-o,--output", wi_out, "with --sweep: draw the curve to OUT.svg or OUT.png");
  wi->add_flag("--force", wi_force, "replace OUT if it exists");
  wi->footer("Tiers: --fast SIZE (or --tiers SIZE) simulates two; --tiers A,B,... one more than the sizes given.\n"
             "More than two: only membalancer (N tiers natively) and the oracle (the hottest pages fill tier 0, the\n"
             "next tier 1, ...) run; amd-topk, memtis, tpp, linux-tiering and memtierd-age are two-tier rules, left\n"
             "out (naming one is an error). --start recorded: the recording's tiers map to tiers 0, 1, ... in order,\n"
             "its slowest to the last; a page whose tier is full starts in the last. A recording of one tier (DRAM\n"
             "alone): its pages start fast as first seen while the fast tier has room. Details: docs/profiler.md.");

  // CLI11 answers an unknown command with "A subcommand is required", which
  // does not name it.
  if (args.size() > 1 && args[1][0] != '-' &&
      app.get_subcommands([&](const CLI::App* c) { return c->get_name() == args[1]; }).empty()) {
    std::fprintf(stderr, "profiler: '%s' is not a command (want record, report, heatmap, synth or whatif)\n", args[1]);
    return kExitUsage;
  }
  refuse_octal_integers(app);
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "profiler: %s\n", trim(msg).c_str());
    return kExitUsage;
  }

  if (rec->parsed()) {
    int modes = (o_ppid->count() > 0) + (o_pid->count() > 0) + (o_cg->count() > 0) + !command.empty();
    if (modes != 1) throw UsageError("record: give exactly one of --ppid, --pid, --cgroup or -- COMMAND");
    ro.mode = o_pid->count() ? TrackMode::kPid : o_cg->count() ? TrackMode::kCgroup : TrackMode::kTree;
    if ((o_pid->count() || o_ppid->count()) && ro.pid <= 0) throw UsageError("record: the pid must be positive");
    ro.command = command;
    // auto never picks cpu-clock: its period with any other sampler would do nothing.
    if (rec->count("--cpu-clock-period") && ro.sampler != "cpu-clock")
      throw UsageError("--cpu-clock-period: only the cpu-clock sampler takes it, not --sampler " + ro.sampler);
    ro.ring_bytes = parse_sample_ring_size(ring_s, "--ring-size");
    ro.resolve_nodes = !no_resolve;
    if (quiet) ro.progress = 0;
    return prof::run_record(ro);
  }
  if (!command.empty()) throw UsageError("'-- COMMAND' belongs to 'profiler record'");
  if (repc->parsed()) {
    rep.region_bytes = parse_size(region_s, "--region");
    if (rep.region_bytes < 4096 || (rep.region_bytes & (rep.region_bytes - 1)))
      throw UsageError("--region " + region_s + ": want a power of two of at least 4K");
    check_stdout_reader();
    ProfileReader reader(report_file);
    prof::Aggregate agg;
    prof::aggregate_file(reader, &agg);
    prof::print_report(stdout, reader, agg, rep);
    finish_stdout();
    return reader.ok() ? kExitOk : damaged(reader);
  }
  if (sy->parsed()) {
    sc.pattern = prof::parse_synth_pattern(sy_pattern);
    sc.footprint_bytes = parse_size(sy_footprint, "--footprint");
    if (o_hot->count()) sc.hot_bytes = parse_size(sy_hot, "--hot-size");
    if (o_fast->count()) sc.fast_bytes = parse_size(sy_fast, "--fast");
    if (o_share->count()) sc.hot_share = sy_share;
    if (o_skew->count()) sc.skew = sy_skew;
    if (o_thp->count()) sc.thp = sy_thp;
    if (o_thp_split->count()) sc.thp_split = sy_thp_split;
    check_output("-o", sy_out, sy_force);
    prof::SynthPlan plan = prof::plan_synth(sc);
    prof::SynthStats st = prof::write_synth_profile(plan, sy_out, sy_force);
    std::fprintf(stderr, "profiler: %s\n", prof::synth_summary(plan, st, sy_out).c_str());
    return kExitOk;
  }
  if (wi->parsed()) {
    if (wi_format != "text" && wi_format != "csv" && wi_format != "json")
      throw UsageError("--format: '" + wi_format + "' is not one of text, csv, json");
    if (wi_start != "recorded" && wi_start != "slow")
      throw UsageError("--start: '" + wi_start + "' is not recorded or slow");
    wo.start_slow = wi_start == "slow";
    wo.rate_limit_bytes = parse_rate(wi_rate, "--rate-limit");  // as membalancer's: 64M or 64M/s
    if (!wi_fast.empty()) wo.fast_bytes = tier_size(wi_fast, "--fast");
    // 0 is whatif's "not given": an explicit 0 would silently mean the recorded size.
    if (!wi_fast.empty() && !wo.fast_bytes)
      throw UsageError("--fast: must be more than 0 (leave it out for the recorded size)");
    for (const auto& name : split_list(wi_policies))  // a rule named twice runs once
      if (!name.empty() && std::find(wo.policies.begin(), wo.policies.end(), name) == wo.policies.end())
        wo.policies.push_back(name);
    // No policy named is whatif's "all of them": a list that names none would run them all unsaid.
    if (wi->count("--policy") && wo.policies.empty())
      throw UsageError("--policy: '" + wi_policies + "' names no policy (leave it out for all of them)");
    if (o_tiers->count()) {
      if (!wi_fast.empty()) throw UsageError("--tiers: give either --fast SIZE or --tiers SIZE,..., not both");
      if (o_sweep->count()) throw UsageError("--tiers: --sweep varies the fast tier of two tiers; not with --tiers");
      const auto sizes = split_list(wi_tiers);
      uint64_t total = 0;  // at most kMaxTierBytes each: no wrap
      if (sizes.empty()) throw UsageError("--tiers: give the sizes of the tiers above the last, e.g. 4G,16G");
      if (sizes.size() > kMaxWhatifSizes)
        throw UsageError("--tiers: at most " + std::to_string(kMaxWhatifSizes) + " sizes (" +
                         std::to_string(kMaxWhatifSizes + 1) + " tiers)");
      for (size_t k = 0; k < sizes.size(); ++k) {
        if (sizes[k].empty())
          throw UsageError("--tiers '" + wi_tiers + "': tier " + std::to_string(k) + " has no size");
        const uint64_t b = tier_size(sizes[k], "--tiers");
        if (!b) throw UsageError("--tiers: tier " + std::to_string(k) + " must be more than 0");
        if (b < 4096) throw UsageError("--tiers: tier " + std::to_string(k) + " must hold at least one page");
        if (k) wo.middle_bytes.push_back(b);
        else wo.fast_bytes = b;
        total += b;
      }
      if (total > kMaxTierBytes)
        throw UsageError("--tiers '" + wi_tiers + "': the sizes add up to more than 4194304T (2^62 bytes)");
    }
    wo.after_interval = check_stdout_reader;
    const bool sweep = o_sweep->count() > 0;
    // -o "" is an -o given: refused as an empty name, not taken as none.
    const bool wi_has_out = wi->count("--output") > 0;
    // Each size of a sweep is the fast tier's: a --fast as well would be dropped unsaid.
    if (sweep && !wi_fast.empty())
      throw UsageError("--fast: --sweep FROM:TO:STEP gives the fast tier's sizes; not with --fast");
    if (wi_has_out && !sweep) throw UsageError("-o: only a --sweep draws a curve");
    if (wi_force && !wi_has_out) throw UsageError("--force: replaces only an -o file, and there is none");
    if (wi_jobs && !sweep) throw UsageError("--jobs: only a --sweep simulates several sizes");
    if (!sweep) {
      const prof::WhatifResult r = prof::run_whatif(wo);
      prof::print_whatif(stdout, wo, r, wi_format);
      finish_stdout();
      return r.damage.empty() ? kExitOk : whatif_damaged(wo.path, r);
    }
    const auto c1 = wi_sweep.find(':'), c2 = wi_sweep.find(':', c1 == std::string::npos ? c1 : c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos)
      throw UsageError("--sweep: '" + wi_sweep + "' is not FROM:TO:STEP");
    const uint64_t from = tier_size(wi_sweep.substr(0, c1), "--sweep");
    const uint64_t to = tier_size(wi_sweep.substr(c1 + 1, c2 - c1 - 1), "--sweep");
    const uint64_t step = parse_size(wi_sweep.substr(c2 + 1), "--sweep");
    if (from < 4096)
      throw UsageError("--sweep '" + wi_sweep + "': FROM must be at least one page (4K)");
    if (!step || to < from || (to - from) / step > 256)
      throw UsageError("--sweep '" + wi_sweep + "': want 0 < FROM <= TO and at most 256 steps");
    if (wi_has_out) check_output("-o", wi_out, wi_force);
    const Picture pic = wi_has_out ? picture_kind(wi_out) : Picture::kSvg;
    // By index: from + i x step <= to never wraps (a `f += step` loop did,
    // past 2^64, and never ended).
    std::vector<uint64_t> sizes;
    for (uint64_t i = 0; i <= (to - from) / step; ++i) sizes.push_back(from + i * step);
    // Jobs given are taken as given; by default as many as fit in memory.
    const std::vector<prof::SweepPoint> points =
        wi_jobs ? prof::run_sweep(wo, sizes, wi_jobs) : prof::run_sweep(wo, sizes, default_sweep_jobs(), true);
    prof::print_sweep(stdout, points, wi_format);
    finish_stdout();
    if (wi_has_out) {
      const std::string title = "fast-tier hit ratio: " + wo.path;
      if (pic == Picture::kPng) {
        const auto bytes = prof::sweep_png(points, title);
        write_picture(wi_out, bytes.data(), bytes.size(), wi_force);
      } else {
        const std::string chart = prof::sweep_svg(points, title);
        write_picture(wi_out, chart.data(), chart.size(), wi_force);
      }
    }
    // Every size read the same file: its damage is said once.
    return points.front().result.damage.empty() ? kExitOk : whatif_damaged(wo.path, points.front().result);
  }
  if (hm->parsed()) {
    // 0 is the heatmap's "every process": given, it would draw them all unsaid.
    if (hm->count("--pid") && ho.pid == 0)
      throw UsageError("--pid: '" + std::to_string(ho.pid) + "' is not a process id (leave it out for every process)");
    check_output("-o", hm_out, hm_force);
    const bool png = picture_kind(hm_out) == Picture::kPng;
    ProfileReader reader(hm_file);
    prof::HeatmapMatrix m = prof::build_heatmap(reader, ho);
    if (m.samples == 0 && !reader.error().empty())
      throw UsageError(hm_file + ": " + reader.error() + " (no sample with a data address precedes it)");
    if (m.samples == 0)
      throw UsageError(hm_file + ": no samples with a data address" + (ho.pid ? " for pid " + std::to_string(ho.pid) : ""));
    std::string title = "memory accesses: " + reader.info().sampler + " sampler, " + std::to_string(m.samples) +
                        " samples" + (ho.pid ? ", pid " + std::to_string(ho.pid) : "");
    if (const ProfileLosses lost = profile_losses(reader.info()); lost.samples)
      title += ", " + std::to_string(lost.samples) + " lost";
    if (m.hidden_processes)
      title += "; " + std::to_string(m.hidden_processes) + " processes (" + std::to_string(m.hidden_samples) +
               " samples) not shown: more than --height has rows for";
    if (png) {
      auto bytes = prof::heatmap_png(m, reader.info(), title);
      write_picture(hm_out, bytes.data(), bytes.size(), hm_force);
    } else {
      std::string text = prof::heatmap_svg(m, reader.info(), title);
      write_picture(hm_out, text.data(), text.size(), hm_force);
    }
    return reader.ok() ? kExitOk : damaged(reader);
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed pipe is an error to report (finish_stdout), not a silent death.
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const mb::Error& e) {
    if (e.hint().empty()) std::fprintf(stderr, "profiler: %s\n", e.what());
    else std::fprintf(stderr, "profiler: %s (hint: %s)\n", e.what(), e.hint().c_str());
    return e.status();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "profiler: internal error: %s\n", e.what());
    return mb::kExitSystem;
  }
}
