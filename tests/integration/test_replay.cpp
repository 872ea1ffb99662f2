// Replay and what-if on synthetic traces (no privileges needed):
// `membalancer tier --sampler replay:FILE --dry-run` makes, interval by
// interval, the decisions `profiler whatif --policy membalancer` predicts (also
// through a huge page split and collapsed again); the
// hot set ends up in the fast tier; the comparison and the sweep run and draw
// their curve as SVG or PNG; a replay refuses what it cannot do with one line
// and status 2.
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "membalancer/profile_file.h"
#include <fstream>

#include "tests/integration/harness.h"
#include "tests/png_reader.h"

using namespace mbtest;
using nlohmann::json;

namespace {

std::string synth(const std::string& dir, const std::string& pattern, const std::string& samples,
                  const std::vector<std::string>& more = {}) {
  const std::string path = dir + "/" + pattern + ".prof";
  std::vector<std::string> argv = {bin("profiler"), "synth", "--pattern", pattern, "--footprint", "64M",
                                   "--samples", samples, "--rate", "100000", "-o", path};
  argv.insert(argv.end(), more.begin(), more.end());
  Ran r = run(argv, dir, "synth-" + pattern);
  EXPECT_EQ(r.status, 0) << r.err;
  return path;
}

mb::NumaNode numa_node(int id, std::vector<int> cpus, uint64_t bytes, std::map<int, int> distance) {
  mb::NumaNode n;
  n.id = id;
  n.cpus = std::move(cpus);
  n.distance = std::move(distance);
  n.mem_total_bytes = n.mem_free_bytes = bytes;
  return n;
}

// A recording of one process (pid 100) on a machine of `nodes` (CPUs 0 and
// 1): in second t of `seconds`, pages 0 to pages(t) - 1 of its region are
// sampled once each, found on node `on`.
std::string recording(const std::string& path, std::vector<mb::NumaNode> nodes, int seconds,
                      const std::function<uint64_t(int)>& pages, int on) {
  mb::ProfileStart st;
  st.sampler = "fault";
  st.sampler_kind = MB_SAMPLER_FAULT;
  st.topology.nodes = std::move(nodes);
  st.topology.cpu_node = {0, 0};
  st.start_realtime_ns = st.start_monotonic_ns = 1'000'000'000;
  mb::ProfileWriter w(path, st);
  w.add_process(st.start_monotonic_ns, 100, 1, mb::kProcSeen, "app");
  for (int t = 0; t < seconds; ++t)
    for (uint64_t p = 0; p < pages(t); ++p) {
      mb_sample s{};
      s.time_ns = (t + 1) * 1'000'000'000ull + p;
      s.tgid = s.tid = 100;
      s.vaddr = 0x7f0000000000ull + p * 4096;
      s.mem_node = static_cast<uint16_t>(on);
      s.flags = MB_ACC_VADDR;
      s.sampler = MB_SAMPLER_FAULT;
      w.add_sample(s);
    }
  w.finish((seconds + 1) * 1'000'000'000ull, 0);
  return path;
}

// A recording of one process (pid 100) on a fast node 0 (64 MiB, the CPUs)
// and a slow node 1 (1 GiB): in second t, `samples(t)` gives (page, times,
// huge) of the region at a 2 MiB boundary, each sample found on node 1.
struct Sampled {
  uint64_t page;
  int times;
  bool huge;
};
std::string sized_recording(const std::string& path, int seconds,
                            const std::function<std::vector<Sampled>(int)>& samples) {
  mb::ProfileStart st;
  st.sampler = "abit";
  st.sampler_kind = MB_SAMPLER_ABIT;
  st.topology.nodes = {numa_node(0, {0, 1}, 64ull << 20, {{0, 10}, {1, 20}}),
                       numa_node(1, {}, 1ull << 30, {{0, 20}, {1, 10}})};
  st.topology.cpu_node = {0, 0};
  st.start_realtime_ns = st.start_monotonic_ns = 1'000'000'000;
  mb::ProfileWriter w(path, st);
  w.add_process(st.start_monotonic_ns, 100, 1, mb::kProcSeen, "app");
  for (int t = 0; t < seconds; ++t) {
    uint64_t ns = (t + 1) * 1'000'000'000ull;
    for (const Sampled& x : samples(t))
      for (int i = 0; i < x.times; ++i) {
        mb_sample s{};
        s.time_ns = ns++;
        s.tgid = s.tid = 100;
        s.vaddr = 0x7f0000000000ull + x.page * 4096;
        s.mem_node = 1;
        s.flags = MB_ACC_VADDR | (x.huge ? MB_ACC_HUGE : MB_ACC_BASE_PAGE);  // abit says its page's size
        s.sampler = MB_SAMPLER_ABIT;
        w.add_sample(s);
      }
  }
  w.finish((seconds + 1) * 1'000'000'000ull, 0);
  return path;
}

// The per-interval promoted and demoted pages and fast-node accesses of
// `membalancer tier --sampler replay:FILE --dry-run`, checked to be the
// moves `profiler whatif FILE --policy membalancer` reports; whatif's hits
// (each sample once, where the replay's report counts a 2 MiB page's once
// per base page) for the caller to compare.
struct Decisions {
  std::vector<uint64_t> promoted, demoted, hits, room_kept, room_withheld;
  std::vector<uint64_t> whatif_hits;
  json whatif;  // whatif's output
};
Decisions replay_matches_whatif(const std::string& dir, const std::string& trace) {
  Ran w = run({bin("profiler"), "whatif", trace, "--policy", "membalancer", "--format", "json"}, dir, "whatif");
  EXPECT_EQ(w.status, 0) << w.err;
  json sim = json::parse(w.out);
  json mine;
  for (const auto& p : sim["policies"])
    if (p["policy"] == "membalancer") mine = p;
  EXPECT_FALSE(mine.is_null()) << w.out;
  Ran t = run({bin("membalancer"), "tier", "--sampler", "replay:" + trace, "--speed", "max", "--dry-run", "--display",
               "json"},
              dir, "replay");
  EXPECT_EQ(t.status, 0) << t.err;
  Decisions d;
  for (const auto& line : lines_of(t.out)) {
    json j = json::parse(line);
    if (j["type"] != "interval") continue;
    d.promoted.push_back(j["migration"]["plan"]["promote_pages"]);
    d.demoted.push_back(j["migration"]["plan"]["demote_pages"]);
    d.room_kept.push_back(j["migration"]["plan"]["reserve_bytes"]);
    d.room_withheld.push_back(j["migration"]["plan"]["reserve_withheld_bytes"]);
    uint64_t fast = 0;
    for (const auto& n : j["nodes"])
      if (n["node"] == 0) fast = n["accesses"];
    d.hits.push_back(fast);
  }
  EXPECT_EQ(d.promoted.size(), sim["intervals"].get<size_t>());
  EXPECT_EQ(d.promoted, mine["promoted"].get<std::vector<uint64_t>>());
  EXPECT_EQ(d.demoted, mine["demoted"].get<std::vector<uint64_t>>());
  d.whatif_hits = mine["hits"].get<std::vector<uint64_t>>();
  d.whatif = std::move(sim);
  return d;
}

// A recording of a machine with one node (DRAM alone): 256 pages of one
// process, each sampled once a second for 4 s.
std::string one_node_recording(const std::string& dir) {
  return recording(dir + "/one.prof", {numa_node(0, {0, 1}, 1ull << 30, {{0, 10}})}, 4,
                   [](int) { return uint64_t{256}; }, 0);
}

}  // namespace

TEST(Replay, TierDryRunMakesTheDecisionsWhatifPredicts) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "phase", "1200000");
  const Decisions d = replay_matches_whatif(dir, trace);
  const auto& [promoted, demoted, hits, room_kept, room_withheld, whatif_hits, sim] = d;
  EXPECT_EQ(hits, whatif_hits);  // no 2 MiB pages: the same count
  uint64_t moved = 0;
  for (uint64_t p : promoted) moved += p;
  EXPECT_GT(moved, 1000u) << "the hot sets (1638 pages each) were promoted";
  // After each phase has settled, the fast tier serves most accesses (the
  // hot set takes 90% of them).
  const auto acc = sim["accesses"].get<std::vector<uint64_t>>();
  const size_t half = acc.size() / 2;
  EXPECT_GT(static_cast<double>(hits[half - 1]) / acc[half - 1], 0.85);
  EXPECT_GT(static_cast<double>(hits.back()) / acc.back(), 0.85);
  // Room for new pages (--watermark auto): in the first phase the pages
  // new to the table are warm ones, colder than none of the fast tier's,
  // so no room is kept for them and the report says so; after the change
  // the new hot range's never-sampled pages arrive hot, and room is kept.
  for (size_t i = 0; i < half; ++i) {
    EXPECT_EQ(room_kept[i], 0u) << "interval " << i;
    EXPECT_GT(room_withheld[i], 0u) << "interval " << i;
  }
  EXPECT_GT(*std::max_element(room_kept.begin() + half, room_kept.end()), 0u);
}

TEST(Replay, WhatifComparesEveryPolicyAndSweeps) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "hotset", "600000");
  Ran w = run({bin("profiler"), "whatif", trace, "--format", "json"}, dir, "whatif");
  ASSERT_EQ(w.status, 0) << w.err;
  json r = json::parse(w.out);
  std::map<std::string, double> ratio;
  for (const auto& p : r["policies"]) ratio[p["policy"]] = p["hit_ratio"];
  for (const char* p : {"oracle", "membalancer", "amd-topk", "memtis", "tpp", "memtierd-age"}) {
    ASSERT_TRUE(ratio.count(p)) << p;
    EXPECT_LE(ratio[p], ratio["oracle"] + 1e-9) << p << ": the oracle is an upper bound";
    EXPECT_GT(ratio[p], 0.5) << p;
  }
  Ran s = run({bin("profiler"), "whatif", trace, "--policy", "membalancer", "--sweep", "4M:32M:4M", "--format", "csv",
               "-o", dir + "/curve.svg"},
              dir, "sweep");
  ASSERT_EQ(s.status, 0) << s.err;
  auto rows = lines_of(s.out);
  ASSERT_EQ(rows.size(), 9u) << s.out;  // header + 8 sizes
  double last = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const double oracle = std::stod(rows[i].substr(rows[i].find(',') + 1));
    EXPECT_GE(oracle + 1e-9, last) << "more fast memory never serves less: " << rows[i];
    last = oracle;
  }
  EXPECT_NE(slurp(dir + "/curve.svg").find("<polyline"), std::string::npos);

  // The same sweep drawn as PNG: the same table, and a decodable picture with
  // membalancer's line (the first policy colour, #d62728 as in the SVG) across it.
  Ran p = run({bin("profiler"), "whatif", trace, "--policy", "membalancer", "--sweep", "4M:32M:4M", "--format", "csv",
               "-o", dir + "/curve.png"},
              dir, "sweep-png");
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_EQ(p.out, s.out);
  EXPECT_NE(slurp(dir + "/curve.svg").find("stroke=\"#d62728\""), std::string::npos);
  pngtest::Image img = pngtest::decode_file(dir + "/curve.png");
  ASSERT_TRUE(img.ok()) << img.error;
  EXPECT_EQ(img.width, 720u);
  EXPECT_EQ(img.height, 440u);
  std::set<uint32_t> columns;
  for (uint32_t y = 0; y < img.height; ++y)
    for (uint32_t x = 0; x < img.width; ++x)
      if (img.has(x, y, 0xd6, 0x27, 0x28)) columns.insert(x);
  EXPECT_GE(columns.size(), 400u) << "a line across the plot (480 px wide), not just the legend";
}

// Three tiers: membalancer and the oracle only (the two-tier rules named as
// not run), per-tier shares that add up, the oracle ahead on every prefix of
// tiers; one --tiers size is --fast.
TEST(Replay, WhatifThreeTiers) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "zipf", "600000");
  Ran j = run({bin("profiler"), "whatif", trace, "--tiers", "8M,16M", "--format", "json"}, dir, "tiers-json");
  ASSERT_EQ(j.status, 0) << j.err;
  json r = json::parse(j.out);
  EXPECT_EQ(r["tiers"], 3);
  EXPECT_EQ(r["tier_bytes"], json::array({8 << 20, 16 << 20}));
  EXPECT_EQ(r["not_run"], json::array({"amd-topk", "linux-tiering", "memtierd-age", "memtis", "tpp"}));
  ASSERT_EQ(r["policies"].size(), 2u);
  std::map<std::string, std::vector<double>> share;
  for (const auto& p : r["policies"]) {
    share[p["policy"]] = p["tier_hit_ratio"].get<std::vector<double>>();
    ASSERT_EQ(share[p["policy"]].size(), 3u);
    EXPECT_DOUBLE_EQ(share[p["policy"]][0], p["hit_ratio"].get<double>());
    EXPECT_EQ(p["tier_hits"][0], p["hits"]);
    // Every access served by exactly one tier.
    for (size_t i = 0; i < r["accesses"].size(); ++i)
      EXPECT_EQ(p["tier_hits"][0][i].get<uint64_t>() + p["tier_hits"][1][i].get<uint64_t>() +
                    p["tier_hits"][2][i].get<uint64_t>(),
                r["accesses"][i].get<uint64_t>())
          << p["policy"] << " interval " << i + 1;
  }
  const auto& o = share["oracle"];
  const auto& m = share["membalancer"];
  EXPECT_GE(o[0] + 1e-9, m[0]);
  EXPECT_GE(o[0] + o[1] + 1e-9, m[0] + m[1]);
  EXPECT_GT(m[1], 0.05) << "the middle tier serves something";

  Ran t = run({bin("profiler"), "whatif", trace, "--tiers", "8M,16M"}, dir, "tiers-text");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("not run (two-tier rules): amd-topk, linux-tiering, memtierd-age, memtis, tpp"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find("\ntpp "), std::string::npos) << t.out;
  Ran c = run({bin("profiler"), "whatif", trace, "--tiers", "8M,16M", "--format", "csv"}, dir, "tiers-csv");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(lines_of(c.out).at(0),
            "interval,accesses,oracle,membalancer,oracle:tier1,oracle:tier2,membalancer:tier1,membalancer:tier2");

  Ran one = run({bin("profiler"), "whatif", trace, "--tiers", "16M"}, dir, "one-size");
  Ran fast = run({bin("profiler"), "whatif", trace, "--fast", "16M"}, dir, "fast");
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(one.out, fast.out);
}

TEST(Replay, SweepPictureNameAndExistingFiles) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "gups", "10000");
  auto sweep = [&](const std::string& out, const std::string& tag, bool force = false) {
    std::vector<std::string> argv = {bin("profiler"), "whatif", trace, "--policy", "tpp", "--sweep", "4M:8M:4M",
                                     "-o", dir + "/" + out};
    if (force) argv.push_back("--force");
    return run(argv, dir, tag);
  };
  // Only .svg and .png; anything else is one line and status 2, before any work.
  for (const char* name : {"curve.jpg", "curve", "curve.PNG", "curve.png.txt"}) {
    Ran r = sweep(name, "badname");
    EXPECT_EQ(r.status, 2) << name << ": " << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find("want a name ending in .svg or .png"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(file_exists(dir + "/" + name)) << name;
  }
  Ran first = sweep("curve.png", "first");
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string bytes = slurp(dir + "/curve.png");
  ASSERT_TRUE(pngtest::decode_file(dir + "/curve.png").ok());
  struct stat st{};
  ASSERT_EQ(stat((dir + "/curve.png").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // An existing file is kept without --force (said before the sweep runs) ...
  Ran again = sweep("curve.png", "again");
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("exists (use --force"), std::string::npos) << again.err;
  EXPECT_TRUE(again.out.empty()) << "refused before the sweep: " << again.out;
  EXPECT_EQ(slurp(dir + "/curve.png"), bytes);
  // ... and replaced with it.
  std::ofstream(dir + "/curve.png") << "old";
  Ran forced = sweep("curve.png", "forced", true);
  ASSERT_EQ(forced.status, 0) << forced.err;
  EXPECT_TRUE(pngtest::decode_file(dir + "/curve.png").ok());
  // A symbolic link is never followed, even with --force.
  std::ofstream(dir + "/target") << "keep";
  ASSERT_EQ(symlink((dir + "/target").c_str(), (dir + "/link.png").c_str()), 0);
  for (bool force : {false, true}) {
    Ran l = sweep("link.png", "link", force);
    EXPECT_EQ(l.status, 2) << l.err;
    EXPECT_NE(l.err.find("symbolic link"), std::string::npos) << l.err;
  }
  EXPECT_EQ(slurp(dir + "/target"), "keep");
}

TEST(Replay, RefusesWhatItCannotDoWithOneLine) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "gups", "10000");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"tier", "--sampler", "replay:" + trace, "--migrate"}, "--dry-run"},
      {{"process", "--sampler", "replay:" + trace}, "moves live threads"},
      {{"trace", "--sampler", "replay:"}, "the file is missing"},
      {{"trace", "--sampler", "replay:" + trace, "--speed", "fast"}, "--speed"},
      {{"trace", "--pid", "1", "--sampler", "fault", "--speed", "max"}, "only a replay"},
      {{"trace", "--sampler", "replay:" + dir + "/none.prof"}, "none.prof"},
      // The nodes a replay's --tiers names are the recording's, and the error says so.
      {{"tier", "--sampler", "replay:" + trace, "--dry-run", "--tiers", "0:7"},
       "node 7 does not exist on the recorded machine"},
  };
  for (const auto& [args, what] : cases) {
    std::vector<std::string> argv = {bin("membalancer")};
    argv.insert(argv.end(), args.begin(), args.end());
    Ran r = run(argv, dir, "bad");
    EXPECT_EQ(r.status, 2) << args[0] << " " << what << ": " << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  }
  Ran p = run({bin("profiler"), "whatif", trace, "--policy", "lru"}, dir, "badpolicy");
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("unknown policy 'lru'"), std::string::npos) << p.err;
}

// A chunk damaged in the middle of a recording ends the replay there: the
// samples before it are replayed, and the damage is said (status 2), not
// passed over as if the recording had ended.
TEST(Replay, DamageMetWhileReplayingIsSaid) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "gups", "100000");
  {
    std::fstream f(trace, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    f.seekp(size * 6 / 10);
    char c;
    f.seekg(size * 6 / 10);
    f.get(c);
    f.seekp(size * 6 / 10);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  Ran r = run({bin("membalancer"), "trace", "--sampler", "replay:" + trace, "--speed", "max", "--display", "json"}, dir,
              "damaged");
  EXPECT_EQ(r.status, 2) << r.err;
  auto err = lines_of(r.err);
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back().rfind("membalancer: " + trace + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.out.find("\"type\":\"summary\""), std::string::npos) << "what came before is reported";
}

// A replay's --duration is the recording's time, whatever the speed: 0.3 s
// of a 1 s recording at 100 ms intervals is 3 intervals at --speed max (it
// was wall time there, which no replay's length follows) and at --speed 4.
TEST(Replay, DurationIsTheRecordingsTime) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "gups", "100000");
  for (const char* speed : {"max", "4"}) {
    Ran r = run({bin("membalancer"), "trace", "--sampler", "replay:" + trace, "--speed", speed, "--interval", "100",
                 "--duration", "0.3", "--display", "json"},
                dir, std::string("duration-") + speed);
    ASSERT_EQ(r.status, 0) << r.err;
    size_t intervals = 0;
    for (const std::string& l : lines_of(r.out)) intervals += l.find("\"type\":\"interval\"") != std::string::npos;
    EXPECT_EQ(intervals, 3u) << "--speed " << speed;
  }
}

// A recording of one memory tier: whatif simulates two (a fast size is
// needed); the tier and numa modes cannot replay it, and say it is the file.
TEST(Replay, ARecordingOfOneTierGoesToWhatifNotToTierMode) {
  const std::string dir = temp_dir();
  const std::string one = one_node_recording(dir);
  Ran t = run({bin("membalancer"), "tier", "--sampler", "replay:" + one, "--dry-run", "--speed", "max"}, dir, "tier");
  EXPECT_EQ(t.status, 2);
  EXPECT_EQ(t.err, "membalancer: " + one + ": recorded on a machine of one memory tier; tier mode needs two (hint: "
                   "'profiler whatif " + one + " --fast SIZE' simulates a fast tier of SIZE and a slow one)\n");
  Ran n = run({bin("membalancer"), "numa", "--sampler", "replay:" + one, "--dry-run", "--speed", "max"}, dir, "numa");
  EXPECT_EQ(n.status, 2);
  EXPECT_EQ(n.err, "membalancer: " + one + ": recorded on a machine of one node with memory; numa mode needs two\n");
  // Trace mode needs no tiers.
  Ran tr = run({bin("membalancer"), "trace", "--sampler", "replay:" + one, "--speed", "max"}, dir, "trace");
  EXPECT_EQ(tr.status, 0) << tr.err;

  Ran d = run({bin("profiler"), "whatif", one}, dir, "whatif-default");
  EXPECT_EQ(d.status, 2);
  EXPECT_EQ(d.err, "profiler: " + one + ": recorded on a machine of one memory tier (1.0 GiB): give the fast tier's "
                   "size (--fast SIZE, --tiers or --sweep)\n");
  // 128 of the 256 pages fit: the first 128 seen start fast, and every
  // rule serves half the accesses of the first interval from them.
  Ran w = run({bin("profiler"), "whatif", one, "--fast", "512K", "--format", "json"}, dir, "whatif");
  ASSERT_EQ(w.status, 0) << w.err;
  json j = json::parse(w.out);
  EXPECT_EQ(j["recorded_tiers"], 1);
  EXPECT_EQ(j["pages_seen"], 256);
  for (const auto& p : j["policies"]) {
    if (p["policy"] == "oracle") continue;
    EXPECT_EQ(p["hits"][0], 128) << p["policy"];
  }
}

// Room for new pages is kept on the fast node only if new pages land there.
// A process whose footprint grows by 1000 pages a second, all found on the
// slow node though the fast one has room (bound there, say): after the
// first growth is seen, no room is kept for it, and the report says why.
// The same recording with the pages on the fast node keeps room.
TEST(Replay, RoomForNewPagesOnlyWhereTheyLand) {
  const std::string dir = temp_dir();
  const std::vector<mb::NumaNode> nodes{numa_node(0, {0, 1}, 1ull << 30, {{0, 10}, {1, 20}}),
                                        numa_node(1, {}, 4ull << 30, {{0, 20}, {1, 10}})};
  auto grows = [](int t) { return 1000 * static_cast<uint64_t>(t + 1); };
  for (int on : {0, 1}) {
    const std::string path = recording(dir + "/on" + std::to_string(on) + ".prof", nodes, 8, grows, on);
    Ran t = run({bin("membalancer"), "tier", "--sampler", "replay:" + path, "--speed", "max", "--dry-run",
                 "--display", "json"},
                dir, "replay-on" + std::to_string(on));
    ASSERT_EQ(t.status, 0) << t.err;
    std::vector<uint64_t> kept, elsewhere;
    for (const auto& line : lines_of(t.out)) {
      json j = json::parse(line);
      if (j["type"] != "interval") continue;
      kept.push_back(j["migration"]["plan"]["reserve_bytes"]);
      elsewhere.push_back(j["migration"]["plan"]["reserve_elsewhere_bytes"]);
    }
    ASSERT_GE(kept.size(), 7u) << t.out;
    for (size_t i = 1; i < kept.size(); ++i) {
      // From the first growth seen: twice the largest growth of the window.
      if (on == 1) {
        EXPECT_EQ(kept[i], 0u) << "interval " << i;
        EXPECT_EQ(elsewhere[i], 2000 * 4096u) << "interval " << i;
      } else {
        EXPECT_EQ(kept[i], 2000 * 4096u) << "interval " << i;
        EXPECT_EQ(elsewhere[i], 0u) << "interval " << i;
      }
    }
  }
}

// A 2 MiB range sampled as its huge page (4 s), then as 512 base pages (the
// kernel split it, 4 s), then as the huge page again (khugepaged collapsed
// it, 4 s): the replay and whatif's membalancer make the same moves through
// both changes, and each change is followed, not double counted.
TEST(Replay, SizeChangesAreFollowedAlikeByReplayAndWhatif) {
  const std::string dir = temp_dir();
  const std::string trace = sized_recording(dir + "/sized.prof", 12, [](int t) {
    std::vector<Sampled> v;
    if (t >= 4 && t < 8)
      for (uint64_t p = 0; p < 512; ++p) v.push_back({p, 4, false});
    else
      v.push_back({0, 2048, true});
    return v;
  });
  const Decisions d = replay_matches_whatif(dir, trace);
  ASSERT_EQ(d.hits.size(), 12u);
  // By hand: the huge page goes up in the first interval (the fast node
  // has room for 16384 pages); it splits where it is, on the fast node, and
  // its base pages collapse there again: nothing more moves, and from the
  // second interval on the fast node serves every access (whatif's hits
  // count each sample once; the replay's report counts a 2 MiB page's
  // accesses once per base page, as abit's). Before, the split's base pages
  // were new pages on the recorded (slow) node beside the huge page still in
  // the fast tier.
  EXPECT_EQ(d.promoted, (std::vector<uint64_t>{512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(d.demoted, std::vector<uint64_t>(12, 0));
  for (size_t i = 1; i < 12; ++i) {
    EXPECT_EQ(d.whatif_hits[i], 2048u) << "interval " << i;
    EXPECT_EQ(d.hits[i], i >= 4 && i < 8 ? 2048u : 2048u * 512) << "interval " << i;
  }
}

// A synthetic trace with THP (profiler synth --thp): half of the 2 MiB
// ranges collapse at times the seed draws, a quarter of those split later.
// The replay and whatif follow every size change alike: the same moves in
// each interval (replay_matches_whatif), huge pages among them.
TEST(Replay, SynthThpTraceIsDecidedAlikeByReplayAndWhatif) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "hotset", "1200000", {"--thp", "0.5", "--thp-split", "0.25", "--seed", "7"});
  const Decisions d = replay_matches_whatif(dir, trace);
  uint64_t promoted = 0;
  for (uint64_t p : d.promoted) promoted += p;
  EXPECT_GE(promoted, 512u) << "huge pages went up";
}
