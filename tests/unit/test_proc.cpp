// Unit tests for membalancer/proc.h: stat parsing, and the process tree
// against a fake /proc in a temporary directory and against the real /proc
// for this test's own process and children it forks.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "membalancer/proc.h"
#include "temp_tree.h"

namespace {

using Pids = std::vector<pid_t>;

Pids sorted(Pids v) {
  std::sort(v.begin(), v.end());
  return v;
}

size_t index_of(const Pids& v, pid_t p) { return std::find(v.begin(), v.end(), p) - v.begin(); }

TEST(ParseStatPpid, Simple) {
  EXPECT_EQ(mb::parse_stat_ppid("1234 (cat) R 1 1234 1234 0 -1 4194304 100 0 0 0"), 1);
  EXPECT_EQ(mb::parse_stat_ppid("1 (systemd) S 0 1 1 0 -1\n"), 0);
}

TEST(ParseStatPpid, CommWithSpacesAndParentheses) {
  EXPECT_EQ(mb::parse_stat_ppid("1234 (a) b) S 77 1234 1234 0 -1 0"), 77);
  EXPECT_EQ(mb::parse_stat_ppid("99 (my prog (x)) R 4242 99 99 0"), 4242);
  EXPECT_EQ(mb::parse_stat_ppid("5 ()) S 3 5"), 3);
  EXPECT_EQ(mb::parse_stat_ppid("5 (a (S 9) Z 12 5"), 12);
}

TEST(ParseStatPpid, Malformed) {
  EXPECT_FALSE(mb::parse_stat_ppid("").has_value());
  EXPECT_FALSE(mb::parse_stat_ppid("1234 cat S 1").has_value());
  EXPECT_FALSE(mb::parse_stat_ppid("1234 (cat)").has_value());
  EXPECT_FALSE(mb::parse_stat_ppid("1234 (cat) S").has_value());
  EXPECT_FALSE(mb::parse_stat_ppid("1234 (cat) S abc 1").has_value());
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    // 1 -> 10 -> {11 -> 12, 13}; 1 -> 20; 30 has a parent that is gone.
    proc(1, "init", 0);
    proc(10, "shell", 1);
    proc(11, "b c) d", 10);
    proc(12, "leaf", 11);
    proc(13, "other", 10);
    proc(20, "daemon", 1);
    proc(30, "orphan", 999);
    tree_.write("10/task/10/stat", "10 (shell) S 1\n");
    tree_.write("10/task/14/stat", "14 (shell) S 1\n");
    tree_.write("10/task/15/stat", "15 (shell) S 1\n");
    // Non-process entries.
    tree_.write("self/stat", "x");
    tree_.write("sys/kernel/pid_max", "4194304\n");
    tree_.write("meminfo", "MemTotal: 1 kB\n");
    tree_.mkdir("0");
    tree_.mkdir("12abc");
    // A process directory without a stat file (vanished while listing).
    tree_.mkdir("40");
  }
  void proc(pid_t pid, const std::string& comm, pid_t ppid) {
    std::string p = std::to_string(pid);
    tree_.write(p + "/stat", p + " (" + comm + ") S " + std::to_string(ppid) + " " + p + " " + p + " 0 -1 4194560 0\n");
    tree_.write(p + "/comm", comm + "\n");
  }
  mb_test::TempTree tree_{"mb_proc"};
  const std::string& root_ = tree_.path();
};

TEST_F(FakeProc, AllProcesses) {
  EXPECT_EQ(sorted(mb::all_processes(root_)), (Pids{1, 10, 11, 12, 13, 20, 30, 40}));
}

TEST_F(FakeProc, ExistsParentName) {
  EXPECT_TRUE(mb::process_exists(10, root_));
  EXPECT_TRUE(mb::process_exists(12, root_));
  EXPECT_FALSE(mb::process_exists(99, root_));
  EXPECT_FALSE(mb::process_exists(40, root_));  // no stat: gone
  EXPECT_FALSE(mb::process_exists(0, root_));
  EXPECT_FALSE(mb::process_exists(-1, root_));
  EXPECT_EQ(mb::parent_of(11, root_), 10);
  EXPECT_EQ(mb::parent_of(12, root_), 11);
  EXPECT_EQ(mb::parent_of(1, root_), 0);
  EXPECT_FALSE(mb::parent_of(99, root_).has_value());
  EXPECT_EQ(mb::process_name(11, root_), "b c) d");
  EXPECT_EQ(mb::process_name(20, root_), "daemon");
  EXPECT_EQ(mb::process_name(99, root_), "");
}

TEST_F(FakeProc, Tree) {
  Pids t = mb::process_tree(10, root_);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t[0], 10);
  EXPECT_EQ(sorted(t), (Pids{10, 11, 12, 13}));
  EXPECT_LT(index_of(t, 11), index_of(t, 12));  // parents before children

  EXPECT_EQ(mb::process_tree(12, root_), (Pids{12}));
  EXPECT_EQ(mb::process_tree(30, root_), (Pids{30}));
  EXPECT_TRUE(mb::process_tree(99, root_).empty());
  EXPECT_TRUE(mb::process_tree(40, root_).empty());

  Pids all = mb::process_tree(1, root_);
  EXPECT_EQ(all[0], 1);
  EXPECT_EQ(sorted(all), (Pids{1, 10, 11, 12, 13, 20}));
  for (pid_t p : all) {
    if (p != 1) {
      EXPECT_LT(index_of(all, *mb::parent_of(p, root_)), index_of(all, p)) << p;
    }
  }
}

TEST_F(FakeProc, Threads) {
  EXPECT_EQ(sorted(mb::threads_of(10, root_)), (Pids{10, 14, 15}));
  EXPECT_TRUE(mb::threads_of(11, root_).empty());
  EXPECT_TRUE(mb::threads_of(99, root_).empty());
}

TEST(RealProc, OwnProcess) {
  pid_t me = getpid();
  EXPECT_TRUE(mb::process_exists(me));
  EXPECT_EQ(mb::parent_of(me), getppid());
  Pids t = mb::process_tree(me);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t[0], me);
  EXPECT_FALSE(mb::process_name(me).empty());
  Pids all = mb::all_processes();
  EXPECT_NE(std::find(all.begin(), all.end(), me), all.end());
}

TEST(RealProc, ThreadsOfOwnProcess) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread th([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop) usleep(1000);
  });
  while (tid == 0) usleep(1000);
  Pids threads = mb::threads_of(getpid());
  stop = true;
  th.join();
  EXPECT_NE(std::find(threads.begin(), threads.end(), getpid()), threads.end());
  EXPECT_NE(std::find(threads.begin(), threads.end(), tid.load()), threads.end());
}

TEST(RealProc, ForkedChildrenJoinTheTreeAndLeaveIt) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Child: a grandchild, then wait to be killed.
    pid_t grandchild = fork();
    if (grandchild == 0) {
      for (;;) pause();
    }
    (void)!write(ready[1], &grandchild, sizeof(grandchild));
    for (;;) pause();
  }
  close(ready[1]);
  pid_t grandchild = 0;
  ASSERT_EQ(read(ready[0], &grandchild, sizeof(grandchild)), static_cast<ssize_t>(sizeof(grandchild)));
  close(ready[0]);

  Pids t = mb::process_tree(getpid());
  EXPECT_EQ(t[0], getpid());
  EXPECT_NE(std::find(t.begin(), t.end(), child), t.end());
  EXPECT_NE(std::find(t.begin(), t.end(), grandchild), t.end());
  EXPECT_LT(index_of(t, child), index_of(t, grandchild));
  EXPECT_EQ(mb::parent_of(child), getpid());
  EXPECT_EQ(mb::parent_of(grandchild), child);
  EXPECT_TRUE(mb::process_exists(child));
  Pids sub = mb::process_tree(child);
  EXPECT_EQ(sub, (Pids{child, grandchild}));

  kill(grandchild, SIGKILL);
  kill(child, SIGKILL);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_FALSE(mb::process_exists(child));
  Pids after = mb::process_tree(getpid());
  EXPECT_EQ(std::find(after.begin(), after.end(), child), after.end());
  EXPECT_TRUE(mb::process_tree(child).empty());
}

// An exited child its parent has not reaped yet is a zombie in /proc: gone.
TEST(RealProc, UnreapedChildIsGone) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(mb::process_exists(child));
  for (int i = 0; i < 500 && !mb::process_gone(child); ++i) usleep(2000);
  EXPECT_TRUE(mb::process_gone(child));
  EXPECT_TRUE(mb::process_exists(child)) << "not reaped yet";
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(mb::process_gone(child));
}

// A target must be a live process: the BPF side tracks thread-group ids, so a
// thread id would track nothing, and a zombie never exits again.
TEST_F(FakeProc, ProcessProblem) {
  auto status = [&](pid_t pid, pid_t tgid, const char* state) {
    tree_.write(std::to_string(pid) + "/status", "Name:\tx\nState:\t" + std::string(state) + "\nTgid:\t" +
                                                     std::to_string(tgid) + "\nPid:\t" + std::to_string(pid) + "\n");
  };
  status(100, 100, "S (sleeping)");
  status(101, 100, "R (running)");
  status(102, 102, "Z (zombie)");
  status(104, 104, "S (sleeping)");
  // Field 9, the flags: PF_KTHREAD (0x00200000) for 104, a kernel thread.
  tree_.write("100/stat", "100 (a b) S 1 100 100 0 -1 4194560 90 0 0 0 5 3 0 0 20 0 1 0 50 1 1 1\n");
  tree_.write("104/stat", "104 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 50 0 0 1\n");
  tree_.write("104/comm", "kworker/0:1\n");
  EXPECT_EQ(mb::process_problem(104, root_),
            "is a kernel thread (kworker/0:1), which has no user memory to sample or move");
  EXPECT_EQ(mb::process_problem(100, root_), "");
  EXPECT_EQ(mb::process_problem(101, root_), "is a thread of process 100, not a process");
  EXPECT_EQ(mb::process_problem(102, root_), "has exited (a zombie)");
  EXPECT_EQ(mb::process_problem(103, root_), "no such process");
  EXPECT_EQ(mb::process_problem(0, root_), "not a process id");
  EXPECT_EQ(mb::process_problem(-4, root_), "not a process id");
  EXPECT_EQ(mb::process_problem(getpid()), "");  // the real /proc
}

// Gone: exited, whether reaped (no entry) or a zombie with no thread left;
// a zombie leader whose other threads run is alive (its exit is to come).
TEST_F(FakeProc, ProcessGone) {
  auto status = [&](pid_t pid, const char* state, int threads) {
    tree_.write(std::to_string(pid) + "/status", "Name:\tx\nState:\t" + std::string(state) + "\nTgid:\t" +
                                                     std::to_string(pid) + "\nThreads:\t" + std::to_string(threads) +
                                                     "\n");
  };
  status(100, "S (sleeping)", 1);
  status(101, "Z (zombie)", 1);
  status(102, "Z (zombie)", 3);
  EXPECT_FALSE(mb::process_gone(100, root_));
  EXPECT_TRUE(mb::process_gone(101, root_));
  EXPECT_FALSE(mb::process_gone(102, root_));
  EXPECT_TRUE(mb::process_gone(103, root_));
  EXPECT_FALSE(mb::process_gone(getpid()));  // the real /proc
}

}  // namespace
