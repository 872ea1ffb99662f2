// `profiler heatmap`: time across, address up, colour = access density.
// The address axis holds only the address ranges that were accessed (per
// program run: a span of a pid, ProfileProcesses), laid end to end:
// unmapped and untouched gaps between them are cut out and marked with a
// separator line, so a heap at 0x55.. and a mapping at 0x7f.. both stay
// visible. The ranges are keyed as the report keys its pages (ProcessKeys,
// split at swaps): a library swapped at the same address within a program
// has ranges of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "membalancer/profile_file.h"
#include "profiler/process_keys.h"
#include "profiler/raster.h"

namespace mb::prof {

struct HeatmapOptions {
  uint32_t pid = 0;     // 0: every process
  uint32_t cols = 240;  // time bins
  uint32_t rows = 160;  // address bins (about; each segment gets at least one)
};

// An accessed address range of one program run: a span of a tgid
// (ProfileProcesses), so a reused pid, or a process before and after an
// exec, has ranges of its own even where the addresses coincide; and within
// it of one part between library swaps (ProcessKeys::page_owner), so a
// library swapped at the same address has ranges of its own too.
struct HeatmapSegment {
  uint32_t tgid = 0;
  int64_t span = -1;            // of ProfileProcesses::spans(); -1 when the profile knows nothing of tgid
  uint32_t part = 0;            // of the span's parts between swaps (ProcessKeys::Who::part)
  uint32_t key = 0;             // its process key (ProcessKeys)
  uint64_t start = 0, end = 0;  // accessed address range [start, end)
  uint32_t row_first = 0, rows = 0;
  // Its label: "pid 7 app", and "from 1.250s" (when it started, seconds since the
  // recording's start) when more than one program of the pid is drawn, and
  // the mapping at its start ("/usr/lib/liba.so", "heap", as the report's
  // mapping column) when more than one part of the program is drawn.
  std::string who;
};

struct HeatmapMatrix {
  uint32_t cols = 0, rows = 0;
  uint64_t t0_ns = 0, t1_ns = 0;      // time of column 0's left edge, last column's right edge
  uint64_t bytes_per_row = 4096;
  std::vector<uint32_t> cells;        // rows x cols, row 0 = lowest address of the first segment
  std::vector<HeatmapSegment> segments;  // by (tgid, span, part, start); rows ascend with them
  std::shared_ptr<const ProfileProcesses> procs;  // who the samples were (null: samples alone)
  std::shared_ptr<const ProcessKeys> keys;        // the samples' process keys
  uint64_t samples = 0, max_cell = 0;
  // More processes than --height has rows for: those with the fewest
  // samples are left out, and counted here (said in the title).
  uint64_t hidden_processes = 0, hidden_samples = 0;

  uint32_t at(uint32_t row, uint32_t col) const { return cells[static_cast<size_t>(row) * cols + col]; }
  // The row of a sample of tgid at addr at time_ns (in the program tgid ran
  // then), or -1 when it is not on the axis.
  int row_of(uint32_t tgid, uint64_t addr, uint64_t time_ns = 0) const;
};

// Two passes over the readable samples with a data address.
HeatmapMatrix build_heatmap(ProfileReader& reader, const HeatmapOptions& opts);
// The same from samples in memory (tests), attributed to the processes of
// info when given (else one process per tgid).
HeatmapMatrix build_heatmap(const std::vector<mb_sample>& samples, const HeatmapOptions& opts,
                            const ProfileInfo* info = nullptr);

// Colour of a cell with v accesses when the fullest has max: a log scale
// from dark violet (no access: the plot's background) through teal to yellow.
Rgb heatmap_colour(uint64_t v, uint64_t max);

// Where both renderings put things (pixels, y down): the plot's top-left
// corner is (left, top); cell (row r, column c) covers x from left + c*cw,
// y from top + plot_h - (r+1)*ch, both cw x ch.
struct HeatmapLayout {
  int left = 250, right = 110, top = 40, bottom = 70;
  int plot_w = 720, plot_h = 480;
  double cw = 3, ch = 3;
  int width() const { return left + plot_w + right; }
  int height() const { return top + plot_h + bottom; }
};
HeatmapLayout heatmap_layout(const HeatmapMatrix& m);

// Renderings with axis labels (seconds, hex addresses with sizes, pids).
std::string heatmap_svg(const HeatmapMatrix& m, const ProfileInfo& info, const std::string& title);
std::vector<uint8_t> heatmap_png(const HeatmapMatrix& m, const ProfileInfo& info, const std::string& title);

}  // namespace mb::prof
