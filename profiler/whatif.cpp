#include "profiler/whatif.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "membalancer/error.h"
#include "membalancer/rate_limiter.h"
#include "membalancer/interval_runner.h"
#include "membalancer/json.h"
#include "membalancer/memory_backend.h"
#include "membalancer/replay.h"
#include "membalancer/sysfs.h"
#include "membalancer/tiers.h"
#include "profiler/sim_policies.h"
#include "profiler/text.h"

namespace mb::prof {

uint64_t WhatifRun::total_hits() const { return tier_total(0); }

uint64_t WhatifRun::tier_total(size_t tier) const {
  uint64_t s = 0;
  for (uint64_t h : tier ? lower_hits.at(tier - 1) : hits) s += h;
  return s;
}

uint64_t WhatifResult::total_accesses() const {
  uint64_t s = 0;
  for (uint64_t a : accesses) s += a;
  return s;
}

std::vector<std::string> whatif_policy_names() {
  std::vector<std::string> names{"membalancer"};
  for (const auto& n : sim_policy_names()) names.push_back(n);
  return names;
}

size_t sim_tier_of_recorded(size_t r, size_t recorded_tiers, size_t tiers) {
  return r + 1 >= recorded_tiers || r + 1 >= tiers ? tiers - 1 : r;
}

namespace {

// One interval's accesses served by each tier (tier 0 first) into a run.
void add_hits(WhatifRun& run, const std::vector<uint64_t>& per_tier) {
  run.hits.push_back(per_tier[0]);
  run.lower_hits.resize(per_tier.size() - 1);
  for (size_t k = 1; k < per_tier.size(); ++k) run.lower_hits[k - 1].push_back(per_tier[k]);
}

// The simulated machine of more than two tiers, or of two for a recording
// of one: node k = tier k, CPUs on node 0. The last tier is as large as the
// recorded machine's memory: it holds whatever the faster tiers do not.
Topology tier_topology(const std::vector<uint64_t>& upper_pages, uint64_t last_bytes) {
  Topology t;
  const int n = static_cast<int>(upper_pages.size()) + 1;
  for (int k = 0; k < n; ++k) {
    NumaNode node;
    node.id = k;
    if (k == 0) node.cpus = {0};
    for (int j = 0; j < n; ++j) node.distance[j] = 10 + 10 * std::abs(j - k);
    node.mem_total_bytes = node.mem_free_bytes = k + 1 < n ? upper_pages[k] * kBasePageBytes : last_bytes;
    t.nodes.push_back(node);
  }
  t.cpu_node = {0};
  return t;
}

// "0:1:...:n-1": the tiers of tier_topology.
std::string tier_spec(size_t n) {
  std::string s;
  for (size_t k = 0; k < n; ++k) s += (k ? ":" : "") + std::to_string(k);
  return s;
}

// membalancer's tier mode, as `membalancer tier --sampler replay:FILE
// --dry-run` runs it: its own source (fed the shared windows), pipeline,
// backend and model. Two tiers: on the recorded machine (tiers: "auto"),
// with fast_bytes as tier 0. More, or a recording of one tier: on
// tier_topology (tiers: tier_spec), the windows' nodes mapped by node_map.
struct TierRun {
  Options opts;
  Topology topo;
  std::unique_ptr<MemoryBackend> backend;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<ReplaySource> source;
  std::unique_ptr<IntervalRunner> runner;
  Tiers tiers;
  size_t sim_tiers;
  std::map<int, int> node_map;  // recorded node -> node of topo; empty: the same
  ReplayWindow mapped;

  TierRun(const WhatifOptions& w, const ProfileInfo& recorded, Topology topology, const std::string& spec,
          uint64_t fast_bytes, size_t n, std::map<int, int> nodes)
      : topo(std::move(topology)), sim_tiers(n), node_map(std::move(nodes)) {
    opts.command = "tier";
    opts.dry_run = true;
    opts.decay = kTierDecay;
    opts.interval_ms = w.interval_ms;
    opts.rate_limit_bytes = w.rate_limit_bytes;
    opts.tiers = spec;
    backend = std::make_unique<MemoryBackend>(opts, topo);
    PlacementModel* model = backend->use_model(
        fast_bytes, w.start_slow ? PlacementModel::Start::kSlow : PlacementModel::Start::kRecorded);
    tiers = choose_tiers(opts.tiers, topo);
    PipelineConfig pc = pipeline_config(opts);
    pc.collapse_heat = collapse_heat_for(recorded.sampler_kind);
    pipeline = std::make_unique<Pipeline>(pc, replay_node_query(), [](pid_t) { return std::string(); });
    source = std::make_unique<ReplaySource>(w.path, recorded.sampler);
    source->set_placement(model);
    runner = std::make_unique<IntervalRunner>(*source, *pipeline, backend.get());
  }

  void interval(const ReplayWindow& win, WhatifRun& run) {
    if (node_map.empty()) {
      source->serve(win);
    } else {
      mapped = win;
      for (auto& slot : mapped.slots) {
        const auto it = node_map.find(mb_slot_node(&slot));
        set_slot_node(slot, it == node_map.end() ? -1 : it->second);
      }
      source->serve(mapped);
    }
    IntervalReport r = runner->run(win.index, [] { return 0.0; });
    // Each sample once, by where the model placed its page, as for the other
    // rules (the report's node accesses count a 2 MiB page's per base page).
    // A recorded tier below the simulated ones (two tiers on a machine of
    // more) counts as the slow tier.
    std::vector<uint64_t> hits(sim_tiers, 0);
    for (const auto& [node, accesses] : source->placed_accesses()) {
      const int t = tiers.tier_of(node);
      hits[t < 0 ? sim_tiers - 1 : std::min<size_t>(t, sim_tiers - 1)] += accesses;
    }
    add_hits(run, hits);
    // What moved in the model (its flows, whole run), as the other rules
    // count theirs: not what the plan asked for, which may include moves
    // the model refused or that moved nothing.
    uint64_t up = 0, down = 0;
    if (r.migration)
      for (const TierLine& line : r.migration->tiers_view) up += line.promoted_pages, down += line.demoted_pages;
    run.promoted_at.push_back(up - run.promoted);
    run.demoted_at.push_back(down - run.demoted);
    run.promoted = up;
    run.demoted = down;
  }
};

// An interval's counts as the model holds the pages once they are placed:
// a page that changed size in the interval counts for the entry holding it
// now (a base page collapsed into a huge page: that huge page; a huge page
// split: its first base page), each entry once, its accesses summed.
void as_placed(std::vector<PageCount>& counts, const PlacementModel& model) {
  for (auto& c : counts) {
    c.key = model.holder(c.key);
    c.huge = model.huge(c.key);
  }
  std::sort(counts.begin(), counts.end(), [](const PageCount& a, const PageCount& b) { return a.key < b.key; });
  size_t out = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (out && counts[out - 1].key == counts[i].key) counts[out - 1].accesses += counts[i].accesses;
    else counts[out++] = counts[i];
  }
  counts.resize(out);
}

// A comparison policy on a two-node model (node 0 = the fast tier, 1 =
// slow), or the oracle's moves on a model of node k = tier k.
struct SimRun {
  std::unique_ptr<SimPolicy> policy;  // none: the oracle
  std::unique_ptr<PlacementModel> model;
  SimContext ctx{};
  std::optional<IntervalBudget> budget;  // the policy's; the oracle has none (no migration cost)
  const std::map<int, int>* sim_tier = nullptr;  // recorded node -> tier
  std::vector<int> tiers;                        // the oracle's: the model's nodes, fastest first
  std::vector<PageCount> counts;

  void interval(const ReplayWindow& win, WhatifRun& run) {
    counts.clear();
    uint64_t hits = 0, all = 0;
    for (const auto& s : win.slots) {
      const auto it = sim_tier->find(mb_slot_node(&s));
      const bool huge = mb_slot_huge(&s);
      if (model->place(s.key, it == sim_tier->end() ? -1 : it->second, huge) == ctx.fast_node) hits += s.accesses;
      all += s.accesses;
      counts.push_back({s.key, s.accesses, huge});
    }
    if (!model->resizes().empty()) as_placed(counts, *model);
    ctx.interval = win.index;
    if (!policy) {
      // The oracle: its moves to each interval's best placement, made before
      // the interval (its hits are oracle_tier_hits': the same with base
      // pages; with 2 MiB pages and more than two tiers, upper bounds).
      uint64_t up = 0, down = 0;
      oracle_step(counts, *model, tiers, &up, &down);
      model->take_resizes();  // nothing keeps state per page
      run.promoted += up;
      run.demoted += down;
      run.promoted_at.push_back(up);
      run.demoted_at.push_back(down);
      return;
    }
    add_hits(run, {hits, all - hits});
    ctx.budget_bytes = budget->next();
    const uint64_t charged = policy->charged();
    policy->interval(ctx, counts, *model);
    model->take_resizes();  // those the policy did not take (it keeps no state per page)
    budget->spend((policy->charged() - charged) * kBasePageBytes);
    run.promoted_at.push_back(policy->promoted() - run.promoted);
    run.demoted_at.push_back(policy->demoted() - run.demoted);
    run.promoted = policy->promoted();
    run.demoted = policy->demoted();
  }
};

}  // namespace

WhatifResult run_whatif(const WhatifOptions& w) {
  const size_t n = w.middle_bytes.size() + 2;  // simulated tiers
  ReplayReader reader(w.path, w.interval_ms);
  const Topology& topo = reader.topology();
  // The recorded machine's tiers. A machine of one tier (one node, or
  // sockets of DRAM alike) asks how much of its memory must be fast: its
  // pages start in the fast tier, in the order first seen, while that has
  // room (first touch), and the rest in the last.
  const std::optional<Tiers> tiered = automatic_tiers("auto", topo);
  const bool one_tier = !tiered;
  std::map<int, int> sim_tier;  // recorded node -> simulated tier
  uint64_t fast_bytes = w.fast_bytes, recorded_bytes = 0;
  for (const auto& node : topo.nodes) {
    recorded_bytes += node.mem_total_bytes;
    if (one_tier) {
      if (node.mem_total_bytes) sim_tier[node.id] = 0;
      continue;
    }
    const int r = tiered->tier_of(node.id);
    if (r < 0) continue;
    sim_tier[node.id] = static_cast<int>(sim_tier_of_recorded(static_cast<size_t>(r), tiered->size(), n));
    if (!w.fast_bytes && r == 0) fast_bytes += node.mem_total_bytes;
  }
  if (one_tier && !fast_bytes)
    throw UsageError(w.path + ": recorded on a machine of one memory tier (" + format_bytes(recorded_bytes) +
                     "): give the fast tier's size (--fast SIZE, --tiers or --sweep)");
  if (fast_bytes < kBasePageBytes)
    throw UsageError(std::string(n > 2 ? "--tiers" : "--fast") + ": the fast tier must hold at least one page");

  WhatifResult res;
  res.recorded_tiers = one_tier ? 1 : tiered->size();
  res.fast_pages = fast_bytes / kBasePageBytes;
  for (size_t k = 0; k < w.middle_bytes.size(); ++k) {
    if (w.middle_bytes[k] < kBasePageBytes)
      throw UsageError("--tiers: tier " + std::to_string(k + 1) + " must hold at least one page");
    res.middle_pages.push_back(w.middle_bytes[k] / kBasePageBytes);
  }
  std::vector<uint64_t> upper_pages{res.fast_pages};  // tiers 0..n-2
  upper_pages.insert(upper_pages.end(), res.middle_pages.begin(), res.middle_pages.end());

  std::vector<std::string> names = w.policies;
  if (names.empty()) {
    names = whatif_policy_names();
    if (n > 2) names = {"membalancer"}, res.not_run = sim_policy_names();
  }
  auto add_run = [&](const std::string& name, const std::string& rule) {
    WhatifRun run;
    run.policy = name;
    run.rule = rule;
    res.runs.push_back(std::move(run));
  };
  add_run("oracle", n > 2 ? "each interval the hottest pages fill tier 0, the next tier 1, ..., knowing its counts; "
                            "no migration cost"
                          : "the hottest pages of each interval, knowing its counts; no migration cost");
  std::unique_ptr<TierRun> tier;
  std::vector<std::pair<size_t, std::unique_ptr<SimRun>>> sims;
  // A model of node k = tier k, the last holding whatever the faster ones
  // do not, pages starting as asked.
  auto tier_model = [&] {
    std::map<int, uint64_t> capacity;
    for (size_t k = 0; k < n; ++k) capacity[static_cast<int>(k)] = k + 1 < n ? upper_pages[k] : UINT64_MAX / 2;
    auto m = std::make_unique<PlacementModel>(std::move(capacity), static_cast<int>(n - 1),
                                              w.start_slow ? PlacementModel::Start::kSlow
                                                           : PlacementModel::Start::kRecorded);
    m->keep_resizes(true);  // an interval's size changes: for its counts, and for a policy's state per page
    return m;
  };
  auto two_tier_run = [&](std::unique_ptr<SimPolicy> policy) {
    auto s = std::make_unique<SimRun>();
    s->ctx.fast_node = 0;
    s->ctx.slow_node = 1;
    s->ctx.interval_s = w.interval_ms / 1000.0;
    // The same budget as membalancer's backend: unspent credit carries over.
    s->budget.emplace(w.rate_limit_bytes, w.interval_ms);
    s->sim_tier = &sim_tier;
    s->model = tier_model();
    s->policy = std::move(policy);
    return s;
  };
  // The oracle's moves: from where pages start, each interval to its best placement.
  auto oracle = std::make_unique<SimRun>();
  oracle->sim_tier = &sim_tier;
  oracle->model = tier_model();
  for (size_t k = 0; k < n; ++k) oracle->tiers.push_back(static_cast<int>(k));
  sims.emplace_back(0, std::move(oracle));
  for (const auto& name : names) {
    if (name == "membalancer") {
      if (tier) continue;
      if (n > 2 || one_tier)
        tier = std::make_unique<TierRun>(w, reader.info(), tier_topology(upper_pages, recorded_bytes),
                                         tier_spec(n), 0, n, sim_tier);
      else
        tier = std::make_unique<TierRun>(w, reader.info(), topo, "auto", fast_bytes, n, std::map<int, int>{});
      add_run(name, "membalancer tier: heat histogram sized to capacity, watermarks, cool-down");
      continue;
    }
    auto p = make_sim_policy(name);
    if (!p) {
      std::string known;
      for (const auto& k : whatif_policy_names()) known += (known.empty() ? "" : ", ") + k;
      throw UsageError("--policy: unknown policy '" + name + "' (known: " + known + ")");
    }
    if (n > 2)
      throw UsageError("--policy: " + name + " is a two-tier rule; with " + std::to_string(n) +
                       " tiers only membalancer runs (and the oracle)");
    add_run(name, p->describe());
    sims.emplace_back(res.runs.size() - 1, two_tier_run(std::move(p)));
  }
  const size_t tier_run = [&] {
    for (size_t i = 0; i < res.runs.size(); ++i)
      if (res.runs[i].policy == "membalancer") return i;
    return size_t{0};
  }();

  ReplayWindow win;
  // Each page key seen, and how: kSeenBase, kSeenHuge (its 2 MiB).
  constexpr uint8_t kSeenBase = 1, kSeenHuge = 2;
  FlatMap<uint64_t, uint8_t, U64KeyOps> seen;
  while (reader.next(&win)) {
    uint64_t acc = 0;
    for (const auto& s : win.slots) {
      acc += s.accesses;
      seen[s.key] |= mb_slot_huge(&s) ? kSeenHuge : kSeenBase;
    }
    res.accesses.push_back(acc);
    for (auto& [i, s] : sims) s->interval(win, res.runs[i]);
    // The oracle's hits: of the pages as they are after this interval's
    // size changes (sims[0] is the oracle's run).
    add_hits(res.runs[0], oracle_tier_hits(sims.front().second->counts, upper_pages));
    if (tier) tier->interval(win, res.runs[tier_run]);
    if (w.after_interval) w.after_interval();
  }
  // In base pages, as the tiers' sizes: a huge page is 512, and a base page
  // its 2 MiB covers (seen before a collapse or after a split) is in them.
  seen.for_each([&](uint64_t key, uint8_t how) {
    if (how & kSeenHuge) {
      res.pages_seen += MB_HUGE_BASE_PAGES;
    } else {
      const uint8_t* huge = seen.find(mb_huge_page_key(key));
      if (!huge || !(*huge & kSeenHuge)) ++res.pages_seen;
    }
  });
  res.samples = reader.samples_read();
  res.sampler = reader.info().sampler;
  // A file damaged before its first sample with an address: the damage is
  // what is wrong with it, not the sampler.
  if (!res.pages_seen && !reader.damage().empty())
    throw UsageError(w.path + ": " + reader.damage() + " (no sample with a data address precedes it)");
  if (!res.pages_seen)
    throw UsageError(w.path + ": no samples with a data address (recorded with " + res.sampler +
                     "): whatif needs the pages accessed (ibs, pebs, abit or fault)");
  res.lost = profile_losses(reader.info());
  res.damage = reader.damage();  // the caller says it, once (a sweep reads the file per size)
  return res;
}

namespace {

double ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

}  // namespace

void print_whatif(FILE* out, const WhatifOptions& opts, const WhatifResult& r, const std::string& format) {
  const uint64_t total = r.total_accesses();
  const uint64_t oracle = r.runs.empty() ? 0 : r.runs[0].total_hits();
  const size_t n = r.tiers();
  auto hits_at = [](const WhatifRun& run, size_t tier, size_t i) {
    return tier ? run.lower_hits[tier - 1][i] : run.hits[i];
  };
  if (format == "json") {
    JsonWriter w;
    w.begin_object().field("type", "whatif").field("file", opts.path);
    w.field("fast_bytes", r.fast_pages * kBasePageBytes).field("pages_seen", r.pages_seen);
    w.field("samples", r.samples).field("interval_ms", opts.interval_ms).field("intervals", r.accesses.size());
    w.field("rate_limit_bytes", opts.rate_limit_bytes).field("sampler", r.sampler);
    w.field("recorded_tiers", r.recorded_tiers);
    w.field("samples_lost", r.lost.samples).field("events_lost", r.lost.events);
    w.field("processes_not_tracked", r.lost.untracked);
    // N tiers: the sizes of tiers 0..N-2 (the last holds the rest).
    w.field("tiers", n).key("tier_bytes").begin_array().value(r.fast_pages * kBasePageBytes);
    for (uint64_t p : r.middle_pages) w.value(p * kBasePageBytes);
    w.end_array().key("not_run").begin_array();
    for (const auto& name : r.not_run) w.value(name);
    w.end_array();
    w.key("accesses").begin_array();
    for (uint64_t a : r.accesses) w.value(a);
    w.end_array();
    w.key("policies").begin_array();
    for (const auto& run : r.runs) {
      w.begin_object().field("policy", run.policy).field("rule", run.rule);
      w.field("hit_ratio", ratio(run.total_hits(), total)).field("of_oracle", ratio(run.total_hits(), oracle));
      w.field("promoted_pages", run.promoted).field("demoted_pages", run.demoted);
      w.key("hits").begin_array();
      for (uint64_t h : run.hits) w.value(h);
      w.end_array();
      w.key("tier_hit_ratio").begin_array();
      for (size_t k = 0; k < n; ++k) w.value(ratio(run.tier_total(k), total));
      w.end_array().key("tier_hits").begin_array();
      for (size_t k = 0; k < n; ++k) {
        w.begin_array();
        for (size_t i = 0; i < r.accesses.size(); ++i) w.value(hits_at(run, k, i));
        w.end_array();
      }
      w.end_array();
      w.key("promoted").begin_array();
      for (uint64_t v : run.promoted_at) w.value(v);
      w.end_array().key("demoted").begin_array();
      for (uint64_t v : run.demoted_at) w.value(v);
      w.end_array();
      w.end_object();
    }
    w.end_array().end_object();
    std::fprintf(out, "%s\n", w.str().c_str());
    return;
  }
  // Two tiers: the fast tier's share only (the slow one's is the rest).
  const size_t lower = n > 2 ? n - 1 : 0;
  if (format == "csv") {
    std::fprintf(out, "interval,accesses");
    for (const auto& run : r.runs) std::fprintf(out, ",%s", run.policy.c_str());
    for (const auto& run : r.runs)
      for (size_t k = 1; k <= lower; ++k) std::fprintf(out, ",%s:tier%zu", run.policy.c_str(), k);
    std::fprintf(out, "\n");
    // An interval without accesses has no ratios: its cells stay empty.
    auto share = [&](uint64_t hits, size_t i) {
      if (r.accesses[i]) std::fprintf(out, ",%.4f", ratio(hits, r.accesses[i]));
      else std::fputc(',', out);
    };
    for (size_t i = 0; i < r.accesses.size(); ++i) {
      std::fprintf(out, "%zu,%" PRIu64, i + 1, r.accesses[i]);
      for (const auto& run : r.runs) share(run.hits[i], i);
      for (const auto& run : r.runs)
        for (size_t k = 1; k <= lower; ++k) share(hits_at(run, k, i), i);
      std::fprintf(out, "\n");
    }
    return;
  }
  std::fprintf(out, "WHAT-IF  %s: %" PRIu64 " samples, %zu intervals of %u ms, %" PRIu64 " pages (%s) seen\n",
               opts.path.c_str(), r.samples, r.accesses.size(), opts.interval_ms, r.pages_seen,
               format_bytes(r.pages_seen * kBasePageBytes).c_str());
  if (r.lost.any())
    std::fprintf(out, "recorded with losses: %s; the simulation sees only what was recorded\n",
                 r.lost.describe().c_str());
  // Faults are not accesses: say what the counts weigh.
  if (r.sampler == "fault")
    std::fprintf(out, "sampler fault: page faults (first touches, copy-on-write, NUMA hinting), not every access: "
                      "pages weigh by their faults\n");
  const std::string limit =
      opts.rate_limit_bytes ? "moves limited to " + format_bytes(opts.rate_limit_bytes) + "/s" : "moves not limited";
  const char* start = opts.start_slow            ? (n > 2 ? "in the last tier" : "slow")
                      : r.recorded_tiers == 1 ? (n > 2 ? "in tier 0 as first seen while it has room, else in the last "
                                                         "(recorded on one tier)"
                                                       : "fast as first seen while it has room (recorded on one tier)")
                                              : "where recorded";
  if (n == 2) {
    std::fprintf(out, "fast tier %s (%.1f%% of the pages seen); %s; pages start %s\n\n",
                 format_bytes(r.fast_pages * kBasePageBytes).c_str(), 100.0 * ratio(r.fast_pages, r.pages_seen),
                 limit.c_str(), start);
  } else {
    uint64_t upper = r.fast_pages;
    std::fprintf(out, "tiers: 0 = %s (%.1f%% of the pages seen)", format_bytes(r.fast_pages * kBasePageBytes).c_str(),
                 100.0 * ratio(r.fast_pages, r.pages_seen));
    for (size_t k = 0; k < r.middle_pages.size(); ++k) {
      std::fprintf(out, ", %zu = %s (%.1f%%)", k + 1, format_bytes(r.middle_pages[k] * kBasePageBytes).c_str(),
                   100.0 * ratio(r.middle_pages[k], r.pages_seen));
      upper += r.middle_pages[k];
    }
    std::fprintf(out, ", %zu = the rest; %s; pages start %s\n", n - 1, limit.c_str(), start);
    if (upper >= r.pages_seen)
      std::fprintf(out, "(tiers 0-%zu can hold every page seen: the best placement leaves tier %zu unused)\n", n - 2,
                   n - 1);
    std::fprintf(out, "hit ratio: the share of the accesses tier 0 served; tier k: tier k's share\n\n");
  }
  std::fprintf(out, "%-14s %9s %9s", "policy", "hit ratio", "of oracle");
  for (size_t k = 1; k <= lower; ++k) std::fprintf(out, " %7s%zu", "tier ", k);
  std::fprintf(out, " %11s %11s  %s\n", "promoted", "demoted", "rule");
  for (const auto& run : r.runs) {
    std::fprintf(out, "%-14s %8.1f%% %8.1f%%", run.policy.c_str(), 100.0 * ratio(run.total_hits(), total),
                 100.0 * ratio(run.total_hits(), oracle));
    for (size_t k = 1; k <= lower; ++k) std::fprintf(out, " %7.1f%%", 100.0 * ratio(run.tier_total(k), total));
    std::fprintf(out, " %11" PRIu64 " %11" PRIu64 "  %s\n", run.promoted, run.demoted, run.rule.c_str());
  }
  if (!r.not_run.empty()) {
    std::string names;
    for (const auto& name : r.not_run) names += (names.empty() ? "" : ", ") + name;
    std::fprintf(out, "not run (two-tier rules): %s\n", names.c_str());
  }
  // Over time: at most 20 rows, evenly spread. More than two tiers: each
  // cell is the shares of tiers 0..N-2 ("61.0/30.2"; the rest: the last).
  const size_t rows_n = r.accesses.size();
  if (!rows_n) return;
  auto cell = [&](const WhatifRun& run, size_t i) {
    if (!r.accesses[i]) return std::string("-");  // no accesses: no ratio
    char b[16];
    if (n == 2) {
      std::snprintf(b, sizeof b, "%.1f%%", 100.0 * ratio(run.hits[i], r.accesses[i]));
      return std::string(b);
    }
    std::string c;
    for (size_t k = 0; k + 1 < n; ++k) {
      std::snprintf(b, sizeof b, "%s%.1f", k ? "/" : "", 100.0 * ratio(hits_at(run, k, i), r.accesses[i]));
      c += b;
    }
    return c;
  };
  const int width = static_cast<int>(std::max<size_t>(12, 6 * (n - 1)));
  if (n == 2) {
    std::fprintf(out, "\nhit ratio over time (%% of each interval's accesses)\n%8s", "interval");
  } else {
    std::string tiers;
    for (size_t k = 0; k + 1 < n; ++k) tiers += (k ? "/" : "") + std::to_string(k);
    std::fprintf(out, "\nover time: %% of each interval's accesses served by tier %s (the rest by tier %zu)\n%8s",
                 tiers.c_str(), n - 1, "interval");
  }
  for (const auto& run : r.runs) std::fprintf(out, " %*s", width, run.policy.c_str());
  std::fprintf(out, "\n");
  const size_t rows = std::min<size_t>(rows_n, 20);
  for (size_t k = 0; k < rows; ++k) {
    const size_t i = rows == 1 ? 0 : k * (rows_n - 1) / (rows - 1);
    std::fprintf(out, "%8zu", i + 1);
    for (const auto& run : r.runs) std::fprintf(out, " %*s", width, cell(run, i).c_str());
    std::fprintf(out, "\n");
  }
}

unsigned jobs_that_fit(unsigned jobs, uint64_t per_job_bytes, uint64_t available_bytes) {
  if (!per_job_bytes) return std::max(jobs, 1u);
  // A fifth of what is available stays for everything else.
  const uint64_t fit = available_bytes / 5 * 4 / per_job_bytes;
  return static_cast<unsigned>(std::clamp<uint64_t>(fit, 1, std::max(jobs, 1u)));
}

namespace {

// The most this process has been resident, in bytes (getrusage).
uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

// /proc/meminfo's MemAvailable; 0 when unknown.
uint64_t mem_available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    f.ignore(64, '\n');
  }
  return 0;
}

}  // namespace

std::vector<SweepPoint> run_sweep(const WhatifOptions& base, const std::vector<uint64_t>& sizes, unsigned jobs,
                                  bool fit_memory) {
  std::vector<std::optional<WhatifResult>> results(sizes.size());
  std::vector<std::exception_ptr> errors(sizes.size());
  std::atomic<size_t> next{0};
  auto run_one = [&](size_t i) {
    WhatifOptions o = base;
    o.fast_bytes = sizes[i];
    try {
      results[i] = run_whatif(o);
    } catch (...) {
      errors[i] = std::current_exception();
      next = sizes.size();  // no new sizes: the run fails
    }
  };
  auto work = [&] {
    for (size_t i; (i = next++) < sizes.size();) run_one(i);
  };
  jobs = std::max(jobs, 1u);
  if (fit_memory && jobs > 1 && sizes.size() > 1) {
    // The first size alone says what one simulation takes; as many run at
    // once as the available memory holds.
    const uint64_t before = peak_rss_bytes();
    next = 1;
    run_one(0);
    const uint64_t per_job = peak_rss_bytes() > before ? peak_rss_bytes() - before : 0;
    const uint64_t available = mem_available_bytes();
    const unsigned fit = available ? jobs_that_fit(jobs, per_job, available) : jobs;
    if (fit < jobs)
      std::fprintf(stderr,
                   "profiler: --sweep: %u sizes at once would take about %s of the %s available; simulating %u at "
                   "once (--jobs N to choose)\n",
                   jobs, format_bytes(per_job * jobs).c_str(), format_bytes(available).c_str(), fit);
    jobs = fit;
  }
  std::vector<std::thread> threads;
  for (size_t j = 1; j < std::min<size_t>(jobs, sizes.size()); ++j) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  std::vector<SweepPoint> points;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (errors[i]) std::rethrow_exception(errors[i]);
    if (results[i]) points.push_back({sizes[i], std::move(*results[i])});
  }
  return points;
}

std::optional<uint64_t> smallest_reaching(const std::vector<SweepPoint>& points, size_t run, double hit_ratio) {
  for (const auto& p : points)
    if (ratio(p.result.runs.at(run).total_hits(), p.result.total_accesses()) >= hit_ratio) return p.fast_bytes;
  return std::nullopt;
}

void print_sweep(FILE* out, const std::vector<SweepPoint>& points, const std::string& format) {
  if (points.empty()) return;
  const auto& runs = points.front().result.runs;
  if (format == "json") {
    JsonWriter w;
    w.begin_object().field("type", "whatif_sweep").key("points").begin_array();
    for (const auto& p : points) {
      w.begin_object().field("fast_bytes", p.fast_bytes);
      for (const auto& run : p.result.runs) w.field(run.policy, ratio(run.total_hits(), p.result.total_accesses()));
      w.end_object();
    }
    // Per policy, the smallest size swept serving each share (null: none).
    w.end_array().key("smallest_fast_bytes").begin_object();
    for (size_t i = 0; i < runs.size(); ++i) {
      w.key(runs[i].policy).begin_object();
      for (const double share : kSweepShares) {
        char key[8];
        std::snprintf(key, sizeof key, "%.2f", share);
        w.key(key);
        if (const auto b = smallest_reaching(points, i, share)) w.value(*b);
        else w.null();
      }
      w.end_object();
    }
    w.end_object().end_object();
    std::fprintf(out, "%s\n", w.str().c_str());
    return;
  }
  const bool csv = format == "csv";
  std::fprintf(out, csv ? "fast_bytes" : "%12s", csv ? "" : "fast tier");
  for (const auto& run : runs) std::fprintf(out, csv ? ",%s" : " %12s", run.policy.c_str());
  std::fprintf(out, "\n");
  for (const auto& p : points) {
    if (csv) std::fprintf(out, "%" PRIu64, p.fast_bytes);
    else std::fprintf(out, "%12s", format_bytes(p.fast_bytes).c_str());
    for (const auto& run : p.result.runs) {
      const double v = ratio(run.total_hits(), p.result.total_accesses());
      if (csv) std::fprintf(out, ",%.4f", v);
      else std::fprintf(out, " %11.1f%%", 100.0 * v);
    }
    std::fprintf(out, "\n");
  }
  if (csv) return;
  // The operator's answer: how small a fast tier still serves a share.
  std::fprintf(out, "\nsmallest fast tier swept that serves this share of the accesses\n");
  for (const double share : kSweepShares) {
    char label[16];
    std::snprintf(label, sizeof label, "%.0f%%", 100.0 * share);
    std::fprintf(out, "%12s", label);
    for (size_t i = 0; i < runs.size(); ++i) {
      // The first size swept may be more than needed, the last too little.
      const auto b = smallest_reaching(points, i, share);
      const std::string cell = !b                                   ? ">" + format_bytes(points.back().fast_bytes)
                               : *b == points.front().fast_bytes ? "<=" + format_bytes(*b)
                                                                   : format_bytes(*b);
      std::fprintf(out, " %12s", cell.c_str());
    }
    std::fprintf(out, "\n");
  }
}

namespace {

// Line colours, shared by the SVG and the PNG: the oracle black, then the
// policies in table order.
const Rgb kSeriesColours[] = {{0, 0, 0},       {214, 39, 40},  {31, 119, 180}, {44, 160, 44},
                              {148, 103, 189}, {255, 127, 14}, {140, 86, 75}};
const Rgb kGrid{221, 221, 221};
constexpr double kOracleDash[2] = {6, 4};
// Wider than the widest glyph of either rendering (SVG sans 12px, PNG 6px).
constexpr int kLabelCharPx = 7;

std::string hex(Rgb c) {
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", c.r, c.g, c.b);
  return b;
}

// SVG text: the shared sanitiser (profiler/text.h).
std::string xml_text(const std::string& in) { return xml_escape(in); }

}  // namespace

SweepChart sweep_chart(const std::vector<SweepPoint>& points, const std::string& title) {
  SweepChart ch;
  ch.title = title;
  if (points.empty()) return ch;
  const double pw = ch.plot_w, ph = ch.plot_h;
  const double xmin = static_cast<double>(points.front().fast_bytes), xmax = static_cast<double>(points.back().fast_bytes);
  auto x = [&](uint64_t b) { return ch.plot_x + (xmax > xmin ? (b - xmin) / (xmax - xmin) : 0.5) * pw; };
  auto y = [&](double v) { return ch.plot_y + (1.0 - std::clamp(v, 0.0, 1.0)) * ph; };
  for (int k = 0; k <= 10; ++k) ch.y_ticks.push_back({y(k / 10.0), std::to_string(k * 10) + "%"});
  // Size labels: every point when they fit, else every k-th so they do not overlap.
  size_t widest = 0;
  for (const auto& p : points) widest = std::max(widest, format_bytes(p.fast_bytes).size());
  const double gap = points.size() > 1 ? pw / static_cast<double>(points.size() - 1) : pw;
  const size_t every = std::max<size_t>(1, static_cast<size_t>(std::ceil((widest * kLabelCharPx + 10) / gap)));
  for (size_t i = 0; i < points.size(); i += every)
    ch.x_ticks.push_back({x(points[i].fast_bytes), format_bytes(points[i].fast_bytes)});
  const auto& runs = points.front().result.runs;
  for (size_t r = 0; r < runs.size(); ++r) {
    SweepChart::Series s{runs[r].policy, kSeriesColours[r % std::size(kSeriesColours)], r == 0, {}};
    for (const auto& p : points)
      s.points.push_back({x(p.fast_bytes), y(ratio(p.result.runs[r].total_hits(), p.result.total_accesses()))});
    ch.series.push_back(std::move(s));
  }
  ch.legend_x = ch.plot_x + ch.plot_w + 12;
  ch.legend_y = ch.plot_y + 16;
  return ch;
}

std::string sweep_svg(const std::vector<SweepPoint>& points, const std::string& title) {
  const SweepChart ch = sweep_chart(points, title);
  const double L = ch.plot_x, T = ch.plot_y, pw = ch.plot_w, ph = ch.plot_h;
  std::string s;
  char buf[512];
  snprintf(buf, sizeof buf,
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
           "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
           ch.width, ch.height);
  s += buf;
  snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"22\" font-size=\"14\">", L);
  s += buf + xml_text(ch.title) + "</text>\n";
  for (const auto& t : ch.y_ticks) {
    snprintf(buf, sizeof buf,
             "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/><text x=\"%.0f\" y=\"%.1f\" "
             "text-anchor=\"end\">%s</text>\n",
             L, t.at, L + pw, t.at, hex(kGrid).c_str(), L - 6, t.at + 4, xml_text(t.label).c_str());
    s += buf;
  }
  snprintf(buf, sizeof buf, "<polyline fill=\"none\" stroke=\"black\" points=\"%.0f,%.0f %.0f,%.0f %.0f,%.0f\"/>\n", L,
           T, L, T + ph, L + pw, T + ph);
  s += buf;
  for (const auto& t : ch.x_ticks) {
    snprintf(buf, sizeof buf,
             "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"black\"/><text x=\"%.1f\" y=\"%.1f\" "
             "text-anchor=\"middle\">%s</text>\n",
             t.at, T + ph, t.at, T + ph + 5, t.at, T + ph + 18, xml_text(t.label).c_str());
    s += buf;
  }
  snprintf(buf, sizeof buf,
           "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n<text x=\"16\" y=\"%.1f\" "
           "transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">%s</text>\n",
           L + pw / 2, ch.height - 8, xml_text(ch.x_label).c_str(), T + ph / 2, T + ph / 2, xml_text(ch.y_label).c_str());
  s += buf;
  for (size_t r = 0; r < ch.series.size(); ++r) {
    const auto& se = ch.series[r];
    const std::string c = hex(se.colour);
    char dash[48] = "";
    if (se.dashed) snprintf(dash, sizeof dash, " stroke-dasharray=\"%g %g\"", kOracleDash[0], kOracleDash[1]);
    std::string pts;
    for (const auto& p : se.points) {
      snprintf(buf, sizeof buf, "%.1f,%.1f ", p.x, p.y);
      pts += buf;
    }
    snprintf(buf, sizeof buf, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n", c.c_str(),
             dash, pts.c_str());
    s += buf;
    const int ly = ch.legend_y + static_cast<int>(r) * ch.legend_dy;
    snprintf(buf, sizeof buf,
             "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/><text x=\"%d\" y=\"%d\" "
             "fill=\"%s\">",
             ch.legend_x, ly - 4, ch.legend_x + 24, ly - 4, c.c_str(), dash, ch.legend_x + 30, ly, c.c_str());
    s += buf + xml_text(se.name) + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

std::vector<uint8_t> sweep_png(const std::vector<SweepPoint>& points, const std::string& title) {
  const SweepChart ch = sweep_chart(points, title);
  const int L = ch.plot_x, T = ch.plot_y, B = ch.plot_y + ch.plot_h, R = ch.plot_x + ch.plot_w;
  const Rgb black{0, 0, 0};
  Canvas cv(ch.width, ch.height);
  // The title twice the size when it fits.
  const int scale = Canvas::text_width(ch.title, 2) <= ch.width - L - 8 ? 2 : 1;
  cv.text(L, 24, ch.title, black, scale);
  for (const auto& t : ch.y_ticks) {
    const int y = static_cast<int>(std::lround(t.at));
    cv.line({L + 0.5, y + 0.5}, {R + 0.5, y + 0.5}, kGrid);
    cv.fill_rect(L - 4, y, 4, 1, black);
    cv.text(L - 7 - Canvas::text_width(t.label), y + 3, t.label, black);
  }
  for (const auto& t : ch.x_ticks) {
    const int x = static_cast<int>(std::lround(t.at));
    cv.fill_rect(x, B + 1, 1, 4, black);
    cv.text(x - Canvas::text_width(t.label) / 2, B + 17, t.label, black);
  }
  cv.fill_rect(L, T, 1, B - T + 1, black);  // axes
  cv.fill_rect(L, B, R - L + 1, 1, black);
  cv.text(L + ch.plot_w / 2 - Canvas::text_width(ch.x_label) / 2, ch.height - 10, ch.x_label, black);
  cv.text_up(22, T + ch.plot_h / 2 + Canvas::text_width(ch.y_label) / 2, ch.y_label, black);
  const Dash dash{kOracleDash[0], kOracleDash[1]};
  for (size_t r = 0; r < ch.series.size(); ++r) {
    const auto& se = ch.series[r];
    cv.polyline(se.points, se.colour, 2, se.dashed ? dash : Dash{});
    const int ly = ch.legend_y + static_cast<int>(r) * ch.legend_dy;
    cv.line({ch.legend_x + 0.0, ly - 3.0}, {ch.legend_x + 24.0, ly - 3.0}, se.colour, 2, se.dashed ? dash : Dash{});
    cv.text(ch.legend_x + 30, ly, se.name, se.colour);
  }
  return cv.png();
}

}  // namespace mb::prof
