#include "profiler/report.h"
#include "profiler/text.h"

#include <algorithm>
#include <cinttypes>
#include <ctime>
#include <map>
#include <unordered_map>

#include "membalancer/error.h"
#include "membalancer/json.h"
#include "membalancer/report.h"
#include "profiler/symbolizer.h"

namespace mb::prof {

const char* data_source_name(int src) {
  static const char* names[MB_SRC_NR] = {"unknown", "L1", "L2", "L3", "peer-cache", "remote-cache",
                                         "local-dram", "remote-dram", "cxl", "pmem", "io", "uncached"};
  return src >= 0 && src < MB_SRC_NR ? names[src] : "unknown";
}

int latency_bucket(uint32_t latency) {
  if (latency < 8) return static_cast<int>(latency);
  int log = 31 - __builtin_clz(latency);  // >= 3
  int sub = static_cast<int>((latency >> (log - 3)) & 7);
  return std::min((log - 2) * 8 + sub, kLatencyBuckets - 1);
}

// The smallest latency of a bucket.
static uint64_t bucket_floor(int b) {
  if (b < 8) return static_cast<uint64_t>(b);
  int log = b / 8 + 2, sub = b % 8;
  return (8ULL + static_cast<uint64_t>(sub)) << (log - 3);
}

uint64_t latency_percentile(const NodeStats& n, double q) {
  if (n.latency_samples == 0) return 0;
  uint64_t want = static_cast<uint64_t>(q * static_cast<double>(n.latency_samples));
  uint64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += n.latency[b];
    if (seen > want) return bucket_floor(b);
  }
  return bucket_floor(kLatencyBuckets - 1);
}

void Aggregate::add(const mb_sample* s, size_t n) {
  uint32_t key = 0;
  ProcessStats* ps = nullptr;
  constexpr size_t kAhead = 16;  // samples whose page slot is prefetched
  for (size_t i = 0; i < n; ++i) {
    const mb_sample& r = s[i];
    ++samples;
    if (r.time_ns < first_ns) first_ns = r.time_ns;
    if (r.time_ns > last_ns) last_ns = r.time_ns;
    const uint32_t k = keys.key(r.tgid, r.time_ns);
    if (!ps || k != key) ps = &processes[key = k];
    // The next samples' pages, keyed by this sample's process: right for a
    // run of one process, a wasted prefetch at a change.
    if (i + kAhead < n && (s[i + kAhead].flags & MB_ACC_VADDR))
      pages.prefetch(mb_page_key(key, s[i + kAhead].vaddr >> MB_PAGE_SHIFT));
    ++ps->samples;
    if (r.flags & MB_ACC_IP) {
      ++with_ip;
      ++ips[IpKey{key, r.ip}];
    }
    if (!(r.flags & MB_ACC_VADDR)) continue;
    ++with_address;
    ++ps->accesses;
    const int node = r.mem_node < MB_MAX_NODES ? static_cast<int>(r.mem_node) : kNodeSlots - 1;
    NodeStats& ns = nodes[node];
    ++ns.accesses;
    if (r.flags & MB_ACC_LATENCY) {
      ++ns.latency_samples;
      ++ns.latency[latency_bucket(r.latency)];
    }
    if (r.flags & MB_ACC_SRC) ++ns.source[r.data_source < MB_SRC_NR ? r.data_source : 0];
    PageStats& pg = pages[mb_page_key(key, r.vaddr >> MB_PAGE_SHIFT)];
    if (pg.accesses != UINT32_MAX) ++pg.accesses;
    if (r.mem_node != MB_NODE_UNKNOWN || pg.node == MB_NODE_UNKNOWN) pg.node = r.mem_node;
  }
}

void Aggregate::join_parts() {
  if (!keys.any_split()) return;
  FlatMap<uint64_t, PageStats, U64KeyOps> joined;
  joined.reserve(pages.size());
  std::unordered_map<uint64_t, uint64_t> node_time;  // joined page -> the time of the part its node is from
  pages.for_each([&](const uint64_t& key, const PageStats& p) {
    const uint32_t k = mb_key_tgid(key);
    const uint64_t into = mb_page_key(keys.page_owner(k, mb_key_vpn(key) << MB_PAGE_SHIFT), mb_key_vpn(key));
    PageStats& j = joined[into];
    j.accesses = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{j.accesses} + p.accesses, UINT32_MAX));
    const uint64_t t = who_of(k).time_ns;
    uint64_t& when = node_time[into];
    if (j.node == MB_NODE_UNKNOWN || (p.node != MB_NODE_UNKNOWN && t >= when)) j.node = p.node, when = t;
  });
  pages = std::move(joined);
}

void Aggregate::finish() {
  join_parts();
  for (auto& n : nodes) n.pages = 0;
  processes.for_each_mut([](const uint64_t&, ProcessStats& p) { p.pages = 0; });
  pages.for_each([&](const uint64_t& key, const PageStats& p) {
    nodes[p.node < MB_MAX_NODES ? p.node : kNodeSlots - 1].pages++;
    processes[mb_key_tgid(key)].pages++;
  });
}

void aggregate_file(ProfileReader& reader, Aggregate* agg) {
  // Split at swaps: an address's samples are looked up in the mapping of
  // their time, a library swapped at the same address is its own code.
  agg->keys = ProcessKeys(std::make_shared<ProfileProcesses>(reader.info()), true);
  // Most profiles touch far fewer pages than they have samples; a table
  // sized for a sixteenth of them avoids most of the doubling on the way.
  agg->pages.reserve(std::min<uint64_t>(reader.info().samples / 16, uint64_t{1} << 24));
  reader.for_each_batch([&](const mb_sample* s, size_t n) { agg->add(s, n); });
  agg->finish();
}

std::vector<RegionRow> hottest_regions(const Aggregate& agg, uint64_t region_bytes, size_t n) {
  struct R {
    uint64_t accesses = 0, pages = 0;
    uint64_t node_acc[kNodeSlots] = {};
    uint64_t top_accesses = 0, top_vpn = 0;  // the hottest page
    uint32_t top_key = 0;
  };
  const uint64_t region_pages = std::max<uint64_t>(region_bytes >> MB_PAGE_SHIFT, 1);
  FlatMap<uint64_t, uint32_t, U64KeyOps> index;  // mb_page_key(tgid, region number) -> regions[i]
  std::vector<std::pair<uint64_t, R>> regions;
  agg.pages.for_each([&](const uint64_t& key, const PageStats& p) {
    // A program's region, whichever part of it (ProcessKeys) its pages are of.
    uint64_t rkey = mb_page_key(agg.who_of(mb_key_tgid(key)).program, mb_key_vpn(key) / region_pages);
    uint32_t& slot = index[rkey];
    if (slot == 0) {
      regions.push_back({rkey, R{}});
      slot = static_cast<uint32_t>(regions.size());
    }
    R& r = regions[slot - 1].second;
    r.accesses += p.accesses;
    r.pages++;
    r.node_acc[p.node < MB_MAX_NODES ? p.node : kNodeSlots - 1] += p.accesses;
    if (p.accesses > r.top_accesses || (p.accesses == r.top_accesses && mb_key_vpn(key) < r.top_vpn) || r.pages == 1)
      r.top_accesses = p.accesses, r.top_vpn = mb_key_vpn(key), r.top_key = mb_key_tgid(key);
  });
  std::vector<RegionRow> rows;
  rows.reserve(regions.size());
  for (const auto& [k, r] : regions) {
    RegionRow row{agg.who_of(mb_key_tgid(k)).tgid, mb_key_tgid(k), mb_key_vpn(k) * region_pages << MB_PAGE_SHIFT,
                  region_pages << MB_PAGE_SHIFT, r.accesses, r.pages, -1, r.top_vpn << MB_PAGE_SHIFT, r.top_key};
    uint64_t best = 0;
    for (int i = 0; i < MB_MAX_NODES; ++i)
      if (r.node_acc[i] > best) best = r.node_acc[i], row.node = i;
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [](const RegionRow& a, const RegionRow& b) {
    return a.accesses != b.accesses ? a.accesses > b.accesses
                                    : std::tie(a.tgid, a.start, a.key) < std::tie(b.tgid, b.start, b.key);
  });
  if (rows.size() > n) rows.resize(n);
  return rows;
}

std::vector<PageRow> hottest_pages(const Aggregate& agg, size_t n) {
  std::vector<PageRow> rows;
  rows.reserve(agg.pages.size());
  agg.pages.for_each([&](const uint64_t& key, const PageStats& p) {
    rows.push_back({agg.who_of(mb_key_tgid(key)).tgid, mb_key_tgid(key), mb_key_vpn(key) << MB_PAGE_SHIFT, p.accesses,
                    p.node < MB_MAX_NODES ? static_cast<int>(p.node) : -1});
  });
  auto cmp = [](const PageRow& a, const PageRow& b) {
    return a.accesses != b.accesses ? a.accesses > b.accesses
                                    : std::tie(a.tgid, a.addr, a.key) < std::tie(b.tgid, b.addr, b.key);
  };
  if (rows.size() > n) {
    std::partial_sort(rows.begin(), rows.begin() + static_cast<long>(n), rows.end(), cmp);
    rows.resize(n);
  } else {
    std::sort(rows.begin(), rows.end(), cmp);
  }
  return rows;
}

namespace {

// One table: column names and rows of cells; printed as text, CSV or JSON.
struct Table {
  std::string name, title;
  std::vector<std::string> cols;
  std::vector<bool> numeric;  // right-aligned; JSON: a number, or null for "?"
  std::vector<std::vector<std::string>> rows;
};

std::string pct(uint64_t part, uint64_t whole) {
  char b[16];
  std::snprintf(b, sizeof(b), "%.1f", whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return b;
}

std::string node_name(int n) { return n < 0 || n >= MB_MAX_NODES ? "?" : std::to_string(n); }

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;  // RFC 4180: CR needs quotes too
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

void print_text(FILE* out, const Table& t) {
  std::fprintf(out, "\n%s\n", t.title.c_str());
  // Names and paths come from the recorded processes: no escape sequence
  // reaches the terminal (profiler/text.h).
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : t.rows) {
    rows.emplace_back();
    for (const auto& cell : r) rows.back().push_back(printable(cell));
  }
  std::vector<size_t> w(t.cols.size());
  for (size_t c = 0; c < t.cols.size(); ++c) {
    w[c] = t.cols[c].size();
    for (const auto& r : rows) w[c] = std::max(w[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l = " ";
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string cell = cells[c];
      bool last = c + 1 == cells.size();
      if (t.numeric[c]) l += std::string(w[c] - cell.size(), ' ') + cell;
      else l += cell + (last ? "" : std::string(w[c] - cell.size(), ' '));
      if (!last) l += "  ";
    }
    std::fprintf(out, "%s\n", l.c_str());
  };
  line(t.cols);
  for (const auto& r : rows) line(r);
  if (t.rows.empty()) std::fprintf(out, "  (none)\n");
}

void json_table(JsonWriter& j, const Table& t) {
  j.key(t.name).begin_array();
  for (const auto& r : t.rows) {
    j.begin_object();
    for (size_t c = 0; c < t.cols.size(); ++c) {
      j.key(t.cols[c]);
      // A number is a JSON number; one not known ("?" in text) is null.
      if (t.numeric[c] && (r[c].empty() || r[c] == "?")) {
        j.null();
      } else if (t.numeric[c]) {
        if (r[c].find('.') != std::string::npos) j.value(std::stod(r[c]));
        else j.value(static_cast<uint64_t>(std::stoull(r[c])));
      } else {
        j.value(r[c]);
      }
    }
    j.end_object();
  }
  j.end_array();
}

// One row per process: a pid reused is two (told apart by start_s, when
// each was first seen), an exec'd one is one, named by the programs it ran
// while sampled ("sh > app"). Most samples first.
struct ProcessRow {
  uint32_t tgid = 0;
  int64_t life = -1;  // of ProfileProcesses::lives(); -1: the profile knows nothing of the pid
  ProcessStats p;
  std::vector<std::pair<int64_t, uint32_t>> spans;  // (span, process key), by time
};

std::vector<ProcessRow> processes_of(const Aggregate& agg, const ProfileProcesses& procs) {
  std::map<std::pair<uint32_t, int64_t>, ProcessRow> by_life;
  agg.processes.for_each([&](const uint64_t& k, const ProcessStats& p) {
    const Aggregate::Who w = agg.who_of(k);
    const int64_t life = w.span < 0 ? int64_t{-1} : int64_t{procs.spans()[static_cast<size_t>(w.span)].life};
    ProcessRow& r = by_life[{w.tgid, life}];
    r.tgid = w.tgid, r.life = life;
    r.p.samples += p.samples, r.p.accesses += p.accesses, r.p.pages += p.pages;
    r.spans.push_back({w.span, static_cast<uint32_t>(k)});
  });
  std::vector<ProcessRow> rows;
  for (auto& [k, r] : by_life) {
    std::sort(r.spans.begin(), r.spans.end());
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const ProcessRow& a, const ProcessRow& b) {
    return a.p.samples != b.p.samples ? a.p.samples > b.p.samples : std::tie(a.tgid, a.life) < std::tie(b.tgid, b.life);
  });
  return rows;
}

std::string hex(uint64_t v) { return format_hex(v); }

}  // namespace

void print_report(FILE* out, const ProfileReader& reader, const Aggregate& agg, const ReportOptions& opts) {
  static const char* kinds[] = {"", "page", "region", "node", "process", "symbol"};
  if (std::find(std::begin(kinds), std::end(kinds), opts.by) == std::end(kinds))
    throw UsageError("--by " + opts.by + ": want page, region, node, process or symbol");
  if (opts.format != "text" && opts.format != "csv" && opts.format != "json")
    throw UsageError("--format " + opts.format + ": want text, csv or json");
  const ProfileInfo& info = reader.info();
  // The aggregate's processes when it has them (its keys are their spans).
  const ProfileProcesses local_procs(agg.keys.procs() ? ProfileInfo{} : info);
  const ProfileProcesses& procs = agg.keys.procs() ? *agg.keys.procs() : local_procs;
  // Names and mappings as they were at the time of the key's samples.
  auto name_of = [&](uint32_t key) {
    const Aggregate::Who w = agg.who_of(key);
    std::string name = w.span < 0 ? procs.name_at(w.tgid, w.time_ns) : procs.label(static_cast<size_t>(w.span));
    return name.empty() ? std::string("?") : name;
  };
  // `record -- COMMAND`'s child before its exec: the profiler starting the
  // command. Its samples count in the command's row and are said apart.
  struct BeforeCommand {
    uint64_t samples = 0;
    uint32_t tgid = 0;
    std::string command;
  } before_command;
  agg.processes.for_each([&](const uint64_t& k, const ProcessStats& p) {
    const Aggregate::Who w = agg.who_of(k);
    if (w.span < 0 || !procs.spans()[static_cast<size_t>(w.span)].before_command) return;
    before_command.samples += p.samples;
    before_command.tgid = w.tgid;
    before_command.command = procs.spans()[static_cast<size_t>(w.span)].name;
  });
  auto want = [&](const char* k) { return opts.by.empty() || opts.by == k; };
  std::vector<Table> tables;
  const std::vector<ProcessRow> process_rows = processes_of(agg, procs);

  if (want("node")) {
    Table t{"nodes", "Nodes: where the sampled data lives",
            {"node", "cpus", "accesses", "share_pct", "pages", "lat_p50", "lat_p90", "lat_p99", "sources"},
            {true, true, true, true, true, true, true, true, false}, {}};
    for (int n = 0; n < kNodeSlots; ++n) {
      const NodeStats& s = agg.nodes[n];
      const NumaNode* tn = n < MB_MAX_NODES ? info.topology.node(n) : nullptr;
      if (!tn && s.accesses == 0) continue;
      std::string sources;
      uint64_t src_total = 0;
      for (uint64_t v : s.source) src_total += v;
      for (int k = 0; k < MB_SRC_NR; ++k)
        if (s.source[k]) sources += (sources.empty() ? "" : " ") + std::string(data_source_name(k)) + ":" + pct(s.source[k], src_total) + "%";
      bool lat = s.latency_samples > 0;
      t.rows.push_back({n < MB_MAX_NODES ? std::to_string(n) : "?", tn ? std::to_string(tn->cpus.size()) : "?",
                        std::to_string(s.accesses), pct(s.accesses, agg.with_address), std::to_string(s.pages),
                        lat ? std::to_string(latency_percentile(s, 0.5)) : "?",
                        lat ? std::to_string(latency_percentile(s, 0.9)) : "?",
                        lat ? std::to_string(latency_percentile(s, 0.99)) : "?", sources.empty() ? "-" : sources});
    }
    tables.push_back(std::move(t));
  }
  if (want("process")) {
    Table t{"processes", "Processes",
            {"pid", "ppid", "name", "samples", "accesses", "share_pct", "pages", "start_s"},
            {true, true, false, true, true, true, true, true}, {}};
    std::vector<ProcessRow> rows = process_rows;
    if (rows.size() > opts.top) rows.resize(opts.top);  // --top bounds every table
    for (auto& r : rows) {
      std::string name, last;
      for (size_t i = 0; i < r.spans.size(); ++i) {
        const int64_t span = r.spans[i].first;
        const ProfileProcesses::Span* sp = span < 0 ? nullptr : &procs.spans()[static_cast<size_t>(span)];
        // The profiler's child before it ran the command is the command's
        // row: named by the command, not "app (before exec) > app".
        const bool folded = sp && sp->before_command && i + 1 < r.spans.size();
        std::string n = folded ? sp->name : name_of(r.spans[i].second);
        if (n != last) name += (name.empty() ? "" : " > ") + n;
        last = n;
      }
      const ProfileProcesses::Life* life = r.life < 0 ? nullptr : &procs.lives()[static_cast<size_t>(r.life)];
      // When the process was first seen, in seconds since the start: what
      // tells a reused pid's processes apart when they ran the same program.
      char start[32] = "?";
      if (life)
        std::snprintf(start, sizeof start, "%.3f",
                      (std::max(life->start_ns, info.start_monotonic_ns) - info.start_monotonic_ns) / 1e9);
      t.rows.push_back({std::to_string(r.tgid), std::to_string(life ? life->parent : procs.parent(r.tgid)), name,
                        std::to_string(r.p.samples), std::to_string(r.p.accesses),
                        // share of the accesses, as in every other table (it was of the samples:
                        // 100% beside 0 accesses for a cpu-clock recording)
                        pct(r.p.accesses, agg.with_address), std::to_string(r.p.pages), start});
    }
    tables.push_back(std::move(t));
  }
  auto mapping_of = [&](uint32_t key, uint64_t addr) {
    const Aggregate::Who w = agg.who_of(key);
    return ProfileProcesses::mapping_kind(procs.mapping(w.tgid, addr, w.time_ns));
  };
  if (want("region")) {
    Table t{"regions", "Hottest regions (" + format_bytes(opts.region_bytes) + ")",
            {"rank", "pid", "name", "start", "end", "accesses", "share_pct", "pages", "node", "mapping"},
            {true, true, false, false, false, true, true, true, true, false}, {}};
    int rank = 0;
    for (const auto& r : hottest_regions(agg, opts.region_bytes, opts.top)) {
      t.rows.push_back({std::to_string(++rank), std::to_string(r.tgid), name_of(r.key), hex(r.start),
                        hex(r.start + r.bytes), std::to_string(r.accesses), pct(r.accesses, agg.with_address),
                        std::to_string(r.pages), node_name(r.node), mapping_of(r.hottest_key, r.hottest_addr)});
    }
    tables.push_back(std::move(t));
  }
  if (want("page")) {
    Table t{"pages", "Hottest pages",
            {"rank", "pid", "name", "page", "accesses", "share_pct", "node", "mapping"},
            {true, true, false, false, true, true, true, false}, {}};
    int rank = 0;
    for (const auto& p : hottest_pages(agg, opts.top)) {
      t.rows.push_back({std::to_string(++rank), std::to_string(p.tgid), name_of(p.key), hex(p.addr),
                        std::to_string(p.accesses), pct(p.accesses, agg.with_address), node_name(p.node),
                        mapping_of(p.key, p.addr)});
    }
    tables.push_back(std::move(t));
  }
  if (want("symbol") && (agg.with_ip > 0 || opts.by == "symbol")) {
    Table t{"symbols", "Code: where the sampled instructions are",
            {"rank", "samples", "share_pct", "function", "module", "source"},
            {true, true, true, false, false, false}, {}};
    Symbolizer sym(procs, info.start_realtime_ns);
    struct F {
      uint64_t samples = 0, best = 0;
      std::string module, function, source;
    };
    std::unordered_map<std::string, F> funcs;
    agg.ips.for_each([&](const IpKey& k, const uint64_t& count) {
      const Aggregate::Who w = agg.who_of(k.tgid);
      const Symbol& s = sym.lookup(w.tgid, k.ip, w.time_ns);
      std::string fn = s.function == "[unknown]" ? "[unknown " + hex(k.ip) + "]" : s.function;
      if (s.function == "[unknown]" && s.module.size() && s.module[0] == '[') fn = "[unknown]";
      F& f = funcs[s.module + '\0' + fn];
      f.samples += count;
      f.module = s.module;
      f.function = fn;
      if (count > f.best) {
        f.best = count;
        f.source = s.file.empty() ? "" : s.file + ":" + std::to_string(s.line);
      }
    });
    std::vector<F> rows;
    for (auto& [k, f] : funcs) rows.push_back(std::move(f));
    std::sort(rows.begin(), rows.end(), [](const F& a, const F& b) {
      return a.samples != b.samples ? a.samples > b.samples : a.function < b.function;
    });
    if (rows.size() > opts.top) rows.resize(opts.top);
    int rank = 0;
    for (const auto& f : rows)
      t.rows.push_back({std::to_string(++rank), std::to_string(f.samples), pct(f.samples, agg.with_ip), f.function,
                        f.module, f.source});
    tables.push_back(std::move(t));
  }

  const double span_s = agg.last_ns > agg.first_ns ? (agg.last_ns - agg.first_ns) / 1e9 : 0;
  if (opts.format == "json") {
    JsonWriter j;
    j.begin_object();
    j.key("profile").begin_object();
    j.field("file", reader.path()).field("version", info.version).field("sampler", info.sampler);
    j.field("start_realtime_ns", info.start_realtime_ns).field("samples", agg.samples);
    j.field("samples_with_address", agg.with_address).field("samples_with_ip", agg.with_ip);
    const ProfileLosses lost = profile_losses(info);
    j.field("samples_lost", lost.samples).field("events_lost", lost.events);
    j.field("processes_not_tracked", lost.untracked);
    j.field("samples_before_command", before_command.samples);
    j.field("span_s", span_s).field("complete", info.complete);
    j.field("error", reader.error());
    j.end_object();
    for (const auto& t : tables) json_table(j, t);
    j.end_object();
    std::fprintf(out, "%s\n", j.str().c_str());
    return;
  }
  if (opts.format == "csv") {
    const Table* t = nullptr;
    for (const auto& x : tables)
      if (opts.by.empty() ? x.name == "regions" : true) t = t ? t : &x;
    if (!t) return;
    std::string l;
    for (size_t c = 0; c < t->cols.size(); ++c) l += (c ? "," : "") + t->cols[c];
    std::fprintf(out, "%s\n", l.c_str());
    for (const auto& r : t->rows) {
      l.clear();
      for (size_t c = 0; c < r.size(); ++c) l += (c ? "," : "") + csv_cell(r[c]);
      std::fprintf(out, "%s\n", l.c_str());
    }
    return;
  }
  char when[64] = "?";
  time_t secs = static_cast<time_t>(info.start_realtime_ns / 1000000000ULL);
  struct tm tmv;
  if (gmtime_r(&secs, &tmv)) std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tmv);
  std::fprintf(out, "profile %s: format %u, sampler %s, started %s, %.1f s of samples%s\n", reader.path().c_str(),
               info.version, printable(info.sampler).c_str(), when, span_s, info.complete ? "" : " (incomplete file)");
  std::fprintf(out, "samples: %" PRIu64 " (%" PRIu64 " with a data address, %" PRIu64
                    " with an instruction pointer); lost in the ring buffer: %" PRIu64 "; processes: %zu\n",
               agg.samples, agg.with_address, agg.with_ip, profile_losses(info).samples, process_rows.size());
  const ProfileLosses lost = profile_losses(info);
  if (lost.events || lost.untracked) std::fprintf(out, "recorded with losses: %s\n", lost.describe().c_str());
  if (before_command.samples)
    std::fprintf(out,
                 "before its exec, pid %u (%s) was the profiler starting it: %" PRIu64
                 " samples, in its row; their pages and code are the profiler's\n",
                 before_command.tgid, printable(before_command.command).c_str(), before_command.samples);
  for (const auto& t : tables) print_text(out, t);
}

}  // namespace mb::prof
