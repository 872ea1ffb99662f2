// Processes from /proc: existence, names, parents, and the descendants of a
// process (the tree that exists when membalancer starts; later forks are seen
// by the BPF fork tracepoint).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace mb {

bool process_exists(pid_t pid, const std::string& proc_root = "/proc");

// The process's parent tgid, or nullopt if it is gone.
std::optional<pid_t> parent_of(pid_t pid, const std::string& proc_root = "/proc");

// The command name (comm), or "" if the process is gone.
std::string process_name(pid_t pid, const std::string& proc_root = "/proc");

// pid and every process below it, parents before children.
std::vector<pid_t> process_tree(pid_t root, const std::string& proc_root = "/proc");
// The same for several roots at once (one walk of /proc), each process once.
std::vector<pid_t> process_forest(const std::vector<pid_t>& roots, const std::string& proc_root = "/proc");

// Every process (tgid) on the system.
std::vector<pid_t> all_processes(const std::string& proc_root = "/proc");

// A problem with pid as a process to track, for "--pid PID: ..." (status 2):
// "no such process", "a thread of process P, not a process" (the BPF side
// tracks thread-group ids), "has exited (a zombie)", "is a kernel thread
// (NAME), ..." (no user memory: nothing to sample, and it never exits); ""
// when it is a live process.
std::string process_problem(pid_t pid, const std::string& proc_root = "/proc");

// Whether pid's exit has happened: no such process, or a zombie none of
// whose threads runs any more (its last thread has left do_exit, so the exit
// tracepoint has fired). A zombie leader whose other threads still run is
// not gone.
bool process_gone(pid_t pid, const std::string& proc_root = "/proc");

// The memory nodes the process's cpuset lets it use (Mems_allowed_list of
// /proc/PID/status); nullopt when the process is gone or the line missing.
std::optional<std::vector<int>> mems_allowed(pid_t pid, const std::string& proc_root = "/proc");

// Thread ids of a process.
std::vector<pid_t> threads_of(pid_t pid, const std::string& proc_root = "/proc");

// Parses the ppid out of a /proc/PID/stat line (the comm may hold spaces and
// parentheses). Returns nullopt on malformed text.
std::optional<pid_t> parse_stat_ppid(const std::string& stat_line);

}  // namespace mb
