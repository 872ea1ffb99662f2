#include "membalancer/replay.h"

#include <algorithm>
#include <cstdio>

#include "membalancer/error.h"

namespace mb {

namespace {

constexpr uint64_t kUserSpaceEnd = 1ULL << 47;

void lane_add(mb_page_slot& slot, uint32_t lane) {
  const uint32_t shift = (lane & 3) * 16;
  __u64& word = slot.lanes[lane >> 2];
  if (((word >> shift) & 0xffff) != 0xffff) word += 1ULL << shift;
}

}  // namespace

void set_slot_node(mb_page_slot& slot, int node) {
  const uint16_t huge = slot.mem_node1 & MB_SLOT_HUGE;
  slot.mem_node1 = static_cast<uint16_t>(huge | (node >= 0 && node < MB_SLOT_NODE_MASK ? node + 1 : 0));
}

NodeResolver::QueryFn replay_node_query() {
  return [](pid_t, unsigned long n, void**, int* status) {
    std::fill(status, status + n, -ENOENT);
    return 0L;
  };
}

std::string replay_path(const std::string& sampler) {
  static const std::string prefix = "replay:";
  return sampler.rfind(prefix, 0) == 0 ? sampler.substr(prefix.size()) : std::string();
}

// ---- ReplayReader ------------------------------------------------------------------

ReplayReader::ReplayReader(const std::string& path, uint32_t interval_ms, ReplayFilter filter)
    : reader_(path), cursor_(reader_.samples()), interval_ms_(interval_ms), filter_(filter) {
  // Without its topology (damaged) a recording cannot be replayed at all.
  if (topology().nodes.empty() && !reader_.error().empty()) throw UsageError(path + ": " + reader_.error());
  const auto cpu_nodes = topology().cpu_nodes();
  lane_of_node_.fill(-1);
  for (size_t i = 0; i < cpu_nodes.size() && i < MB_CPU_LANES; ++i)
    if (cpu_nodes[i] >= 0 && cpu_nodes[i] < MB_MAX_NODES) lane_of_node_[cpu_nodes[i]] = static_cast<int8_t>(i);
  // Windows start with the recording (or its first sample, if the header's
  // start is missing or later).
  start_ns_ = info().start_monotonic_ns;
  if (cursor_.next(&chunk_, &chunk_n_) && chunk_n_ && (start_ns_ == 0 || chunk_[0].time_ns < start_ns_))
    start_ns_ = chunk_[0].time_ns;
  if (!chunk_ || !chunk_n_) samples_done_ = true;
  if (filter_.mode == TrackMode::kPid || filter_.mode == TrackMode::kTree) {
    // A pid the recording never names would replay nothing: bad input, as a
    // live pid that does not exist is.
    const auto& procs = info().processes;
    const uint32_t want = static_cast<uint32_t>(filter_.pid);
    if (!procs.empty() &&
        std::none_of(procs.begin(), procs.end(), [&](const ProfileProcess& p) { return p.tgid == want; })) {
      std::set<uint32_t> pids;
      for (const auto& p : procs) pids.insert(p.tgid);
      std::string some;
      size_t shown = 0;
      for (uint32_t p : pids) {
        if (shown++ == 8) {
          some += ", ...";
          break;
        }
        some += (some.empty() ? "" : ", ") + std::to_string(p);
      }
      throw UsageError(std::string(filter_.mode == TrackMode::kPid ? "--pid " : "--ppid ") +
                       std::to_string(filter_.pid) + ": not a process of the recording " + path + " (its processes: " +
                       some + ")");
    }
    tracked_.insert(want);
  }
}

bool ReplayReader::wanted(uint32_t tgid) const {
  return filter_.mode == TrackMode::kAll || tracked_.count(tgid) != 0;
}

void ReplayReader::take_events_before(uint64_t end_ns, ReplayWindow* w) {
  const auto& procs = info().processes;
  for (; next_event_ < procs.size() && procs[next_event_].time_ns < end_ns; ++next_event_) {
    const ProfileProcess& p = procs[next_event_];
    mb_proc_event ev{};
    ev.time_ns = p.time_ns;
    ev.tgid = p.tgid;
    ev.parent_tgid = p.parent;
    if (p.event == kProcExec || p.event == kProcExit)  // a new image or none: its huge pages are gone
      huge_pages_.erase(huge_pages_.lower_bound(mb_page_key(p.tgid, 0)),
                        huge_pages_.upper_bound(mb_page_key(p.tgid, ~0ULL)));
    if (p.event == kProcSeen || p.event == kProcFork) {
      const bool in_tree = filter_.mode == TrackMode::kTree && tracked_.count(p.parent);
      if (filter_.mode == TrackMode::kAll || in_tree || tracked_.count(p.tgid)) {
        tracked_.insert(p.tgid);
        ev.type = MB_PROC_FORK;
        w->events.push_back(ev);
      }
    } else if (p.event == kProcExec && tracked_.count(p.tgid)) {
      // As live: the old image's pages leave (a rename seen by looking, 4,
      // may be a prctl: not an exec).
      ev.type = MB_PROC_EXEC;
      w->events.push_back(ev);
    } else if (p.event == kProcExit && tracked_.count(p.tgid)) {
      // The root of a --pid/--ppid replay stays wanted: its samples were all
      // before its exit, which is where this event is.
      tracked_.erase(p.tgid);
      last_tracked_.reset();
      ev.type = MB_PROC_EXIT;
      w->events.push_back(ev);
    }
  }
}

namespace {

// The page a sample's own size names (a huge page's first base page).
uint64_t page_key_of(const mb_sample& s) {
  const uint64_t key = mb_page_key(s.tgid, s.vaddr >> MB_PAGE_SHIFT);
  return s.flags & MB_ACC_HUGE ? mb_huge_page_key(key) : key;
}

// How many samples ahead the page map is prefetched: its probes miss the
// cache (a window holds up to millions of pages), and the samples to come
// are already in memory.
constexpr size_t kPrefetchAhead = 8;

}  // namespace

void ReplayReader::add_sample(const mb_sample& s, ReplayWindow* w) {
  ++counters_[MB_CTR_SAMPLES];
  if (!wanted(s.tgid)) {
    ++counters_[MB_CTR_FILTERED];
    return;
  }
  if (!(s.flags & MB_ACC_VADDR)) {
    ++counters_[MB_CTR_NO_ADDRESS];
    return;
  }
  if (s.vaddr >= kUserSpaceEnd) {
    ++counters_[MB_CTR_KERNEL_ADDRESS];
    return;
  }
  ++counters_[MB_CTR_ACCEPTED];
  if (filter_.mode == TrackMode::kAll && last_tracked_ != s.tgid) {
    tracked_.insert(s.tgid);
    last_tracked_ = s.tgid;
  }
  // The page it counts into, as its size says: huge, base (a huge page
  // there was split), or not said (the huge page it is known to be in, if
  // any).
  uint64_t key = page_key_of(s);
  bool huge = s.flags & MB_ACC_HUGE;
  if (huge) {
    huge_pages_.insert(key);
  } else if (!huge_pages_.empty()) {
    const auto it = huge_pages_.find(mb_huge_page_key(key));
    if (it != huge_pages_.end() && (s.flags & MB_ACC_BASE_PAGE)) {
      huge_pages_.erase(it);
    } else if (it != huge_pages_.end()) {
      key = *it;
      huge = true;
    }
  }
  uint32_t& idx = slot_of_[key];
  if (idx == 0) {  // new this window (indexes are stored + 1)
    w->slots.push_back(mb_page_slot{});
    mb_page_slot& slot = w->slots.back();
    slot.key = key;
    set_slot_node(slot, s.mem_node == MB_NODE_UNKNOWN ? -1 : s.mem_node);
    if (huge) slot.mem_node1 |= MB_SLOT_HUGE;
    idx = static_cast<uint32_t>(w->slots.size());
  }
  mb_page_slot& slot = w->slots[idx - 1];
  ++slot.accesses;
  if (s.cpu_node < MB_MAX_NODES && lane_of_node_[s.cpu_node] >= 0)
    lane_add(slot, static_cast<uint32_t>(lane_of_node_[s.cpu_node]));
  if (s.tid) {
    // Samples come in runs of one thread: look it up once per run.
    if (s.tid != last_tid_ || !last_task_) {
      last_task_ = &tasks_[s.tid];
      last_tid_ = s.tid;
      window_tids_.insert(s.tid);
    }
    mb_task_stats& t = *last_task_;
    t.tgid = s.tgid;
    t.last_cpu = s.cpu;
    ++t.accesses;
    if (s.cpu_node < MB_MAX_NODES) ++t.cpu_node_accesses[s.cpu_node];
    if (s.mem_node < MB_MAX_NODES) ++t.mem_node_accesses[s.mem_node];
  }
}

std::string ReplayReader::absurd_time(uint64_t t, uint64_t window_end_ns) const {
  const uint64_t interval_ns = static_cast<uint64_t>(interval_ms_) * 1000000ULL;
  auto secs = [&](uint64_t ns) {
    char b[48];
    std::snprintf(b, sizeof b, "%.1f s", static_cast<double>(ns - std::min(ns, start_ns_)) / 1e9);
    return std::string(b);
  };
  const uint64_t end = info().end_time_ns;
  if (end > start_ns_ && t > end && t - end > interval_ns)
    return "a sample at " + secs(t) + " after the start, past the recording's end (" + secs(end) +
           "): its time is damaged";
  if (end <= start_ns_ && (t - window_end_ns) / interval_ns > kMaxEmptyWindows)
    return "a sample at " + secs(t) + " after the start, more than " + std::to_string(kMaxEmptyWindows) +
           " intervals after the one before: its time is damaged";
  return {};
}

bool ReplayReader::next(ReplayWindow* w) {
  if (samples_done_ && next_event_ >= info().processes.size()) return false;
  w->index = ++windows_;
  w->end_ns = start_ns_ + static_cast<uint64_t>(windows_) * interval_ms_ * 1000000ULL;
  w->slots.clear();
  w->events.clear();
  w->tasks.clear();
  slot_of_.clear();
  window_tids_.clear();
  last_task_ = nullptr;  // a new window lists its threads anew
  take_events_before(w->end_ns, w);
  while (!samples_done_) {
    if (chunk_i_ == chunk_n_) {
      chunk_i_ = 0;
      if (!cursor_.next(&chunk_, &chunk_n_)) {
        samples_done_ = true;
        break;
      }
      continue;
    }
    const mb_sample& s = chunk_[chunk_i_];
    if (s.time_ns >= w->end_ns) {
      // A later window's sample: unless its time is absurd (damage), the
      // windows up to it are stepped through one by one.
      damage_ = absurd_time(s.time_ns, w->end_ns);
      if (!damage_.empty()) samples_done_ = true;
      break;
    }
    if (chunk_i_ + kPrefetchAhead < chunk_n_) slot_of_.prefetch(page_key_of(chunk_[chunk_i_ + kPrefetchAhead]));
    ++chunk_i_;
    ++samples_read_;
    add_sample(s, w);
  }
  for (uint32_t tid : window_tids_) w->tasks.push_back({tid, tasks_[tid]});
  w->counters = counters_;
  w->tracked.assign(tracked_.begin(), tracked_.end());
  return true;
}

// ---- ReplaySource ------------------------------------------------------------------

ReplaySource::ReplaySource(const std::string& path, uint32_t interval_ms, ReplayFilter filter)
    : ReplaySource(path, std::string()) {
  reader_ = std::make_unique<ReplayReader>(path, interval_ms, filter);
  const std::string& recorded = reader_->info().sampler;
  plan_.detail = path + ", recorded with " + (recorded.empty() ? "?" : recorded);
  window_.tracked = reader_->tracked();
}

ReplaySource::ReplaySource(const std::string& path, const std::string& recorded_sampler) {
  plan_.name = "replay";
  plan_.kind = MB_SAMPLER_REPLAY;
  plan_.detail = path + ", recorded with " + (recorded_sampler.empty() ? "?" : recorded_sampler);
}

bool ReplaySource::advance() { return reader_ && reader_->next(&window_); }

void ReplaySource::poll_process_events(const std::function<void(const mb_proc_event&)>& fn) {
  for (const auto& ev : window_.events) fn(ev);
  window_.events.clear();
}

uint64_t ReplaySource::drain_pages(const PageFn& fn) {
  placed_accesses_.clear();
  for (auto& slot : window_.slots) {
    if (model_) {
      const uint16_t recorded = mb_slot_node(&slot);
      const int node = model_->place(slot.key, recorded == MB_NODE_UNKNOWN ? -1 : recorded, mb_slot_huge(&slot));
      set_slot_node(slot, node);
      placed_accesses_[node] += slot.accesses;
    }
    fn(slot);
  }
  const uint64_t n = window_.slots.size();
  window_.slots.clear();
  return n;
}

void ReplaySource::drain_tasks(std::vector<TaskSnapshot>* tasks) {
  *tasks = std::move(window_.tasks);
  window_.tasks.clear();
}

// ---- the model of a replayed run ---------------------------------------------------

std::unique_ptr<PlacementModel> replay_model(const Topology& recorded, const std::vector<int>& fast_nodes,
                                             int slow_node, uint64_t fast_bytes, PlacementModel::Start start) {
  std::map<int, uint64_t> capacity;
  uint64_t fast_recorded = 0;
  for (const auto& n : recorded.nodes)
    if (std::find(fast_nodes.begin(), fast_nodes.end(), n.id) != fast_nodes.end()) fast_recorded += n.mem_total_bytes;
  for (const auto& n : recorded.nodes) {
    uint64_t bytes = n.mem_total_bytes;
    const bool fast = std::find(fast_nodes.begin(), fast_nodes.end(), n.id) != fast_nodes.end();
    if (fast && fast_bytes) {
      // Spread the asked size over the fast nodes as their recorded sizes were.
      bytes = fast_recorded ? static_cast<uint64_t>(static_cast<double>(fast_bytes) *
                                                    (static_cast<double>(n.mem_total_bytes) / fast_recorded))
                            : fast_bytes / fast_nodes.size();
    }
    if (bytes || n.id == slow_node) capacity[n.id] = bytes / kBasePageBytes;
  }
  return std::make_unique<PlacementModel>(std::move(capacity), slow_node, start);
}

}  // namespace mb
