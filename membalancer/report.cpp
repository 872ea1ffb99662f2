#include "membalancer/report.h"

#include <cinttypes>
#include <cmath>

#include "membalancer/json.h"

namespace mb {

const char* counter_name(int c) {
  switch (c) {
    case MB_CTR_SAMPLES: return "samples";
    case MB_CTR_ACCEPTED: return "accepted";
    case MB_CTR_FILTERED: return "filtered";
    case MB_CTR_NO_ADDRESS: return "no_address";
    case MB_CTR_KERNEL_ADDRESS: return "kernel_address";
    case MB_CTR_PAGE_TABLE_FULL: return "dropped_page_table_full";
    case MB_CTR_TASK_TABLE_FULL: return "dropped_task_table_full";
    case MB_CTR_TRACKED_FULL: return "dropped_tracked_full";
    case MB_CTR_EVENTS_LOST: return "dropped_process_events";
    case MB_CTR_SAMPLES_LOST: return "dropped_sample_records";
    case MB_CTR_LANE_SATURATED: return "lane_saturated";
    case MB_CTR_LANE_NONE: return "lane_none";
    case MB_CTR_NODE_OUT_OF_RANGE: return "node_out_of_range";
    case MB_CTR_DECODE_INVALID: return "decode_invalid";
  }
  return "unknown";
}

uint64_t dropped_total(const std::array<uint64_t, MB_NR_COUNTERS>& c) {
  return c[MB_CTR_PAGE_TABLE_FULL] + c[MB_CTR_TASK_TABLE_FULL] + c[MB_CTR_TRACKED_FULL] + c[MB_CTR_EVENTS_LOST] +
         c[MB_CTR_SAMPLES_LOST];
}

std::string format_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", b);
  else std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

std::string format_hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

static std::string node_label(int node) { return node < 0 ? std::string("?") : std::to_string(node); }

static double share(uint64_t part, uint64_t whole) { return whole ? 100.0 * part / whole : 0.0; }

Reporter::Reporter(Display display, FILE* out, bool tty) : display_(display), out_(out), tty_(tty) {}

void Reporter::interval(const IntervalReport& r) {
  switch (display_) {
    case Display::kHistogram: histogram(r); break;
    case Display::kContinuous: continuous(r); break;
    case Display::kJson: json(r); break;
  }
  std::fflush(out_);
}

void Reporter::histogram(const IntervalReport& r) {
  if (tty_) std::fputs("\033[H\033[2J", out_);  // redraw one page
  std::fprintf(out_, "membalancer trace  interval %u  %.1f s  sampler %s\n", r.interval, r.elapsed_s,
               r.sampler.c_str());
  std::fprintf(out_, "samples %" PRIu64 "  accepted %" PRIu64 "  filtered %" PRIu64 "  dropped %" PRIu64
                     "  processes %" PRIu64 "  pages %" PRIu64 " (%" PRIu64 " this interval)\n\n",
               r.counters[MB_CTR_SAMPLES], r.counters[MB_CTR_ACCEPTED], r.counters[MB_CTR_FILTERED], r.dropped,
               r.tracked_processes, r.table_pages, r.pages_this_interval);
  std::fprintf(out_, "ACCESSES BY MEMORY NODE\n");
  const int width = 50;
  for (const auto& n : r.nodes) {
    double pct = share(n.accesses, r.accesses_this_interval);
    int bar = static_cast<int>(std::lround(pct / 100.0 * width));
    std::fprintf(out_, "  node %-3s %6.1f%% |%s%*s| %" PRIu64 " accesses, %" PRIu64 " pages\n",
                 node_label(n.node).c_str(), pct, std::string(bar, '#').c_str(), width - bar, "", n.accesses,
                 n.pages);
  }
  if (r.nodes.empty()) std::fprintf(out_, "  (no accesses this interval)\n");
  if (!r.cpu_nodes.empty()) {
    uint64_t total = 0;
    for (const auto& n : r.cpu_nodes) total += n.accesses;
    std::fprintf(out_, "\nACCESSES BY CPU NODE\n");
    for (const auto& n : r.cpu_nodes) {
      double pct = share(n.accesses, total);
      int bar = static_cast<int>(std::lround(pct / 100.0 * width));
      std::fprintf(out_, "  node %-3s %6.1f%% |%s%*s| %" PRIu64 " accesses\n", node_label(n.node).c_str(), pct,
                   std::string(bar, '#').c_str(), width - bar, "", n.accesses);
    }
  }
  std::fprintf(out_, "\nHOTTEST REGIONS\n");
  for (const auto& g : r.hottest)
    std::fprintf(out_, "  pid %-7u %-15s %18s  %9s  %6" PRIu64 " pages  heat %8.1f  node %s\n", g.pid,
                 g.comm.c_str(), format_hex(g.start).c_str(), format_bytes(g.bytes).c_str(), g.pages, g.heat,
                 node_label(g.node).c_str());
  if (r.hottest.empty()) std::fprintf(out_, "  (none yet)\n");
  if (!tty_) std::fputc('\n', out_);
}

void Reporter::continuous(const IntervalReport& r) {
  if (!header_done_) {
    std::fprintf(out_, "%8s %6s %10s %10s %8s %6s %9s %9s  %s\n", "time_s", "intvl", "samples", "accepted", "dropped",
                 "procs", "pages", "touched", "node shares / hottest region");
    header_done_ = true;
  }
  std::string shares;
  for (const auto& n : r.nodes) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "N%s=%.0f%% ", node_label(n.node).c_str(), share(n.accesses, r.accesses_this_interval));
    shares += buf;
  }
  std::string hot = "-";
  if (!r.hottest.empty()) {
    const auto& g = r.hottest.front();
    hot = std::to_string(g.pid) + ":" + format_hex(g.start) + "+" + format_bytes(g.bytes);
  }
  std::fprintf(out_, "%8.1f %6u %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %6" PRIu64 " %9" PRIu64 " %9" PRIu64 "  %s| %s\n",
               r.elapsed_s, r.interval, r.counters[MB_CTR_SAMPLES], r.counters[MB_CTR_ACCEPTED], r.dropped,
               r.tracked_processes, r.table_pages, r.pages_this_interval, shares.c_str(), hot.c_str());
}

static void json_nodes(JsonWriter& w, const std::vector<NodeAccesses>& nodes, uint64_t total) {
  w.key("nodes").begin_array();
  for (const auto& n : nodes) {
    w.begin_object();
    w.key("node");
    if (n.node < 0) w.value("unknown");
    else w.value(n.node);
    w.field("accesses", n.accesses).field("pages", n.pages).field("share", share(n.accesses, total) / 100.0);
    w.end_object();
  }
  w.end_array();
}

static void json_counters(JsonWriter& w, const std::array<uint64_t, MB_NR_COUNTERS>& c) {
  w.key("counters").begin_object();
  for (int i = 0; i < MB_NR_COUNTERS; ++i) w.field(counter_name(i), c[i]);
  w.end_object();
}

void Reporter::json(const IntervalReport& r) {
  JsonWriter w;
  w.begin_object();
  w.field("type", "interval").field("interval", r.interval).field("time_s", r.elapsed_s).field("sampler", r.sampler);
  w.field("samples", r.counters[MB_CTR_SAMPLES]).field("accepted", r.counters[MB_CTR_ACCEPTED]);
  w.field("dropped", r.dropped).field("tracked_processes", r.tracked_processes);
  w.field("table_pages", r.table_pages).field("pages_this_interval", r.pages_this_interval);
  w.field("accesses_this_interval", r.accesses_this_interval).field("exited_processes", r.exited_processes);
  w.field("table_dropped_full", r.table_dropped_full);
  json_counters(w, r.counters);
  json_nodes(w, r.nodes, r.accesses_this_interval);
  w.field("threads", r.threads);
  w.key("cpu_nodes").begin_array();
  for (const auto& n : r.cpu_nodes) w.begin_object().field("node", n.node).field("accesses", n.accesses).end_object();
  w.end_array();
  w.key("processes").begin_array();
  for (const auto& p : r.processes)
    w.begin_object()
        .field("pid", p.pid)
        .field("comm", p.comm)
        .field("pages", p.pages)
        .field("accesses", p.accesses)
        .field("heat", p.heat)
        .end_object();
  w.end_array();
  w.key("hottest_regions").begin_array();
  for (const auto& g : r.hottest) {
    w.begin_object().field("pid", g.pid).field("comm", g.comm).field("start", format_hex(g.start));
    w.field("bytes", g.bytes).field("pages", g.pages).field("heat", g.heat).key("node");
    if (g.node < 0) w.value("unknown");
    else w.value(g.node);
    w.end_object();
  }
  w.end_array();
  w.key("accessed_ranges").begin_array();
  for (const auto& a : r.ranges)
    w.begin_object().field("pid", a.pid).field("start", format_hex(a.start)).field("end", format_hex(a.end)).end_object();
  w.end_array();
  w.field("accessed_ranges_truncated", r.ranges_truncated);
  w.end_object();
  std::fprintf(out_, "%s\n", w.str().c_str());
}

void Reporter::summary(const Summary& s) {
  uint64_t total = 0;
  for (const auto& n : s.nodes) total += n.accesses;
  if (display_ == Display::kJson) {
    JsonWriter w;
    w.begin_object();
    w.field("type", "summary").field("time_s", s.elapsed_s).field("intervals", s.intervals).field("sampler", s.sampler);
    w.field("dropped", s.dropped).field("processes_seen", s.processes_seen).field("processes_exited", s.processes_exited);
    w.field("table_pages", s.table_pages).field("table_dropped_full", s.table_dropped_full);
    w.field("node_queries", s.node_queries).field("node_query_failures", s.node_query_failures);
    json_counters(w, s.counters);
    json_nodes(w, s.nodes, total);
    w.end_object();
    std::fprintf(out_, "%s\n", w.str().c_str());
    std::fflush(out_);
    return;
  }
  std::fprintf(out_, "\nSUMMARY  %.1f s, %u intervals, sampler %s\n", s.elapsed_s, s.intervals, s.sampler.c_str());
  std::fprintf(out_, "  samples %" PRIu64 ", accepted %" PRIu64 ", filtered %" PRIu64 ", no address %" PRIu64 "\n",
               s.counters[MB_CTR_SAMPLES], s.counters[MB_CTR_ACCEPTED], s.counters[MB_CTR_FILTERED],
               s.counters[MB_CTR_NO_ADDRESS]);
  std::fprintf(out_, "  dropped %" PRIu64 " (page table full %" PRIu64 ", task table full %" PRIu64
                     ", process set full %" PRIu64 ", events lost %" PRIu64 "), user table full %" PRIu64 "\n",
               s.dropped, s.counters[MB_CTR_PAGE_TABLE_FULL], s.counters[MB_CTR_TASK_TABLE_FULL],
               s.counters[MB_CTR_TRACKED_FULL], s.counters[MB_CTR_EVENTS_LOST], s.table_dropped_full);
  std::fprintf(out_, "  processes seen %" PRIu64 ", exited %" PRIu64 ", pages in table %" PRIu64
                     ", node queries %" PRIu64 " (%" PRIu64 " failed)\n",
               s.processes_seen, s.processes_exited, s.table_pages, s.node_queries, s.node_query_failures);
  for (const auto& n : s.nodes)
    std::fprintf(out_, "  node %-3s %6.1f%% of accesses (%" PRIu64 ")\n", node_label(n.node).c_str(),
                 share(n.accesses, total), n.accesses);
  std::fflush(out_);
}

}  // namespace mb
