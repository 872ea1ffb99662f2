#include "membalancer/abit_sync.h"

#include <cerrno>
#include <cstdlib>

namespace mb {

long AbitSync::write_retrying(const std::string& buf) {
  for (;;) {
    ++writes_;
    long r = write_(buf.data(), buf.size());
    if (r != -EINTR) return r;
  }
}

// The outcome of one line written alone.
void AbitSync::apply(const std::string& line, long result) {
  const bool add = line.compare(0, 4, "add ") == 0;
  const pid_t pid = static_cast<pid_t>(std::strtol(line.c_str() + 4, nullptr, 10));
  if (!add) {
    // Gone from the module either way: ESRCH means it had dropped the
    // process itself (exited). Another error leaves it there: tried again.
    if (result >= 0 || result == -ESRCH || result == -ENOENT) have_.erase(pid);
    return;
  }
  if (result >= 0) {
    have_.insert(pid);
    refused_.erase(pid);
    return;
  }
  if (result == -ESRCH || result == -ENOENT) return;  // left already: its exit follows
  if (result == -ENOSPC) full_ = true;
  auto [it, fresh] = refused_.emplace(pid, static_cast<int>(-result));
  if (fresh) ++refused_total_;
  else it->second = static_cast<int>(-result);
}

// Writes lines (each ending in '\n') in batches of at most max_write_ bytes.
// A refused batch is replayed one line per write: the module applies the
// lines before the failing one, and an add or del applied twice is harmless
// (a del of a pid already gone is ESRCH, counted as done).
void AbitSync::send(const std::vector<std::string>& lines) {
  size_t i = 0;
  while (i < lines.size()) {
    std::string batch;
    size_t j = i;
    while (j < lines.size() && (batch.empty() || batch.size() + lines[j].size() <= max_write_)) batch += lines[j++];
    long r = full_ ? -ENOSPC : write_retrying(batch);
    if (r >= 0) {
      for (size_t k = i; k < j; ++k) apply(lines[k], r);
    } else {
      for (size_t k = i; k < j; ++k) {
        // Once the module is full, further adds are refused without asking.
        bool add = lines[k].compare(0, 4, "add ") == 0;
        apply(lines[k], add && full_ ? -ENOSPC : write_retrying(lines[k]));
      }
    }
    i = j;
  }
}

void AbitSync::sync(const std::vector<pid_t>& want, const std::vector<pid_t>& again, bool resync) {
  const std::set<pid_t> wanted(want.begin(), want.end());
  std::vector<std::string> lines;
  for (pid_t p : have_)
    if (!wanted.count(p)) lines.push_back("del " + std::to_string(p) + "\n");
  for (auto it = refused_.begin(); it != refused_.end();)  // left: no longer waiting
    it = wanted.count(it->first) ? std::next(it) : refused_.erase(it);
  const std::set<pid_t> fresh(again.begin(), again.end());
  // Room for processes refused with ENOSPC only if a del makes some.
  const bool room = !lines.empty();
  full_ = false;
  for (pid_t p : wanted) {
    bool add;
    if (have_.count(p)) {
      add = resync || fresh.count(p);
    } else if (auto r = refused_.find(p); r != refused_.end()) {
      add = r->second != ENOSPC || room;  // a full module: wait for a del
    } else {
      add = true;
    }
    if (add) lines.push_back("add " + std::to_string(p) + "\n");
  }
  send(lines);
}

}  // namespace mb
