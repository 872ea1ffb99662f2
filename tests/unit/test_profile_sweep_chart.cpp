// The whatif --sweep chart (profiler/whatif.h): where the lines, ticks and
// legend go, and that the PNG and the SVG draw them in the same colours.
#include <gtest/gtest.h>

#include <set>

#include "membalancer/report.h"
#include "profiler/whatif.h"
#include "tests/png_reader.h"
#include "written.h"

using namespace mb;
using namespace mb::prof;

namespace {

// One interval of 1000 accesses; each run serves ratio x 1000 of them.
WhatifResult result(const std::vector<std::pair<std::string, double>>& runs) {
  WhatifResult r;
  r.accesses = {1000};
  for (const auto& [name, ratio] : runs) {
    WhatifRun run;
    run.policy = name;
    run.hits = {static_cast<uint64_t>(ratio * 1000 + 0.5)};
    r.runs.push_back(run);
  }
  return r;
}

// Three lines far apart: the oracle on top, then membalancer, then tpp.
std::vector<SweepPoint> three_lines() {
  const double oracle[] = {0.6, 0.75, 0.9, 1.0}, mine[] = {0.3, 0.4, 0.5, 0.55}, tpp[] = {0.05, 0.1, 0.15, 0.2};
  std::vector<SweepPoint> pts;
  for (int i = 0; i < 4; ++i)
    pts.push_back({(16ull << 20) * (i + 1), result({{"oracle", oracle[i]}, {"membalancer", mine[i]}, {"tpp", tpp[i]}})});
  return pts;
}

std::string hex(Rgb c) {
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", c.r, c.g, c.b);
  return b;
}

}  // namespace

TEST(ProfileSweepChart, MapsSizesAndHitRatiosToThePlot) {
  const auto pts = three_lines();
  const SweepChart ch = sweep_chart(pts, "t");
  ASSERT_EQ(ch.series.size(), 3u);
  EXPECT_EQ(ch.series[0].name, "oracle");
  EXPECT_TRUE(ch.series[0].dashed);
  EXPECT_FALSE(ch.series[1].dashed || ch.series[2].dashed);
  std::set<std::string> colours;
  for (const auto& s : ch.series) colours.insert(hex(s.colour));
  EXPECT_EQ(colours.size(), 3u) << "one colour per line";
  // Smallest size on the left edge, largest on the right; 0% at the bottom, 100% at the top.
  const auto& o = ch.series[0].points;
  ASSERT_EQ(o.size(), 4u);
  EXPECT_DOUBLE_EQ(o[0].x, ch.plot_x);
  EXPECT_DOUBLE_EQ(o[3].x, ch.plot_x + ch.plot_w);
  EXPECT_DOUBLE_EQ(o[3].y, ch.plot_y);
  EXPECT_NEAR(o[0].y, ch.plot_y + 0.4 * ch.plot_h, 1e-9);
  EXPECT_NEAR(ch.series[2].points[0].y, ch.plot_y + 0.95 * ch.plot_h, 1e-9);
  ASSERT_EQ(ch.y_ticks.size(), 11u);
  EXPECT_EQ(ch.y_ticks.front().label, "0%");
  EXPECT_DOUBLE_EQ(ch.y_ticks.front().at, ch.plot_y + ch.plot_h);
  EXPECT_EQ(ch.y_ticks.back().label, "100%");
  EXPECT_DOUBLE_EQ(ch.y_ticks.back().at, ch.plot_y);
  ASSERT_EQ(ch.x_ticks.size(), 4u) << "four sizes fit: each labelled";
  EXPECT_EQ(ch.x_ticks[0].label, format_bytes(16ull << 20));
  EXPECT_EQ(ch.x_ticks[3].label, format_bytes(64ull << 20));
  EXPECT_DOUBLE_EQ(ch.x_ticks[3].at, ch.plot_x + ch.plot_w);
}

TEST(ProfileSweepChart, ThinsSizeLabelsThatWouldOverlap) {
  std::vector<SweepPoint> pts;
  for (uint64_t i = 1; i <= 200; ++i) pts.push_back({i << 20, result({{"oracle", 0.5}})});
  const SweepChart ch = sweep_chart(pts, "t");
  ASSERT_GE(ch.x_ticks.size(), 3u);
  EXPECT_LT(ch.x_ticks.size(), 20u);
  EXPECT_EQ(ch.x_ticks[0].label, format_bytes(1 << 20));
  for (size_t i = 1; i < ch.x_ticks.size(); ++i) {
    const double room = (Canvas::text_width(ch.x_ticks[i - 1].label) + Canvas::text_width(ch.x_ticks[i].label)) / 2.0;
    EXPECT_GE(ch.x_ticks[i].at - ch.x_ticks[i - 1].at, room + 4) << ch.x_ticks[i].label;
  }
  // A single size: one point in the middle, no division by zero.
  const SweepChart one = sweep_chart({{8 << 20, result({{"oracle", 0.5}})}}, "t");
  ASSERT_EQ(one.series[0].points.size(), 1u);
  EXPECT_DOUBLE_EQ(one.series[0].points[0].x, one.plot_x + one.plot_w / 2.0);
}

TEST(ProfileSweepChart, PngDrawsEachLineInItsColour) {
  const auto pts = three_lines();
  const SweepChart ch = sweep_chart(pts, "fast-tier hit ratio: test.prof");
  pngtest::Image img = pngtest::decode(sweep_png(pts, "fast-tier hit ratio: test.prof"));
  ASSERT_TRUE(img.ok()) << img.error;
  ASSERT_EQ(img.width, static_cast<uint32_t>(ch.width));
  ASSERT_EQ(img.height, static_cast<uint32_t>(ch.height));
  const uint32_t L = ch.plot_x, T = ch.plot_y, R = ch.plot_x + ch.plot_w, B = ch.plot_y + ch.plot_h;
  for (size_t s = 0; s < ch.series.size(); ++s) {
    const Rgb c = ch.series[s].colour;
    // Inside the plot (left of the axis excluded: the axes are black, like
    // the oracle): a line 2 px thick across it, dashed for the oracle.
    EXPECT_GT(img.count(c.r, c.g, c.b, L + 2, T, R + 2, B - 1), ch.plot_w * (s == 0 ? 1 : 3) / 2u)
        << ch.series[s].name;
    // On every sweep point of the solid lines.
    if (!ch.series[s].dashed) {
      for (const auto& p : ch.series[s].points) {
        EXPECT_TRUE(img.has(static_cast<uint32_t>(p.x), static_cast<uint32_t>(p.y), c.r, c.g, c.b))
            << ch.series[s].name << " at " << p.x << "," << p.y;
      }
    }
    // A legend entry right of the plot, in the line's colour.
    const uint32_t ly = ch.legend_y + s * ch.legend_dy;
    EXPECT_GT(img.count(c.r, c.g, c.b, ch.legend_x, ly - 8, ch.width, ly + 1), 40u) << ch.series[s].name;
  }
  // Grid lines, the title above the plot, the y label left of the tick labels.
  EXPECT_GT(img.count(221, 221, 221, L, T, R, B), 8u * ch.plot_w);
  EXPECT_GT(img.count(0, 0, 0, L, 0, ch.width, T - 8), 100u) << "title";
  EXPECT_GT(img.count(0, 0, 0, 0, T, 26, B), 100u) << "y axis label";
  EXPECT_GT(img.count(0, 0, 0, L, B + 6, R, ch.height), 150u) << "size labels and x axis label";
}

TEST(ProfileSweepChart, SvgUsesTheSameColoursAndLabels) {
  const auto pts = three_lines();
  const SweepChart ch = sweep_chart(pts, "a <b>");
  const std::string svg = sweep_svg(pts, "a <b>");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;b&gt;"), std::string::npos);
  for (const auto& s : ch.series) {
    EXPECT_NE(svg.find("stroke=\"" + hex(s.colour) + "\" stroke-width=\"2\"" +
                       (s.dashed ? std::string(" stroke-dasharray=\"6 4\"") : std::string()) + " points="),
              std::string::npos)
        << s.name;
    EXPECT_NE(svg.find(">" + s.name + "</text>"), std::string::npos) << s.name;
  }
  for (const auto& t : ch.x_ticks) EXPECT_NE(svg.find(">" + t.label + "</text>"), std::string::npos) << t.label;
  EXPECT_NE(svg.find(">100%</text>"), std::string::npos);
}

// The operator's reading of a sweep: the smallest size serving a share, "<="
// when the first size already does, ">" when none swept does.
TEST(SweepSummary, SmallestSizeServingEachShare) {
  const auto pts = three_lines();  // 16, 32, 48, 64 MiB
  EXPECT_EQ(smallest_reaching(pts, 0, 0.5), 16ull << 20);
  EXPECT_EQ(smallest_reaching(pts, 0, 0.9), 48ull << 20);
  EXPECT_EQ(smallest_reaching(pts, 0, 0.99), 64ull << 20);
  EXPECT_EQ(smallest_reaching(pts, 1, 0.5), 48ull << 20);
  EXPECT_EQ(smallest_reaching(pts, 1, 0.9), std::nullopt);

  const std::string text = mb_test::written_by([&](FILE* out) { print_sweep(out, pts, "text"); });
  EXPECT_NE(text.find("smallest fast tier swept that serves this share of the accesses\n"
                      "         50%   <=16.0 MiB     48.0 MiB    >64.0 MiB\n"
                      "         90%     48.0 MiB    >64.0 MiB    >64.0 MiB\n"),
            std::string::npos)
      << text;

  const std::string json = mb_test::written_by([&](FILE* out) { print_sweep(out, pts, "json"); });
  EXPECT_NE(json.find("\"smallest_fast_bytes\":{\"oracle\":{\"0.50\":16777216,\"0.90\":50331648,\"0.95\":"
                      "67108864,\"0.99\":67108864},\"membalancer\":{\"0.50\":50331648,\"0.90\":null,"),
            std::string::npos)
      << json;
}
