// A PNG reader for tests only (unit and integration): decodes what
// profiler/png.cpp writes and checks the file on the way — signature, chunk
// order and CRCs, IHDR, the inflated size — so a malformed file fails the
// test with a reason instead of passing a signature check. Deliberately
// narrow: 8-bit RGB, no interlace, filter type 0 only (all the writer uses).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace pngtest {

struct Image {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // rows top first, 3 bytes a pixel
  std::string error;         // empty when the file decoded
  bool ok() const { return error.empty(); }
  bool has(uint32_t x, uint32_t y, uint8_t r, uint8_t g, uint8_t b) const {
    if (x >= width || y >= height) return false;
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
    return p[0] == r && p[1] == g && p[2] == b;
  }
  // Pixels of colour (r, g, b) in [x0, x1) x [y0, y1).
  size_t count(uint8_t r, uint8_t g, uint8_t b, uint32_t x0 = 0, uint32_t y0 = 0, uint32_t x1 = UINT32_MAX,
               uint32_t y1 = UINT32_MAX) const {
    size_t n = 0;
    for (uint32_t y = y0; y < std::min(y1, height); ++y)
      for (uint32_t x = x0; x < std::min(x1, width); ++x) n += has(x, y, r, g, b);
    return n;
  }
};

inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

inline Image decode(const std::vector<uint8_t>& f) {
  Image img;
  auto fail = [&](const std::string& why) {
    img.error = why;
    img.rgb.clear();
    return img;
  };
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (f.size() < 8 || !std::equal(sig, sig + 8, f.begin())) return fail("no PNG signature");
  std::vector<uint8_t> z;
  bool ihdr = false, iend = false;
  int idat_state = 0;  // 0 none yet, 1 in the IDAT run, 2 after it
  size_t at = 8;
  while (at < f.size()) {
    if (iend) return fail("bytes after IEND");
    if (f.size() - at < 12) return fail("truncated chunk at " + std::to_string(at));
    const uint32_t len = be32(&f[at]);
    if (len > f.size() - at - 12) return fail("chunk length past the end at " + std::to_string(at));
    const std::string type(f.begin() + static_cast<long>(at + 4), f.begin() + static_cast<long>(at + 8));
    const uint8_t* data = &f[at + 8];
    const uint32_t crc = static_cast<uint32_t>(crc32(0, &f[at + 4], len + 4));
    if (crc != be32(&f[at + 8 + len])) return fail(type + ": bad CRC");
    if (!ihdr && type != "IHDR") return fail("first chunk is " + type + ", not IHDR");
    if (type == "IHDR") {
      if (ihdr) return fail("two IHDR chunks");
      if (len != 13) return fail("IHDR length " + std::to_string(len));
      ihdr = true;
      img.width = be32(data);
      img.height = be32(data + 4);
      if (!img.width || !img.height) return fail("zero width or height");
      if (data[8] != 8 || data[9] != 2) return fail("not 8-bit RGB");
      if (data[10] != 0 || data[11] != 0 || data[12] != 0) return fail("unknown compression, filter or interlace");
    } else if (type == "IDAT") {
      if (idat_state == 2) return fail("IDAT chunks not consecutive");
      idat_state = 1;
      z.insert(z.end(), data, data + len);
    } else if (type == "IEND") {
      if (len != 0) return fail("IEND with data");
      iend = true;
    } else if (idat_state == 1) {
      idat_state = 2;
    }
    at += 12 + len;
  }
  if (!iend) return fail("no IEND");
  if (z.empty()) return fail("no IDAT");
  const size_t stride = static_cast<size_t>(img.width) * 3 + 1, want = stride * img.height;
  // One byte of room more than expected, to notice extra data.
  std::vector<uint8_t> raw(want + 1);
  uLongf got = raw.size();
  const int rc = uncompress(raw.data(), &got, z.data(), static_cast<uLong>(z.size()));
  if (rc == Z_BUF_ERROR || got > want) return fail("IDAT inflates to more than height x (1 + 3 x width) bytes");
  if (rc != Z_OK) return fail("IDAT does not inflate (zlib " + std::to_string(rc) + ")");
  if (got != want) return fail("IDAT inflates to " + std::to_string(got) + " bytes, want " + std::to_string(want));
  img.rgb.reserve(want - img.height);
  for (uint32_t y = 0; y < img.height; ++y) {
    const uint8_t* row = &raw[y * stride];
    if (row[0] != 0) return fail("row " + std::to_string(y) + ": filter type " + std::to_string(row[0]));
    img.rgb.insert(img.rgb.end(), row + 1, row + stride);
  }
  return img;
}

inline Image decode_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Image img;
    img.error = path + ": cannot open";
    return img;
  }
  return decode(std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
}

}  // namespace pngtest
