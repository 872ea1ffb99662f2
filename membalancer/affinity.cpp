#include "membalancer/affinity.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "membalancer/cpu_load.h"
#include "membalancer/renumber.h"
#include "membalancer/sysfs.h"

namespace mb {

CpuSet::CpuSet(std::vector<int> cpus) {
  cpus.erase(std::remove_if(cpus.begin(), cpus.end(), [](int c) { return c < 0; }), cpus.end());
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  cpus_ = std::move(cpus);
}

void CpuSet::add(int cpu) {
  if (cpu < 0) return;
  auto it = std::lower_bound(cpus_.begin(), cpus_.end(), cpu);
  if (it == cpus_.end() || *it != cpu) cpus_.insert(it, cpu);
}

bool CpuSet::has(int cpu) const { return std::binary_search(cpus_.begin(), cpus_.end(), cpu); }

bool CpuSet::contains_all(const CpuSet& other) const {
  return std::includes(cpus_.begin(), cpus_.end(), other.cpus_.begin(), other.cpus_.end());
}

CpuSet CpuSet::intersect(const CpuSet& other) const {
  CpuSet out;
  std::set_intersection(cpus_.begin(), cpus_.end(), other.cpus_.begin(), other.cpus_.end(),
                        std::back_inserter(out.cpus_));
  return out;
}

std::string CpuSet::to_string() const {
  std::string out;
  for (size_t i = 0; i < cpus_.size();) {
    size_t j = i;
    while (j + 1 < cpus_.size() && cpus_[j + 1] == cpus_[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus_[i]);
    if (j > i) out += '-' + std::to_string(cpus_[j]);
    i = j + 1;
  }
  return out;
}

CpuSet node_cpu_set(const Topology& topo, int node) {
  const NumaNode* n = topo.node(node);
  return n ? CpuSet(n->cpus) : CpuSet();
}

int possible_cpu_count(const std::string& sysfs_root) {
  auto text = read_text_file(sysfs_root + "/devices/system/cpu/possible");
  if (!text) return 0;
  try {
    auto cpus = parse_int_list(trim(*text), "possible CPUs");
    return cpus.empty() ? 0 : *std::max_element(cpus.begin(), cpus.end()) + 1;
  } catch (const std::exception&) {
    return 0;
  }
}

namespace {

// A CPU_ALLOC'd mask, freed on scope exit.
class CpuMask {
 public:
  explicit CpuMask(int ncpus) : set_(CPU_ALLOC(ncpus)), size_(CPU_ALLOC_SIZE(ncpus)) {
    if (set_) CPU_ZERO_S(size_, set_);
  }
  ~CpuMask() {
    if (set_) CPU_FREE(set_);
  }
  CpuMask(const CpuMask&) = delete;
  CpuMask& operator=(const CpuMask&) = delete;
  cpu_set_t* get() { return set_; }
  size_t size() const { return size_; }
  int bits() const { return static_cast<int>(size_ * 8); }

 private:
  cpu_set_t* set_;
  size_t size_;
};

}  // namespace

AffinityOps real_affinity_ops(int possible_cpus) {
  int n = possible_cpus > 0 ? possible_cpus : possible_cpu_count();
  n = std::max(n, 1024);
  AffinityOps ops;
  ops.get = [n](pid_t tid, CpuSet* out) {
    for (int bits = n;; bits *= 2) {
      CpuMask mask(bits);
      if (!mask.get()) return ENOMEM;
      if (sched_getaffinity(tid, mask.size(), mask.get()) == 0) {
        std::vector<int> cpus;
        for (int c = 0; c < mask.bits(); ++c)
          if (CPU_ISSET_S(c, mask.size(), mask.get())) cpus.push_back(c);
        *out = CpuSet(std::move(cpus));
        return 0;
      }
      // EINVAL: the kernel's mask is larger than ours.
      if (errno != EINVAL || bits > (1 << 22)) return errno;
    }
  };
  ops.set = [n](pid_t tid, const CpuSet& cpus) {
    int bits = std::max(n, cpus.empty() ? 1 : cpus.cpus().back() + 1);
    CpuMask mask(bits);
    if (!mask.get()) return ENOMEM;
    for (int c : cpus.cpus()) CPU_SET_S(c, mask.size(), mask.get());
    return sched_setaffinity(tid, mask.size(), mask.get()) == 0 ? 0 : errno;
  };
  ops.started = [](pid_t tid) -> std::optional<uint64_t> {
    auto text = read_text_file("/proc/" + std::to_string(tid) + "/stat");
    auto st = text ? parse_task_stat(*text) : std::nullopt;
    return st ? std::optional<uint64_t>(st->start_ticks) : std::nullopt;
  };
  ops.cpuset = [](pid_t tid) { return read_cpuset_cpus(tid); };
  ops.now = [] {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    const uint64_t hz = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
    return static_cast<uint64_t>(ts.tv_sec) * hz + static_cast<uint64_t>(ts.tv_nsec) * hz / 1000000000ull;
  };
  return ops;
}

std::optional<CpuSet> read_cpuset_cpus(pid_t tid, const std::string& proc_root, const std::string& cgroup_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(tid) + "/cgroup");
  if (!text) return std::nullopt;
  auto cpus_in = [](const std::string& file) -> std::optional<CpuSet> {
    auto list = read_text_file(file);
    if (!list || trim(*list).empty()) return std::nullopt;
    try {
      return CpuSet(parse_int_list(*list, file));
    } catch (...) {
      return std::nullopt;
    }
  };
  // Lines "ID:CONTROLLERS:PATH"; cgroup v2 is "0::PATH".
  std::string v2_path;
  size_t at = 0;
  while (at < text->size()) {
    size_t end = text->find('\n', at);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(at, end - at);
    at = end + 1;
    const size_t c1 = line.find(':'), c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    const std::string controllers = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    const std::string path = line.substr(c2 + 1);
    if (path.empty() || path[0] != '/' || path.find("/..") != std::string::npos) continue;
    if (controllers.find(",cpuset,") != std::string::npos)
      return cpus_in(cgroup_root + "/cpuset" + (path == "/" ? "" : path) + "/cpuset.effective_cpus");
    if (controllers == ",," && line.compare(0, 2, "0:") == 0) v2_path = path;
  }
  if (v2_path.empty()) return std::nullopt;
  // Without the cpuset controller a cgroup has no file: its parent's limit holds.
  for (std::string p = v2_path;;) {
    if (auto cpus = cpus_in(cgroup_root + (p == "/" ? "" : p) + "/cpuset.cpus.effective")) return cpus;
    if (p == "/") return std::nullopt;
    p = p.substr(0, p.rfind('/'));
    if (p.empty()) p = "/";
  }
}

AffinityKeeper::AffinityKeeper(AffinityOps ops) : ops_(std::move(ops)) {}

AffinityKeeper::~AffinityKeeper() {
  if (!originals_.empty()) restore_all();
}

int AffinityKeeper::set(pid_t tid, const CpuSet& cpus) {
  // A remembered id taken by a later thread: that thread's own affinity is
  // the one to restore, not the exited thread's.
  if (auto it = originals_.find(tid); it != originals_.end() && !same_thread(tid, it->second)) originals_.erase(it);
  bool first = !remembers(tid);
  if (first) {
    Held h;
    if (int err = ops_.get(tid, &h.original)) return err;
    if (ops_.started) h.started = ops_.started(tid);
    originals_.emplace(tid, std::move(h));
  }
  int err = ops_.set(tid, cpus);
  if (err == ESRCH || (err && first)) originals_.erase(tid);
  if (err == 0) {
    Held& h = originals_[tid];
    // As the kernel keeps it (within the thread's cpuset, say), so that a
    // change by someone else is told from ours (forget_overridden).
    if (ops_.get(tid, &h.applied) != 0) h.applied = cpus;
    h.since = ops_.now ? ops_.now() : 0;
  }
  return err;
}

void AffinityKeeper::forget(pid_t tid) { originals_.erase(tid); }

void AffinityKeeper::renumber(pid_t from, pid_t to) {
  if (from <= 0) return;
  renumber_key(originals_, from, to);
  // Known again by the start the thread has taken on with the id.
  if (auto it = originals_.find(to); it != originals_.end() && ops_.started) it->second.started = ops_.started(to);
}

std::vector<pid_t> AffinityKeeper::forget_reused(const std::set<pid_t>& waiting) {
  std::vector<pid_t> dropped;
  if (!ops_.started) return dropped;
  for (auto it = originals_.begin(); it != originals_.end();) {
    if (same_thread(it->first, it->second) || (waiting.count(it->first) && !ops_.started(it->first))) {
      ++it;
      continue;
    }
    dropped.push_back(it->first);
    it = originals_.erase(it);
  }
  return dropped;
}

std::vector<pid_t> AffinityKeeper::forget_overridden(const std::set<pid_t>& not_yet) {
  std::vector<pid_t> dropped;
  for (auto it = originals_.begin(); it != originals_.end();) {
    CpuSet now;
    if (!not_yet.count(it->first) && same_thread(it->first, it->second) && ops_.get(it->first, &now) == 0 &&
        !(now == it->second.applied)) {
      dropped.push_back(it->first);
      it = originals_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

std::vector<pid_t> AffinityKeeper::adopt_inherited(const std::vector<pid_t>& tids) {
  std::vector<pid_t> adopted;
  if (originals_.empty() || !ops_.started || !ops_.now) return adopted;
  for (pid_t tid : tids) {
    if (remembers(tid)) continue;
    CpuSet now;
    if (ops_.get(tid, &now) != 0) continue;
    const Held* from = nullptr;
    for (const auto& [held_tid, h] : originals_)
      if (h.applied == now && !h.applied.empty()) {
        from = &h;
        break;
      }
    if (!from) continue;
    // Started in the same clock tick as the set or later: the tick is the
    // resolution of both.
    auto started = ops_.started(tid);
    if (!started || *started < from->since) continue;
    Held h{from->original, from->applied, from->since, started};
    originals_.emplace(tid, std::move(h));
    adopted.push_back(tid);
  }
  return adopted;
}

bool AffinityKeeper::same_thread(pid_t tid, const Held& h) const {
  if (!ops_.started || !h.started) return true;
  auto now = ops_.started(tid);
  return now && *now == *h.started;
}

AffinityKeeper::RestoreCounts AffinityKeeper::restore_all() {
  RestoreCounts c;
  for (const auto& [tid, h] : originals_) {
    // An id reused by a thread that is not ours is left alone, and so is an
    // affinity someone else set after ours.
    CpuSet now;
    int err = same_thread(tid, h) ? ops_.get(tid, &now) : ESRCH;
    if (err == 0 && !(now == h.applied)) {
      ++c.overridden;
      continue;
    }
    if (err != ESRCH) err = ops_.set(tid, h.original);
    if (err == 0) {
      ++c.restored;
    } else if (err == ESRCH) {
      ++c.gone;
    } else {
      if (!c.failed) c.first_error = err;
      ++c.failed;
    }
  }
  originals_.clear();
  return c;
}

bool narrower_than_node(const CpuSet& affinity, const CpuSet& node_cpus, const CpuSet* usable) {
  CpuSet node = usable ? node_cpus.intersect(*usable) : node_cpus;
  if (node.empty()) return false;
  CpuSet aff = usable ? affinity.intersect(*usable) : affinity;
  return !aff.contains_all(node);
}

std::optional<bool> AffinityKeeper::user_pinned(pid_t tid, int current_cpu, const Topology& topo,
                                                const CpuSet* usable) const {
  if (remembers(tid)) return false;
  if (current_cpu < 0 || static_cast<size_t>(current_cpu) >= topo.cpu_node.size()) return std::nullopt;
  int node = topo.cpu_node[current_cpu];
  if (node < 0) return std::nullopt;
  CpuSet aff;
  if (ops_.get(tid, &aff)) return std::nullopt;
  return narrower_than_node(aff, node_cpu_set(topo, node), usable);
}

std::optional<CpuSet> AffinityKeeper::original(pid_t tid) const {
  auto it = originals_.find(tid);
  if (it == originals_.end()) return std::nullopt;
  return it->second.original;
}

}  // namespace mb
