#include "membalancer/proc.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "membalancer/sysfs.h"

namespace mb {

static std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const char* n = e->d_name;
    if (*n < '1' || *n > '9') continue;
    char* end;
    long v = strtol(n, &end, 10);
    if (*end == 0) out.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  return out;
}

bool process_exists(pid_t pid, const std::string& proc_root) {
  if (pid <= 0) return false;
  struct stat st;
  // /proc/PID exists for thread ids too; a tgid has /proc/PID/task/PID and is
  // its own Tgid. A thread id is accepted as its process by the kernel anyway.
  return stat((proc_root + "/" + std::to_string(pid) + "/stat").c_str(), &st) == 0;
}

std::optional<pid_t> parse_stat_ppid(const std::string& line) {
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::string state;
  long ppid;
  if (!(rest >> state >> ppid)) return std::nullopt;
  return static_cast<pid_t>(ppid);
}

std::optional<pid_t> parent_of(pid_t pid, const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  return parse_stat_ppid(*text);
}

std::string process_name(pid_t pid, const std::string& proc_root) {
  auto text = read_text_file(proc_root + "/" + std::to_string(pid) + "/comm");
  return text ? trim(*text) : std::string();
}

std::vector<pid_t> all_processes(const std::string& proc_root) { return numeric_entries(proc_root); }

std::vector<pid_t> process_tree(pid_t root, const std::string& proc_root) {
  return process_forest({root}, proc_root);
}

std::vector<pid_t> process_forest(const std::vector<pid_t>& roots, const std::string& proc_root) {
  std::multimap<pid_t, pid_t> children;
  for (pid_t p : all_processes(proc_root))
    if (auto pp = parent_of(p, proc_root)) children.emplace(*pp, p);
  std::vector<pid_t> out;
  std::set<pid_t> seen;
  for (pid_t root : roots)
    if (!seen.count(root) && process_exists(root, proc_root)) {
      out.push_back(root);
      seen.insert(root);
    }
  for (size_t i = 0; i < out.size(); ++i) {
    auto range = children.equal_range(out[i]);
    for (auto it = range.first; it != range.second; ++it)
      if (seen.insert(it->second).second) out.push_back(it->second);
  }
  return out;
}

// Whether a /proc/PID/stat line is a kernel thread's: PF_KTHREAD in its
// flags (field 9).
static bool kernel_thread_stat(const std::string& stat) {
  constexpr unsigned long kPfKthread = 0x00200000;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 9; ++i)
    if (!(rest >> field)) return false;
  return std::strtoul(field.c_str(), nullptr, 10) & kPfKthread;
}

std::string process_problem(pid_t pid, const std::string& proc_root) {
  if (pid <= 0) return "not a process id";
  const std::string dir = proc_root + "/" + std::to_string(pid);
  auto status = read_text_file(dir + "/status");
  if (!status) return "no such process";
  if (auto stat = read_text_file(dir + "/stat"); stat && kernel_thread_stat(*stat))
    return "is a kernel thread (" + process_name(pid, proc_root) + "), which has no user memory to sample or move";
  std::istringstream in(*status);
  std::string line;
  while (std::getline(in, line)) {
    std::string state;
    if (line.rfind("State:", 0) == 0 && (std::istringstream(line.substr(6)) >> state) &&
        (state == "Z" || state == "X"))
      return "has exited (a zombie)";
    if (line.rfind("Tgid:", 0) == 0) {
      const long tgid = std::strtol(line.c_str() + 5, nullptr, 10);
      if (tgid != pid) return "is a thread of process " + std::to_string(tgid) + ", not a process";
    }
  }
  return "";
}

bool process_gone(pid_t pid, const std::string& proc_root) {
  auto status = read_text_file(proc_root + "/" + std::to_string(pid) + "/status");
  if (!status) return true;
  std::istringstream in(*status);
  std::string line;
  bool zombie = false;
  long threads = 0;
  while (std::getline(in, line)) {
    std::string state;
    if (line.rfind("State:", 0) == 0 && (std::istringstream(line.substr(6)) >> state))
      zombie = state == "Z" || state == "X";
    if (line.rfind("Threads:", 0) == 0) threads = std::strtol(line.c_str() + 8, nullptr, 10);
  }
  return zombie && threads <= 1;
}

std::optional<std::vector<int>> mems_allowed(pid_t pid, const std::string& proc_root) {
  auto status = read_text_file(proc_root + "/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  std::istringstream in(*status);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Mems_allowed_list:", 0) == 0) {
      try {
        return parse_int_list(trim(line.substr(18)), "Mems_allowed_list");
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  return std::nullopt;
}

std::vector<pid_t> threads_of(pid_t pid, const std::string& proc_root) {
  return numeric_entries(proc_root + "/" + std::to_string(pid) + "/task");
}

}  // namespace mb
