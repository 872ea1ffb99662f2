// Heatmap matrix: a phase change moves the hot band; gaps between accessed
// ranges are cut out; the renderings are well-formed and cells without an
// access show the bottom of the colour scale.
#include <gtest/gtest.h>

#include <map>

#include "membalancer/report.h"
#include "profiler/heatmap.h"
#include "tests/png_reader.h"
#include "tests/unit/profile_builders.h"
#include "tests/unit/temp_tree.h"

using namespace mb;
using namespace mb::prof;

namespace mb::prof {
// Colours in failure messages as rgb(r,g,b) rather than raw bytes.
inline void PrintTo(const Rgb& c, std::ostream* os) { *os << "rgb(" << +c.r << "," << +c.g << "," << +c.b << ")"; }
}  // namespace mb::prof

namespace {

mb_sample access(uint32_t tgid, uint64_t vaddr, uint64_t t) {
  mb_sample s{};
  s.time_ns = t;
  s.tgid = s.tid = tgid;
  s.vaddr = vaddr;
  s.flags = MB_ACC_VADDR;
  return s;
}

// Hot band A (64 MiB at 0x7f0000000000) for the first 5 s, then hot band B
// (64 MiB at 0x7f0100000000, 4 GiB higher); a light background over both.
std::vector<mb_sample> phase_change() {
  std::vector<mb_sample> v;
  const uint64_t a = 0x7f0000000000ULL, b = 0x7f0100000000ULL, mib = 1 << 20;
  uint64_t x = 1;
  v.push_back(access(7, a, 0));  // both ranges start exactly here
  v.push_back(access(7, b, 0));
  for (uint64_t t = 0; t < 10000; ++t) {  // one sample per ms for 10 s
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t off = (x >> 20) % (64 * mib);
    uint64_t hot = t < 5000 ? a : b;
    for (int k = 0; k < 8; ++k) v.push_back(access(7, hot + (off + k * 4096) % (8 * mib) + 16 * mib, t * 1000000));
    v.push_back(access(7, (t % 2 ? a : b) + off, t * 1000000));
  }
  return v;
}

// The row with the most accesses over columns [c0, c1).
int hottest_row(const HeatmapMatrix& m, uint32_t c0, uint32_t c1) {
  int best = -1;
  uint64_t most = 0;
  for (uint32_t r = 0; r < m.rows; ++r) {
    uint64_t sum = 0;
    for (uint32_t c = c0; c < c1; ++c) sum += m.at(r, c);
    if (sum > most) most = sum, best = static_cast<int>(r);
  }
  return best;
}

}  // namespace

TEST(ProfileHeatmap, PhaseChangeMovesTheHotBand) {
  auto v = phase_change();
  HeatmapOptions o;
  o.cols = 100;
  o.rows = 128;
  HeatmapMatrix m = build_heatmap(v, o);
  EXPECT_EQ(m.samples, v.size());
  // Two accessed ranges 4 GiB apart: two segments, the gap cut out.
  ASSERT_EQ(m.segments.size(), 2u);
  EXPECT_EQ(m.segments[0].start, 0x7f0000000000ULL);
  EXPECT_EQ(m.segments[1].start, 0x7f0100000000ULL);
  EXPECT_LE(m.rows, 130u);
  int early = hottest_row(m, 0, 45), late = hottest_row(m, 55, 100);
  ASSERT_GE(early, 0);
  ASSERT_GE(late, 0);
  // Early: inside band A's hot range; late: inside band B's.
  EXPECT_GE(early, m.row_of(7, 0x7f0000000000ULL + 16 * (1 << 20)));
  EXPECT_LE(early, m.row_of(7, 0x7f0000000000ULL + 24 * (1 << 20) - 1));
  EXPECT_GE(late, m.row_of(7, 0x7f0100000000ULL + 16 * (1 << 20)));
  EXPECT_LE(late, m.row_of(7, 0x7f0100000000ULL + 24 * (1 << 20) - 1));
  // Band A's hot rows are quiet late, band B's quiet early.
  uint64_t a_late = 0, b_early = 0, a_early = 0;
  for (uint32_t c = 55; c < 100; ++c) a_late += m.at(static_cast<uint32_t>(early), c);
  for (uint32_t c = 0; c < 45; ++c) b_early += m.at(static_cast<uint32_t>(late), c), a_early += m.at(static_cast<uint32_t>(early), c);
  EXPECT_LT(a_late * 5, a_early);
  EXPECT_LT(b_early * 5, a_early);
}

// Thousands of processes: each took a row at least, so --height was
// ignored (3000 rows for --height 160). The busiest fill the rows; the rest
// are counted, not drawn.
TEST(ProfileHeatmap, ManyProcessesKeepTheHeight) {
  std::vector<mb_sample> v;
  for (uint32_t p = 0; p < 3000; ++p)
    for (uint32_t k = 0; k <= (p < 10 ? 50u : 1u); ++k) v.push_back(access(1000 + p, 0x40000000 + k * 4096, k));
  HeatmapOptions o;
  o.rows = 160;
  const HeatmapMatrix m = build_heatmap(v, o);
  EXPECT_LE(m.rows, 2u * o.rows);
  EXPECT_EQ(m.hidden_processes, 3000u - o.rows / 2);
  EXPECT_EQ(m.samples + m.hidden_samples, v.size());
  EXPECT_GE(m.row_of(1000, 0x40000000), 0);  // the busiest are drawn
}

// One pid, two programs at the same addresses: pid 7 runs "sh" for the first
// 5 s, then execs "app". The rows were keyed by the pid: one row set for
// both, labelled with the last name ("pid 7 app"). Each program has its own
// now, labelled with its name and, the pid having two, when it started.
TEST(ProfileHeatmap, AProcessThatExecsHasRowsPerProgram) {
  mb_test::TempTree dir("mbheat");
  const std::string path = dir.path("exec.prof");
  const uint64_t t0 = 1000000000, base = 0x7f0000000000ULL, exec_at = t0 + 5000000000ULL;
  {
    ProfileStart st;
    st.sampler = "fault";
    st.start_monotonic_ns = t0;
    st.start_realtime_ns = 1;
    ProfileWriter w(path, st);
    w.add_process(t0, 7, 1, kProcSeen, "sh");
    w.add_maps(t0, 7, {{base, base + (64 << 12), 0, kMapRead | kMapWrite, ""}});
    for (uint64_t ms = 0; ms < 10000; ++ms) {
      const uint64_t t = t0 + ms * 1000000;
      if (t == exec_at) {
        w.add_process(t, 7, 0, kProcExec, "app");
        w.add_maps(t, 7, {{base, base + (64 << 12), 0, kMapRead | kMapWrite, ""}});
      }
      w.add_sample(access(7, base + (ms % 64) * 4096, t));
    }
    w.add_sample(access(8, 0x1000, t0));  // another pid, left out by --pid 7
    w.finish(t0 + 10000000000ULL, 0);
  }
  ProfileReader r(path);
  HeatmapOptions o;
  o.cols = 100;
  o.pid = 7;
  const HeatmapMatrix m = build_heatmap(r, o);
  EXPECT_EQ(m.samples, 10000u);
  ASSERT_EQ(m.segments.size(), 2u) << "sh's range and app's, though their addresses are the same";
  EXPECT_EQ(m.segments[0].tgid, 7u);
  EXPECT_EQ(m.segments[1].tgid, 7u);
  EXPECT_EQ(m.segments[0].start, base);
  EXPECT_EQ(m.segments[1].start, base);
  EXPECT_EQ(m.segments[1].row_first, m.segments[0].rows) << "app's rows above sh's";
  // sh's rows hold the first half of the time, app's the second.
  uint64_t sh_early = 0, sh_late = 0, app_early = 0, app_late = 0;
  for (uint32_t r0 = 0; r0 < m.rows; ++r0)
    for (uint32_t c = 0; c < m.cols; ++c) {
      const bool app = r0 >= m.segments[1].row_first, late = c >= 50;
      (app ? (late ? app_late : app_early) : (late ? sh_late : sh_early)) += m.at(r0, c);
    }
  EXPECT_EQ(sh_early, 5000u);
  EXPECT_EQ(sh_late, 0u);
  EXPECT_EQ(app_early, 0u);
  EXPECT_EQ(app_late, 5000u);
  EXPECT_NE(m.row_of(7, base, exec_at - 1), m.row_of(7, base, exec_at));
  EXPECT_EQ(m.row_of(7, base, exec_at), static_cast<int>(m.segments[1].row_first));
  // Labelled by program, with when each started (seconds since the start).
  EXPECT_EQ(m.segments[0].who, "pid 7 sh from 0.000s");
  EXPECT_EQ(m.segments[1].who, "pid 7 app from 5.000s");
  const std::string svg = heatmap_svg(m, r.info(), "t");
  EXPECT_NE(svg.find("pid 7 sh from 0.000s"), std::string::npos) << svg;
  EXPECT_NE(svg.find("pid 7 app from 5.000s"), std::string::npos) << svg;
  // Without --pid, pid 8 (one program) is labelled without a time.
  o.pid = 0;
  const HeatmapMatrix all = build_heatmap(r, o);
  ASSERT_EQ(all.segments.size(), 3u);
  EXPECT_EQ(all.segments[2].who, "pid 8");
}

// A library swapped at the same address in one program (dlclose, then
// dlopen): the report counts its page apart before and after the swap; the
// heatmap drew both in one band of the program, labelled with the program
// only. It now keys its ranges as the report does: liba.so's page and
// libb.so's are bands of their own, each labelled with its library, and the
// heap page, the same mapping all along, stays one band.
TEST(ProfileHeatmap, ALibrarySwappedAtTheSameAddressIsItsOwnBand) {
  mb_test::TempTree dir("mbheat");
  const std::string path = dir.path("swap.prof");
  const uint64_t t0 = 1000000000, ms = mb_test::kSwapMs, lib = mb_test::kSwapLibrary;
  mb_test::write_library_swap(path, t0);
  ProfileReader r(path);
  HeatmapOptions o;
  o.cols = 10;
  const HeatmapMatrix m = build_heatmap(r, o);
  EXPECT_EQ(m.samples, 9u);
  std::map<std::string, uint64_t> band;  // label -> its samples
  for (const auto& s : m.segments) {
    uint64_t n = 0;
    for (uint32_t row = s.row_first; row < s.row_first + s.rows; ++row)
      for (uint32_t c = 0; c < m.cols; ++c) n += m.at(row, c);
    band[s.who + " " + format_hex(s.start)] += n;
  }
  EXPECT_EQ(band, (std::map<std::string, uint64_t>{{"pid 300 dl heap 0x600000", 2},
                                                   {"pid 300 dl /nonexistent/liba.so 0x7f0000000000", 2},
                                                   {"pid 300 dl /nonexistent/libb.so 0x7f0000000000", 5}}));
  EXPECT_GE(m.row_of(300, lib + 0x800, t0 + 250 * ms), 0);
  EXPECT_GE(m.row_of(300, lib + 0x800, t0 + 350 * ms), 0);
  EXPECT_NE(m.row_of(300, lib + 0x800, t0 + 250 * ms), m.row_of(300, lib + 0x800, t0 + 350 * ms));
  EXPECT_EQ(m.row_of(300, 0x600100, t0 + 150 * ms), m.row_of(300, 0x600100, t0 + 360 * ms));
}

TEST(ProfileHeatmap, OnePidAndEmptyInput) {
  auto v = phase_change();
  v.push_back(access(8, 0x1000, 0));
  HeatmapOptions o;
  o.pid = 8;
  HeatmapMatrix m = build_heatmap(v, o);
  EXPECT_EQ(m.samples, 1u);
  ASSERT_EQ(m.segments.size(), 1u);
  EXPECT_EQ(m.segments[0].tgid, 8u);
  o.pid = 9;
  EXPECT_EQ(build_heatmap(v, o).samples, 0u);
}

TEST(ProfileHeatmap, RendersSvgAndPng) {
  auto v = phase_change();
  HeatmapMatrix m = build_heatmap(v, HeatmapOptions{});
  ProfileInfo info;
  std::string svg = heatmap_svg(m, info, "test <title>");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("test &lt;title&gt;"), std::string::npos);
  EXPECT_NE(svg.find("0x7f0100000000"), std::string::npos);
  EXPECT_NE(svg.find("time since start (s)"), std::string::npos);
  pngtest::Image png = pngtest::decode(heatmap_png(m, info, "t"));
  ASSERT_TRUE(png.ok()) << png.error;
  EXPECT_EQ(png.width, static_cast<uint32_t>(heatmap_layout(m).width()));
  EXPECT_EQ(png.height, static_cast<uint32_t>(heatmap_layout(m).height()));
}

// A title with '@' (a label like "worker@2") is drawn with the '@' glyph,
// not as '?': the PNG's pixels at the title are the canvas's '@'.
TEST(ProfileHeatmap, PngTitleDrawsAnAt) {
  HeatmapMatrix m = build_heatmap(phase_change(), HeatmapOptions{});
  const HeatmapLayout l = heatmap_layout(m);
  ProfileInfo info;
  // The title's glyph cell: its first character at x = l.left, baseline y = 16.
  auto cell = [&](const std::string& title) {
    pngtest::Image img = pngtest::decode(heatmap_png(m, info, title));
    EXPECT_TRUE(img.ok()) << img.error;
    std::string s;
    for (int y = 10; y <= 16; ++y)
      for (int x = 0; x < 5; ++x) s += img.has(static_cast<uint32_t>(l.left + x), static_cast<uint32_t>(y), 0, 0, 0) ? '#' : '.';
    return s;
  };
  auto glyph = [](const std::string& ch) {
    Canvas cv(5, 7);
    cv.text(0, 6, ch, Rgb{0, 0, 0});
    std::string s;
    for (int y = 0; y < 7; ++y)
      for (int x = 0; x < 5; ++x) s += cv.at(x, y) == Rgb{0, 0, 0} ? '#' : '.';
    return s;
  };
  EXPECT_EQ(cell("@"), glyph("@"));
  EXPECT_NE(cell("@"), cell("?"));
}

namespace {

// A diagonal: page k of one mapping accessed once at k ms (cell row k,
// column k), page 0 five more times, so the fullest cell holds 6.
std::vector<mb_sample> diagonal() {
  std::vector<mb_sample> v;
  for (uint64_t k = 0; k < 64; ++k) v.push_back(access(7, 0x7f0000000000ULL + k * 4096, k * 1000000));
  for (int i = 0; i < 5; ++i) v.push_back(access(7, 0x7f0000000000ULL, 0));
  return v;
}

}  // namespace

TEST(ProfileHeatmap, EmptyCellsShowTheBackgroundColourNotTheMaximum) {
  // Regression: the plot's background was heatmap_colour(0, 1), which the log
  // scale made the maximum (yellow), so every empty cell looked hottest.
  const Rgb empty = heatmap_colour(0, 6), top = heatmap_colour(6, 6);
  EXPECT_EQ(empty, (Rgb{48, 18, 59}));
  EXPECT_EQ(top, (Rgb{253, 231, 37}));
  EXPECT_EQ(heatmap_colour(0, 1), empty) << "no access is the bottom of the scale whatever the maximum";
  EXPECT_EQ(heatmap_colour(0, 0), empty);
  EXPECT_EQ(heatmap_colour(1, 1), top);

  HeatmapOptions o;
  o.cols = 64;
  o.rows = 64;
  HeatmapMatrix m = build_heatmap(diagonal(), o);
  ASSERT_EQ(m.rows, 64u);
  ASSERT_EQ(m.max_cell, 6u);
  ASSERT_EQ(m.at(0, 0), 6u);
  ASSERT_EQ(m.at(10, 10), 1u);
  ASSERT_EQ(m.at(10, 40), 0u);
  const HeatmapLayout l = heatmap_layout(m);
  // The centre pixel of cell (row, column).
  auto px = [&](uint32_t r, uint32_t c) {
    return std::make_pair(static_cast<uint32_t>(l.left + (c + 0.5) * l.cw),
                          static_cast<uint32_t>(l.top + l.plot_h - (r + 0.5) * l.ch));
  };
  ProfileInfo info;
  pngtest::Image img = pngtest::decode(heatmap_png(m, info, "diagonal"));
  ASSERT_TRUE(img.ok()) << img.error;
  EXPECT_EQ(img.width, static_cast<uint32_t>(l.width()));
  EXPECT_EQ(img.height, static_cast<uint32_t>(l.height()));
  auto is = [&](std::pair<uint32_t, uint32_t> p, Rgb c) { return img.has(p.first, p.second, c.r, c.g, c.b); };
  for (auto [r, c] : {std::pair<uint32_t, uint32_t>{10, 40}, {40, 10}, {63, 0}, {0, 63}})
    EXPECT_TRUE(is(px(r, c), empty)) << "empty cell " << r << "," << c;
  EXPECT_TRUE(is(px(0, 0), top));
  EXPECT_TRUE(is(px(10, 10), heatmap_colour(1, 6)));
  // Nearly the whole plot is empty: it must not be drawn in the top colour.
  const size_t plot_px = static_cast<size_t>(l.plot_w) * l.plot_h;
  EXPECT_GT(img.count(empty.r, empty.g, empty.b, l.left, l.top, l.left + l.plot_w, l.top + l.plot_h), plot_px * 9 / 10);
  EXPECT_LT(img.count(top.r, top.g, top.b, l.left, l.top, l.left + l.plot_w, l.top + l.plot_h), plot_px / 100);

  // The SVG's plot background is the same colour.
  char bg[160];
  std::snprintf(bg, sizeof bg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"/>", l.left, l.top,
                l.plot_w, l.plot_h, empty.r, empty.g, empty.b);
  EXPECT_NE(heatmap_svg(m, info, "diagonal").find(bg), std::string::npos) << bg;
}
