// `profiler whatif`: replays a recording against a two-tier memory (a fast
// tier of a chosen size, the rest slow) or an N-tier one (tiers 0..N-2 of
// chosen sizes, fastest first, the last holding the rest) and reports, per
// placement policy, the share of accesses each tier served, interval by
// interval; the fast tier's (tier 0's) share is the headline.
//
// Each interval's accesses are counted against where the pages were when it
// began; then the policy moves pages (within the mover's rate limit x the
// interval) for the next. membalancer's policy runs exactly as
// `membalancer tier --sampler replay:FILE --dry-run` does (same pipeline,
// backend and model); the others are sim_policies.h. The oracle places the
// hottest pages of each interval in the fast tier knowing that interval's
// counts (no migration cost): an upper bound. With N tiers the oracle fills
// tier 0 with the hottest pages, tier 1 with the next, and so on
// (oracle_tier_hits); the other systems' rules are two-tier rules and run
// only with two tiers.
//
// Two tiers: membalancer runs on the recorded machine's nodes (the fast tier
// resized), as `membalancer tier --sampler replay:FILE --dry-run` would.
// More: on a simulated machine of one node per tier (node k = tier k), the
// recorded nodes mapped to tiers by sim_tier_of_recorded().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/profile_file.h"
#include "profiler/raster.h"

namespace mb::prof {

struct WhatifOptions {
  std::string path;
  uint64_t fast_bytes = 0;            // 0: the recorded size of tier 0
  std::vector<uint64_t> middle_bytes; // sizes of tiers 1..N-2 (N > 2 tiers); empty: two tiers
  std::vector<std::string> policies;  // empty: all ("membalancer" and sim_policy_names())
  bool start_slow = false;            // pages start slow instead of where recorded
  uint32_t interval_ms = 1000;
  uint64_t rate_limit_bytes = 200ull << 20;  // per second, 0 = unlimited
  // Called after each interval; may throw to give up (stdout's reader left).
  std::function<void()> after_interval;
};

struct WhatifRun {
  std::string policy;                 // "oracle" first
  std::string rule;                   // one line: what the policy does
  std::vector<uint64_t> hits;         // per interval: accesses served by the fast tier
  std::vector<std::vector<uint64_t>> lower_hits;  // [k - 1][interval]: served by tier k = 1..N-1
  uint64_t promoted = 0, demoted = 0; // base pages, whole run (the oracle's: to each interval's best placement)
  std::vector<uint64_t> promoted_at, demoted_at;  // per interval, base pages
  uint64_t total_hits() const;
  uint64_t tier_total(size_t tier) const;  // accesses served by a tier, whole run
};

struct WhatifResult {
  uint64_t fast_pages = 0;
  std::vector<uint64_t> middle_pages; // tiers 1..N-2, base pages
  uint64_t pages_seen = 0;            // distinct pages of the recording
  std::string sampler;                // the recording's
  size_t recorded_tiers = 0;          // of the recorded machine; 1: its pages start in tier 0 as first seen
  uint64_t samples = 0;
  std::vector<uint64_t> accesses;     // per interval
  std::vector<WhatifRun> runs;        // oracle first, then the policies asked for
  std::vector<std::string> not_run;   // two-tier rules left out with more tiers
  ProfileLosses lost;                 // what the recording lost (its counters)
  std::string damage;                 // the file's damage (offset, what): the rest was not simulated
  uint64_t total_accesses() const;
  size_t tiers() const { return middle_pages.size() + 2; }
};

// The simulated tier (of `tiers`) a page recorded in tier r (of
// recorded_tiers) starts in with --start recorded: the slowest recorded tier
// maps to the last tier, recorded tier r < N-1 to tier r, the rest to the
// last (two tiers: the recorded fast tier is fast, all else slow).
size_t sim_tier_of_recorded(size_t r, size_t recorded_tiers, size_t tiers);

// Throws UsageError (unknown policy, a two-tier rule asked for with more
// tiers, unreadable file, no tiers).
WhatifResult run_whatif(const WhatifOptions& opts);

// All policy names whatif knows, in table order.
std::vector<std::string> whatif_policy_names();

// Output. format: text | csv | json.
void print_whatif(FILE* out, const WhatifOptions& opts, const WhatifResult& r, const std::string& format);

struct SweepPoint {
  uint64_t fast_bytes;
  WhatifResult result;
};
// The comparison at each fast-tier size of `sizes` (the other options from
// base), `jobs` sizes at a time on threads of their own (each holds one
// simulation in memory). fit_memory: the first size runs alone, and no more
// run at once than MemAvailable holds at what it took (said on stderr when
// fewer than `jobs`). The first error, in size order, is rethrown.
std::vector<SweepPoint> run_sweep(const WhatifOptions& base, const std::vector<uint64_t>& sizes, unsigned jobs,
                                  bool fit_memory = false);
// How many of `jobs` simulations of per_job_bytes fit in four fifths of
// available_bytes; at least 1 (per_job_bytes 0: all).
unsigned jobs_that_fit(unsigned jobs, uint64_t per_job_bytes, uint64_t available_bytes);
// The hit ratios a sweep answers for: the smallest size swept reaching each.
inline constexpr double kSweepShares[] = {0.5, 0.9, 0.95, 0.99};
// The smallest fast_bytes of points (in order) whose run `run` serves at
// least hit_ratio of the accesses; none when no point does.
std::optional<uint64_t> smallest_reaching(const std::vector<SweepPoint>& points, size_t run, double hit_ratio);
void print_sweep(FILE* out, const std::vector<SweepPoint>& points, const std::string& format);

// The hit-ratio-against-size chart, as both renderings draw it (pixels,
// y down): fast-tier size across, hit ratio 0..100% up, one line per run
// (the oracle first, dashed), a legend on the right.
struct SweepChart {
  struct Tick {
    double at;  // x (x axis) or y (y axis) in pixels
    std::string label;
  };
  struct Series {
    std::string name;
    Rgb colour;
    bool dashed;
    std::vector<Point> points;  // one per sweep point, in pixels
  };
  int width = 720, height = 440;
  int plot_x = 70, plot_y = 40, plot_w = 480, plot_h = 350;
  std::string title, x_label = "fast tier size", y_label = "fast-tier hit ratio";
  std::vector<Tick> x_ticks, y_ticks;
  std::vector<Series> series;
  int legend_x = 0, legend_y = 0, legend_dy = 18;  // entry i: baseline at legend_y + i * legend_dy
};
// Every point's result has the same runs (no points: an empty chart).
SweepChart sweep_chart(const std::vector<SweepPoint>& points, const std::string& title);

// Hit ratio against fast-tier size, one line per policy.
std::string sweep_svg(const std::vector<SweepPoint>& points, const std::string& title);
std::vector<uint8_t> sweep_png(const std::vector<SweepPoint>& points, const std::string& title);

}  // namespace mb::prof
