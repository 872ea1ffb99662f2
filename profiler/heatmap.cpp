#include "profiler/heatmap.h"

#include <zlib.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <functional>

#include "membalancer/report.h"

namespace mb::prof {

namespace {

using SampleSource = std::function<void(const std::function<void(const mb_sample*, size_t)>&)>;

HeatmapMatrix build(const SampleSource& source, const HeatmapOptions& opts) {
  HeatmapMatrix m;
  m.cols = std::max<uint32_t>(opts.cols, 1);
  auto wanted = [&](const mb_sample& s) { return (s.flags & MB_ACC_VADDR) && (!opts.pid || s.tgid == opts.pid); };
  // Pass 1: the accessed pages and the time span.
  std::vector<uint64_t> keys;
  uint64_t t0 = UINT64_MAX, t1 = 0;
  source([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!wanted(s[i])) continue;
      keys.push_back(mb_page_key(s[i].tgid, s[i].vaddr >> MB_PAGE_SHIFT));
      t0 = std::min<uint64_t>(t0, s[i].time_ns);
      t1 = std::max<uint64_t>(t1, s[i].time_ns);
    }
    // Keep memory bounded on long files: dedup as we go.
    if (keys.size() > (size_t{1} << 24)) {
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    }
  });
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  if (keys.empty()) {
    m.rows = 0;
    return m;
  }
  m.t0_ns = t0;
  m.t1_ns = t1 + 1;
  const uint32_t want_rows = std::max<uint32_t>(opts.rows, 8);
  // Segments: runs of accessed pages of one process; a gap of more than
  // `gap` pages starts a new one. Widened until the segments are few.
  std::vector<HeatmapSegment> segs;
  uint64_t gap = 256;  // 1 MiB
  for (;;) {
    segs.clear();
    for (size_t i = 0; i < keys.size(); ++i) {
      uint32_t tgid = mb_key_tgid(keys[i]);
      uint64_t vpn = mb_key_vpn(keys[i]);
      if (!segs.empty() && segs.back().tgid == tgid && vpn - (segs.back().end >> MB_PAGE_SHIFT) <= gap) {
        segs.back().end = (vpn + 1) << MB_PAGE_SHIFT;
        continue;
      }
      segs.push_back({tgid, vpn << MB_PAGE_SHIFT, (vpn + 1) << MB_PAGE_SHIFT, 0, 0});
    }
    uint64_t total = 0;
    for (const auto& s : segs) total += (s.end - s.start) >> MB_PAGE_SHIFT;
    // Few enough segments, and no gap kept that is smaller than a row.
    if (segs.size() <= want_rows / 6 + 1 && gap >= total / want_rows) break;
    gap *= 2;
    if (gap > (1ULL << 40)) break;
  }
  uint64_t total_pages = 0;
  for (const auto& s : segs) total_pages += (s.end - s.start) >> MB_PAGE_SHIFT;
  const uint64_t ppr = std::max<uint64_t>(1, (total_pages + want_rows - 1) / want_rows);
  m.bytes_per_row = ppr << MB_PAGE_SHIFT;
  uint32_t row = 0;
  for (auto& s : segs) {
    uint64_t pages = (s.end - s.start) >> MB_PAGE_SHIFT;
    s.row_first = row;
    s.rows = static_cast<uint32_t>((pages + ppr - 1) / ppr);
    row += s.rows;
  }
  m.rows = row;
  m.segments = std::move(segs);
  m.cells.assign(static_cast<size_t>(m.rows) * m.cols, 0);
  // Pass 2: count.
  const double span = static_cast<double>(m.t1_ns - m.t0_ns);
  source([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!wanted(s[i])) continue;
      int r = m.row_of(s[i].tgid, s[i].vaddr);
      if (r < 0) continue;
      uint32_t c = static_cast<uint32_t>(static_cast<double>(s[i].time_ns - m.t0_ns) / span * m.cols);
      c = std::min(c, m.cols - 1);
      uint32_t& cell = m.cells[static_cast<size_t>(r) * m.cols + c];
      ++cell;
      m.max_cell = std::max<uint64_t>(m.max_cell, cell);
      ++m.samples;
    }
  });
  return m;
}

}  // namespace

int HeatmapMatrix::row_of(uint32_t tgid, uint64_t addr) const {
  auto it = std::upper_bound(segments.begin(), segments.end(), std::make_pair(tgid, addr),
                             [](const std::pair<uint32_t, uint64_t>& k, const HeatmapSegment& s) {
                               return k.first != s.tgid ? k.first < s.tgid : k.second < s.start;
                             });
  if (it == segments.begin()) return -1;
  --it;
  if (it->tgid != tgid || addr >= it->end) return -1;
  return static_cast<int>(it->row_first + (addr - it->start) / bytes_per_row);
}

HeatmapMatrix build_heatmap(ProfileReader& reader, const HeatmapOptions& opts) {
  return build([&](const std::function<void(const mb_sample*, size_t)>& fn) { reader.for_each_batch(fn); }, opts);
}

HeatmapMatrix build_heatmap(const std::vector<mb_sample>& samples, const HeatmapOptions& opts) {
  return build([&](const std::function<void(const mb_sample*, size_t)>& fn) { fn(samples.data(), samples.size()); },
               opts);
}

// ---- layout shared by SVG and PNG -------------------------------------------------

namespace {

struct Rgb {
  uint8_t r, g, b;
};

// Density colour: log scale from a dark violet through teal to yellow.
Rgb colour(uint64_t v, uint64_t max) {
  static const Rgb stops[] = {{48, 18, 59}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  double x = max > 1 ? std::log1p(static_cast<double>(v)) / std::log1p(static_cast<double>(max)) : 1.0;
  x = std::clamp(x, 0.0, 1.0) * 4;
  int i = std::min(static_cast<int>(x), 3);
  double f = x - i;
  auto mix = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(a + (b - a) * f + 0.5); };
  return {mix(stops[i].r, stops[i + 1].r), mix(stops[i].g, stops[i + 1].g), mix(stops[i].b, stops[i + 1].b)};
}

struct Layout {
  int left = 250, right = 110, top = 40, bottom = 70;
  int plot_w = 720, plot_h = 480;
  double cw = 3, ch = 3;
  int width() const { return left + plot_w + right; }
  int height() const { return top + plot_h + bottom; }
};

Layout layout(const HeatmapMatrix& m) {
  Layout l;
  l.cw = static_cast<double>(l.plot_w) / std::max<uint32_t>(m.cols, 1);
  l.ch = std::max(1.0, std::min(6.0, 480.0 / std::max<uint32_t>(m.rows, 1)));
  l.plot_h = static_cast<int>(std::ceil(l.ch * std::max<uint32_t>(m.rows, 1)));
  return l;
}

// A tick step of 1, 2 or 5 x 10^k giving at most 10 ticks.
double tick_step(double span) {
  if (span <= 0) return 1;
  double mag = std::pow(10, std::floor(std::log10(span / 10)));
  for (double f : {1.0, 2.0, 5.0, 10.0}) {
    if (span / (f * mag) <= 10) return f * mag;
  }
  return 20 * mag;
}

std::string fmt_sec(double s) {
  char b[32];
  double r = std::round(s);
  std::snprintf(b, sizeof(b), std::fabs(s - r) < 1e-6 ? "%.0f" : (std::fabs(s * 10 - std::round(s * 10)) < 1e-6 ? "%.1f" : "%.2f"), s);
  return b;
}

struct Label {
  int x, y;
  std::string text;
  bool right_align;
};

// The labels both renderings draw: per segment "pid P  0xSTART" at its
// bottom edge and its size, time ticks, titles.
struct Decor {
  std::vector<Label> labels;
  std::vector<int> seg_lines;  // y of separators between segments
  std::vector<int> ticks;      // x of time ticks
};

Decor decor(const HeatmapMatrix& m, const Layout& l, const ProfileInfo& info, const std::string& title) {
  Decor d;
  d.labels.push_back({l.left, 16, title, false});
  const int y_base = l.top + l.plot_h;
  int last_label_y = 1 << 30;
  uint32_t last_pid = 0;
  ProfileProcesses procs(info);
  for (const auto& s : m.segments) {
    int y0 = y_base - static_cast<int>(s.row_first * l.ch);
    int y1 = y_base - static_cast<int>((s.row_first + s.rows) * l.ch);
    if (s.row_first > 0) d.seg_lines.push_back(y0);
    std::string name = procs.name(s.tgid);
    std::string who = "pid " + std::to_string(s.tgid) + (name.empty() ? "" : " " + name);
    const bool tall = y0 - y1 >= 36;
    if (last_label_y - (y0 - 2) >= 11) {  // room for the start address
      d.labels.push_back({l.left - 6, y0 - 2, (tall || s.tgid == last_pid ? "" : who + " ") + format_hex(s.start), true});
      last_label_y = y0 - 2;
    }
    if (tall) {
      d.labels.push_back({l.left - 6, y1 + 9, who, true});
      d.labels.push_back({l.left - 6, (y0 + y1) / 2 + 4, "+" + format_bytes(s.end - s.start), true});
      last_label_y = y1 + 9;
    }
    last_pid = s.tgid;
  }
  const double span_s = (m.t1_ns - m.t0_ns) / 1e9;
  const double t_off = (m.t0_ns > info.start_monotonic_ns && info.start_monotonic_ns) ? (m.t0_ns - info.start_monotonic_ns) / 1e9 : 0;
  double step = tick_step(span_s);
  for (double t = std::ceil(t_off / step) * step; t <= t_off + span_s + 1e-9; t += step) {
    int x = l.left + static_cast<int>((t - t_off) / std::max(span_s, 1e-9) * l.plot_w);
    d.ticks.push_back(x);
    d.labels.push_back({x - 3 * static_cast<int>(fmt_sec(t).size()), y_base + 16, fmt_sec(t), false});
  }
  d.labels.push_back({l.left + l.plot_w / 2 - 60, y_base + 36, "time since start (s)", false});
  d.labels.push_back({6, l.top - 8, "address (accessed ranges; gaps cut)", false});
  d.labels.push_back({l.left + l.plot_w + 14, l.top - 8, "accesses/cell", false});
  d.labels.push_back({l.left + l.plot_w + 40, l.top + 10, std::to_string(m.max_cell), false});
  d.labels.push_back({l.left + l.plot_w + 40, l.top + l.plot_h, "1", false});
  d.labels.push_back({l.left, y_base + 60,
                      "one row = " + format_bytes(m.bytes_per_row) + ", column = " + fmt_sec(span_s / std::max<uint32_t>(m.cols, 1) * 1000) + " ms", false});
  return d;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
const uint8_t* glyph(char c) {
  struct G {
    char c;
    uint8_t rows[7];
  };
  static const G font[] = {
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}}, {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
      {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}}, {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
      {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}}, {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
      {'g', {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
      {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}}, {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
      {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}}, {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}}, {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
      {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}}, {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
      {'q', {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}}, {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
      {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}}, {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
      {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}}, {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}}, {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
      {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
      {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
      {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
      {' ', {0, 0, 0, 0, 0, 0, 0}},                      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
      {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
      {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
      {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
      {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
      {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}}, {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
      {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
  };
  for (const auto& g : font)
    if (g.c == c) return g.rows;
  if (c >= 'A' && c <= 'Z') return glyph(static_cast<char>(c - 'A' + 'a'));
  return glyph('?');
}

struct Canvas {
  int w, h;
  std::vector<uint8_t> px;  // RGB
  Canvas(int w_, int h_) : w(w_), h(h_), px(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void rect(double x, double y, double rw, double rh, Rgb c) {
    for (int yy = static_cast<int>(y); yy < static_cast<int>(std::ceil(y + rh)); ++yy)
      for (int xx = static_cast<int>(x); xx < static_cast<int>(std::ceil(x + rw)); ++xx) set(xx, yy, c);
  }
  int text_width(const std::string& s) const { return static_cast<int>(s.size()) * 6; }
  // Baseline at y (glyph rows y-6..y).
  void text(int x, int y, const std::string& s, Rgb c) {
    for (char ch : s) {
      const uint8_t* g = glyph(ch);
      for (int r = 0; r < 7; ++r)
        for (int b = 0; b < 5; ++b)
          if (g[r] & (0x10 >> b)) set(x + b, y - 6 + r, c);
      x += 6;
    }
  }
};

void png_chunk(std::vector<uint8_t>& out, const char* type, const uint8_t* data, size_t n) {
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  be32(static_cast<uint32_t>(n));
  size_t at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + n);
  be32(static_cast<uint32_t>(crc32(0, out.data() + at, static_cast<uInt>(n + 4))));
}

}  // namespace

std::string heatmap_svg(const HeatmapMatrix& m, const ProfileInfo& info, const std::string& title) {
  Layout l = layout(m);
  Decor d = decor(m, l, info, title);
  std::string s;
  char b[256];
  std::snprintf(b, sizeof(b),
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                l.width(), l.height(), l.width(), l.height());
  s += b;
  const Rgb bg = colour(0, 1);
  std::snprintf(b, sizeof(b), "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"/>\n", l.left,
                l.top, l.plot_w, l.plot_h, bg.r, bg.g, bg.b);
  s += b;
  s += "<g shape-rendering=\"crispEdges\">\n";
  const int y_base = l.top + l.plot_h;
  for (uint32_t r = 0; r < m.rows; ++r) {
    // Runs of equal colour in a row become one rectangle.
    uint32_t c = 0;
    while (c < m.cols) {
      uint32_t v = m.at(r, c);
      if (v == 0) {
        ++c;
        continue;
      }
      Rgb col = colour(v, m.max_cell);
      uint32_t e = c + 1;
      while (e < m.cols && m.at(r, e) != 0) {
        Rgb n = colour(m.at(r, e), m.max_cell);
        if (n.r != col.r || n.g != col.g || n.b != col.b) break;
        ++e;
      }
      std::snprintf(b, sizeof(b), "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\"/>\n",
                    l.left + c * l.cw, y_base - (r + 1) * l.ch, (e - c) * l.cw, l.ch, col.r, col.g, col.b);
      s += b;
      c = e;
    }
  }
  s += "</g>\n";
  for (int y : d.seg_lines) {
    std::snprintf(b, sizeof(b), "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"white\" stroke-dasharray=\"4,3\"/>\n",
                  l.left - 4, y, l.left + l.plot_w, y);
    s += b;
  }
  for (int x : d.ticks) {
    std::snprintf(b, sizeof(b), "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x, y_base, x, y_base + 5);
    s += b;
  }
  std::snprintf(b, sizeof(b), "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n",
                l.left, l.top, l.plot_w, l.plot_h);
  s += b;
  // Colour bar.
  for (int i = 0; i < 64; ++i) {
    double f = i / 63.0;
    uint64_t v = static_cast<uint64_t>(std::expm1(f * std::log1p(static_cast<double>(std::max<uint64_t>(m.max_cell, 1)))));
    Rgb col = colour(std::max<uint64_t>(v, 1), m.max_cell);
    double h = l.plot_h / 64.0;
    std::snprintf(b, sizeof(b), "<rect x=\"%d\" y=\"%.1f\" width=\"18\" height=\"%.1f\" fill=\"#%02x%02x%02x\"/>\n",
                  l.left + l.plot_w + 14, y_base - (i + 1) * h, h + 0.5, col.r, col.g, col.b);
    s += b;
  }
  for (const auto& lab : d.labels) {
    std::snprintf(b, sizeof(b), "<text x=\"%d\" y=\"%d\"%s>", lab.x, lab.y, lab.right_align ? " text-anchor=\"end\"" : "");
    s += b;
    s += xml_escape(lab.text) + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

std::vector<uint8_t> heatmap_png(const HeatmapMatrix& m, const ProfileInfo& info, const std::string& title) {
  Layout l = layout(m);
  Decor d = decor(m, l, info, title);
  Canvas cv(l.width(), l.height());
  const Rgb black{0, 0, 0}, white{255, 255, 255};
  const int y_base = l.top + l.plot_h;
  cv.rect(l.left, l.top, l.plot_w, l.plot_h, colour(0, 1));
  for (uint32_t r = 0; r < m.rows; ++r)
    for (uint32_t c = 0; c < m.cols; ++c)
      if (uint32_t v = m.at(r, c)) cv.rect(l.left + c * l.cw, y_base - (r + 1) * l.ch, l.cw, l.ch, colour(v, m.max_cell));
  for (int y : d.seg_lines)
    for (int x = l.left - 4; x < l.left + l.plot_w; ++x)
      if ((x / 4) % 2 == 0) cv.set(x, y, white);
  for (int x : d.ticks) cv.rect(x, y_base, 1, 5, black);
  for (int x = l.left; x <= l.left + l.plot_w; ++x) cv.set(x, l.top, black), cv.set(x, y_base, black);
  for (int y = l.top; y <= y_base; ++y) cv.set(l.left, y, black), cv.set(l.left + l.plot_w, y, black);
  for (int i = 0; i < 64; ++i) {
    double f = i / 63.0;
    uint64_t v = static_cast<uint64_t>(std::expm1(f * std::log1p(static_cast<double>(std::max<uint64_t>(m.max_cell, 1)))));
    double h = l.plot_h / 64.0;
    cv.rect(l.left + l.plot_w + 14, y_base - (i + 1) * h, 18, h + 1, colour(std::max<uint64_t>(v, 1), m.max_cell));
  }
  for (const auto& lab : d.labels) cv.text(lab.right_align ? lab.x - cv.text_width(lab.text) : lab.x, lab.y, lab.text, black);

  std::vector<uint8_t> raw;
  raw.reserve(static_cast<size_t>(cv.h) * (cv.w * 3 + 1));
  for (int y = 0; y < cv.h; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), cv.px.begin() + static_cast<long>(y) * cv.w * 3, cv.px.begin() + static_cast<long>(y + 1) * cv.w * 3);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(zlen);
  compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6);
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  uint8_t ihdr[13];
  auto put32 = [](uint8_t* p, uint32_t v) {
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
  };
  put32(ihdr, static_cast<uint32_t>(cv.w));
  put32(ihdr + 4, static_cast<uint32_t>(cv.h));
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;  // 8-bit RGB
  png_chunk(out, "IHDR", ihdr, sizeof(ihdr));
  png_chunk(out, "IDAT", z.data(), zlen);
  png_chunk(out, "IEND", nullptr, 0);
  return out;
}

}  // namespace mb::prof
