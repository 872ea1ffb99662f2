// libFuzzer target: membalancer's config file (--config FILE, CLI11's
// TOML/INI reader plus membalancer's validation in membalancer/options.cpp).
//
// The first input byte chooses a fixed command line, the rest is the file:
//   bits 0..2  the command: trace, numa, tier, process, autotune, none (5..7)
//   bit 3      also "--ppid 1" on the command line (it then overrides the file)
// argv: membalancer --config FILE [COMMAND [--ppid 1]]
//
// Allowed outcomes: options (status -1), a CLI11 parse error (status 2, one
// line on stderr), help/version (status 0), or mb::UsageError. Anything else
// is a finding: another exception, a crash, a sanitizer report, or options
// accepted although they break a rule validate() enforces.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "membalancer/error.h"
#include "membalancer/options.h"
#include "membalancer/samplers.h"

namespace {

bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

void check_options(const mb::Options& o) {
  static const std::vector<std::string> commands = {"trace", "numa", "tier", "process", "autotune"};
  if (o.command.empty()) {
    FUZZ_CHECK(o.info, "no command and no --info");
    return;
  }
  bool known = false;
  for (const auto& c : commands) known |= c == o.command;
  FUZZ_CHECK(known, "command '" + o.command + "'");
  if (o.mode == mb::TrackMode::kTree || o.mode == mb::TrackMode::kPid)
    FUZZ_CHECK(o.pid > 0, "pid " + std::to_string(o.pid));
  FUZZ_CHECK(mb::is_sampler_name(o.sampler), "sampler '" + o.sampler + "'");
  FUZZ_CHECK(o.interval_ms >= 10 && o.interval_ms <= 60000, std::to_string(o.interval_ms));
  FUZZ_CHECK(o.duration_s >= 0, std::to_string(o.duration_s));
  FUZZ_CHECK(o.region_bytes >= 4096 && pow2(o.region_bytes), std::to_string(o.region_bytes));
  FUZZ_CHECK(o.max_pages >= 1024, std::to_string(o.max_pages));
  FUZZ_CHECK(o.bpf_page_slots >= 1024 && pow2(o.bpf_page_slots), std::to_string(o.bpf_page_slots));
  FUZZ_CHECK(o.decay > 0 && o.decay <= 1, std::to_string(o.decay));
  FUZZ_CHECK(o.top >= 0 && o.top <= 1000, std::to_string(o.top));
  if (o.command == "process" || o.command == "autotune") {
    FUZZ_CHECK(o.load_max > 0 && o.load_max <= 1, std::to_string(o.load_max));
    FUZZ_CHECK(o.max_move_share > 0 && o.max_move_share <= 1, std::to_string(o.max_move_share));
    FUZZ_CHECK(o.thread_cooldown_intervals <= 100000, std::to_string(o.thread_cooldown_intervals));
  }
  if (o.command == "autotune") {
    FUZZ_CHECK(o.observe_intervals >= 1 && o.observe_intervals <= 100000, std::to_string(o.observe_intervals));
    FUZZ_CHECK(o.reevaluate_intervals == 0 || o.reevaluate_intervals >= o.observe_intervals,
               std::to_string(o.reevaluate_intervals));
  }
  if (o.command == "numa" || o.command == "tier" || o.command == "autotune") {
    FUZZ_CHECK(o.rate_limit_bytes == 0 || o.rate_limit_bytes >= (1u << 20), std::to_string(o.rate_limit_bytes));
    FUZZ_CHECK(o.move_workers >= 1 && o.move_workers <= 64, std::to_string(o.move_workers));
    FUZZ_CHECK(o.cooldown_intervals <= 100000, std::to_string(o.cooldown_intervals));
    FUZZ_CHECK(o.min_hot_heat > 0, std::to_string(o.min_hot_heat));
  }
  if (o.command == "numa" || o.command == "autotune")
    FUZZ_CHECK(o.hysteresis >= 0 && o.hysteresis < 1, std::to_string(o.hysteresis));
  if (o.command == "tier") {
    FUZZ_CHECK(o.watermark_low > 0 && o.watermark_low < 0.5, std::to_string(o.watermark_low));
    FUZZ_CHECK(o.watermark_high > o.watermark_low, std::to_string(o.watermark_high));
    FUZZ_CHECK(!o.tiers.empty(), "empty --tiers");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const commands[] = {"trace", "numa", "tier", "process", "autotune"};
  static const std::string path = mb_fuzz::scratch_dir() + "/membalancer.toml";
  if (size < 1) return 0;
  const unsigned sel = data[0];
  mb_fuzz::write_file(path, data + 1, size - 1);

  std::vector<const char*> argv = {"membalancer", "--config", path.c_str()};
  if ((sel & 7) < 5) {
    argv.push_back(commands[sel & 7]);
    if (sel & 8) {
      argv.push_back("--ppid");
      argv.push_back("1");
    }
  }
  const int argc = static_cast<int>(argv.size());
  argv.push_back(nullptr);

  int status = -1;
  mb::Options o;
  enum { kOk, kUsage, kOther } outcome = kOk;
  std::string other;
  {
    mb_fuzz::Silence quiet;  // CLI11's errors and --help go to stderr/stdout
    try {
      o = mb::parse_options(argc, argv.data(), &status);
    } catch (const mb::UsageError&) {
      outcome = kUsage;
    } catch (const std::exception& e) {
      outcome = kOther;
      other = std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      outcome = kOther;
      other = "a non-std exception";
    }
  }
  if (outcome == kOther) mb_fuzz::fail("parse_options threw " + other);
  if (outcome == kUsage) return 0;
  FUZZ_CHECK(status == -1 || status == 0 || status == mb::kExitUsage, "exit status " + std::to_string(status));
  if (status == -1) check_options(o);
  return 0;
}
