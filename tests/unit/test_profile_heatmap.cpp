// Heatmap matrix: a phase change moves the hot band; gaps between accessed
// ranges are cut out; the renderings are well-formed.
#include <gtest/gtest.h>

#include "profiler/heatmap.h"

using namespace mb;
using namespace mb::prof;

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
  auto png = heatmap_png(m, info, "t");
  ASSERT_GT(png.size(), 100u);
  EXPECT_EQ(std::string(png.begin() + 1, png.begin() + 4), "PNG");
  EXPECT_EQ(std::string(png.end() - 8, png.end() - 4), "IEND");
}
