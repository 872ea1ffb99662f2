#include "membalancer/report.h"

#include <cinttypes>
#include <cmath>
#include <cstring>

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
    case MB_CTR_ABIT_REFUSED: return "dropped_abit_refused";
  }
  return "unknown";
}

uint64_t dropped_total(const std::array<uint64_t, MB_NR_COUNTERS>& c) {
  return c[MB_CTR_PAGE_TABLE_FULL] + c[MB_CTR_TASK_TABLE_FULL] + c[MB_CTR_TRACKED_FULL] + c[MB_CTR_EVENTS_LOST] +
         c[MB_CTR_SAMPLES_LOST] + c[MB_CTR_ABIT_REFUSED];
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

std::string describe_topology(const Topology& topo) {
  std::string s = "topology: " + std::to_string(topo.nodes.size()) + " node(s)\n";
  for (const auto& n : topo.nodes) {
    std::string cpus;
    for (size_t i = 0; i < n.cpus.size(); ++i) cpus += (i ? "," : "") + std::to_string(n.cpus[i]);
    std::string dist;
    for (auto& [to, d] : n.distance) dist += (dist.empty() ? "" : " ") + std::to_string(to) + ":" + std::to_string(d);
    s += "  node " + std::to_string(n.id) + ": cpus " + (cpus.empty() ? "none" : cpus) + ", memory " +
         format_bytes(n.mem_total_bytes) + " (" + format_bytes(n.mem_free_bytes) + " free), distances " +
         (dist.empty() ? "-" : dist) + "\n";
  }
  if (topo.kernel_tiers.empty()) s += "  kernel memory tiers: none\n";
  for (const auto& t : topo.kernel_tiers) {
    std::string nodes;
    for (int n : t.nodes) nodes += (nodes.empty() ? "" : ",") + std::to_string(n);
    s += "  kernel memory tier " + std::to_string(t.id) + ": nodes " + nodes + "\n";
  }
  return s;
}

void Reporter::topology(const Topology& topo) {
  if (display_ != Display::kJson) return;
  JsonWriter w;
  w.begin_object().field("type", "topology").key("nodes").begin_array();
  for (const auto& n : topo.nodes) {
    w.begin_object().field("node", n.id).key("cpus").begin_array();
    for (int c : n.cpus) w.value(c);
    w.end_array().field("mem_total_bytes", n.mem_total_bytes).field("mem_free_bytes", n.mem_free_bytes);
    w.key("distances").begin_object();
    for (auto& [to, d] : n.distance) w.field(std::to_string(to), d);
    w.end_object().end_object();
  }
  w.end_array().key("kernel_tiers").begin_array();
  for (const auto& t : topo.kernel_tiers) {
    w.begin_object().field("tier", t.id).key("nodes").begin_array();
    for (int n : t.nodes) w.value(n);
    w.end_array().end_object();
  }
  w.end_array().end_object();
  std::fprintf(out_, "%s\n", w.str().c_str());
  std::fflush(out_);
}

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
  std::fprintf(out_, "membalancer %s  interval %u  %.1f s  sampler %s\n",
               r.thread_balance ? r.thread_balance->mode.c_str() : r.migration ? r.migration->mode.c_str() : "trace", r.interval, r.elapsed_s, r.sampler.c_str());
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
  if (r.thread_balance) thread_text(*r.thread_balance, false);
  if (r.migration) migration_text(*r.migration, false);
  if (!tty_) std::fputc('\n', out_);
}

static std::string failures_text(const MoveCounts& c) {
  std::string s;
  for (auto& [err, n] : c.failed_by_errno) s += (s.empty() ? "" : " ") + move_failure_name(err) + "=" + std::to_string(n);
  return s.empty() ? "-" : s;
}

// "; not attempted 500 (queue full 200, abandoned 300)", "" when every
// page was attempted: with it requested = moved + failed + this.
static std::string unattempted_text(const MoveCounts& c) {
  const uint64_t n = c.dropped_queue_full + c.abandoned + c.cancelled_exec;
  if (!n) return "";
  std::string parts;
  for (auto [what, v] : {std::pair<const char*, uint64_t>{"queue full", c.dropped_queue_full},
                         {"abandoned", c.abandoned}, {"cancelled at exec", c.cancelled_exec}})
    if (v) parts += (parts.empty() ? "" : ", ") + std::string(what) + " " + std::to_string(v);
  return "; not attempted " + std::to_string(n) + " (" + parts + ")";
}

// "full targets: node 1 refused 512 pages (marked 1 time, full now), skipped 0; node 2 took 512 in place of a full node"
static std::string target_full_text(const MoverStats& s) {
  std::string out;
  for (const auto& [node, f] : s.target_full) {
    std::string piece = "node " + std::to_string(node);
    if (f.marks)
      piece += " refused " + std::to_string(f.refused) + " pages (marked " + std::to_string(f.marks) +
               (f.marks == 1 ? " time" : " times") + (f.full ? ", full now" : "") + "), skipped " +
               std::to_string(f.skipped) + (f.taken ? "," : "");
    if (f.taken) piece += " took " + std::to_string(f.taken) + " in place of a full node";
    out += (out.empty() ? "full targets: " : "; ") + piece;
  }
  return out;
}

static std::string rate_text(uint64_t bytes, double seconds) {
  return seconds > 0 ? format_bytes(static_cast<uint64_t>(bytes / seconds)) + "/s" : "-";
}

void Reporter::migration_text(const MigrationReport& m, bool summary) {
  std::fprintf(out_, "\nMIGRATION  %s, %s\n", m.mode.c_str(),
               m.dry_run   ? "dry run: plans committed as if done, nothing is moved"
               : m.migrate ? "moving pages (--migrate)"
                           : "report only: nothing is moved (add --migrate)");
  if (m.dry_run)
    std::fprintf(out_, "  dry run: %" PRIu64 " pages applied, %" PRIu64 " refused (no room)\n",
                 m.dry_run_applied_pages, m.dry_run_refused_pages);
  if (!m.tiers.empty()) std::fprintf(out_, "  tiers %s\n", m.tiers.c_str());
  if (!summary) {
    std::fprintf(out_, "  this interval: %s %" PRIu64 " promote, %" PRIu64 " demote, %" PRIu64
                       " numa pages (%s); hot from heat %.2f; skipped: cooling %" PRIu64 ", no room %" PRIu64
                       ", not in its cpuset %" PRIu64 ", no gain %" PRIu64 ", over budget %" PRIu64
                       "; never-sampled pages demoted %" PRIu64 "\n",
                 m.migrate ? "planned" : "would move", m.plan_promote_pages, m.plan_demote_pages, m.plan_numa_pages,
                 format_bytes(m.plan.planned_bytes).c_str(), m.plan.hot_threshold, m.plan.cooling, m.plan.no_room,
                 m.plan.not_allowed, m.plan.no_gain, m.plan.over_budget, m.plan.unsampled_demoted);
    if (m.plan.reserve_bytes || m.plan.reserve_withheld_bytes || m.plan.reserve_elsewhere_bytes)
      std::fprintf(out_,
                   "  room for new pages: %s kept free, %s not (the pages there are hotter than new ones), %s not "
                   "(new pages land on other nodes)\n",
                   format_bytes(m.plan.reserve_bytes).c_str(), format_bytes(m.plan.reserve_withheld_bytes).c_str(),
                   format_bytes(m.plan.reserve_elsewhere_bytes).c_str());
  }
  std::fprintf(out_, "  %-9s %10s %10s %10s %10s %12s  %s\n", "direction", "requested", "moved", "failed", "moved",
               "avg rate", "failures by reason");
  for (MoveDirection d : {MoveDirection::kPromote, MoveDirection::kDemote, MoveDirection::kNuma}) {
    MoveCounts c = m.mover.for_direction(d);
    if (!c.requested) continue;
    std::fprintf(out_, "  %-9s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10s %12s  %s%s\n", direction_name(d),
                 c.requested, c.moved, c.failed(), format_bytes(c.bytes_moved).c_str(),
                 rate_text(c.bytes_moved, m.elapsed_s).c_str(), failures_text(c).c_str(),
                 unattempted_text(c).c_str());
  }
  const MoveCounts t = m.mover.total();
  std::fprintf(out_, "  %-9s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10s %12s  queue %" PRIu64
                     " pages, overflowed %" PRIu64 " (%" PRIu64 " pages), abandoned %" PRIu64
                     ", cancelled at exec %" PRIu64 ", throttled %.1f s\n",
               "total", t.requested, t.moved, t.failed(), format_bytes(t.bytes_moved).c_str(),
               rate_text(t.bytes_moved, m.elapsed_s).c_str(), m.queued_pages, m.mover.queue_overflows,
               t.dropped_queue_full, t.abandoned, t.cancelled_exec, m.mover.throttled_s);
  if (!m.mover.target_full.empty()) std::fprintf(out_, "  %s\n", target_full_text(m.mover).c_str());
  if (summary) {
    for (const auto& [key, c] : m.mover.by_key) {
      auto [pid, dir, reason] = key;
      std::fprintf(out_, "  pid %-7d %-8s %-10s requested %" PRIu64 ", moved %" PRIu64 " (%s), failed %" PRIu64
                         " (%s)%s\n",
                   static_cast<int>(pid), direction_name(dir), reason_name(reason), c.requested, c.moved,
                   format_bytes(c.bytes_moved).c_str(), c.failed(), failures_text(c).c_str(),
                   unattempted_text(c).c_str());
    }
  }
  if (!m.tiers_view.empty()) {
    uint64_t total = 0;
    for (const auto& t : m.tiers_view) total += t.accesses;
    std::fprintf(out_, "\n%s\n", summary ? "TIERS (last interval)" : "TIERS");
    const int width = 40;
    for (const auto& t : m.tiers_view) {
      std::string nodes;
      for (int n : t.nodes) nodes += (nodes.empty() ? "" : ",") + std::to_string(n);
      const double pct = share(t.accesses, total);
      const int bar = static_cast<int>(std::lround(pct / 100.0 * width));
      std::fprintf(out_, "  tier %d (nodes %s) %6.1f%% |%s%*s| resident %" PRIu64 " pages, promoted in %" PRIu64
                         ", demoted in %" PRIu64 "\n",
                   t.tier, nodes.c_str(), pct, std::string(bar, '#').c_str(), width - bar, "", t.resident_pages,
                   t.promoted_pages, t.demoted_pages);
    }
  }
}

static std::string skipped_text(const std::map<std::string, uint64_t>& skipped) {
  std::string s;
  for (const auto& [why, n] : skipped) s += (s.empty() ? "" : ", ") + why + " " + std::to_string(n);
  return s.empty() ? "none" : s;
}

void Reporter::thread_text(const ThreadReport& t, bool summary) {
  if (!t.decisions.empty() || !t.autotune_state.empty()) {
    std::fprintf(out_, "\nAUTOTUNE  %s\n", t.autotune_state.c_str());
    for (const auto& d : t.decisions)
      std::fprintf(out_, "  pid %-7d %-7s %s\n", d.pid, d.choice.c_str(), d.why.c_str());
  }
  if (!summary) {
    std::fputc('\n', out_);
    std::fputs(format_node_shares(t.shares, t.threads_moved).c_str(), out_);
    std::fprintf(out_, "  (accesses %s)\n",
                 t.per_thread ? "of each thread, from the sampler" : "by page location, split by threads' CPU time");
  }
  std::fprintf(out_, "\nTHREADS  %s, %s\n", t.mode.c_str(),
               t.migrate ? "moving threads (--migrate)" : "report only: no affinity is changed (add --migrate)");
  if (!summary) {
    std::fprintf(out_, "  this interval: %" PRIu64 " threads, %" PRIu64 " judged, %" PRIu64 " candidates, %" PRIu64
                       " eligible, budget %" PRIu64 "; %s %zu; skipped: %s\n",
                 t.threads, t.judged, t.candidates, t.eligible, t.budget, t.migrate ? "moved" : "would move",
                 t.moves.size(), skipped_text(t.skipped).c_str());
    for (const auto& m : t.moves)
      std::fprintf(out_, "  tid %-7d pid %-7d node %d -> %d  cpus %s  gain %.0f%s\n", m.tid, m.tgid, m.from, m.to,
                   m.cpus.c_str(), m.gain, m.error ? (" failed: " + std::string(strerror(m.error))).c_str() : "");
  }
  std::fprintf(out_,
               "  threads moved %" PRIu64 ", failed %" PRIu64 ", affinities held %" PRIu64 ", exited while moved %" PRIu64
               ", affinity set since by others %" PRIu64 "\n",
               t.threads_moved, t.move_failures, t.affinities_held, t.moved_exited, t.overridden);
  if (summary)
    std::fprintf(out_,
                 "  affinities restored %" PRIu64 ", threads gone %" PRIu64 ", set since by others (left) %" PRIu64
                 ", restore failed %" PRIu64 "%s\n",
                 t.restored, t.restore_gone, t.restore_overridden, t.restore_failed,
                 t.restore_error.empty() ? "" : (" (" + t.restore_error + ")").c_str());
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
  std::string moves;
  if (r.migration) {
    const auto& m = *r.migration;
    const MoveCounts t = m.mover.total();
    char buf[160];
    std::snprintf(buf, sizeof(buf), " | %s +%" PRIu64 "/-%" PRIu64 "/~%" PRIu64 " moved %" PRIu64 " failed %" PRIu64 " queued %" PRIu64,
                  m.migrate ? "plan" : "would", m.plan_promote_pages, m.plan_demote_pages, m.plan_numa_pages, t.moved,
                  t.failed(), m.queued_pages);
    moves = buf;
  }
  if (r.thread_balance) {
    const auto& t = *r.thread_balance;
    std::string cpu, mem;
    for (const auto& n : t.shares) {
      char buf[48];
      std::snprintf(buf, sizeof(buf), "%sN%s=%.0f%%", cpu.empty() ? "" : " ", node_label(n.node).c_str(), n.cpu_share * 100);
      cpu += buf;
      std::snprintf(buf, sizeof(buf), "%sN%s=%.0f%%", mem.empty() ? "" : " ", node_label(n.node).c_str(), n.mem_share * 100);
      mem += buf;
    }
    moves += " | threads cpu " + (cpu.empty() ? std::string("-") : cpu) + " mem " + (mem.empty() ? std::string("-") : mem) +
             " " + (t.migrate ? "move " : "would ") + std::to_string(t.moves.size()) + " moved " +
             std::to_string(t.threads_moved);
  }
  std::fprintf(out_, "%8.1f %6u %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %6" PRIu64 " %9" PRIu64 " %9" PRIu64 "  %s| %s%s\n",
               r.elapsed_s, r.interval, r.counters[MB_CTR_SAMPLES], r.counters[MB_CTR_ACCEPTED], r.dropped,
               r.tracked_processes, r.table_pages, r.pages_this_interval, shares.c_str(), hot.c_str(), moves.c_str());
  if (r.thread_balance && r.thread_balance->decided_now)
    for (const auto& d : r.thread_balance->decisions)
      std::fprintf(out_, "# autotune pid %d: %s: %s\n", d.pid, d.choice.c_str(), d.why.c_str());
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

static void json_counts(JsonWriter& w, const MoveCounts& c) {
  w.field("requested", c.requested).field("moved", c.moved).field("redirected", c.redirected).field("failed", c.failed());
  w.field("bytes_moved", c.bytes_moved).field("dropped_queue_full", c.dropped_queue_full).field("abandoned", c.abandoned);
  w.field("cancelled_exec", c.cancelled_exec);
  w.key("failed_by_reason").begin_object();
  for (auto& [err, n] : c.failed_by_errno) w.field(move_failure_name(err), n);
  w.end_object();
}

static void json_migration(JsonWriter& w, const MigrationReport& m, bool summary) {
  w.key("migration").begin_object();
  w.field("mode", m.mode).field("migrate", m.migrate).field("dry_run", m.dry_run);
  if (m.dry_run)
    w.key("dry_run_pages").begin_object().field("applied", m.dry_run_applied_pages).field("refused", m.dry_run_refused_pages).end_object();
  if (!m.tiers.empty()) w.field("tiers", m.tiers);
  if (!summary) {
    w.key("plan").begin_object();
    w.field("promote_pages", m.plan_promote_pages).field("demote_pages", m.plan_demote_pages);
    w.field("numa_pages", m.plan_numa_pages).field("bytes", m.plan.planned_bytes);
    w.field("candidates", m.plan.candidates).field("hot_threshold", static_cast<double>(m.plan.hot_threshold));
    w.field("cooling", m.plan.cooling).field("no_room", m.plan.no_room).field("not_allowed", m.plan.not_allowed);
    w.field("no_gain", m.plan.no_gain);
    w.field("over_budget", m.plan.over_budget);
    w.field("unsampled_demoted", m.plan.unsampled_demoted);
    w.field("reserve_bytes", m.plan.reserve_bytes).field("reserve_withheld_bytes", m.plan.reserve_withheld_bytes);
    w.field("reserve_elsewhere_bytes", m.plan.reserve_elsewhere_bytes);
    w.end_object();
  }
  w.key("directions").begin_object();
  for (MoveDirection d : {MoveDirection::kPromote, MoveDirection::kDemote, MoveDirection::kNuma}) {
    w.key(direction_name(d)).begin_object();
    const MoveCounts c = m.mover.for_direction(d);
    json_counts(w, c);
    w.field("rate_bytes_per_s", m.elapsed_s > 0 ? c.bytes_moved / m.elapsed_s : 0.0);
    w.end_object();
  }
  w.end_object();
  w.key("by_process").begin_array();
  for (const auto& [key, c] : m.mover.by_key) {
    auto [pid, dir, reason] = key;
    w.begin_object().field("pid", static_cast<int>(pid)).field("direction", direction_name(dir));
    w.field("reason", reason_name(reason));
    json_counts(w, c);
    w.end_object();
  }
  w.end_array();
  w.key("target_full").begin_array();
  for (const auto& [node, f] : m.mover.target_full) {
    w.begin_object().field("node", node).field("refused", f.refused).field("skipped", f.skipped);
    w.field("taken", f.taken).field("marks", f.marks).field("full", f.full).end_object();
  }
  w.end_array();
  w.field("queued_pages", m.queued_pages).field("queue_overflows", m.mover.queue_overflows);
  w.field("move_pages_calls", m.mover.calls).field("throttled_s", m.mover.throttled_s);
  w.key("tiers_view").begin_array();
  uint64_t total = 0;
  for (const auto& t : m.tiers_view) total += t.accesses;
  for (const auto& t : m.tiers_view) {
    w.begin_object().field("tier", t.tier).key("nodes").begin_array();
    for (int n : t.nodes) w.value(n);
    w.end_array();
    w.field("accesses", t.accesses).field("share", share(t.accesses, total) / 100.0);
    w.field("resident_pages", t.resident_pages).field("promoted_pages", t.promoted_pages);
    w.field("demoted_pages", t.demoted_pages).field("hot_threshold", static_cast<double>(t.hot_threshold));
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

static void json_thread(JsonWriter& w, const ThreadReport& t, bool summary) {
  w.key("thread_balance").begin_object();
  w.field("mode", t.mode).field("migrate", t.migrate).field("per_thread", t.per_thread);
  if (!summary) {
    w.key("shares").begin_array();
    for (const auto& n : t.shares) {
      w.begin_object().key("node");
      if (n.node < 0) w.value("unknown");
      else w.value(n.node);
      w.field("cpu_ticks", n.cpu_ticks).field("cpu_share", n.cpu_share);
      w.field("mem_accesses", n.mem_accesses).field("mem_share", n.mem_share).end_object();
    }
    w.end_array();
    w.field("threads", t.threads).field("judged", t.judged).field("candidates", t.candidates);
    w.field("eligible", t.eligible).field("budget", t.budget);
    w.key("moves").begin_array();
    for (const auto& m : t.moves) {
      w.begin_object().field("tid", m.tid).field("pid", m.tgid).field("from", m.from).field("to", m.to);
      w.field("gain", m.gain).field("cpus", m.cpus).field("error", m.error).end_object();
    }
    w.end_array();
    w.key("skipped").begin_object();
    for (const auto& [why, n] : t.skipped) w.field(why, n);
    w.end_object();
  }
  w.field("threads_moved", t.threads_moved).field("move_failures", t.move_failures);
  w.field("affinities_held", t.affinities_held).field("moved_exited", t.moved_exited).field("overridden", t.overridden);
  if (summary) {
    w.field("restored", t.restored).field("restore_gone", t.restore_gone).field("restore_failed", t.restore_failed);
    w.field("restore_overridden", t.restore_overridden);
    w.field("restore_error", t.restore_error);
  }
  if (t.mode == "autotune") {
    w.key("autotune").begin_object().field("state", t.autotune_state).field("decided_now", t.decided_now);
    w.key("decisions").begin_array();
    for (const auto& d : t.decisions)
      w.begin_object().field("pid", d.pid).field("choice", d.choice).field("why", d.why).end_object();
    w.end_array().end_object();
  }
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
  if (r.migration) json_migration(w, *r.migration, false);
  if (r.thread_balance) json_thread(w, *r.thread_balance, false);
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
    w.field("exits_without_event", s.exits_without_event).field("execs_without_event", s.execs_without_event);
    w.field("table_pages", s.table_pages).field("table_dropped_full", s.table_dropped_full);
    w.field("node_queries", s.node_queries).field("node_query_failures", s.node_query_failures);
    json_counters(w, s.counters);
    json_nodes(w, s.nodes, total);
    if (s.migration) json_migration(w, *s.migration, true);
    if (s.thread_balance) json_thread(w, *s.thread_balance, true);
    w.end_object();
    std::fprintf(out_, "%s\n", w.str().c_str());
    std::fflush(out_);
    return;
  }
  std::fprintf(out_, "\nSUMMARY  %.1f s, %u intervals, sampler %s\n", s.elapsed_s, s.intervals, s.sampler.c_str());
  std::fprintf(out_, "  samples %" PRIu64 ", accepted %" PRIu64 ", filtered %" PRIu64 ", no address %" PRIu64 "\n",
               s.counters[MB_CTR_SAMPLES], s.counters[MB_CTR_ACCEPTED], s.counters[MB_CTR_FILTERED],
               s.counters[MB_CTR_NO_ADDRESS]);
  // Every part of dropped_total(), so that the parts add up to it.
  std::fprintf(out_, "  dropped %" PRIu64 " (page table full %" PRIu64 ", task table full %" PRIu64
                     ", process set full %" PRIu64 ", events lost %" PRIu64 ", sample records lost %" PRIu64
                     ", not scanned by abit %" PRIu64 "), user table full %" PRIu64 "\n",
               s.dropped, s.counters[MB_CTR_PAGE_TABLE_FULL], s.counters[MB_CTR_TASK_TABLE_FULL],
               s.counters[MB_CTR_TRACKED_FULL], s.counters[MB_CTR_EVENTS_LOST], s.counters[MB_CTR_SAMPLES_LOST],
               s.counters[MB_CTR_ABIT_REFUSED], s.table_dropped_full);
  if (s.counters[MB_CTR_ABIT_REFUSED])
    std::fprintf(out_, "  processes the abit scanner could not take %" PRIu64 " (the helper module's 4096 per file)\n",
                 s.counters[MB_CTR_ABIT_REFUSED]);
  std::fprintf(out_, "  processes seen %" PRIu64 ", exited %" PRIu64 " (%" PRIu64 " without an exit event), pages in table %" PRIu64
                     ", node queries %" PRIu64 " (%" PRIu64 " failed)\n",
               s.processes_seen, s.processes_exited, s.exits_without_event, s.table_pages, s.node_queries,
               s.node_query_failures);
  if (s.execs_without_event)
    std::fprintf(out_, "  execs found without their event (lost) %" PRIu64 "\n", s.execs_without_event);
  for (const auto& n : s.nodes)
    std::fprintf(out_, "  node %-3s %6.1f%% of accesses (%" PRIu64 ")\n", node_label(n.node).c_str(),
                 share(n.accesses, total), n.accesses);
  if (s.thread_balance) thread_text(*s.thread_balance, true);
  if (s.migration) migration_text(*s.migration, true);
  std::fflush(out_);
}

}  // namespace mb
