// `profiler synth`: deterministic synthetic access traces, written as profile
// files (docs/profiler.md, "synth"). A pattern (gups, hotset, zipf, phase)
// over a footprint of 4 KiB pages, a sample count and a seed determine every
// byte of the output: the generator uses its own PRNG (xoshiro256**) and its
// own distributions (no std:: distribution, whose output may change with
// the library), fixed start times, and integer sample times.
//
// plan_synth() validates a SynthConfig and fixes the layout (hot ranges,
// node sizes); generate_synth() streams the samples to a sink in batches, so
// tests generate into memory and write_synth_profile() into a file.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "membalancer/profile_file.h"
#include "membalancer/topology.h"

namespace mb::prof {

enum class SynthPattern { kGups, kHotset, kZipf, kPhase };

// "gups", "hotset", "zipf", "phase"; anything else is a UsageError.
SynthPattern parse_synth_pattern(const std::string& name);
const char* synth_pattern_name(SynthPattern p);

inline constexpr uint64_t kSynthPageBytes = 4096;
inline constexpr uint64_t kSynthBase = 0x7f0000000000ULL;   // the mapping's start
inline constexpr uint64_t kSynthMaxBytes = 512ULL << 30;     // base + 512 GiB stays in 47-bit user space
inline constexpr uint64_t kSynthMaxSamples = 10'000'000'000ULL;  // 640 GB of records
inline constexpr uint64_t kSynthMaxRate = 1'000'000'000ULL;  // one sample per ns
inline constexpr double kSynthMaxSkew = 100.0;
inline constexpr uint32_t kSynthMaxTgid = 1u << 22;          // PID_MAX_LIMIT
// Fixed clocks, so that the same arguments give the same bytes: the file
// "starts" at 2023-11-14 22:13:20 UTC, monotonic time 1 s.
inline constexpr uint64_t kSynthStartRealtimeNs = 1'700'000'000'000'000'000ULL;
inline constexpr uint64_t kSynthStartMonotonicNs = 1'000'000'000ULL;

// What the command line gives. Unset optionals take the pattern's default;
// setting one the pattern does not use is a UsageError.
struct SynthConfig {
  SynthPattern pattern = SynthPattern::kGups;
  uint64_t footprint_bytes = 0;
  uint64_t samples = 0;
  uint64_t seed = 1;
  std::optional<uint64_t> hot_bytes;   // hotset, phase: default footprint/10 (whole pages, at least one)
  std::optional<double> hot_share;     // hotset, phase: default 0.9
  std::optional<double> skew;          // zipf: default 0.99
  uint64_t rate = 1'000'000;           // samples per second
  std::optional<uint64_t> fast_bytes;  // node 0's size: default footprint/4 (whole pages, at least one)
  uint32_t tgid = 1000;
  // Transparent huge pages: given, every sample says its page's size
  // (MB_ACC_BASE_PAGE or MB_ACC_HUGE), and this fraction of the footprint's
  // whole 2 MiB ranges is collapsed by khugepaged during the trace.
  std::optional<double> thp;
  std::optional<double> thp_split;  // of the collapsed ranges, the fraction that splits later (default 0)
};

inline constexpr uint64_t kSynthRangePages = MB_HUGE_BASE_PAGES;  // a 2 MiB range: 512 pages

// A 2 MiB range that --thp collapses: its samples are huge from sample
// collapse_at on, and base pages again from split_at on (samples: never).
struct SynthThpRange {
  uint64_t range = 0;  // its first page / 512
  uint64_t collapse_at = 0;
  uint64_t split_at = 0;
};

// A validated config with its defaults filled in and its layout fixed.
struct SynthPlan {
  SynthConfig config;  // as given
  SynthPattern pattern = SynthPattern::kGups;
  uint64_t seed = 1;
  uint64_t samples = 0;
  uint64_t rate = 0;
  uint32_t tgid = 0;
  uint64_t pages = 0;       // footprint / 4 KiB
  uint64_t fast_pages = 0;  // node 0's capacity in pages
  uint64_t hot_pages = 0;   // hotset, phase (0 otherwise)
  double hot_share = 0;     // hotset, phase
  double skew = 0;          // zipf
  // First page of the hot set in the first and in the second half of the
  // samples (hotset: the same; phase: two ranges that do not overlap).
  uint64_t hot_first[2] = {0, 0};
  uint64_t second_half = 0;  // index of the first sample of the second half: samples / 2
  bool sizes = false;        // --thp given: samples say their page's size
  double thp = 0, thp_split = 0;
  std::vector<SynthThpRange> thp_ranges;  // in range order

  uint64_t whole_ranges() const { return pages / kSynthRangePages; }

  uint64_t footprint_bytes() const { return pages * kSynthPageBytes; }
  uint64_t fast_bytes() const { return fast_pages * kSynthPageBytes; }
  uint64_t hot_start(int half) const { return kSynthBase + hot_first[half] * kSynthPageBytes; }
  uint64_t hot_end(int half) const { return hot_start(half) + hot_pages * kSynthPageBytes; }
  // Time of sample i: start + i * 1e9 / rate, rounded down (exact integers).
  uint64_t time_of(uint64_t i) const;
  // Just after the last sample: time_of(samples).
  uint64_t end_time() const { return time_of(samples); }
};

// Validates (one-line UsageError naming the option) and lays the trace out.
SynthPlan plan_synth(const SynthConfig& config);

// Node 0: CPUs 0 and 1, fast_bytes; node 1: no CPUs (CXL-like), the whole
// footprint; distances 10 local, 20 between them.
Topology synth_topology(const SynthPlan& plan);
// Sampler "synth:<pattern>", MB_SAMPLER_SYNTHETIC, the topology, fixed clocks.
ProfileStart synth_profile_start(const SynthPlan& plan);

struct SynthStats {
  uint64_t samples = 0;
  uint64_t pages_seen = 0;   // distinct pages in the trace
  uint64_t pages_node0 = 0;  // of which first-touched while node 0 had room
};

// Receives the samples in order, in batches of up to kSynthBatch.
using SynthSink = std::function<void(const mb_sample* samples, size_t n)>;
inline constexpr size_t kSynthBatch = 8192;

// Generates plan.samples samples into sink.
SynthStats generate_synth(const SynthPlan& plan, const SynthSink& sink);

// The whole profile: header, topology, the process (kProcSeen, "synth-<pattern>")
// and its one anonymous mapping, the samples, END. The file is created like
// every profiler output (no symlink followed, 0644, replaced only with force).
SynthStats write_synth_profile(const SynthPlan& plan, const std::string& path, bool force);

// One line for stderr: "synth hotset: N samples over 1 GiB (seed 1) -> FILE;
// hot set 0x...-0x...[, from sample M 0x...-0x...]; pages: A on node 0, B on node 1
// [; THP: K of R 2 MiB ranges collapse, S of them split later]".
std::string synth_summary(const SynthPlan& plan, const SynthStats& stats, const std::string& path);

// ---- building blocks, exposed for the tests -------------------------------------------

// xoshiro256** seeded through splitmix64: the same seed gives the same
// stream on every platform. Streams with different `stream` values are
// independent (used for layout and for samples).
class SynthRng {
 public:
  explicit SynthRng(uint64_t seed, uint64_t stream = 0);
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n >= 1, unbiased (Lemire's multiply and reject).
  uint64_t below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Uniform in [0, 1) on the 2^-53 grid.
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Zipf over ranks 1..n: P(r) = r^-s / sum_k k^-s, exactly (rejection-
// inversion, Hörmann & Derflinger 1996): O(1) memory, a few logs and exps
// per sample.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s);
  uint64_t operator()(SynthRng& rng) const;

 private:
  double h(double x) const;
  double hintegral(double x) const;
  double hintegral_inverse(double x) const;
  double n_, s_, hx1_, hn_, squeeze_;
};

// A seeded bijection of [0, n): a 4-round Feistel network over the smallest
// even number of bits covering n, with cycle walking (at most ~4 steps on
// average). O(1) memory, so any footprint works.
class PagePermutation {
 public:
  PagePermutation(uint64_t n, uint64_t seed);
  uint64_t operator()(uint64_t i) const {
    do i = encrypt(i);
    while (i >= n_);
    return i;
  }

 private:
  uint64_t encrypt(uint64_t x) const;
  uint64_t n_;
  int half_bits_;
  uint64_t mask_;
  uint64_t keys_[4];
};

}  // namespace mb::prof
