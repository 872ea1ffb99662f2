#include "membalancer/privilege.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <stdexcept>

#include "membalancer/error.h"
#include "membalancer/options.h"
#include "membalancer/proc.h"
#include "membalancer/replay.h"
#include "membalancer/sysfs.h"

namespace mb {

namespace {

// CAP_BPF and CAP_PERFMON exist since Linux 5.8; CAP_SYS_ADMIN grants both
// there and is what older kernels ask for.
constexpr CapSet kBpfCaps = cap_bit(CAP_BPF) | cap_bit(CAP_SYS_ADMIN);

const char* const kNames[] = {
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",         "CAP_FSETID",
    "CAP_KILL",            "CAP_SETGID",         "CAP_SETUID",          "CAP_SETPCAP",        "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",       "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",     "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",       "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",           "CAP_LEASE",          "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",        "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",
    "CAP_WAKE_ALARM",      "CAP_BLOCK_SUSPEND",  "CAP_AUDIT_READ",      "CAP_PERFMON",        "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

struct Caps {
  CapSet effective = 0, permitted = 0, inheritable = 0;
};

Caps get_caps() {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &h, d) != 0) throw SystemError("reading this process's capabilities (capget)", errno);
  auto join = [](uint32_t lo, uint32_t hi) { return CapSet{lo} | (CapSet{hi} << 32); };
  return {join(d[0].effective, d[1].effective), join(d[0].permitted, d[1].permitted),
          join(d[0].inheritable, d[1].inheritable)};
}

void set_caps(const Caps& c) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  for (int i = 0; i < 2; ++i) {
    d[i].effective = static_cast<uint32_t>(c.effective >> (32 * i));
    d[i].permitted = static_cast<uint32_t>(c.permitted >> (32 * i));
    d[i].inheritable = static_cast<uint32_t>(c.inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &h, d) != 0) throw SystemError("dropping capabilities (capset)", errno);
}

int last_cap() {
  if (auto t = read_text_file("/proc/sys/kernel/cap_last_cap")) {
    try {
      return std::stoi(trim(*t));
    } catch (...) {
    }
  }
  return CAP_LAST_CAP;
}

// "Uid:\t0\t0\t0\t0" -> the first three ids (real, effective, saved).
bool ids_match(const std::string& line, unsigned ours) {
  std::istringstream in(line.substr(line.find(':') + 1));
  for (int i = 0; i < 3; ++i) {
    unsigned v;
    if (!(in >> v) || v != ours) return false;
  }
  return true;
}

}  // namespace

std::string capability_name(int cap) {
  if (cap >= 0 && cap < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) return kNames[cap];
  return "CAP_" + std::to_string(cap);
}

std::string capability_names(CapSet set) {
  std::string out;
  for (int c = 0; c < 64; ++c)
    if (set & cap_bit(c)) out += (out.empty() ? "" : ", ") + capability_name(c);
  return out.empty() ? "none" : out;
}

std::vector<CapNeed> sampler_needs(const std::string& sampler) {
  if (!replay_path(sampler).empty()) return {};
  const std::string by = sampler == "auto" ? "needed by every live sampler" : "needed by the " + sampler + " sampler";
  std::vector<CapNeed> needs = {
      {CAP_BPF, CAP_SYS_ADMIN, by + " to load its BPF programs"},
      {CAP_PERFMON, CAP_SYS_ADMIN, by + " to attach its tracing programs and perf events to every CPU"},
  };
  // The helper module lets only CAP_SYS_ADMIN open its device (it hands out
  // the pages, and so the physical addresses, that other processes touch).
  if (sampler == "abit") needs.push_back({CAP_SYS_ADMIN, -1, by + " to open /dev/membalancer_abit"});
  return needs;
}

PrivilegePlan privilege_plan(const Options& o, const std::string& foreign) {
  PrivilegePlan p;
  if (!replay_path(o.sampler).empty()) return p;  // a recording: no process is touched
  p.needs = sampler_needs(o.sampler);
  const bool memory = o.command == "numa" || o.command == "tier" || o.command == "autotune";
  const bool moves_pages = memory && o.migrate && !o.dry_run;
  const bool moves_threads = o.moves_threads();
  // Every mode reads the tracked processes' page nodes (move_pages), maps and
  // numa_maps: the kernel's ptrace check, which a process that dropped
  // capabilities fails for any process holding more than it keeps.
  p.keep |= cap_bit(CAP_SYS_PTRACE);
  // tier walks /proc/PID/pagemap (mode 0400, the process's owner) for pages no
  // sample saw; the physical frame numbers in it need CAP_SYS_ADMIN (without
  // them the walk asks move_pages for every page, and sees no huge page).
  if (o.command == "tier") p.keep |= cap_bit(CAP_DAC_READ_SEARCH) | cap_bit(CAP_SYS_ADMIN);
  // sched_setaffinity, and restoring the affinities when the run ends.
  if (moves_threads) p.keep |= cap_bit(CAP_SYS_NICE);
  if (!foreign.empty()) {
    const std::string what = moves_pages ? " --migrate to move the pages of " : " to read the page nodes and maps of ";
    p.needs.push_back({CAP_SYS_PTRACE, -1, "needed by " + o.command + what + foreign});
    if (moves_threads)
      p.needs.push_back({CAP_SYS_NICE, -1, "needed by " + o.command + " --migrate to move the threads of " + foreign});
  }
  return p;
}

PrivilegePlan record_privilege_plan(const std::string& sampler, const std::string& foreign) {
  PrivilegePlan p;
  p.needs = sampler_needs(sampler);
  p.keep = cap_bit(CAP_SYS_PTRACE);  // maps and page nodes of the recorded processes
  if (!foreign.empty())
    p.needs.push_back({CAP_SYS_PTRACE, -1, "needed by profiler record to read the maps and page nodes of " + foreign});
  return p;
}

std::string foreign_process(pid_t pid, CapSet keep, const std::string& proc_root) {
  auto status = read_text_file(proc_root + "/" + std::to_string(pid) + "/status");
  if (!status) return "";  // gone: nothing to touch
  std::istringstream in(*status);
  std::string line;
  const std::string who = "pid " + std::to_string(pid);
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0 && !ids_match(line, getuid()))
      return who + " (it runs as another user)";
    if (line.rfind("Gid:", 0) == 0 && !ids_match(line, getgid()))
      return who + " (it runs with another group)";
    if (line.rfind("CapPrm:", 0) == 0) {
      const CapSet prm = std::stoull(trim(line.substr(7)), nullptr, 16);
      if (prm & ~keep) return who + " (it holds capabilities this run drops)";
    }
  }
  return "";
}

std::string foreign_target(TrackMode mode, pid_t pid, const std::string& cgroup, CapSet keep,
                           const std::string& proc_root) {
  switch (mode) {
    case TrackMode::kAll:
      return "every process (--all)";
    case TrackMode::kCgroup:
      return "the processes of cgroup " + cgroup;
    case TrackMode::kPid:
      return foreign_process(pid, keep, proc_root);
    case TrackMode::kTree:
      for (pid_t p : process_tree(pid, proc_root))
        if (auto f = foreign_process(p, keep, proc_root); !f.empty()) return f;
      return "";
  }
  return "";
}

CapSet effective_capabilities() { return get_caps().effective; }

std::string missing_capability(const std::vector<CapNeed>& needs, CapSet have) {
  for (const auto& n : needs) {
    if (have & cap_bit(n.cap)) continue;
    if (n.alternative >= 0 && (have & cap_bit(n.alternative))) continue;
    std::string alt = n.alternative >= 0 ? "; " + capability_name(n.alternative) + " would also do" : "";
    return "missing capability " + capability_name(n.cap) + " (" + n.why + alt + ")";
  }
  return "";
}

void require_capabilities(const std::vector<CapNeed>& needs) {
  std::string missing = missing_capability(needs, effective_capabilities());
  if (!missing.empty())
    throw SystemError(missing, "run as root, or grant it (setcap, or systemd AmbientCapabilities=)");
}

CapSet drop_capabilities(CapSet keep, const std::function<bool()>& bpf_works) {
  // Other threads would keep every capability this one drops.
  if (size_t n = threads_of(getpid()).size(); n > 1)
    throw std::logic_error("drop_capabilities with " + std::to_string(n) + " threads running");
  Caps now = get_caps();
  CapSet final_set = now.permitted & keep;
  if (bpf_works && !(final_set & kBpfCaps) && (now.effective & kBpfCaps)) {
    set_caps({now.effective & ~kBpfCaps, now.permitted, now.inheritable});
    if (!bpf_works()) final_set |= (now.permitted & cap_bit(CAP_BPF)) ? cap_bit(CAP_BPF) : cap_bit(CAP_SYS_ADMIN);
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
  if (now.effective & cap_bit(CAP_SETPCAP)) {
    for (int c = 0, last = last_cap(); c <= last && c < 64; ++c)
      if (!(final_set & cap_bit(c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
        throw SystemError("dropping " + capability_name(c) + " from the bounding set", errno);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    throw SystemError("clearing the ambient capabilities", errno);
  set_caps({final_set, final_set, 0});
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw SystemError("setting no_new_privs", errno);
  return get_caps().effective;
}

}  // namespace mb
