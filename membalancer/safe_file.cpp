#include "membalancer/safe_file.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "membalancer/error.h"

namespace mb {

namespace {

std::string exists_message(const std::string& path) { return path + ": the file exists (use --force to replace it)"; }
std::string symlink_message(const std::string& path) { return path + ": is a symbolic link; refusing to follow it"; }

// What is wrong with replacing the existing file `st` (lstat); "" if nothing.
std::string replace_problem(const std::string& path, const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return symlink_message(path);
  if (S_ISDIR(st.st_mode)) return path + ": is a directory";
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  // In a shared directory (/tmp) another user could have put it there for us
  // to fill; a second link would see the new contents under another name.
  if (st.st_uid != geteuid())
    return path + ": belongs to uid " + std::to_string(st.st_uid) + "; refusing to replace another user's file";
  if (st.st_nlink > 1)
    return path + ": has " + std::to_string(st.st_nlink) + " hard links; refusing to replace it";
  return "";
}

std::string parent_dir(const std::string& path) {
  std::string d = std::filesystem::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

std::string base_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// Opens (O_PATH) the directory that holds `path`'s last component, one
// component at a time and never through a symbolic link: whoever can change a
// directory on the way must not be able to send the write elsewhere.
// UsageError naming the component that is a link or missing.
int open_parent_nofollow(const std::string& path) {
  const std::string dir = parent_dir(path);
  int fd = open(dir[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw SystemError("opening " + dir, errno);
  std::string walked = dir[0] == '/' ? "" : ".";
  for (const auto& part : std::filesystem::path(dir).relative_path()) {
    const std::string c = part.string();
    if (c.empty() || c == ".") continue;
    walked += "/" + c;
    int next = openat(fd, c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int err = errno;
      struct stat st;
      const bool link = fstatat(fd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
      close(fd);
      if (link)
        throw UsageError(path + ": its directory " + walked +
                         " is a symbolic link; refusing to follow it (give the path it points to)");
      if (err == ENOENT || err == ENOTDIR) throw UsageError(path + ": no directory " + dir);
      throw UsageError(path + ": " + walked + ": " + std::strerror(err));
    }
    close(fd);
    fd = next;
  }
  return fd;
}

// An O_PATH descriptor, closed on every way out.
struct DirFd {
  int fd;
  ~DirFd() { close(fd); }
};

// The directories above `p` up to "/" (p absolute).
std::vector<std::string> dirs_above(const std::filesystem::path& p) {
  std::vector<std::string> out;
  for (auto d = p.parent_path(); !d.empty(); d = d.parent_path()) {
    out.push_back(d.string());
    if (d == d.root_path()) break;
  }
  return out;
}

}  // namespace

void check_output(const std::string& option, const std::string& path, bool force) {
  if (path.empty()) throw UsageError((option.empty() ? "" : option + ": ") + "the output file name is empty");
  DirFd dir{open_parent_nofollow(path)};
  const std::string base = base_name(path);
  if (base.empty() || base == "." || base == "..") throw UsageError(path + ": is a directory");
  struct stat st;
  if (fstatat(dir.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (err != ENOENT) throw UsageError(path + ": " + std::strerror(err));
    return;
  }
  if (S_ISLNK(st.st_mode)) throw UsageError(symlink_message(path));
  if (!force) throw UsageError(S_ISDIR(st.st_mode) ? path + ": is a directory" : exists_message(path));
  if (std::string why = replace_problem(path, st); !why.empty()) throw UsageError(why);
}

int open_output(const std::string& path, bool force, mode_t mode) {
  check_output("", path, force);
  // The name is resolved once, in a directory reached without links.
  DirFd dir{open_parent_nofollow(path)};
  const std::string base = base_name(path);
  // Twice at most: the file may appear or vanish between the two opens.
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = openat(dir.fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) throw UsageError(path + ": " + std::strerror(errno));
    if (fd < 0) {
      struct stat st;
      if (fstatat(dir.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        throw UsageError(symlink_message(path));
      if (!force) throw UsageError(exists_message(path));
      // O_NONBLOCK: a FIFO must not block the open (it fails with ENXIO
      // without a reader, and is refused below with one).
      fd = openat(dir.fd, base.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) {
        int err = errno;
        if (err == ENOENT) continue;
        if (err == ELOOP) throw UsageError(symlink_message(path));
        if (err == EISDIR) throw UsageError(path + ": is a directory");
        if (err == ENXIO) throw UsageError(path + ": not a regular file");
        throw UsageError(path + ": " + std::strerror(err));
      }
      // Decided on what was opened, not on a name that may have changed.
      std::string why = fstat(fd, &st) != 0 ? path + ": " + std::strerror(errno) : replace_problem(path, st);
      if (!why.empty()) {
        close(fd);
        throw UsageError(why);
      }
      if (ftruncate(fd, 0) != 0 || fcntl(fd, F_SETFL, 0) != 0) {
        int err = errno;
        close(fd);
        throw SystemError("truncating " + path, err);
      }
    }
    fchmod(fd, mode);  // whatever the umask says, or the replaced file had
    return fd;
  }
  throw UsageError(path + ": keeps changing while it is opened");
}

void write_output(const std::string& path, const void* data, size_t n, bool force, mode_t mode) {
  int fd = open_output(path, force, mode);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      throw SystemError("writing " + path, err);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (close(fd) != 0) throw SystemError("closing " + path, errno);
}

std::string config_file_problem(const std::string& path, uid_t euid) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";  // CLI11 names a missing file
  const std::string name = "config " + path;
  if (!S_ISREG(st.st_mode)) return name + " is not a regular file";
  auto owner_problem = [&](const struct stat& s) -> std::string {
    if (s.st_uid == 0 || s.st_uid == euid) return "";
    const std::string allowed = euid == 0 ? "root" : "root or uid " + std::to_string(euid);
    return "belongs to uid " + std::to_string(s.st_uid) + ", not " + allowed;
  };
  if (auto why = owner_problem(st); !why.empty()) return name + " " + why;
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return name + " is writable by group/others (chmod go-w " + path + ")";
  // Whoever can rename an entry of a directory on the way can swap the file:
  // the directories of the path as given (they hold any symbolic links) and
  // of the file it resolves to.
  std::vector<std::string> dirs = dirs_above(std::filesystem::absolute(path));
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved)) {
    auto more = dirs_above(resolved);
    dirs.insert(dirs.end(), more.begin(), more.end());
  }
  for (const auto& d : dirs) {
    struct stat ds;
    if (stat(d.c_str(), &ds) != 0) continue;
    if (auto why = owner_problem(ds); !why.empty()) return name + ": its directory " + d + " " + why;
    if ((ds.st_mode & (S_IWGRP | S_IWOTH)) && !(ds.st_mode & S_ISVTX))
      return name + ": its directory " + d + " is writable by group/others";
  }
  return "";
}

}  // namespace mb
