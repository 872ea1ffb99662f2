// Replay and what-if on synthetic traces (no privileges needed):
// `membalancer tier --sampler replay:FILE --dry-run` makes, interval by
// interval, the decisions `profiler whatif --policy membalancer` predicts; the
// hot set ends up in the fast tier; the comparison and the sweep run; a replay
// refuses what it cannot do with one line and status 2.
#include <map>

#include "tests/integration/harness.h"

using namespace mbtest;
using nlohmann::json;

namespace {

std::string synth(const std::string& dir, const std::string& pattern, const std::string& samples) {
  const std::string path = dir + "/" + pattern + ".prof";
  Ran r = run({bin("profiler"), "synth", "--pattern", pattern, "--footprint", "64M", "--samples", samples, "--rate",
               "100000", "-o", path},
              dir, "synth-" + pattern);
  EXPECT_EQ(r.status, 0) << r.err;
  return path;
}

}  // namespace

TEST(Replay, TierDryRunMakesTheDecisionsWhatifPredicts) {
  const std::string dir = temp_dir();
  const std::string trace = synth(dir, "phase", "1200000");
  Ran w = run({bin("profiler"), "whatif", trace, "--policy", "membalancer", "--format", "json"}, dir, "whatif");
  ASSERT_EQ(w.status, 0) << w.err;
  json sim = json::parse(w.out);
  json mine;
  for (const auto& p : sim["policies"])
    if (p["policy"] == "membalancer") mine = p;
  ASSERT_FALSE(mine.is_null()) << w.out;

  Ran t = run({bin("membalancer"), "tier", "--sampler", "replay:" + trace, "--speed", "max", "--dry-run", "--display",
               "json"},
              dir, "replay");
  ASSERT_EQ(t.status, 0) << t.err;
  std::vector<uint64_t> promoted, demoted, hits;
  for (const auto& line : lines_of(t.out)) {
    json j = json::parse(line);
    if (j["type"] != "interval") continue;
    promoted.push_back(j["migration"]["plan"]["promote_pages"]);
    demoted.push_back(j["migration"]["plan"]["demote_pages"]);
    uint64_t fast = 0;
    for (const auto& n : j["nodes"])
      if (n["node"] == 0) fast = n["accesses"];
    hits.push_back(fast);
  }
  ASSERT_EQ(promoted.size(), sim["intervals"].get<size_t>());
  EXPECT_EQ(promoted, mine["promoted"].get<std::vector<uint64_t>>());
  EXPECT_EQ(demoted, mine["demoted"].get<std::vector<uint64_t>>());
  EXPECT_EQ(hits, mine["hits"].get<std::vector<uint64_t>>());
  uint64_t moved = 0;
  for (uint64_t p : promoted) moved += p;
  EXPECT_GT(moved, 1000u) << "the hot sets (1638 pages each) were promoted";
  // After each phase has settled, the fast tier serves most accesses (the
  // hot set takes 90% of them).
  const auto acc = sim["accesses"].get<std::vector<uint64_t>>();
  const size_t half = acc.size() / 2;
  EXPECT_GT(static_cast<double>(hits[half - 1]) / acc[half - 1], 0.85);
  EXPECT_GT(static_cast<double>(hits.back()) / acc.back(), 0.85);
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
