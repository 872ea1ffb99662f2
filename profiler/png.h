// A minimal PNG writer for the profiler's pictures (heatmap, sweep curve):
// 8-bit RGB, no interlace, filter "none" on every row, the image data
// deflated by zlib into one IDAT chunk.
#pragma once

#include <cstdint>
#include <vector>

namespace mb::prof {

// rgb: height rows of width pixels, top row first, 3 bytes (R, G, B) a
// pixel. Throws std::invalid_argument when the sizes do not match or are out
// of PNG's range, std::runtime_error when zlib fails.
std::vector<uint8_t> png_encode_rgb(uint32_t width, uint32_t height, const std::vector<uint8_t>& rgb);

}  // namespace mb::prof
