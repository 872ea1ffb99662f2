#include "profiler/png.h"

#include <zlib.h>

#include <stdexcept>
#include <string>

namespace mb::prof {

namespace {

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// length, type, data, CRC-32 of type and data (PNG spec, section 5.3).
void put_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put_be32(out, static_cast<uint32_t>(n));
  const size_t at = out.size();
  out.insert(out.end(), type, type + 4);
  if (n) out.insert(out.end(), data, data + n);
  put_be32(out, static_cast<uint32_t>(crc32(0, out.data() + at, static_cast<uInt>(n + 4))));
}

}  // namespace

std::vector<uint8_t> png_encode_rgb(uint32_t width, uint32_t height, const std::vector<uint8_t>& rgb) {
  // PNG caps dimensions and chunk lengths at 2^31 - 1.
  constexpr uint64_t kMax = 0x7fffffffu;
  if (width == 0 || height == 0 || width > kMax || height > kMax)
    throw std::invalid_argument("png: bad image size " + std::to_string(width) + "x" + std::to_string(height));
  const uint64_t row = uint64_t{width} * 3;
  if (rgb.size() != row * height) throw std::invalid_argument("png: pixel buffer does not match the image size");
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * height);
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type 0: the row as it is
    raw.insert(raw.end(), rgb.begin() + static_cast<long>(y * row), rgb.begin() + static_cast<long>((y + 1) * row));
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(zlen);
  const int rc = compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6);
  if (rc != Z_OK) throw std::runtime_error("png: zlib compress2 failed (" + std::to_string(rc) + ")");
  if (zlen > kMax) throw std::invalid_argument("png: image too large for one IDAT chunk");

  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  put_chunk(out, "IDAT", z.data(), zlen);
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

}  // namespace mb::prof
