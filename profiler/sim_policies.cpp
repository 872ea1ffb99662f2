// The comparison policies of `profiler whatif` and its oracle; the rules and
// where their knobs come from are at the top of sim_policies.h.
#include "profiler/sim_policies.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <utility>

#include "membalancer/flat_map.h"
#include "membalancer/report.h"

namespace mb {
namespace {

uint64_t base_pages(bool huge) { return huge ? kBasePagesPerHuge : 1; }

// What a policy remembers of a page it has seen sampled. Fields a policy
// does not use stay 0.
struct SimPage {
  uint64_t key = 0;
  int32_t node = -1;       // as of its last sample or of this policy's last move of it
  uint32_t last_seen = 0;  // interval of its last sample
  uint32_t since = 0;      // memtierd-age: first interval of the current run of sampled intervals
  uint32_t count = 0;      // memtis: access count, halved at each cooling
  uint32_t moved = 0;      // interval of this policy's last move of it
  uint8_t lru = 0;         // tpp, on the slow node: hint faults taken while inactive, up to kActive
  bool huge = false;
  bool gone = false;        // collapsed into a huge page: no page of its own (node -1) until a split
  double unmapped_at = -1;  // NumaScan: when the scanner unmapped it (< 0: mapped, no hint fault to come)
  uint64_t pages() const { return base_pages(huge); }
};

// A size change (PlacementModel::Resize) as each rule's state sees it. The
// fields are each one rule's (SimPage), so one rule per field serves all.
//
// Collapse: the huge page's record from its base pages' (those the policy
// knows): khugepaged copies them into one new THP.
SimPage collapsed(const std::vector<const SimPage*>& parts, uint64_t key, int node) {
  SimPage h;
  h.key = key;
  h.node = node;
  h.huge = true;
  uint64_t count = 0;
  for (const SimPage* p : parts) {
    // memtis: a huge page's count is the accesses to any of its base pages,
    // so theirs add up (a collapse neither makes nor loses accesses).
    count += p->count;
    // Every rule: the THP's accessed bit is any of its PTEs' (khugepaged
    // carries young over), so it was last sampled when its latest base
    // page was; moved when the policy last moved any of them.
    h.last_seen = std::max(h.last_seen, p->last_seen);
    h.moved = std::max(h.moved, p->moved);
  }
  h.count = static_cast<uint32_t>(std::min<uint64_t>(count, UINT32_MAX));
  // memtierd-age: the huge page was sampled in each interval any base page
  // was; its current run is the union of the runs reaching its last sample,
  // from the earliest start among them (earlier runs are not remembered).
  h.since = h.last_seen;
  for (const SimPage* p : parts)
    if (p->last_seen == h.last_seen && p->since) h.since = std::min(h.since, p->since);
  // tpp: the new THP goes on the inactive list unreferenced (lru 0), and
  // tpp and linux-tiering: its new PMD maps it, so no hint fault is pending.
  h.lru = 0;
  h.unmapped_at = -1;
  return h;
}

// Split: base page i of the huge page `h` (the kernel's split leaves each
// where it was: the node is h's).
SimPage split_off(const SimPage& h, uint64_t i) {
  SimPage b = h;
  b.key = h.key + i;
  b.huge = false;
  // memtis: its count is accesses, a share of the huge page's each (the
  // remainder one each to the first pages), so the base pages add up to it:
  // after a split Memtis counts each 4 KiB page's own accesses.
  b.count = static_cast<uint32_t>(h.count / kBasePagesPerHuge + (i < h.count % kBasePagesPerHuge ? 1 : 0));
  // The rest as the huge page's: the split copies the head's LRU list and
  // referenced bit to every tail (tpp's lru), a PROT_NONE PMD becomes
  // PROT_NONE PTEs (the hint fault still comes: unmapped_at), and the last
  // sample and run (memtierd-age, LRU order) are all the rules know of
  // each base page.
  return b;
}

// The pages a policy has seen, dense, with a hash index by key. Iteration is
// over the vector (the order pages were first seen); every decision sorts
// with the key as the last tie-break, so that order never shows.
//
// A page's node is read from the model when it is first seen and then kept
// up to date by the policy's own moves (one hash lookup per page saved on
// every sample and move): the model must be the policy's own, the engine
// only placing new pages in it (sim_policies.h).
class PageBook {
 public:
  // The indexes of the pages of `counts`, in its order, created on first
  // sight with their node from the model (`fresh` set for those).
  std::vector<uint32_t> touch(const std::vector<PageCount>& counts, const PlacementModel& model,
                              std::vector<bool>* fresh = nullptr) {
    constexpr size_t kAhead = 8;  // hash lookups in flight: a 1M-page index is far bigger than the caches
    std::vector<uint32_t> out(counts.size());
    if (fresh) fresh->assign(counts.size(), false);
    for (size_t i = 0; i < counts.size(); ++i) {
      if (i + kAhead < counts.size()) index_.prefetch(counts[i + kAhead].key);
      const PageCount& c = counts[i];
      uint32_t& slot = index_[c.key];  // index + 1; 0 = absent
      if (slot == 0 || pages_[slot - 1].gone) {
        SimPage p;
        p.key = c.key;
        p.huge = c.huge;
        p.node = model.node_of(c.key);
        if (slot) {
          pages_[slot - 1] = p;  // merged into a huge page the policy no longer knows: anew
        } else {
          pages_.push_back(p);
          slot = static_cast<uint32_t>(pages_.size());
        }
        if (fresh) (*fresh)[i] = true;
      }
      out[i] = slot - 1;
    }
    return out;
  }
  // Follows the size changes placing this interval's pages made in the
  // model (PlacementModel::take_resizes), before touch(): base pages the
  // policy knows that collapsed become one huge page (collapsed()), a huge
  // page it knows that split becomes 512 base pages (split_off()). leave(p)
  // is called for each page before it is merged or split away, join(p) for
  // each page made, so that a rule keeping totals over its pages (memtis's
  // histogram) follows. A huge page takes the slot of its first base page
  // the policy knew (the lowest key: the address order of the book's keys,
  // the scan's, holds); the others are `gone`, kept for a later split.
  template <typename Leave, typename Join>
  void follow(PlacementModel& model, Leave leave, Join join) {
    for (const PlacementModel::Resize& r : model.take_resizes()) {
      if (r.collapsed) {
        std::vector<const SimPage*> parts;
        std::vector<uint32_t> slots;  // indexes, by key
        for (uint64_t k = r.key; k < r.key + kBasePagesPerHuge; ++k)
          if (const uint32_t* slot = index_.find(k); slot && !pages_[*slot - 1].gone) {
            parts.push_back(&pages_[*slot - 1]);
            slots.push_back(*slot - 1);
          }
        if (parts.empty()) continue;  // none known: the huge page is new to the policy
        for (const SimPage* p : parts) leave(*p);
        const SimPage h = collapsed(parts, r.key, r.node);
        for (uint32_t i : slots) pages_[i].gone = true, pages_[i].node = -1;
        if (pages_[slots[0]].key != r.key) {
          index_.erase(pages_[slots[0]].key);
          index_[r.key] = slots[0] + 1;
        }
        pages_[slots[0]] = h;
        join(h);
      } else {
        const uint32_t* slot = index_.find(r.key);
        if (!slot || pages_[*slot - 1].gone || !pages_[*slot - 1].huge) continue;  // not known as huge
        SimPage h = pages_[*slot - 1];
        h.node = r.node;
        leave(h);
        for (uint64_t i = 0; i < kBasePagesPerHuge; ++i) {
          const SimPage b = split_off(h, i);
          uint32_t& at = index_[b.key];  // index + 1; a base page merged earlier keeps its slot
          if (at) {
            pages_[at - 1] = b;
          } else {
            pages_.push_back(b);
            at = static_cast<uint32_t>(pages_.size());
          }
          join(b);
        }
      }
    }
  }
  void follow(PlacementModel& model) {
    follow(model, [](const SimPage&) {}, [](const SimPage&) {});
  }
  // Starts loading page i into the cache.
  void prefetch(uint32_t i) const { __builtin_prefetch(&pages_[i], 1); }
  SimPage& operator[](uint32_t i) { return pages_[i]; }
  const SimPage& operator[](uint32_t i) const { return pages_[i]; }
  const std::vector<SimPage>& all() const { return pages_; }
  std::vector<SimPage>& all() { return pages_; }

 private:
  FlatMap<uint64_t, uint32_t, U64KeyOps> index_;
  std::vector<SimPage> pages_;
};

// A page in a candidate list: its order (`rank`, then key, ascending) is in
// the entry itself, so sorting never chases pointers into the book.
struct Ranked {
  uint64_t rank;
  uint64_t key;
  uint32_t page;  // index in the PageBook
};
inline bool operator<(const Ranked& a, const Ranked& b) { return a.rank != b.rank ? a.rank < b.rank : a.key < b.key; }

// Items in ascending order, sorted only as far as they are taken: chunks
// selected with nth_element and sorted, doubling from 1024, so taking k of
// n costs O(n + k log k).
template <typename T>
class LazyOrder {
 public:
  explicit LazyOrder(std::vector<T> items) : items_(std::move(items)) {}
  // The next item, or nullptr when none is left.
  const T* peek() {
    if (pos_ == sorted_) {
      if (pos_ == items_.size()) return nullptr;
      const size_t end = std::min(items_.size(), pos_ + chunk_);
      if (end < items_.size()) std::nth_element(items_.begin() + pos_, items_.begin() + end, items_.end());
      std::sort(items_.begin() + pos_, items_.begin() + end);
      sorted_ = end;
      chunk_ *= 2;
    }
    return &items_[pos_];
  }
  void pop() { ++pos_; }

 private:
  std::vector<T> items_;
  size_t pos_ = 0, sorted_ = 0, chunk_ = 1024;
};

// One interval's moves: the budget, the counters, the model.
class Mover {
 public:
  Mover(const SimContext& ctx, PlacementModel& model, uint64_t& promoted, uint64_t& demoted, uint64_t& charged)
      : ctx_(ctx),
        model_(model),
        promoted_(promoted),
        demoted_(demoted),
        charged_(charged),
        limited_(ctx.budget_bytes != 0),
        left_(ctx.budget_bytes / kBasePageBytes) {}

  int fast_node() const { return ctx_.fast_node; }
  int slow_node() const { return ctx_.slow_node; }
  uint64_t fast_capacity() const { return model_.capacity_pages(ctx_.fast_node); }
  uint64_t fast_free() const {
    const uint64_t cap = fast_capacity(), used = model_.used_pages(ctx_.fast_node);
    return cap > used ? cap - used : 0;
  }
  bool affords(uint64_t pages) const { return !limited_ || left_ >= pages; }
  bool exhausted() const { return limited_ && left_ == 0; }

  // Moves a page from `from` (where it is) to the fast node / from the fast
  // node to the slow node; false (nothing changes) when it is already there,
  // the budget does not cover it or the model refuses (target full).
  bool promote(uint64_t key, bool huge, int from) { return move(key, huge, from, ctx_.fast_node, promoted_); }
  bool demote(uint64_t key, bool huge, int from) {
    return from == ctx_.fast_node && move(key, huge, from, ctx_.slow_node, demoted_);
  }
  bool promote(SimPage& p) { return track(p, promote(p.key, p.huge, p.node), ctx_.fast_node); }
  bool demote(SimPage& p) { return track(p, demote(p.key, p.huge, p.node), ctx_.slow_node); }

  // A mover that charges a batch before moving it (amd-topk's): charge()
  // takes the batch's pages of the budget, false (nothing taken) when it
  // does not cover them; then the batch's pages move, already paid for.
  bool charge(uint64_t pages) {
    if (!affords(pages)) return false;
    take(pages);
    return true;
  }
  bool move_paid(uint64_t key, bool huge, int from, int to) {
    return move(key, huge, from, to, to == ctx_.fast_node ? promoted_ : demoted_, /*paid=*/true);
  }

  // Demotes pages from `victims` (coldest first) until `pages` base pages
  // are free on the fast node, demoting only while the budget also covers
  // the `pages` of the promotion that follows. False when the victims or
  // the budget run out first.
  bool make_room(uint64_t pages, PageBook& book, LazyOrder<Ranked>& victims) {
    while (fast_free() < pages) {
      const Ranked* v = victims.peek();
      if (!v) return false;
      SimPage& p = book[v->page];
      if (!affords(pages + p.pages())) return false;
      victims.pop();
      demote(p);  // false: no longer on the fast node; try the next one
    }
    return true;
  }

 private:
  void take(uint64_t pages) {
    if (limited_) left_ -= pages;
    charged_ += pages;
  }
  bool move(uint64_t key, bool huge, int from, int to, uint64_t& counter, bool paid = false) {
    const uint64_t n = base_pages(huge);
    if ((!paid && !affords(n)) || from < 0 || from == to || !model_.move(key, to)) return false;
    if (!paid) take(n);
    counter += n;
    return true;
  }
  bool track(SimPage& p, bool moved, int to) {
    if (moved) {
      p.node = to;
      p.moved = ctx_.interval;
    }
    return moved;
  }

  const SimContext& ctx_;
  PlacementModel& model_;
  uint64_t& promoted_;
  uint64_t& demoted_;
  uint64_t& charged_;
  bool limited_;
  uint64_t left_;  // base pages
};

// ---- amd-topk -------------------------------------------------------------------

class AmdTopk final : public SimPolicy {
 public:
  explicit AmdTopk(const AmdTopkConfig& cfg) : cfg_(cfg) {}
  std::string name() const override { return "amd-topk"; }
  std::string describe() const override {
    return "our re-implementation of the AMD resource-optimizer prototype's published tier rule: each interval alone, "
           "the top " + std::to_string(cfg_.promote_pct) + "% of the pages sampled on the slow node are promoted while the "
           "fast node had >= " + std::to_string(cfg_.min_free_pct) + "% free at the interval's start; demotions = "
           "promotions x " + std::to_string(cfg_.demote_pct) + "/" + std::to_string(cfg_.promote_pct) +
           ", coldest pages sampled on the fast node, at most " + std::to_string(cfg_.demote_pct) +
           "% of them; each moves with its " + format_bytes(cfg_.region_bytes) +
           "-aligned region (-U), in batches of 32 pages each charged 32 of the budget, a batch it does not cover "
           "dropped; other unsampled pages never move";
  }

  void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) override {
    Mover mv(ctx, model, promoted_, demoted_, charged_);
    struct Sampled {
      PageCount c;
      int node;
    };
    std::vector<Sampled> slow, fast;
    uint64_t samples = 0;
    for (const auto& c : counts) {
      samples += c.accesses;
      const int node = model.node_of(c.key);
      if (node == ctx.fast_node) fast.push_back({c, node});
      else if (node >= 0) slow.push_back({c, node});
    }
    // The prototype reads free memory before a round: one verdict for all.
    const uint64_t cap = mv.fast_capacity();
    const bool room = cap > 0 && mv.fast_free() * 100 >= uint64_t{cfg_.min_free_pct} * cap;

    // Promotion: the top k of the slow node's sampled pages, hottest first.
    const size_t k = slow.size() * cfg_.promote_pct / 100;
    auto hotter = [](const Sampled& a, const Sampled& b) {
      return a.c.accesses != b.c.accesses ? a.c.accesses > b.c.accesses : a.c.key < b.c.key;
    };
    std::partial_sort(slow.begin(), slow.begin() + k, slow.end(), hotter);
    std::vector<const PageCount*> up;  // pages given the fast node as their target, moved or not
    for (size_t i = 0; i < k; ++i) {
      const PageCount& c = slow[i].c;
      if (cfg_.min_share_pct > 0 &&
          static_cast<double>(c.accesses) * 100.0 < cfg_.min_share_pct * static_cast<double>(samples))
        continue;
      if (!room) continue;  // the target check fails: the page stays, unplanned
      up.push_back(&c);
    }
    move_regions(up, ctx.slow_node, mv, model);
    const uint64_t planned = up.size();

    // Demotion: a share of the promotions, from the fast node's coldest sampled pages.
    const uint64_t ratio = cfg_.promote_pct ? uint64_t{cfg_.demote_pct} * 100 / cfg_.promote_pct : 100;
    uint64_t d = planned * ratio / 100;
    const size_t kd = std::min<size_t>(fast.size() * cfg_.demote_pct / 100, d);
    auto colder = [](const Sampled& a, const Sampled& b) {
      return a.c.accesses != b.c.accesses ? a.c.accesses < b.c.accesses : a.c.key < b.c.key;
    };
    std::partial_sort(fast.begin(), fast.begin() + kd, fast.end(), colder);
    std::vector<const PageCount*> down;
    for (size_t i = 0; i < kd; ++i) down.push_back(&fast[i].c);
    move_regions(down, ctx.fast_node, mv, model);
  }

 private:
  // Moves the pages of each page's aligned region (-U) that are on `from`
  // off it (to the fast node from the slow one, or back), in the order
  // given, each region once. Only pages the model knows move. As the
  // prototype's mover: a region goes in batches of kBatch consecutive
  // pages, each charged its kBatch pages of the budget before it moves,
  // whatever of it the model knows or still has to move; a batch the budget
  // does not cover is dropped (its pages stay) and the next ones are tried.
  void move_regions(const std::vector<const PageCount*>& pages, int from, Mover& mv, const PlacementModel& model) {
    const uint64_t span = std::max<uint64_t>(1, cfg_.region_bytes / kBasePageBytes);  // base pages
    FlatMap<uint64_t, uint8_t, U64KeyOps> moved;  // the regions' first pages
    std::vector<uint64_t> batch;                   // keys of one batch
    const int to = from == mv.fast_node() ? mv.slow_node() : mv.fast_node();
    auto move = [&](uint64_t key) {
      const int node = model.node_of(key);
      if (node == from) mv.move_paid(key, model.huge(key), node, to);
    };
    for (const PageCount* c : pages) {
      const uint32_t tgid = mb_key_tgid(c->key);
      const uint64_t vpn = mb_key_vpn(c->key), first = vpn - vpn % span;
      uint8_t& done = moved[mb_page_key(tgid, first)];
      if (done) continue;
      done = 1;
      // A region within a 2 MiB page: its first batch moves the page whole.
      const bool within_huge = c->huge && span <= kBasePagesPerHuge;
      for (uint64_t b = first; b < first + span; b += kBatch) {
        const uint64_t end = std::min(first + span, b + kBatch);
        batch.clear();
        uint64_t pages = 0;  // what the batch moves (a 2 MiB page in it: 512)
        if (within_huge) {
          if (b == first) batch.push_back(c->key);
        } else {
          for (uint64_t v = b; v < end; ++v) batch.push_back(mb_page_key(tgid, v));
        }
        for (uint64_t key : batch)
          if (model.node_of(key) == from) pages += base_pages(model.huge(key));
        // Charged its pages, or what it moves when that is more (a 2 MiB
        // page: the budget is whatif's common rate limit, which no rule exceeds).
        if (!mv.charge(std::max(end - b, pages))) continue;  // dropped
        for (uint64_t key : batch) move(key);
      }
    }
  }

  static constexpr uint64_t kBatch = 32;  // PAGES_PER_CALL: pages per move_pages call and per rate-limiter request
  AmdTopkConfig cfg_;
};

// ---- memtis ---------------------------------------------------------------------

class Memtis final : public SimPolicy {
 public:
  static constexpr int kBins = 16;
  explicit Memtis(const MemtisConfig& cfg) : cfg_(cfg) {
    cfg_.min_hot_bin = std::clamp(cfg_.min_hot_bin, 0, kBins - 1);
    hot_ = warm_ = cfg_.min_hot_bin;
  }
  std::string name() const override { return "memtis"; }
  std::string describe() const override {
    auto period = [](uint64_t samples, uint32_t intervals) {
      if (samples) return std::to_string(samples) + " samples";
      return intervals == 1 ? std::string("interval") : std::to_string(intervals) + " intervals";
    };
    return "our re-implementation of Memtis's published rule: per-page access counts in log2 bins; the hot threshold is "
           "the lowest bin whose pages and all hotter ones fit the fast node (re-fitted every " +
           period(cfg_.adaptation_samples, cfg_.adaptation_intervals) + ", at least bin " +
           std::to_string(cfg_.min_hot_bin) + "), counts halved every " +
           period(cfg_.cooling_samples, cfg_.cooling_intervals) +
           "; hot slow pages promoted hottest first, cold fast pages (below the warm bin) demoted coldest first to make "
           "room, warm pages stay";
  }

  // floor(log2(count + 1)), at most 15.
  static int bin(uint32_t count) {
    return std::min(static_cast<int>(std::bit_width(uint64_t{count} + 1)) - 1, kBins - 1);
  }
  // The smallest count of bin b (b <= 15).
  static uint32_t bin_floor(int b) { return (uint32_t{1} << b) - 1; }

  void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) override {
    Mover mv(ctx, model, promoted_, demoted_, charged_);
    // The histogram follows size changes: a page leaves its bin, the pages
    // made join theirs.
    book_.follow(model, [&](const SimPage& p) { hist_[bin(p.count)] -= p.pages(); },
                 [&](const SimPage& p) { hist_[bin(p.count)] += p.pages(); });
    uint64_t samples = 0;
    std::vector<bool> fresh;
    const std::vector<uint32_t> idx = book_.touch(counts, model, &fresh);
    for (size_t j = 0; j < counts.size(); ++j) {
      if (j + 8 < counts.size()) book_.prefetch(idx[j + 8]);
      SimPage& p = book_[idx[j]];
      if (fresh[j]) hist_[0] += p.pages();
      hist_[bin(p.count)] -= p.pages();
      p.count = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{p.count} + counts[j].accesses, UINT32_MAX));
      hist_[bin(p.count)] += p.pages();
      p.last_seen = ctx.interval;
      samples += counts[j].accesses;
    }
    bool cooled = false;
    if (cfg_.cooling_samples) {
      since_cool_ += samples;
      while (since_cool_ >= cfg_.cooling_samples) {
        cool();
        cooled = true;
        since_cool_ -= cfg_.cooling_samples;
      }
    } else if (cfg_.cooling_intervals && ctx.interval % cfg_.cooling_intervals == 0) {
      cool();
      cooled = true;
    }
    bool adapt_now = cooled;
    if (cfg_.adaptation_samples) {
      since_adapt_ += samples;
      if (since_adapt_ >= cfg_.adaptation_samples) adapt_now = true;
      if (adapt_now) since_adapt_ %= cfg_.adaptation_samples;
    } else if (cfg_.adaptation_intervals && ctx.interval % cfg_.adaptation_intervals == 0) {
      adapt_now = true;
    }
    if (adapt_now) adapt(mv.fast_capacity(), cooled);

    // Hot pages off the fast node, hottest first; cold fast pages (below
    // the warm bin), coldest first: fewest accesses, then least recently sampled.
    const uint32_t hot_min = bin_floor(hot_), cold_below = bin_floor(warm_);
    std::vector<Ranked> hot, cold;
    const auto& all = book_.all();
    for (uint32_t i = 0; i < all.size(); ++i) {
      const SimPage& p = all[i];
      if (p.node == ctx.fast_node) {
        if (p.count < cold_below) cold.push_back({(uint64_t{p.count} << 32) | p.last_seen, p.key, i});
      } else if (p.node >= 0 && p.count >= hot_min) {
        hot.push_back({~uint64_t{p.count}, p.key, i});
      }
    }
    LazyOrder<Ranked> promote(std::move(hot)), victims(std::move(cold));
    for (const Ranked* r; (r = promote.peek()) && !mv.exhausted(); promote.pop()) {
      SimPage& p = book_[r->page];
      if (!mv.affords(p.pages())) continue;
      if (!mv.make_room(p.pages(), book_, victims)) {
        if (mv.fast_free() == 0) break;  // no victims left and no room: nothing else fits
        continue;
      }
      mv.promote(p);
    }
  }

 private:
  void cool() {
    hist_.fill(0);
    for (auto& p : book_.all()) {
      if (p.gone) continue;
      p.count >>= 1;
      hist_[bin(p.count)] += p.pages();
    }
  }

  // Memtis's threshold update: the lowest bin such that it and the hotter
  // bins fit `capacity`; taken when higher than the current threshold, and
  // at a cooling the threshold drops by one bin instead (counts halved).
  void adapt(uint64_t capacity, bool cooled) {
    uint64_t fit = 0;
    int idx = kBins - 1;
    for (; idx >= 0; --idx) {
      if (fit + hist_[idx] > capacity) break;
      fit += hist_[idx];
    }
    if (idx != kBins - 1) ++idx;  // the lowest bin that fits
    idx = std::max(idx, cfg_.min_hot_bin);
    if (cooled) {
      if (idx < hot_ && hot_ > cfg_.min_hot_bin) --hot_;
    } else if (idx > hot_) {
      hot_ = idx;
    }
    const bool need_warm = fit < capacity * 75 / 100;
    warm_ = cfg_.warm && need_warm ? std::max(hot_ - 1, 0) : hot_;
  }

  MemtisConfig cfg_;
  PageBook book_;
  std::array<uint64_t, kBins> hist_{};  // base pages per bin
  uint64_t since_cool_ = 0, since_adapt_ = 0;
  int hot_ = 1, warm_ = 1;  // bins: hot threshold, warm bin
};

// ---- NUMA balancing's scanner (tpp, linux-tiering) -----------------------------

// One hint fault: a page's first access after the scanner unmapped it.
struct HintFault {
  double time;     // seconds of trace time
  double latency;  // since the scan that unmapped the page
  uint64_t key;    // of the page: the order of faults at the same time
  uint32_t page;   // index in the PageBook
  bool operator<(const HintFault& o) const { return time != o.time ? time < o.time : key < o.key; }
};

// task_numa_work's scan, as documented for the numa_balancing sysctls: the
// scanner walks the task's address space (here the pages the trace has
// shown, in address order), unmapping the next scan_size_mb of it every
// "scan delay", back to the start at the end; a page unmapped takes one
// hint fault at its next access (and no more until it is unmapped again);
// no fault before the scanner first reaches it (the first window at
// scan_delay_ms). The period (numa_balancing_scan_period_min/max_ms) is the
// time of a whole pass: with W windows the delay between windows is the
// period / W, at least 100 ms (the kernel's floor of 2560 MB/s). It adapts
// once per pass: with the pass's faults on the fast node (local: the CPUs
// are there) at least 7 in 10, the delay grows by (share - 7) tenths, at
// least one, else shrinks by (7 - share) tenths; a pass without faults
// leaves it (the kernel doubles it: see end_pass) (mainline's update_task_scan_period, NUMA_PERIOD_SLOTS 10,
// NUMA_PERIOD_THRESHOLD 7, with every fault a private one: whatif keeps no
// threads; in the tiering mode a slow page's fault counts as shared, which
// makes the private share the local one). Within an interval a page's
// accesses are taken as evenly spaced (the trace's counts keep no times).
class NumaScan {
 public:
  explicit NumaScan(const NumaScanConfig& cfg) : cfg_(cfg) {}

  // Interval [t0, t0 + len): the windows due in it, then the hint faults of
  // the pages sampled in it (idx[j]: counts[j]'s page, whose last_seen the
  // caller has set to `now`), in time order. A page is unmapped only when
  // unmap(page) says so (the tiering mode skips fast pages).
  template <typename Unmap>
  std::vector<HintFault> interval(uint32_t now, double t0, double len, PageBook& book,
                                  const std::vector<PageCount>& counts, const std::vector<uint32_t>& idx,
                                  int fast_node, Unmap unmap) {
    join(book);
    const double t1 = t0 + len;
    if (next_ < 0) next_ = cfg_.scan_delay_s;
    const uint64_t window = std::max<uint64_t>(1, cfg_.scan_size_mb << 8);  // 4 KiB pages
    scans_.clear();  // windows reaching pages sampled now: their faults are worked out below
    while (next_ < t1 && !order_.empty()) {
      size_t i = static_cast<size_t>(std::lower_bound(order_.begin(), order_.end(), cursor_,
                                                      [&](uint32_t a, uint64_t k) { return book[a].key < k; }) -
                                     order_.begin());
      for (uint64_t n = 0; n < window && i < order_.size(); ++i) {
        SimPage& p = book[order_[i]];
        if (p.gone) continue;  // part of a huge page now: no address of its own
        n += p.pages();        // the window is address space: a THP is 2 MiB of it
        if (!unmap(p)) continue;
        if (p.last_seen == now) scans_.push_back({order_[i], next_});
        else if (p.unmapped_at < 0) p.unmapped_at = next_;
      }
      if (i < order_.size()) cursor_ = book[order_[i]].key;
      else end_pass(window, book);
      next_ += delay_;
    }
    std::stable_sort(scans_.begin(), scans_.end(), [](const Scan& a, const Scan& b) { return a.page < b.page; });
    std::vector<HintFault> faults;
    for (size_t j = 0; j < counts.size(); ++j) {
      SimPage& p = book[idx[j]];
      const uint32_t k = counts[j].accesses;
      auto sc = std::lower_bound(scans_.begin(), scans_.end(), idx[j],
                                 [](const Scan& a, uint32_t page) { return a.page < page; });
      const double gap = k ? len / k : len;
      // The first of the k evenly spaced accesses at or after time x (-1: none).
      auto first_at = [&](double x) {
        const double m = std::max(0.0, std::ceil((x - t0) / gap - 0.5));
        return m < k ? t0 + (m + 0.5) * gap : -1.0;
      };
      // Scans and accesses in time order: a scan unmaps a mapped page (an
      // unmapped one is skipped), an access to an unmapped page faults.
      double from = t0;  // accesses before this are done
      for (;;) {
        if (p.unmapped_at >= 0) {
          const double at = first_at(std::max(from, p.unmapped_at));
          if (at < 0) break;
          fault(p, idx[j], at, fast_node, faults);
          from = at + gap / 2;
          while (sc != scans_.end() && sc->page == idx[j] && sc->time <= at) ++sc;
        } else {
          if (sc == scans_.end() || sc->page != idx[j]) break;
          p.unmapped_at = (sc++)->time;
        }
      }
    }
    std::sort(faults.begin(), faults.end());
    return faults;
  }
  double delay_s() const { return delay_; }

 private:
  void fault(SimPage& p, uint32_t i, double at, int fast_node, std::vector<HintFault>& out) {
    out.push_back({at, at - p.unmapped_at, p.key, i});
    p.unmapped_at = -1;
    ++(p.node == fast_node ? local_ : remote_);
  }
  // Pages first seen since the last interval join the address space.
  void join(const PageBook& book) {
    const auto& all = book.all();
    if (order_.size() == all.size()) return;
    const size_t old = order_.size();
    for (uint32_t i = static_cast<uint32_t>(old); i < all.size(); ++i) order_.push_back(i);
    auto by_key = [&](uint32_t a, uint32_t b) { return all[a].key < all[b].key; };
    std::sort(order_.begin() + static_cast<std::ptrdiff_t>(old), order_.end(), by_key);
    std::inplace_merge(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(old), order_.end(), by_key);
    if (delay_ < 0) delay_ = clamp_delay(cfg_.scan_delay_s, std::max<uint64_t>(1, cfg_.scan_size_mb << 8), book);
  }
  // The delay between windows within [period_min, period_max] / windows.
  double clamp_delay(double d, uint64_t window, const PageBook& book) const {
    uint64_t pages = 0;  // of address space, in 4 KiB pages
    for (uint32_t i : order_)
      if (!book[i].gone) pages += book[i].pages();
    const double windows = std::ceil(static_cast<double>(pages) / static_cast<double>(window));
    const double lo = std::max(0.1, cfg_.period_min_s / std::max(1.0, windows));
    const double hi = std::max(lo, cfg_.period_max_s / std::max(1.0, windows));
    return std::clamp(d, lo, hi);
  }
  // Back to the start, and the delay adapted to the faults since the last
  // pass end (counted up to the end of the previous interval: the trace's
  // counts keep no times). A pass without any leaves it as it was (the
  // kernel doubles it for a task gone idle).
  void end_pass(uint64_t window, const PageBook& book) {
    cursor_ = 0;
    const uint64_t all = local_ + remote_;
    if (all == 0) return;
    const double slot = delay_ / 10;
    const int share = static_cast<int>(local_ * 10 / all);
    delay_ += share >= 7 ? std::max(1, share - 7) * slot : -(7 - share) * slot;
    delay_ = clamp_delay(delay_, window, book);
    local_ = remote_ = 0;
  }

  struct Scan {
    uint32_t page;
    double time;
  };
  NumaScanConfig cfg_;
  std::vector<Scan> scans_;
  std::vector<uint32_t> order_;  // book indexes, by key: the address space
  uint64_t cursor_ = 0;          // key where the next window starts
  double next_ = -1;             // time of the next window
  double delay_ = -1;            // between windows
  uint64_t local_ = 0, remote_ = 0;  // this pass's faults on the fast / slow node
};

// The LRU's inactive tail as the model sees it: fast pages not referenced
// (sampled) in interval t nor moved by the policy in it, least recently
// sampled first.
LazyOrder<Ranked> lru_victims(const PageBook& book, int fast_node, uint32_t t) {
  std::vector<Ranked> v;
  const auto& all = book.all();
  for (uint32_t i = 0; i < all.size(); ++i)
    if (all[i].node == fast_node && all[i].last_seen < t && all[i].moved != t) v.push_back({all[i].last_seen, all[i].key, i});
  return LazyOrder<Ranked>(std::move(v));
}

std::string fmt_num(double v) {
  char b[32];
  snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

uint64_t default_min_free_kbytes(uint64_t total_pages) {
  const unsigned __int128 x = static_cast<unsigned __int128>(total_pages) * (kBasePageBytes / 1024) * 16;
  // The integer square root (floor), corrected after the double's estimate.
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  while (static_cast<unsigned __int128>(r) * r > x) --r;
  while (static_cast<unsigned __int128>(r + 1) * (r + 1) <= x) ++r;
  return std::clamp<uint64_t>(r, 128, 262144);
}

NodeWatermarks kernel_watermarks(uint64_t node_pages, uint64_t total_pages, uint64_t min_free_kbytes,
                                 uint32_t scale_factor) {
  NodeWatermarks w;
  const uint64_t pages_min = min_free_kbytes / (kBasePageBytes / 1024);
  if (total_pages)
    w.min = static_cast<uint64_t>(static_cast<unsigned __int128>(pages_min) * node_pages / total_pages);
  const uint64_t step =
      std::max<uint64_t>(w.min / 4, static_cast<uint64_t>(static_cast<unsigned __int128>(node_pages) * scale_factor / 10000));
  w.low = w.min + step;
  w.high = w.low + step;
  w.promo = w.high + step;
  return w;
}

ScanTrace numa_scan_faults(const NumaScanConfig& cfg, double interval_s,
                           const std::vector<std::vector<PageCount>>& intervals, const PlacementModel& model,
                           int fast_node) {
  ScanTrace out;
  NumaScan scan(cfg);
  PageBook book;
  for (uint32_t t = 1; t <= intervals.size(); ++t) {
    const auto& counts = intervals[t - 1];
    const std::vector<uint32_t> idx = book.touch(counts, model);
    for (uint32_t i : idx) book[i].last_seen = t;
    uint64_t local = 0, remote = 0;
    for (const HintFault& f : scan.interval(t, (t - 1) * interval_s, interval_s, book, counts, idx, fast_node,
                                            [](const SimPage&) { return true; }))
      ++(book[f.page].node == fast_node ? local : remote);
    out.local.push_back(local);
    out.remote.push_back(remote);
    out.delay_s.push_back(scan.delay_s());
  }
  return out;
}

namespace {

// ---- tpp ------------------------------------------------------------------------

class Tpp final : public SimPolicy {
 public:
  static constexpr uint8_t kActive = 2;  // referenced, then active
  explicit Tpp(const TppConfig& cfg) : cfg_(cfg), scan_(cfg.scan) {}
  std::string name() const override { return "tpp"; }
  std::string describe() const override {
    return "our re-implementation of TPP's published rule: a slow page is promoted at a hint fault while on the active "
           "LRU list (its first fault there marks it referenced, its second activates it: its third promotes it, "
           "however far apart); hint faults from NUMA balancing's scan (" + std::to_string(cfg_.scan.scan_size_mb) +
           " MB a window, a pass every " + fmt_num(cfg_.scan.period_min_s) + "-" + fmt_num(cfg_.scan.period_max_s) +
           " s, adaptive; one fault per page per pass); least recently sampled fast pages demoted to make room and to "
           "keep " + fmt_num(cfg_.demote_watermark * 100) + "% of the fast node free (demotion watermark)";
  }

  void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) override {
    Mover mv(ctx, model, promoted_, demoted_, charged_);
    const double len = ctx.interval_s > 0 ? ctx.interval_s : 1.0;
    const uint32_t t = ctx.interval;
    book_.follow(model);
    const std::vector<uint32_t> idx = book_.touch(counts, model);
    for (size_t j = 0; j < counts.size(); ++j) {
      SimPage& p = book_[idx[j]];
      // Demoted since its last fault: reclaim took it inactive and unreferenced.
      if (p.node != ctx.fast_node && p.moved > p.last_seen) p.lru = 0;
      p.last_seen = t;
    }
    // Candidates: slow pages taking a fault while active, in fault order.
    std::vector<Ranked> cand;
    const auto faults = scan_.interval(t, (t - 1) * len, len, book_, counts, idx, ctx.fast_node,
                                       [](const SimPage&) { return true; });
    for (const HintFault& f : faults) {
      SimPage& p = book_[f.page];
      if (p.node < 0 || p.node == ctx.fast_node) continue;
      if (p.lru < kActive) ++p.lru;  // mark_page_accessed
      else cand.push_back({cand.size(), p.key, f.page});
    }

    std::optional<LazyOrder<Ranked>> victims;  // built when first needed
    auto need_victims = [&]() -> LazyOrder<Ranked>& {
      if (!victims) victims.emplace(lru_victims(book_, ctx.fast_node, t));
      return *victims;
    };
    for (const Ranked& c : cand) {
      if (mv.exhausted()) break;
      SimPage& p = book_[c.page];
      if (p.node == ctx.fast_node || !mv.affords(p.pages())) continue;
      if (mv.fast_free() < p.pages() && !mv.make_room(p.pages(), book_, need_victims())) {
        if (mv.fast_free() == 0) break;
        continue;
      }
      mv.promote(p);
    }

    // kswapd: back to the demotion watermark.
    const uint64_t watermark = static_cast<uint64_t>(static_cast<double>(mv.fast_capacity()) * cfg_.demote_watermark);
    while (mv.fast_free() < watermark && !mv.exhausted()) {
      auto& v = need_victims();
      const Ranked* r = v.peek();
      if (!r) break;
      SimPage& p = book_[r->page];
      if (!mv.affords(p.pages())) break;
      v.pop();
      mv.demote(p);
    }
  }

 private:
  TppConfig cfg_;
  PageBook book_;
  NumaScan scan_;
};

// ---- linux-tiering ----------------------------------------------------------------

class LinuxTiering final : public SimPolicy {
 public:
  explicit LinuxTiering(const LinuxTieringConfig& cfg) : cfg_(cfg), scan_(cfg.scan), threshold_s_(cfg.hot_threshold_s) {}
  std::string name() const override { return "linux-tiering"; }
  std::string describe() const override {
    return "our re-implementation of Linux's published memory-tiering rule (kernel.numa_balancing=2): NUMA balancing's "
           "scan unmaps slow pages (" + std::to_string(cfg_.scan.scan_size_mb) + " MB a window, a pass every " +
           fmt_num(cfg_.scan.period_min_s) + "-" + fmt_num(cfg_.scan.period_max_s) +
           " s, adaptive); a hint fault promotes the page when it came less than the hot threshold (" +
           fmt_num(cfg_.hot_threshold_s * 1000) + " ms, adjusted toward the promote rate limit) after the scan, while "
           "the fast node stays above its high watermark; kswapd demotes the least recently sampled fast pages";
  }

  void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) override {
    Mover mv(ctx, model, promoted_, demoted_, charged_);
    const double len = ctx.interval_s > 0 ? ctx.interval_s : 1.0;
    const uint32_t t = ctx.interval;
    book_.follow(model);
    const std::vector<uint32_t> idx = book_.touch(counts, model);
    for (uint32_t i : idx) book_[i].last_seen = t;
    const int fast = ctx.fast_node;
    // The tiering mode scans slow memory only.
    const auto faults = scan_.interval(t, (t - 1) * len, len, book_, counts, idx, fast,
                                       [fast](const SimPage& p) { return p.node >= 0 && p.node != fast; });
    const uint64_t cap = mv.fast_capacity();
    // The simulated machine's memory: the fast node and a slow node as large
    // as the footprint so far (the slow node's real size is not known).
    const uint64_t total = cap + model.used_pages(ctx.fast_node) + model.used_pages(ctx.slow_node);
    const NodeWatermarks wm = kernel_watermarks(
        cap, total, cfg_.min_free_kbytes ? cfg_.min_free_kbytes : default_min_free_kbytes(total),
        cfg_.watermark_scale_factor);
    // Free memory well above need (pgdat_free_space_enough): any page goes up.
    const uint64_t plenty = std::max<uint64_t>(kFreeEnoughPages, cap / 16) + wm.promo;
    const double rate_pages = cfg_.promote_rate_limit_mbps * 256.0;  // 4 KiB pages a second
    std::optional<LazyOrder<Ranked>> victims;
    for (const HintFault& f : faults) {
      SimPage& p = book_[f.page];
      if (p.node < 0 || p.node == fast) continue;
      if (mv.fast_free() > plenty) {
        threshold_s_ = cfg_.hot_threshold_s;  // the kernel resets it: the workload changed
      } else {
        // Adjusted only here, as the kernel does: a spell of plenty free
        // neither counts candidates nor starts the adjustment's period.
        adjust_threshold(f.time, rate_pages);
        if (f.latency >= threshold_s_) continue;
        if (over_rate_limit(f.time, p.pages(), rate_pages)) continue;
      }
      if (mv.exhausted()) break;
      if (mv.fast_free() <= wm.high + p.pages()) {
        // migrate_balanced_pgdat fails (it wants free strictly above high
        // plus the pages, as zone_watermark_ok): the page stays; kswapd wakes and
        // reclaims the fast node up to its promo watermark (in the tiering
        // mode pgdat_balanced wants promo, not high).
        if (!victims) victims.emplace(lru_victims(book_, fast, t));
        kswapd(mv, *victims, wm.promo);
        continue;
      }
      mv.promote(p);
    }
    // kswapd, woken below the low watermark, again up to promo.
    if (mv.fast_free() < wm.low) {
      if (!victims) victims.emplace(lru_victims(book_, fast, t));
      kswapd(mv, *victims, wm.promo);
    }
  }

 private:
  static constexpr uint64_t kFreeEnoughPages = 262144;  // 1 GiB
  static constexpr uint64_t kReclaimBatch = 32;         // SWAP_CLUSTER_MAX

  // Demotes LRU victims, a batch of kReclaimBatch pages at least, until
  // `target` pages are free.
  void kswapd(Mover& mv, LazyOrder<Ranked>& victims, uint64_t target) {
    uint64_t batch = 0;
    while ((mv.fast_free() < target || batch < kReclaimBatch) && !mv.exhausted()) {
      const Ranked* r = victims.peek();
      if (!r) break;
      SimPage& p = book_[r->page];
      if (!mv.affords(p.pages())) break;
      victims.pop();
      if (mv.demote(p)) batch += p.pages();
    }
  }
  // The promote rate limit (numa_promotion_rate_limit): the candidate's
  // pages join the node's count of candidates; the first candidate more
  // than a second after the window's start restarts the window there, the
  // count at that moment (this candidate's pages included) its base; a
  // candidate stays when the count since that base has reached the limit.
  // So the window follows the candidates, not the calendar second, and the
  // candidate opening a window is never held back.
  bool over_rate_limit(double now, uint64_t pages, double rate_pages) {
    cand_ += pages;
    if (rl_start_ < 0 || now - rl_start_ > 1.0) rl_start_ = now, rl_cand_ = cand_;
    return static_cast<double>(cand_ - rl_cand_) >= rate_pages;
  }
  // Every period_max of trace time the hot threshold steps by an eighth of
  // the default toward the promote rate limit: down when the candidates of
  // that period were over 110% of what the limit lets through, up (to
  // twice the default) under 90%.
  void adjust_threshold(double now, double rate_pages) {
    const double period = cfg_.scan.period_max_s;
    if (now - th_start_ <= period) return;
    const double ref = rate_pages * period, unit = cfg_.hot_threshold_s * 2 / 16;
    const double cand = static_cast<double>(cand_ - th_cand_);
    if (cand > ref * 11 / 10) threshold_s_ = std::max(threshold_s_ - unit, unit);
    else if (cand < ref * 9 / 10) threshold_s_ = std::min(threshold_s_ + unit, cfg_.hot_threshold_s * 2);
    th_start_ = now;
    th_cand_ = cand_;
  }

  LinuxTieringConfig cfg_;
  PageBook book_;
  NumaScan scan_;
  double threshold_s_;
  double th_start_ = 0, rl_start_ = -1;
  uint64_t cand_ = 0, th_cand_ = 0, rl_cand_ = 0;
};

// ---- memtierd-age ---------------------------------------------------------------

class MemtierdAge final : public SimPolicy {
 public:
  explicit MemtierdAge(const MemtierdAgeConfig& cfg) : cfg_(cfg) {
    const uint32_t iv = std::max<uint32_t>(1, cfg.interval_ms);
    active_rounds_ = cfg.active_duration_ms / iv;                // memtierd: ActiveDurationMs / IntervalMs
    idle_rounds_ = (cfg.idle_duration_ms + iv - 1) / iv;         // rounds covering IdleDurationMs
  }
  std::string name() const override { return "memtierd-age"; }
  std::string describe() const override {
    return "our re-implementation of memtierd's published age policy (one interval = one round): a slow page sampled "
           "in each of the last " + std::to_string(active_rounds_ + 1) + " intervals is active and promoted, a fast page "
           "not sampled in the last " + std::to_string(idle_rounds_) +
           " intervals is idle and demoted (oldest first, before promotions); no other demotion, a full fast node "
           "refuses promotions";
  }

  void interval(const SimContext& ctx, const std::vector<PageCount>& counts, PlacementModel& model) override {
    Mover mv(ctx, model, promoted_, demoted_, charged_);
    const uint32_t t = ctx.interval;
    std::vector<Ranked> active;  // most accessed this interval first
    book_.follow(model);
    const std::vector<uint32_t> idx = book_.touch(counts, model);
    for (size_t j = 0; j < counts.size(); ++j) {
      if (j + 8 < counts.size()) book_.prefetch(idx[j + 8]);
      SimPage& p = book_[idx[j]];
      if (!(p.last_seen != 0 && p.last_seen + 1 == t)) p.since = t;  // a new run of sampled intervals
      p.last_seen = t;
      if (cfg_.active_duration_ms && p.node >= 0 && p.node != ctx.fast_node && t - p.since >= active_rounds_)
        active.push_back({~uint64_t{counts[j].accesses}, p.key, idx[j]});
    }

    // Idle fast pages down, oldest first.
    if (cfg_.idle_duration_ms) {
      std::vector<Ranked> idle;
      const auto& all = book_.all();
      for (uint32_t i = 0; i < all.size(); ++i)
        if (all[i].node == ctx.fast_node && t - all[i].last_seen >= idle_rounds_)
          idle.push_back({all[i].last_seen, all[i].key, i});
      LazyOrder<Ranked> order(std::move(idle));
      for (const Ranked* r; (r = order.peek()) && !mv.exhausted(); order.pop()) mv.demote(book_[r->page]);
    }

    // Active slow pages up, most accessed first, into the room there is.
    std::sort(active.begin(), active.end());
    for (const Ranked& r : active) {
      if (mv.exhausted() || mv.fast_free() == 0) break;
      mv.promote(book_[r.page]);
    }
  }

 private:
  MemtierdAgeConfig cfg_;
  uint32_t active_rounds_ = 0, idle_rounds_ = 0;
  PageBook book_;
};

}  // namespace

std::unique_ptr<SimPolicy> make_amd_topk(const AmdTopkConfig& cfg) { return std::make_unique<AmdTopk>(cfg); }
std::unique_ptr<SimPolicy> make_memtis(const MemtisConfig& cfg) { return std::make_unique<Memtis>(cfg); }
std::unique_ptr<SimPolicy> make_tpp(const TppConfig& cfg) { return std::make_unique<Tpp>(cfg); }
std::unique_ptr<SimPolicy> make_linux_tiering(const LinuxTieringConfig& cfg) {
  return std::make_unique<LinuxTiering>(cfg);
}
std::unique_ptr<SimPolicy> make_memtierd_age(const MemtierdAgeConfig& cfg) {
  return std::make_unique<MemtierdAge>(cfg);
}

std::unique_ptr<SimPolicy> make_sim_policy(const std::string& name) {
  if (name == "amd-topk") return make_amd_topk();
  if (name == "memtis") return make_memtis();
  if (name == "tpp") return make_tpp();
  if (name == "linux-tiering") return make_linux_tiering();
  if (name == "memtierd-age") return make_memtierd_age();
  return nullptr;
}

std::vector<std::string> sim_policy_names() { return {"amd-topk", "linux-tiering", "memtierd-age", "memtis", "tpp"}; }

namespace {

// The best sets of pages fitting capacity_pages with two sizes, from the
// accesses of each size, hottest first: the h hottest huge pages and the
// hottest base pages in the rest, for each h giving the most hits (h
// ascending; the exchange argument: within one size, hotter is never worse).
struct BestSplit {
  size_t huge = 0, base = 0;  // how many of each
  uint64_t hits = 0;
};
std::vector<BestSplit> best_splits(std::span<const uint32_t> base, std::span<const uint32_t> huge,
                                   uint64_t capacity_pages) {
  std::vector<uint64_t> base_sum(base.size() + 1, 0);
  for (size_t i = 0; i < base.size(); ++i) base_sum[i + 1] = base_sum[i] + base[i];
  std::vector<BestSplit> best;
  uint64_t huge_sum = 0;
  for (size_t h = 0;; ++h) {  // h hottest huge pages, then the hottest base pages in what is left
    const uint64_t rest = capacity_pages - h * kBasePagesPerHuge;
    const size_t b = static_cast<size_t>(std::min<uint64_t>(rest, base.size()));
    const BestSplit s{h, b, huge_sum + base_sum[b]};
    if (best.empty() || s.hits > best[0].hits) best.assign(1, s);
    else if (s.hits == best[0].hits) best.push_back(s);
    if (h == huge.size() || rest < kBasePagesPerHuge) break;
    huge_sum += huge[h];
  }
  return best;
}

}  // namespace

uint64_t oracle_hits(const std::vector<PageCount>& counts, uint64_t capacity_pages) {
  std::vector<uint32_t> base, huge;
  for (const auto& c : counts) (c.huge ? huge : base).push_back(c.accesses);
  auto sum = [](const std::vector<uint32_t>& v, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += v[i];
    return s;
  };
  if (huge.empty()) {  // one size: the hottest capacity_pages pages
    if (base.size() <= capacity_pages) return sum(base, base.size());
    std::nth_element(base.begin(), base.begin() + capacity_pages, base.end(), std::greater<>());
    return sum(base, capacity_pages);
  }
  std::sort(base.begin(), base.end(), std::greater<>());
  std::sort(huge.begin(), huge.end(), std::greater<>());
  return best_splits(base, huge, capacity_pages).front().hits;
}

std::vector<uint64_t> oracle_step(const std::vector<PageCount>& counts, PlacementModel& model,
                                  const std::vector<int>& tiers, uint64_t* promoted, uint64_t* demoted) {
  const size_t n = tiers.size(), last = n - 1;
  auto tier_of = [&](int node) {
    const auto it = std::find(tiers.begin(), tiers.end(), node);
    return it == tiers.end() ? last : static_cast<size_t>(it - tiers.begin());
  };
  // The sampled pages, hottest first (of equal accesses by key), with the
  // tier each is on and the tier it goes to.
  struct Cand {
    const PageCount* c;
    size_t from, to;
  };
  std::vector<Cand> base, huge;
  for (const auto& c : counts)
    if (c.accesses) (c.huge ? huge : base).push_back({&c, tier_of(model.node_of(c.key)), last});
  auto hotter = [](const Cand& a, const Cand& b) {
    return a.c->accesses != b.c->accesses ? a.c->accesses > b.c->accesses : a.c->key < b.c->key;
  };
  std::sort(base.begin(), base.end(), hotter);
  std::sort(huge.begin(), huge.end(), hotter);
  auto accesses = [](const std::vector<Cand>& v) {
    std::vector<uint32_t> a;
    for (const auto& c : v) a.push_back(c.c->accesses);
    return a;
  };
  const std::vector<uint32_t> base_acc = accesses(base), huge_acc = accesses(huge);

  // Tier k takes ranks [end[k-1], end[k]) of each size; room: its capacity
  // left beside them. Each tier takes the best of what the faster ones
  // left; with 2 MiB pages several splits may serve a tier alike (a huge
  // page or as many accesses in base pages): every combination of those is
  // tried (at most kMaxSplits; ties of sums are few) and the one with the
  // most hits tier by tier, then the fewest pages moved, is taken, counted
  // by the same plan that moves them (plan_moves).
  struct Split {
    std::vector<size_t> base_end, huge_end;
    std::vector<uint64_t> room, hits;
  };
  constexpr size_t kMaxSplits = 64;
  std::vector<Split> splits;
  Split cur{std::vector<size_t>(n, base.size()), std::vector<size_t>(n, huge.size()), std::vector<uint64_t>(n, 0),
            std::vector<uint64_t>(last, 0)};
  std::function<void(size_t, size_t, size_t)> walk = [&](size_t k, size_t b, size_t h) {
    if (k == last) {
      splits.push_back(cur);
      return;
    }
    const uint64_t cap = model.capacity_pages(tiers[k]);
    for (const BestSplit& sp : best_splits(std::span(base_acc).subspan(b), std::span(huge_acc).subspan(h), cap)) {
      if (splits.size() >= kMaxSplits) return;
      cur.base_end[k] = b + sp.base;
      cur.huge_end[k] = h + sp.huge;
      cur.room[k] = cap - sp.huge * kBasePagesPerHuge - sp.base;
      cur.hits[k] = sp.hits;
      walk(k + 1, b + sp.base, h + sp.huge);
    }
  };
  walk(0, 0, 0);
  // Within a group of equal accesses (and size): each tier keeps as many of
  // the group's pages on it as it takes of the group; the others fill the
  // tiers short of them, matched in tier order (a surplus on a faster tier
  // fills the faster shortfalls). Of equal pages a lower key counts as
  // hotter, as in the ranks: a tier's pages going up are its lowest keys,
  // those going down its highest.
  auto assign = [&](std::vector<Cand>& v, const std::vector<size_t>& end) {
    std::vector<size_t> want(n), short_of;  // short_of: a tier per page it lacks, in tier order
    std::vector<std::vector<Cand*>> on(n);   // the group's pages on each tier, by key
    for (size_t g = 0, e; g < v.size(); g = e) {
      for (e = g; e < v.size() && v[e].c->accesses == v[g].c->accesses;) ++e;
      for (auto& a : on) a.clear();
      for (size_t i = g; i < e; ++i) on[v[i].from].push_back(&v[i]);
      short_of.clear();
      for (size_t k = 0, lo = 0; k < n; lo = end[k++]) {
        const size_t from = std::max(g, lo), to = std::min(e, end[k]);  // the group's ranks in tier k
        want[k] = to > from ? to - from : 0;
        for (size_t j = on[k].size(); j < want[k]; ++j) short_of.push_back(k);
      }
      for (size_t k = 0, next = 0; k < n; ++k) {
        std::vector<Cand*>& a = on[k];
        const size_t extra = a.size() - std::min(a.size(), want[k]);
        size_t up = 0;  // of the extra, those going to a faster tier
        while (up < extra && short_of[next + up] < k) ++up;
        for (Cand* c : a) c->to = k;
        for (size_t j = 0; j < extra; ++j) (j < up ? a[j] : a[a.size() - extra + j])->to = short_of[next + j];
        next += extra;
      }
    }
  };
  struct Move {
    uint64_t key;
    size_t from, to;
    uint64_t pages;
  };
  // The moves to a split: the sampled pages to their tiers (assign), and the
  // excess of the pages not sampled out of the tiers short of room.
  auto plan_moves = [&](const Split& sp) {
    std::vector<Cand> b = base, h = huge;
    assign(b, sp.base_end);
    assign(h, sp.huge_end);
    const std::vector<uint64_t>& room = sp.room;
    std::vector<Move> moves;
    std::vector<uint64_t> sampled;             // keys of the candidates, sorted
    std::vector<uint64_t> sampled_on(n, 0);    // base pages of them on each tier
    for (const auto* v : {&b, &h})
      for (const Cand& c : *v) {
        sampled.push_back(c.c->key);
        sampled_on[c.from] += base_pages(c.c->huge);
        if (c.to != c.from) moves.push_back({c.c->key, c.from, c.to, base_pages(c.c->huge)});
      }
    std::sort(sampled.begin(), sampled.end());
    // The other pages of a tier stay while they fit its room; out goes the
    // excess, in as few base pages as cover it.
    for (size_t k = 0; k < last; ++k) {
      const uint64_t others = model.used_pages(tiers[k]) - sampled_on[k];
      if (others <= room[k]) continue;
      const uint64_t excess = others - room[k];
      std::vector<uint64_t> small, big;
      model.state().resident(tiers[k], [&](uint32_t tgid, uint64_t vaddr, bool is_huge) {
        const uint64_t key = mb_page_key(tgid, vaddr >> MB_PAGE_SHIFT);
        if (!std::binary_search(sampled.begin(), sampled.end(), key)) (is_huge ? big : small).push_back(key);
        return true;
      });
      std::sort(small.begin(), small.end());
      std::sort(big.begin(), big.end());
      const uint64_t short_of = excess > small.size() ? excess - small.size() : 0;
      const size_t big_out = static_cast<size_t>((short_of + kBasePagesPerHuge - 1) / kBasePagesPerHuge);
      const uint64_t small_out = excess > big_out * kBasePagesPerHuge ? excess - big_out * kBasePagesPerHuge : 0;
      for (size_t i = 0; i < big_out; ++i) moves.push_back({big[i], k, last, kBasePagesPerHuge});
      for (size_t i = 0; i < small_out; ++i) moves.push_back({small[i], k, last, 1});
    }
    return moves;
  };
  std::vector<Move> moves;
  uint64_t fewest = 0;
  const Split* chosen = nullptr;
  for (const Split& sp : splits) {
    if (chosen && sp.hits < chosen->hits) continue;
    std::vector<Move> m = plan_moves(sp);
    uint64_t pages = 0;
    for (const Move& mv : m) pages += mv.pages;
    if (!chosen || sp.hits > chosen->hits || pages < fewest) chosen = &sp, fewest = pages, moves = std::move(m);
  }

  // Through the last tier, which always has room: a page bound for a full
  // tier finds its place once the pages leaving that tier have left (two
  // tiers swapping pages).
  for (const Move& m : moves)
    if (m.from != last) model.move(m.key, tiers[last]);
  for (const Move& m : moves) {
    if (m.to != last) model.move(m.key, tiers[m.to]);
    const size_t now = tier_of(model.node_of(m.key));
    if (now != m.from) (now < m.from ? *promoted : *demoted) += m.pages;
  }
  std::vector<uint64_t> hits(n, 0);
  for (const auto& c : counts) hits[tier_of(model.node_of(c.key))] += c.accesses;
  return hits;
}

std::vector<uint64_t> oracle_tier_hits(const std::vector<PageCount>& counts, const std::vector<uint64_t>& upper_pages) {
  uint64_t all = 0;
  for (const auto& c : counts) all += c.accesses;
  std::vector<uint64_t> hits;
  uint64_t capacity = 0, above = 0;  // of tiers 0..k; accesses they serve
  for (uint64_t pages : upper_pages) {
    capacity = pages > UINT64_MAX - capacity ? UINT64_MAX : capacity + pages;
    const uint64_t served = oracle_hits(counts, capacity);
    hits.push_back(served - above);
    above = served;
  }
  hits.push_back(all - above);
  return hits;
}

}  // namespace mb
