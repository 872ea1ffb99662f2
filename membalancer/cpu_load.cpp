#include "membalancer/cpu_load.h"

#include <sstream>

#include "membalancer/proc.h"
#include "membalancer/renumber.h"
#include "membalancer/sysfs.h"

namespace mb {

std::map<int, CpuTimes> parse_proc_stat(const std::string& text) {
  std::map<int, CpuTimes> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream ls(line.substr(3));
    int cpu;
    // user nice system idle iowait irq softirq steal (guest guest_nice follow)
    uint64_t v[8] = {};
    if (!(ls >> cpu)) continue;
    int got = 0;
    while (got < 8 && ls >> v[got]) ++got;
    if (got < 4) continue;  // very old kernels stop after idle; fewer is malformed
    CpuTimes t;
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    t.idle = v[3] + v[4];
    out[cpu] = t;
  }
  return out;
}

std::map<int, CpuTimes> read_cpu_times(const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/stat");
  return text ? parse_proc_stat(*text) : std::map<int, CpuTimes>{};
}

std::map<int, NodeLoad> node_loads(const Topology& topo, const std::map<int, CpuTimes>& before,
                                   const std::map<int, CpuTimes>& after, double idle_cpu_busy_max) {
  std::map<int, NodeLoad> out;
  for (const auto& n : topo.nodes) {
    NodeLoad load;
    load.node = n.id;
    uint64_t busy = 0, total = 0;
    for (int cpu : n.cpus) {
      auto b = before.find(cpu), a = after.find(cpu);
      if (b == before.end() || a == after.end()) continue;
      ++load.cpus;
      // Counters only grow; a CPU taken offline and back may restart them.
      uint64_t db = a->second.busy >= b->second.busy ? a->second.busy - b->second.busy : 0;
      uint64_t di = a->second.idle >= b->second.idle ? a->second.idle - b->second.idle : 0;
      if (db + di == 0) continue;
      busy += db;
      total += db + di;
      if (static_cast<double>(db) / static_cast<double>(db + di) < idle_cpu_busy_max) ++load.idle_cpus;
    }
    load.busy_fraction = total ? static_cast<double>(busy) / static_cast<double>(total) : 0.0;
    out[n.id] = load;
  }
  return out;
}

std::map<int, NodeLoad> CpuLoadMonitor::update(const Topology& topo, double idle_cpu_busy_max) {
  auto now = read_cpu_times(proc_root_);
  auto loads = node_loads(topo, prev_, now, idle_cpu_busy_max);
  prev_ = std::move(now);
  return loads;
}

std::optional<TaskStat> parse_task_stat(const std::string& line) {
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  TaskStat st;
  {
    std::istringstream head(line.substr(0, open));
    long tid;
    if (!(head >> tid) || tid <= 0) return std::nullopt;
    st.tid = static_cast<pid_t>(tid);
  }
  // Fields after the comm start at field 3 (state): field k is token k - 3.
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> tok;
  std::string t;
  while (tok.size() < 37 && rest >> t) tok.push_back(t);
  if (tok.size() < 37 || tok[0].size() != 1) return std::nullopt;
  auto num = [](const std::string& s, long long* v) {
    char* end;
    *v = strtoll(s.c_str(), &end, 10);
    return !s.empty() && *end == 0;
  };
  long long utime, stime, processor, start;
  if (!num(tok[14 - 3], &utime) || !num(tok[15 - 3], &stime) || !num(tok[39 - 3], &processor) ||
      !num(tok[22 - 3], &start))
    return std::nullopt;
  if (utime < 0 || stime < 0 || start < 0) return std::nullopt;
  st.start_ticks = static_cast<uint64_t>(start);
  st.state = tok[0][0];
  st.cpu_ticks = static_cast<uint64_t>(utime) + static_cast<uint64_t>(stime);
  st.processor = static_cast<int>(processor);
  return st;
}

std::optional<TaskStat> read_task_stat(pid_t tgid, pid_t tid, const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(tgid) + "/task/" + std::to_string(tid) + "/stat");
  if (!text) return std::nullopt;
  return parse_task_stat(*text);
}

std::vector<TaskStat> read_process_tasks(pid_t tgid, const std::string& proc_root) {
  std::vector<TaskStat> out;
  for (pid_t tid : threads_of(tgid, proc_root))
    if (auto st = read_task_stat(tgid, tid, proc_root)) out.push_back(*st);
  return out;
}

void ThreadCpuTracker::renumber(pid_t from, pid_t to) {
  if (from > 0) renumber_key(prev_, from, to);
}

ThreadCpuTracker::Interval ThreadCpuTracker::update(const std::vector<std::pair<pid_t, TaskStat>>& tasks,
                                                    const Topology& topo) {
  Interval iv;
  std::unordered_map<pid_t, uint64_t> now;
  now.reserve(tasks.size());
  for (const auto& [tgid, st] : tasks) {
    ThreadCpu tc;
    tc.tid = st.tid;
    tc.tgid = tgid;
    tc.cpu = st.processor;
    tc.node = st.processor >= 0 && static_cast<size_t>(st.processor) < topo.cpu_node.size()
                  ? topo.cpu_node[st.processor]
                  : -1;
    auto it = prev_.find(st.tid);
    if (it != prev_.end())
      // A smaller count means the tid was reused by a new thread.
      tc.ticks = st.cpu_ticks >= it->second ? st.cpu_ticks - it->second : st.cpu_ticks;
    else
      tc.ticks = primed_ ? st.cpu_ticks : 0;
    now[st.tid] = st.cpu_ticks;
    if (tc.ticks) {
      iv.node_ticks[tc.node] += tc.ticks;
      iv.total_ticks += tc.ticks;
    }
    iv.threads.push_back(tc);
  }
  prev_ = std::move(now);
  primed_ = true;
  return iv;
}

ThreadCpuTracker::Interval ThreadCpuTracker::update_from_proc(const std::vector<pid_t>& tgids, const Topology& topo,
                                                              const std::string& proc_root) {
  std::vector<std::pair<pid_t, TaskStat>> tasks;
  for (pid_t tgid : tgids)
    for (const auto& st : read_process_tasks(tgid, proc_root)) tasks.emplace_back(tgid, st);
  return update(tasks, topo);
}

}  // namespace mb
