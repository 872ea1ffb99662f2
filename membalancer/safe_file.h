// Files named by the user (docs/reliability.md, "Least privilege and input
// safety"). Outputs are created without following a symbolic link (neither
// the file nor any directory on its path) and replace
// an existing file only with --force; config files of a privileged run must be
// changeable by no one but root (or the user running it). Every problem is a
// UsageError (status 2) naming the file. (Profiles are read by ProfileReader,
// which takes only regular files.)
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace mb {

// Profiles hold the recorded processes' address-space layouts and, from ibs
// and pebs, physical addresses, which the kernel shows only to their owner and
// to CAP_SYS_ADMIN: they are created for their owner alone, as perf.data is.
// Pictures and tables are for everyone.
inline constexpr mode_t kProfileMode = 0600;
inline constexpr mode_t kOutputMode = 0644;

// Refuses early (before a long setup or computation) a name open_output would
// refuse; open_output still decides when it opens the file. `option` is the
// command-line option that gave the name, for the error an empty one gets.
void check_output(const std::string& option, const std::string& path, bool force);

// Opens PATH for writing, never through a symbolic link (the directories on
// the path are walked one by one without following one): a new file
// (O_CREAT|O_EXCL), or with `force` an existing regular file of ours with a
// single link, truncated. The mode is `mode` whatever the umask. Returns the
// descriptor (O_CLOEXEC).
int open_output(const std::string& path, bool force, mode_t mode);

// Writes bytes to PATH, opened as open_output does.
void write_output(const std::string& path, const void* data, size_t n, bool force, mode_t mode = kOutputMode);

// Why a config file must not be trusted by a process running as uid `euid`:
// the file, or a directory on its path (as given and resolved), belongs to
// another user than root and `euid`, or is writable by group or others (a
// directory with the sticky bit is fine: others cannot replace its entries).
// "" when it can be trusted, or when it does not exist (the parser says so).
std::string config_file_problem(const std::string& path, uid_t euid);

}  // namespace mb
