#include "profiler/heatmap.h"
#include "profiler/text.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "membalancer/report.h"
#include "profiler/process_keys.h"
#include "profiler/raster.h"

namespace mb::prof {

namespace {

using SampleSource = std::function<void(const std::function<void(const mb_sample*, size_t)>&)>;

// The row of addr in the segments of the process key owning its page
// (ProcessKeys::page_owner), or -1.
int row_in(const HeatmapMatrix& m, uint32_t key, uint64_t addr) {
  const ProcessKeys::Who w = m.keys->who(m.keys->page_owner(key, addr));
  auto it = std::upper_bound(m.segments.begin(), m.segments.end(), std::make_tuple(w.tgid, w.span, w.part, addr),
                             [](const std::tuple<uint32_t, int64_t, uint32_t, uint64_t>& k, const HeatmapSegment& s) {
                               return k < std::make_tuple(s.tgid, s.span, s.part, s.start);
                             });
  if (it == m.segments.begin()) return -1;
  --it;
  if (it->tgid != w.tgid || it->span != w.span || it->part != w.part || addr >= it->end) return -1;
  return static_cast<int>(it->row_first + (addr - it->start) / m.bytes_per_row);
}

// "pid 7 app", and when it started ("from 1.250s") where several programs
// of the pid are drawn: a reused pid, or a process before and after an exec;
// and the mapping at its start where several parts of the program are: a
// library swapped at the same address.
void label_segments(HeatmapMatrix& m, const ProfileInfo* info) {
  std::map<uint32_t, std::set<int64_t>> spans_of;  // tgid -> its spans drawn
  std::map<std::pair<uint32_t, int64_t>, std::set<uint32_t>> parts_of;  // (tgid, span) -> its parts drawn
  for (const auto& s : m.segments) spans_of[s.tgid].insert(s.span), parts_of[{s.tgid, s.span}].insert(s.part);
  for (auto& s : m.segments) {
    s.who = "pid " + std::to_string(s.tgid);
    if (!m.procs) continue;
    const std::string name = s.span >= 0 ? m.procs->label(static_cast<size_t>(s.span)) : "";
    if (!name.empty()) s.who += " " + name;
    if (s.span >= 0 && spans_of[s.tgid].size() > 1) {
      const uint64_t t0 = info ? info->start_monotonic_ns : 0;
      char when[40];
      std::snprintf(when, sizeof when, " from %.3fs",
                    (std::max(m.procs->started_ns(static_cast<size_t>(s.span)), t0) - t0) / 1e9);
      s.who += when;
    }
    if (parts_of[{s.tgid, s.span}].size() > 1)
      s.who += " " + ProfileProcesses::mapping_kind(m.keys->mapping(s.key, s.start));
  }
}

HeatmapMatrix build(const SampleSource& source, const HeatmapOptions& opts, ProcessKeys process_keys,
                    const ProfileInfo* info) {
  HeatmapMatrix m;
  auto shared_keys = std::make_shared<ProcessKeys>(std::move(process_keys));
  ProcessKeys& keys = *shared_keys;
  m.keys = shared_keys;
  m.procs = keys.shared_procs();
  m.cols = std::max<uint32_t>(opts.cols, 1);
  auto wanted = [&](const mb_sample& s) { return (s.flags & MB_ACC_VADDR) && (!opts.pid || s.tgid == opts.pid); };
  // Pass 1: the accessed pages of each process key (a part of a program
  // run) and the time span.
  std::vector<uint64_t> pages;  // mb_page_key(process key, vpn)
  std::map<uint32_t, uint64_t> per_process;  // program (its first process key) -> samples
  uint64_t t0 = UINT64_MAX, t1 = 0;
  source([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!wanted(s[i])) continue;
      const uint32_t key = keys.key(s[i].tgid, s[i].time_ns);
      ++per_process[keys.who(key).program];
      pages.push_back(mb_page_key(key, s[i].vaddr >> MB_PAGE_SHIFT));
      t0 = std::min<uint64_t>(t0, s[i].time_ns);
      t1 = std::max<uint64_t>(t1, s[i].time_ns);
    }
    // Keep memory bounded on long files: dedup as we go.
    if (pages.size() > (size_t{1} << 24)) {
      std::sort(pages.begin(), pages.end());
      pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
    }
  });
  // Each page under the part it counts in, as the report counts it.
  if (keys.any_split())
    for (uint64_t& p : pages)
      p = mb_page_key(keys.page_owner(mb_key_tgid(p), mb_key_vpn(p) << MB_PAGE_SHIFT), mb_key_vpn(p));
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  if (pages.empty()) {
    m.rows = 0;
    return m;
  }
  m.t0_ns = t0;
  m.t1_ns = t1 + 1;
  const uint32_t want_rows = std::max<uint32_t>(opts.rows, 8);
  auto order = [&](uint32_t key) {  // processes are drawn by pid, a pid's programs and their parts in time order
    const ProcessKeys::Who w = keys.who(key);
    return std::make_tuple(w.tgid, w.span, w.part);
  };
  // Each process takes at least a row: with more processes than rows, the
  // ones with the most samples are drawn (at most half the rows), the rest
  // counted as hidden rather than stretching the picture past --height.
  if (per_process.size() > want_rows / 2) {
    std::vector<std::pair<uint64_t, uint32_t>> by_samples;  // (samples, process key)
    for (const auto& [key, n] : per_process) by_samples.push_back({n, key});
    std::sort(by_samples.begin(), by_samples.end(), [&](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : order(a.second) < order(b.second);
    });
    std::set<uint32_t> shown;
    for (size_t i = 0; i < by_samples.size(); ++i) {
      if (i < want_rows / 2) {
        shown.insert(by_samples[i].second);
      } else {
        ++m.hidden_processes;
        m.hidden_samples += by_samples[i].first;
      }
    }
    pages.erase(std::remove_if(pages.begin(), pages.end(),
                               [&](uint64_t k) { return !shown.count(keys.who(mb_key_tgid(k)).program); }),
                pages.end());
  }
  // Segments: runs of accessed pages of one process key; a gap of more than
  // `gap` pages starts a new one. Widened until the segments are few.
  std::vector<HeatmapSegment> segs;
  uint64_t gap = 256;  // 1 MiB
  for (;;) {
    segs.clear();
    uint32_t last_key = 0;
    for (size_t i = 0; i < pages.size(); ++i) {
      const uint32_t key = mb_key_tgid(pages[i]);
      const uint64_t vpn = mb_key_vpn(pages[i]);
      if (!segs.empty() && key == last_key && vpn - (segs.back().end >> MB_PAGE_SHIFT) <= gap) {
        segs.back().end = (vpn + 1) << MB_PAGE_SHIFT;
        continue;
      }
      const auto [tgid, span, part] = order(key);
      segs.push_back({tgid, span, part, key, vpn << MB_PAGE_SHIFT, (vpn + 1) << MB_PAGE_SHIFT, 0, 0, ""});
      last_key = key;
    }
    uint64_t total = 0;
    for (const auto& s : segs) total += (s.end - s.start) >> MB_PAGE_SHIFT;
    // Few enough segments, and no gap kept that is smaller than a row.
    if (segs.size() <= want_rows / 6 + 1 && gap >= total / want_rows) break;
    gap *= 2;
    if (gap > (1ULL << 40)) break;
  }
  std::sort(segs.begin(), segs.end(), [](const HeatmapSegment& a, const HeatmapSegment& b) {
    return std::tie(a.tgid, a.span, a.part, a.start) < std::tie(b.tgid, b.span, b.part, b.start);
  });
  uint64_t total_pages = 0;
  for (const auto& s : segs) total_pages += (s.end - s.start) >> MB_PAGE_SHIFT;
  const uint64_t ppr = std::max<uint64_t>(1, (total_pages + want_rows - 1) / want_rows);
  m.bytes_per_row = ppr << MB_PAGE_SHIFT;
  uint32_t row = 0;
  for (auto& s : segs) {
    uint64_t seg_pages = (s.end - s.start) >> MB_PAGE_SHIFT;
    s.row_first = row;
    s.rows = static_cast<uint32_t>((seg_pages + ppr - 1) / ppr);
    row += s.rows;
  }
  m.rows = row;
  m.segments = std::move(segs);
  label_segments(m, info);
  m.cells.assign(static_cast<size_t>(m.rows) * m.cols, 0);
  // Pass 2: count.
  const double span = static_cast<double>(m.t1_ns - m.t0_ns);
  source([&](const mb_sample* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!wanted(s[i])) continue;
      int r = row_in(m, keys.key(s[i].tgid, s[i].time_ns), s[i].vaddr);
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

int HeatmapMatrix::row_of(uint32_t tgid, uint64_t addr, uint64_t time_ns) const {
  if (!keys) return -1;
  const int64_t key = keys->find(tgid, time_ns);
  return key < 0 ? -1 : row_in(*this, static_cast<uint32_t>(key), addr);
}

HeatmapMatrix build_heatmap(ProfileReader& reader, const HeatmapOptions& opts) {
  return build([&](const std::function<void(const mb_sample*, size_t)>& fn) { reader.for_each_batch(fn); }, opts,
               ProcessKeys(std::make_shared<ProfileProcesses>(reader.info()), true), &reader.info());
}

HeatmapMatrix build_heatmap(const std::vector<mb_sample>& samples, const HeatmapOptions& opts, const ProfileInfo* info) {
  return build([&](const std::function<void(const mb_sample*, size_t)>& fn) { fn(samples.data(), samples.size()); },
               opts, info ? ProcessKeys(std::make_shared<ProfileProcesses>(*info), true) : ProcessKeys(), info);
}

// ---- layout shared by SVG and PNG -------------------------------------------------

namespace {

const Rgb kStops[] = {{48, 18, 59}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};

}  // namespace

Rgb heatmap_colour(uint64_t v, uint64_t max) {
  // No access: the bottom of the scale, whatever the maximum (with max <= 1
  // the log ratio below would otherwise make it the top colour).
  if (v == 0) return kStops[0];
  double x = max > 1 ? std::log1p(static_cast<double>(v)) / std::log1p(static_cast<double>(max)) : 1.0;
  x = std::clamp(x, 0.0, 1.0) * 4;
  int i = std::min(static_cast<int>(x), 3);
  double f = x - i;
  auto mix = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(a + (b - a) * f + 0.5); };
  return {mix(kStops[i].r, kStops[i + 1].r), mix(kStops[i].g, kStops[i + 1].g), mix(kStops[i].b, kStops[i + 1].b)};
}

HeatmapLayout heatmap_layout(const HeatmapMatrix& m) {
  HeatmapLayout l;
  // Room on the left for the longest "pid 7 name from 1.250s 0x7f0000000000"
  // (about 7 px a character in the SVG's 11 px monospace, 6 in the PNG's font).
  for (const auto& s : m.segments)
    l.left = std::clamp(static_cast<int>(printable(s.who).size() + 1 + format_hex(s.start).size()) * 7 + 12, l.left, 600);
  l.cw = static_cast<double>(l.plot_w) / std::max<uint32_t>(m.cols, 1);
  l.ch = std::max(1.0, std::min(6.0, 480.0 / std::max<uint32_t>(m.rows, 1)));
  l.plot_h = static_cast<int>(std::ceil(l.ch * std::max<uint32_t>(m.rows, 1)));
  return l;
}

namespace {

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

Decor decor(const HeatmapMatrix& m, const HeatmapLayout& l, const ProfileInfo& info, const std::string& title) {
  Decor d;
  d.labels.push_back({l.left, 16, title, false});
  const int y_base = l.top + l.plot_h;
  int last_label_y = 1 << 30;
  const HeatmapSegment* named = nullptr;  // the last segment whose program was written
  for (const auto& s : m.segments) {
    int y0 = y_base - static_cast<int>(s.row_first * l.ch);
    int y1 = y_base - static_cast<int>((s.row_first + s.rows) * l.ch);
    if (s.row_first > 0) d.seg_lines.push_back(y0);
    const bool tall = y0 - y1 >= 36;
    // A label is written once, at the first of its ranges with room.
    const bool named_already = named && named->who == s.who;
    if (last_label_y - (y0 - 2) >= 11) {  // room for the start address
      const bool name_here = !tall && !named_already;
      d.labels.push_back({l.left - 6, y0 - 2, (name_here ? s.who + " " : "") + format_hex(s.start), true});
      last_label_y = y0 - 2;
      if (name_here) named = &s;
    }
    if (tall) {
      d.labels.push_back({l.left - 6, y1 + 9, s.who, true});
      d.labels.push_back({l.left - 6, (y0 + y1) / 2 + 4, "+" + format_bytes(s.end - s.start), true});
      last_label_y = y1 + 9;
      named = &s;
    }
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

}  // namespace

std::string heatmap_svg(const HeatmapMatrix& m, const ProfileInfo& info, const std::string& title) {
  HeatmapLayout l = heatmap_layout(m);
  Decor d = decor(m, l, info, title);
  std::string s;
  char b[256];
  std::snprintf(b, sizeof(b),
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                l.width(), l.height(), l.width(), l.height());
  s += b;
  const Rgb bg = heatmap_colour(0, m.max_cell);
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
      Rgb col = heatmap_colour(v, m.max_cell);
      uint32_t e = c + 1;
      while (e < m.cols && m.at(r, e) != 0) {
        Rgb n = heatmap_colour(m.at(r, e), m.max_cell);
        if (n != col) break;
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
    Rgb col = heatmap_colour(std::max<uint64_t>(v, 1), m.max_cell);
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
  HeatmapLayout l = heatmap_layout(m);
  Decor d = decor(m, l, info, title);
  Canvas cv(l.width(), l.height());
  const Rgb black{0, 0, 0}, white{255, 255, 255};
  const int y_base = l.top + l.plot_h;
  cv.fill_rect(l.left, l.top, l.plot_w, l.plot_h, heatmap_colour(0, m.max_cell));
  for (uint32_t r = 0; r < m.rows; ++r)
    for (uint32_t c = 0; c < m.cols; ++c)
      if (uint32_t v = m.at(r, c)) cv.fill_rect(l.left + c * l.cw, y_base - (r + 1) * l.ch, l.cw, l.ch, heatmap_colour(v, m.max_cell));
  for (int y : d.seg_lines) cv.line({l.left - 4.0, y + 0.5}, {l.left + l.plot_w - 0.5, y + 0.5}, white, 1, {4, 4});
  for (int x : d.ticks) cv.fill_rect(x, y_base, 1, 5, black);
  cv.frame(l.left, l.top, l.plot_w, l.plot_h, black);
  for (int i = 0; i < 64; ++i) {
    double f = i / 63.0;
    uint64_t v = static_cast<uint64_t>(std::expm1(f * std::log1p(static_cast<double>(std::max<uint64_t>(m.max_cell, 1)))));
    double h = l.plot_h / 64.0;
    cv.fill_rect(l.left + l.plot_w + 14, y_base - (i + 1) * h, 18, h + 1, heatmap_colour(std::max<uint64_t>(v, 1), m.max_cell));
  }
  for (const auto& lab : d.labels)
    cv.text(lab.right_align ? lab.x - Canvas::text_width(lab.text) : lab.x, lab.y, lab.text, black);
  return cv.png();
}

}  // namespace mb::prof
