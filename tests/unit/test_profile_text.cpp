// profiler/text.h: what a recording names (comm, paths) made safe for a
// terminal and for XML: control characters and invalid UTF-8 as \xNN.
#include <gtest/gtest.h>

#include "membalancer/profile_file.h"
#include "profiler/heatmap.h"
#include "profiler/report.h"
#include "profiler/text.h"
#include "tests/unit/temp_tree.h"
#include "written.h"

using namespace mb;
using namespace mb::prof;

namespace {

TEST(ProfileText, ControlCharactersAndBrokenUtf8BecomeEscapes) {
  EXPECT_EQ(printable("plain name"), "plain name");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");  // valid UTF-8 stays
  EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(printable("a\tb\nc\x7f"), "a\\x09b\\x0ac\\x7f");
  EXPECT_EQ(printable("cut \xe2\x82"), "cut \\xe2\\x82");          // a comm cut mid-character
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");                  // C1 control (CSI)
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                  // overlong
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");         // surrogate
  EXPECT_EQ(xml_escape("<a & 'b'>\x01"), "&lt;a &amp; &apos;b&apos;&gt;\\x01");
}

// The text report and the SVG heatmap of a process whose name holds an
// escape sequence and a cut character: neither passes them through.
TEST(ProfileText, ReportAndHeatmapSanitiseProcessNames) {
  mb_test::TempTree dir("mbtext");
  const std::string path = dir.path("evil.prof");
  {
    ProfileStart st;
    st.sampler = "fault";
    ProfileWriter w(path, st);
    w.add_process(0, 10, 1, kProcSeen, "\x1b]0;pwned\x07\xe2\x82");
    for (int i = 0; i < 50; ++i) {
      mb_sample s{};
      s.time_ns = static_cast<uint64_t>(i) * 1000000;
      s.tgid = s.tid = 10;
      s.vaddr = 0x40000000 + (i % 5) * 4096;
      s.flags = MB_ACC_VADDR;
      w.add_sample(s);
    }
    w.finish(0, 0);
  }
  ProfileReader r(path);
  Aggregate agg;
  aggregate_file(r, &agg);
  const std::string text = mb_test::written_by([&](FILE* f) { print_report(f, r, agg, ReportOptions{}); });
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("\\x1b]0;pwned\\x07\\xe2\\x82"), std::string::npos) << text;

  ProfileReader r2(path);
  HeatmapOptions ho;
  const HeatmapMatrix m = build_heatmap(r2, ho);
  const std::string svg = heatmap_svg(m, r2.info(), "title \x1b");
  EXPECT_EQ(svg.find('\x1b'), std::string::npos);
  EXPECT_EQ(svg.find('\x07'), std::string::npos);
  EXPECT_EQ(svg.find("\xe2\x82<"), std::string::npos);
  EXPECT_NE(svg.find("pwned"), std::string::npos);  // the name is drawn, escaped
}

}  // namespace
