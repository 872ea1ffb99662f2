#include "membalancer/placement_model.h"

#include "membalancer/records.h"

namespace mb {

namespace {
uint64_t base_pages(bool huge) { return huge ? MB_HUGE_BASE_PAGES : 1; }
}  // namespace

PlacementModel::PlacementModel(std::map<int, uint64_t> capacity_pages, int slow_node, Start start)
    : capacity_(std::move(capacity_pages)), slow_(slow_node), start_(start) {
  for (const auto& [n, c] : capacity_) used_[n] = 0;
  used_.try_emplace(slow_, 0);
}

int PlacementModel::place(uint64_t key, int recorded_node, bool huge) {
  const bool aligned = key == mb_huge_page_key(key);
  if (Placed* found = pages_.find(key)) {
    // A base sample at a huge page's own key, or a huge one at a base
    // page's key: the page changed size. (A huge page at an unaligned key,
    // which the replay never makes, keeps the size it was placed with.)
    if (found->huge == huge || !aligned) return found->node;
    return huge ? collapse(key) : split(key, *found);
  }
  if (!huge && !aligned) {
    if (Placed* h = pages_.find(mb_huge_page_key(key)); h && h->huge) return split(mb_huge_page_key(key), *h);
  } else if (huge && aligned) {
    for (uint64_t k = key + 1; k < key + MB_HUGE_BASE_PAGES; ++k)
      if (pages_.find(k)) return collapse(key);
  }
  Placed& p = pages_[key];
  int node = slow_;
  if (start_ == Start::kRecorded && recorded_node >= 0 && capacity_.count(recorded_node) &&
      used_[recorded_node] + base_pages(huge) <= capacity_[recorded_node])
    node = recorded_node;
  p = Placed{node, huge};
  used_[node] += base_pages(huge);
  return node;
}

// Merges the base pages of the 2 MiB at `key` into one huge entry there.
int PlacementModel::collapse(uint64_t key) {
  std::map<int, uint64_t> on;  // node -> base pages of the 2 MiB on it
  for (uint64_t k = key; k < key + MB_HUGE_BASE_PAGES; ++k) {
    const Placed* p = pages_.find(k);
    if (!p) continue;
    ++on[p->node];
    --used_[p->node];
    if (k != key) pages_.erase(k);
  }
  int node = slow_;
  uint64_t most = 0;
  for (const auto& [n, pages] : on)  // in node order: a tie goes to the lowest id
    if (pages > most) most = pages, node = n;
  if (node != slow_ && used_[node] + MB_HUGE_BASE_PAGES > capacity_pages(node)) node = slow_;
  pages_[key] = Placed{node, true};
  used_[node] += MB_HUGE_BASE_PAGES;
  note({key, node, true});
  return node;
}

// Splits the huge entry at `key` into its base pages, where it was.
int PlacementModel::split(uint64_t key, Placed& huge_page) {
  const int node = huge_page.node;
  huge_page.huge = false;  // its first base page (the reference may move as the map grows)
  for (uint64_t k = key + 1; k < key + MB_HUGE_BASE_PAGES; ++k) pages_[k] = Placed{node, false};
  note({key, node, false});
  return node;
}

uint64_t PlacementModel::holder(uint64_t key) const {
  if (pages_.find(key)) return key;
  const Placed* h = pages_.find(mb_huge_page_key(key));
  return h && h->huge ? mb_huge_page_key(key) : key;
}

bool PlacementModel::move(uint64_t key, int to) {
  Placed* found = pages_.find(key);
  if (!found || !capacity_.count(to)) return false;
  Placed& p = *found;
  if (p.node == to) return true;
  const uint64_t n = base_pages(p.huge);
  if (used_[to] + n > capacity_[to]) return false;
  used_[p.node] -= n;
  used_[to] += n;
  p.node = to;
  return true;
}

uint64_t PlacementModel::used_pages(int node) const {
  auto it = used_.find(node);
  return it == used_.end() ? 0 : it->second;
}

uint64_t PlacementModel::capacity_pages(int node) const {
  auto it = capacity_.find(node);
  return it == capacity_.end() ? 0 : it->second;
}

MemoryState PlacementModel::state() const {
  MemoryState mem;
  for (const auto& [n, cap] : capacity_) {
    const uint64_t used = used_pages(n);
    mem.nodes[n] = {cap * kBasePageBytes, (cap > used ? cap - used : 0) * kBasePageBytes, used};
  }
  mem.resident = [this](int node, const std::function<bool(uint32_t, uint64_t, bool)>& fn) {
    pages_.for_each_while([&](uint64_t key, const Placed& p) {
      return p.node != node || fn(mb_key_tgid(key), mb_key_vpn(key) << MB_PAGE_SHIFT, p.huge);
    });
  };
  return mem;
}

uint64_t apply_plan(const Plan& plan, PlacementModel& model, std::map<int, NodeFlow>* flows) {
  uint64_t refused = 0;
  for (const PlannedMove* m : execution_order(plan)) {
    const PlannedMove& mv = *m;
    const uint64_t key = model.holder(mb_page_key(mv.tgid, mv.vaddr >> MB_PAGE_SHIFT));
    const int from = model.node_of(key);
    // The model's size of the page: what moves (or would have) is the page
    // as the model holds it, whatever size the plan took it for.
    const uint64_t pages = from < 0 ? mv.bytes() / kBasePageBytes : base_pages(model.huge(key));
    if (!model.move(key, mv.to)) {
      refused += pages;
    } else if (flows && from != mv.to) {
      (*flows)[mv.to].in += pages;
      (*flows)[mv.to].arrived(mv.direction, pages);
      (*flows)[from].out += pages;
    }
  }
  return refused;
}

}  // namespace mb
