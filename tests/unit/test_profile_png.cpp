// The profiler's PNG writer and drawing canvas (profiler/png.h,
// profiler/raster.h): files decode back to the pixels drawn, and rectangles,
// lines, dashes and glyphs land on the pixels they should.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include "profiler/png.h"
#include "profiler/raster.h"
#include "tests/png_reader.h"

using namespace mb::prof;

namespace {

const Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kRed{200, 10, 20};

// The canvas's pixels drawn in c, as "#" and "." rows (for readable failures).
std::string picture(const Canvas& cv, Rgb c) {
  std::string s;
  for (int y = 0; y < cv.height(); ++y) {
    for (int x = 0; x < cv.width(); ++x) s += cv.at(x, y) == c ? '#' : '.';
    s += '\n';
  }
  return s;
}

size_t count(const Canvas& cv, Rgb c) {
  size_t n = 0;
  for (int y = 0; y < cv.height(); ++y)
    for (int x = 0; x < cv.width(); ++x) n += cv.at(x, y) == c;
  return n;
}

}  // namespace

TEST(ProfilePng, EncodedImageDecodesToTheSamePixels) {
  // Odd sizes and every byte value, so row strides and bytes are not confused.
  const uint32_t w = 7, h = 5;
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37 + 11);
  const auto png = png_encode_rgb(w, h, rgb);
  pngtest::Image img = pngtest::decode(png);
  ASSERT_TRUE(img.ok()) << img.error;
  EXPECT_EQ(img.width, w);
  EXPECT_EQ(img.height, h);
  EXPECT_EQ(img.rgb, rgb);
  // IHDR right after the signature: length 13, then width and height.
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(pngtest::be32(&png[8]), 13u);
  EXPECT_EQ(std::string(png.begin() + 12, png.begin() + 16), "IHDR");
  EXPECT_EQ(pngtest::be32(&png[16]), w);
  EXPECT_EQ(pngtest::be32(&png[20]), h);
}

TEST(ProfilePng, TheTestReaderNoticesDamage) {
  // The reader is what the other tests trust: it must reject broken files.
  std::vector<uint8_t> rgb(4 * 3 * 3, 128);
  const auto good = png_encode_rgb(4, 3, rgb);
  ASSERT_TRUE(pngtest::decode(good).ok());
  auto bad_crc = good;
  bad_crc[8 + 8 + 13 + 4 + 8] ^= 1;  // first byte of IDAT data
  EXPECT_NE(pngtest::decode(bad_crc).error.find("CRC"), std::string::npos) << pngtest::decode(bad_crc).error;
  auto bad_sig = good;
  bad_sig[1] = 'Q';
  EXPECT_FALSE(pngtest::decode(bad_sig).ok());
  auto truncated = good;
  truncated.resize(truncated.size() - 12);  // no IEND
  EXPECT_FALSE(pngtest::decode(truncated).ok());
  // A well-formed file whose IDAT holds one pixel too few: the size check.
  auto short_img = png_encode_rgb(4, 3, rgb);
  auto wider = png_encode_rgb(3, 3, std::vector<uint8_t>(3 * 3 * 3, 128));
  std::copy(short_img.begin() + 16, short_img.begin() + 20, wider.begin() + 16);  // claim width 4
  const uint32_t crc = static_cast<uint32_t>(crc32(0, &wider[12], 17));
  for (int i = 0; i < 4; ++i) wider[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  EXPECT_NE(pngtest::decode(wider).error.find("inflates to"), std::string::npos) << pngtest::decode(wider).error;
}

TEST(ProfilePng, RefusesABufferThatDoesNotMatchTheSize) {
  EXPECT_THROW(png_encode_rgb(4, 3, std::vector<uint8_t>(35)), std::invalid_argument);
  EXPECT_THROW(png_encode_rgb(0, 3, {}), std::invalid_argument);
  EXPECT_THROW(png_encode_rgb(3, 0, {}), std::invalid_argument);
}

TEST(ProfileCanvas, RectanglesCoverTheirPixelsAndClip) {
  Canvas cv(10, 8);
  EXPECT_EQ(count(cv, kWhite), 80u) << "starts as the background";
  cv.fill_rect(2, 1, 3, 2, kRed);  // x 2..4, y 1..2
  EXPECT_EQ(count(cv, kRed), 6u);
  EXPECT_TRUE(cv.at(2, 1) == kRed && cv.at(4, 2) == kRed);
  EXPECT_FALSE(cv.at(5, 1) == kRed || cv.at(2, 3) == kRed || cv.at(1, 1) == kRed);
  // Fractional edges take every pixel they touch: x 6.5..7.2 -> 6 and 7.
  cv.fill_rect(6.5, 5, 0.7, 1, kBlack);
  EXPECT_EQ(count(cv, kBlack), 2u);
  // Partly off the canvas: the inside part only, no crash.
  cv.fill_rect(-5, -5, 6, 6, kBlack);
  EXPECT_EQ(count(cv, kBlack), 3u);
  cv.fill_rect(-1e9, -1e9, 2e9, 2e9, kBlack);
  EXPECT_EQ(count(cv, kBlack), 80u);
}

TEST(ProfileCanvas, FrameAndLines) {
  Canvas cv(12, 9);
  cv.frame(1, 1, 10, 7, kBlack);  // pixels 1..11 x 1..8
  EXPECT_EQ(count(cv, kBlack), 2u * 11 + 2u * 6);
  EXPECT_TRUE(cv.at(11, 8) == kBlack);
  EXPECT_TRUE(cv.at(5, 4) == kWhite);

  Canvas d(8, 8);
  d.line({0.5, 0.5}, {7.5, 7.5}, kRed);  // the diagonal, both ends included
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(d.at(i, i) == kRed) << i << "\n" << picture(d, kRed);
  EXPECT_EQ(count(d, kRed), 8u);

  Canvas t(10, 6);
  // A square pen 2 wide centred on the line covers [0, 9) x [2, 4): it
  // reaches 1 past each end point.
  t.line({1, 3}, {8, 3}, kRed, 2);
  EXPECT_EQ(count(t, kRed), 2u * 9) << picture(t, kRed);
  for (int x = 0; x <= 8; ++x) EXPECT_TRUE(t.at(x, 2) == kRed && t.at(x, 3) == kRed) << x << "\n" << picture(t, kRed);
}

TEST(ProfileCanvas, DashesRunOnAcrossAPolyline) {
  Canvas cv(40, 3);
  cv.line({0.5, 1.5}, {39.5, 1.5}, kBlack, 1, {6, 4});
  // 6 on, 4 off from the start: x 0-5 on, 6-9 off, 10-15 on, ...
  for (int x = 0; x < 40; ++x) EXPECT_EQ(cv.at(x, 1) == kBlack, x % 10 < 6) << x << "\n" << picture(cv, kBlack);
  // The same line as two segments meeting at x = 13.5: the phase carries on.
  Canvas p(40, 3);
  p.polyline({{0.5, 1.5}, {13.5, 1.5}, {39.5, 1.5}}, kBlack, 1, {6, 4});
  EXPECT_EQ(picture(p, kBlack), picture(cv, kBlack));
}

TEST(ProfileCanvas, TextUsesTheGlyphFont) {
  // '1' is 0x04 0x0C 0x04 0x04 0x04 0x04 0x0E (bit 4 = left column).
  const char* one =
      "..#...\n"
      ".##...\n"
      "..#...\n"
      "..#...\n"
      "..#...\n"
      "..#...\n"
      ".###..\n";
  Canvas cv(6, 7);
  cv.text(0, 6, "1", kBlack);  // baseline on the last row
  EXPECT_EQ(picture(cv, kBlack), one);
  EXPECT_EQ(Canvas::text_width("12%"), 18);
  EXPECT_EQ(Canvas::text_width("12%", 2), 36);

  // Twice the size: each font pixel a 2x2 block, still ending on the baseline.
  Canvas big(12, 14);
  big.text(0, 13, "1", kBlack, 2);
  std::string doubled;
  for (const char* row = one; *row;) {
    std::string line;
    for (; *row != '\n'; ++row) line += std::string(2, *row);
    ++row;
    doubled += line + "\n" + line + "\n";
  }
  EXPECT_EQ(picture(big, kBlack), doubled);

  // A character outside printable ASCII is '?'.
  Canvas q1(6, 7), q2(6, 7);
  q1.text(0, 6, "\x01", kBlack);
  q2.text(0, 6, "?", kBlack);
  EXPECT_EQ(picture(q1, kBlack), picture(q2, kBlack));
  EXPECT_GT(count(q1, kBlack), 0u);
}

// Labels hold program names, paths and C++ function names: every printable
// ASCII character has a glyph of its own (none falls back to '?', no two
// look alike, a capital is not its small letter), and only the space is blank.
TEST(ProfileCanvas, EveryPrintableAsciiCharacterHasItsOwnGlyph) {
  std::map<std::string, char> seen;
  for (char c = 0x20; c < 0x7F; ++c) {
    Canvas cv(6, 7);
    cv.text(0, 6, std::string(1, c), kBlack);
    const std::string pic = picture(cv, kBlack);
    EXPECT_EQ(count(cv, kBlack) == 0, c == ' ') << "'" << c << "'";
    auto [it, fresh] = seen.emplace(pic, c);
    EXPECT_TRUE(fresh) << "'" << c << "' draws as '" << it->second << "':\n" << pic;
  }
  EXPECT_EQ(seen.size(), 95u);
}

TEST(ProfileCanvas, TextUpIsTheGlyphTurnedCounterClockwise) {
  Canvas flat(6, 7), up(7, 6);
  flat.text(0, 6, "1", kBlack);
  up.text_up(6, 5, "1", kBlack);  // baseline on column 6, reading upwards from row 5
  // Turning counter-clockwise sends flat (x, y) to (y, 5 - x).
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x)
      EXPECT_EQ(flat.at(x, y) == kBlack, up.at(y, 5 - x) == kBlack) << x << "," << y << "\n" << picture(up, kBlack);
  EXPECT_EQ(count(up, kBlack), count(flat, kBlack));
}

TEST(ProfileCanvas, PngHoldsTheCanvas) {
  Canvas cv(33, 17, Rgb{1, 2, 3});
  cv.fill_rect(4, 4, 5, 5, kRed);
  cv.text(10, 15, "0x7f", kBlack);
  pngtest::Image img = pngtest::decode(cv.png());
  ASSERT_TRUE(img.ok()) << img.error;
  EXPECT_EQ(img.width, 33u);
  EXPECT_EQ(img.height, 17u);
  EXPECT_EQ(img.rgb, cv.pixels());
  EXPECT_EQ(img.count(200, 10, 20), 25u);
  EXPECT_TRUE(img.has(0, 0, 1, 2, 3));
}
