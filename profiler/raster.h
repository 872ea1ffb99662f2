// A small RGB canvas for the profiler's PNG pictures (heatmap, sweep curve):
// filled rectangles, lines and polylines (thick, dashed), and text in a
// built-in 5x7 bitmap font. Everything is clipped to the canvas.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mb::prof {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

struct Point {
  double x, y;
};

// A dash pattern along a line: `on` pixels drawn, `off` skipped; on = 0: solid.
struct Dash {
  double on = 0, off = 0;
};

class Canvas {
 public:
  // Glyph cell: 5x7 pixels and one column of space, times the scale.
  static constexpr int kGlyphW = 6, kGlyphH = 7;

  Canvas(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return px_; }  // RGB rows, top first

  void set(int x, int y, Rgb c);
  Rgb at(int x, int y) const;  // outside: black
  // Every pixel whose square meets [x, x+w) x [y, y+h).
  void fill_rect(double x, double y, double w, double h, Rgb c);
  // One-pixel outline of the pixels x..x+w, y..y+h.
  void frame(int x, int y, int w, int h, Rgb c);
  // A square pen of `thickness` pixels; the dash pattern runs on across the
  // points of a polyline.
  void line(Point a, Point b, Rgb c, int thickness = 1, Dash dash = {});
  void polyline(const std::vector<Point>& pts, Rgb c, int thickness = 1, Dash dash = {});

  static int text_width(const std::string& s, int scale = 1) { return static_cast<int>(s.size()) * kGlyphW * scale; }
  // Left to right, baseline at y (the glyphs occupy rows y-7*scale+1..y).
  // Characters the font lacks are drawn as '?'; capitals it lacks as small letters.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // Bottom to top (turned 90 degrees counter-clockwise), starting at (x, y),
  // the glyphs' baseline on column x.
  void text_up(int x, int y, const std::string& s, Rgb c);

  std::vector<uint8_t> png() const;

 private:
  // Draws the pen at (x, y); `dist` is the length drawn so far, for dashes.
  void stamp(double x, double y, Rgb c, int thickness);
  void line_from(Point a, Point b, Rgb c, int thickness, Dash dash, double& dist);

  int w_, h_;
  std::vector<uint8_t> px_;
};

}  // namespace mb::prof
