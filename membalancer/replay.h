// `--sampler replay:FILE`: a recorded profile fed to the same pipeline the
// live samplers feed, interval by interval of recorded time, so every
// memory backend runs without privileges or hardware.
//
// ReplayReader cuts the recording into windows of --interval of recorded
// time and aggregates each window's samples into page slots (the records the
// BPF side would have produced), process events and per-thread counts.
// ReplaySource serves one window at a time through the SampleSource
// interface; with a PlacementModel, each page's node is the model's (the
// recording's node only places a page the first time it is seen), so plans
// applied to the model show in the next window.
#pragma once

#include <sys/types.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "membalancer/bpf_collector.h"
#include "membalancer/flat_map.h"
#include "membalancer/node_resolver.h"
#include "membalancer/placement_model.h"
#include "membalancer/profile_file.h"
#include "membalancer/sample_source.h"

namespace mb {

// Which recorded processes are replayed.
struct ReplayFilter {
  TrackMode mode = TrackMode::kAll;  // kAll, kPid or kTree
  pid_t pid = 0;
};

struct ReplayWindow {
  uint32_t index = 0;     // 1, 2, ...
  uint64_t end_ns = 0;    // recorded time (exclusive)
  std::vector<mb_page_slot> slots;  // nodes as recorded
  std::vector<mb_proc_event> events;
  std::vector<TaskSnapshot> tasks;  // threads sampled in the window, cumulative
  std::array<uint64_t, MB_NR_COUNTERS> counters{};  // cumulative up to end_ns
  std::vector<pid_t> tracked;  // replayed processes alive at end_ns
};

class ReplayReader {
 public:
  // Throws UsageError when the file is not a readable profile.
  ReplayReader(const std::string& path, uint32_t interval_ms, ReplayFilter filter = {});

  // The next window; false when the recording is used up.
  bool next(ReplayWindow* w);

  const ProfileInfo& info() const { return reader_.info(); }
  const Topology& topology() const { return reader_.info().topology; }
  // Damage found so far ("" if none): replay stops at the damaged chunk.
  // Also a sample whose time is absurd (after the recording's end, or
  // after a gap of more than kMaxEmptyWindows windows): stepping through the
  // empty windows up to it would never end.
  const std::string& damage() const { return reader_.error().empty() ? damage_ : reader_.error(); }
  static constexpr uint64_t kMaxEmptyWindows = 1000000;
  std::vector<pid_t> tracked() const { return {tracked_.begin(), tracked_.end()}; }
  uint64_t samples_read() const { return samples_read_; }
  uint32_t interval_ms() const { return interval_ms_; }

 private:
  bool wanted(uint32_t tgid) const;
  void take_events_before(uint64_t end_ns, ReplayWindow* w);
  void add_sample(const mb_sample& s, ReplayWindow* w);
  std::string absurd_time(uint64_t time_ns, uint64_t window_end_ns) const;
  std::string damage_;

  ProfileReader reader_;
  ProfileReader::Cursor cursor_;
  uint32_t interval_ms_;
  ReplayFilter filter_;
  const mb_sample* chunk_ = nullptr;
  size_t chunk_n_ = 0, chunk_i_ = 0;
  bool samples_done_ = false;
  size_t next_event_ = 0;
  uint64_t start_ns_ = 0;
  uint32_t windows_ = 0;
  uint64_t samples_read_ = 0;
  std::set<uint32_t> tracked_;
  // --all: the last tgid known to be in tracked_ (a sample's insert is then
  // skipped); reset when one leaves it.
  std::optional<uint32_t> last_tracked_;
  std::array<int8_t, MB_MAX_NODES> lane_of_node_;  // CPU node -> lane, -1: none
  FlatMap<uint64_t, uint32_t, U64KeyOps> slot_of_;  // page key -> index into the window's slots
  // The huge pages samples said are huge and no sample has said split yet,
  // by key (ordered: a process's are one range, dropped at its exec or exit).
  // A sample that does not say its page's size counts into the huge page
  // holding its address: IBS reports the size only on a TLB hit, so one THP
  // gives huge samples and samples of no size, and the latter are not splits.
  std::set<uint64_t> huge_pages_;
  std::map<uint32_t, mb_task_stats> tasks_;          // by tid, cumulative
  std::set<uint32_t> window_tids_;
  uint32_t last_tid_ = 0;
  mb_task_stats* last_task_ = nullptr;  // std::map nodes do not move
  std::array<uint64_t, MB_NR_COUNTERS> counters_{};
};

class ReplaySource : public SampleSource {
 public:
  // Reads the recording itself, a window per advance().
  ReplaySource(const std::string& path, uint32_t interval_ms, ReplayFilter filter);
  // Serves windows read by someone else (serve()): `profiler whatif` reads a
  // recording once for several policies, each with its own source and model.
  ReplaySource(const std::string& path, const std::string& recorded_sampler);

  // With a model: page nodes come from it (placing pages on first sight).
  void set_placement(PlacementModel* model) { model_ = model; }
  // The next window, when the source does not read the recording itself.
  void serve(const ReplayWindow& w) { window_ = w; }
  // With a model: the last drain's samples by the node the model placed
  // their page on, each sample once (a 2 MiB page's too; the pipeline's
  // node accesses count those once per base page).
  const std::map<int, uint64_t>& placed_accesses() const { return placed_accesses_; }

  bool advance() override;
  void poll_process_events(const std::function<void(const mb_proc_event&)>& fn) override;
  uint64_t drain_pages(const PageFn& fn) override;
  void drain_tasks(std::vector<TaskSnapshot>* tasks) override;
  std::array<uint64_t, MB_NR_COUNTERS> counters() const override { return window_.counters; }
  const std::array<uint64_t, MB_NR_COUNTERS>& counters_at_swap() const override { return window_.counters; }
  std::vector<pid_t> tracked_processes() const override { return window_.tracked; }
  const SamplerPlan& sampler() const override { return plan_; }

  ReplayReader& reader() { return *reader_; }

 private:
  std::unique_ptr<ReplayReader> reader_;
  ReplayWindow window_;
  std::map<int, uint64_t> placed_accesses_;
  SamplerPlan plan_;
  PlacementModel* model_ = nullptr;
};

// Sets the node of a slot (the model's, when given one).
void set_slot_node(mb_page_slot& slot, int node);

// The node query of a replay's pipeline: the recorded processes are gone (or
// their pids are someone else's), so a page of unknown node stays unknown.
NodeResolver::QueryFn replay_node_query();

// "replay:FILE" -> FILE ("" when the sampler is not a replay).
std::string replay_path(const std::string& sampler);

// The model a replayed numa/tier run plans against: every recorded node with
// memory, holding its recorded total memory (tier 0 may be resized:
// fast_bytes > 0 spreads that size over tier 0's nodes by their recorded
// size); pages start on their recorded node, or on slow_node.
std::unique_ptr<PlacementModel> replay_model(const Topology& recorded, const std::vector<int>& fast_nodes,
                                             int slow_node, uint64_t fast_bytes, PlacementModel::Start start);

}  // namespace mb
