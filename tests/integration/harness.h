// Helpers for privileged integration tests: run the real binaries, wait for
// files, read membalancer's JSON lines. Tests that need root fail under
// CI=true instead of skipping.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mbtest {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Skips (or, in CI, fails) a test that needs root and BPF.
#define REQUIRE_ROOT()                                                              \
  do {                                                                              \
    if (geteuid() != 0) {                                                           \
      if (mbtest::in_ci()) FAIL() << "CI=true: this test needs root (BPF)";         \
      GTEST_SKIP() << "needs root (BPF); run as root";                              \
    }                                                                               \
  } while (0)

// The repository's bin/ (tests run from the repository root via make).
inline std::string bin(const std::string& name) {
  const char* dir = std::getenv("MB_BIN_DIR");
  return std::string(dir ? dir : "bin") + "/" + name;
}

// True in `make test SANITIZE=...` (the Makefile sets MB_SANITIZE).
inline bool sanitized_run() {
  const char* s = std::getenv("MB_SANITIZE");
  return s && *s;
}

// Pages that a workload built with AddressSanitizer faults besides the ones
// it means to (the runtime's allocator, fake stacks and shadow; measured at up
// to ~150 per process): footprint checks allow that much in the sanitized runs,
// and nothing in the plain one.
inline uint64_t sanitizer_slack_pages() { return sanitized_run() ? 256 : 0; }

// A thread's CPU affinity, as /proc shows it ("0-3"); "" once it is gone.
inline std::string allowed_list(pid_t pid, pid_t tid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Cpus_allowed_list:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 18));
  return "";
}

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts argv with stdout/stderr redirected to files in dir; before_exec,
// if given, runs in the child just before the exec (to set credentials, say).
inline Child spawn(const std::vector<std::string>& argv, const std::string& dir, const std::string& tag,
                   const std::function<void()>& before_exec = {}) {
  Child c;
  c.out_path = dir + "/" + tag + ".out";
  c.err_path = dir + "/" + tag + ".err";
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    if (before_exec) before_exec();
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  c.pid = pid;
  return c;
}

// The exit status `make test SANITIZE=...` gives a process that a sanitizer
// stopped. ASan, LSan and TSan also write their reports where tests/run_gtest.sh
// finds them; UBSan (its own runtime next to ASan's) writes to the process's
// stderr only, so a child's status is the sure sign.
constexpr int kSanitizerExitStatus = 86;

// Waits for the child; returns its exit status (128+sig if killed), or -1 on timeout.
// In a sanitized run, a child stopped by a sanitizer fails the test.
inline int wait_exit(pid_t pid, double timeout_s) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (status == kSanitizerExitStatus && sanitized_run())
        ADD_FAILURE() << "pid " << pid << " exited with status " << status
                      << ": a sanitizer report (in its stderr or the report directory)";
      return status;
    }
    if (std::chrono::steady_clock::now() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool wait_for(const std::function<bool()>& cond, double timeout_s) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A hexadecimal string field of a workload's report ("0x7f...").
inline uint64_t hex(const nlohmann::json& v) { return std::stoull(v.get<std::string>(), nullptr, 16); }
inline bool file_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

inline void touch(const std::string& p) { std::ofstream(p) << "go\n"; }

// Complete JSON lines of a file (a partial last line is ignored).
inline std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline yet: still being written
    if (line.empty()) continue;
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string l;
  while (std::getline(ss, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

// Runs argv to the end (killed after timeout_s): status (-1 when killed), stdout, stderr.
struct Ran {
  int status;
  std::string out, err;
};
inline Ran run(const std::vector<std::string>& argv, const std::string& dir, const std::string& tag,
               double timeout_s = 120) {
  Child c = spawn(argv, dir, tag);
  int st = wait_exit(c.pid, timeout_s);
  if (st < 0) {
    kill(c.pid, SIGKILL);
    wait_exit(c.pid, 5);
  }
  return {st, slurp(c.out_path), slurp(c.err_path)};
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/mbtest.XXXXXX";
  char* d = mkdtemp(tmpl);
  return d ? d : "/tmp";
}

}  // namespace mbtest
