// Unit tests for membalancer/safe_file.h: output files (no symbolic link
// followed, no replacement without force, nothing but our own regular files
// replaced, the mode whatever the umask) and config files a privileged run
// refuses (another owner, writable by group or others, on their path too).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "membalancer/error.h"
#include "membalancer/safe_file.h"
#include "temp_tree.h"

namespace {

// chown to another user needs root; fails instead of skipping under CI=true.
#define REQUIRE_ROOT_UNIT()                                                            \
  do {                                                                                 \
    if (geteuid() != 0) {                                                              \
      const char* ci = std::getenv("CI");                                              \
      if (ci && std::string(ci) == "true") FAIL() << "CI=true: this test needs root";  \
      GTEST_SKIP() << "needs root (chown)";                                            \
    }                                                                                  \
  } while (0)

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The UsageError message writing PATH gives, or "" when it succeeds.
std::string write_error(const std::string& path, bool force, const std::string& text = "new\n",
                        mode_t mode = mb::kOutputMode) {
  try {
    mb::write_output(path, text.data(), text.size(), force, mode);
  } catch (const mb::UsageError& e) {
    return e.what();
  }
  return "";
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(SafeOutput, CreatesWithTheModeWhateverTheUmask) {
  mb_test::TempTree dir("mb_safe");
  const mode_t old = umask(0);  // would give 0666/0777
  EXPECT_EQ(write_error(dir.path("a.prof"), false, "x", mb::kProfileMode), "");
  EXPECT_EQ(write_error(dir.path("a.svg"), false, "y"), "");
  umask(077);
  EXPECT_EQ(write_error(dir.path("b.svg"), false, "z"), "");
  umask(old);
  EXPECT_EQ(mode_of(dir.path("a.prof")), 0600u);
  EXPECT_EQ(mode_of(dir.path("a.svg")), 0644u);
  EXPECT_EQ(mode_of(dir.path("b.svg")), 0644u);
  EXPECT_EQ(slurp(dir.path("a.svg")), "y");
}

TEST(SafeOutput, ReplacesOnlyWithForce) {
  mb_test::TempTree dir("mb_safe");
  const std::string f = dir.write("old.svg", "old contents, longer than the new\n");
  chmod(f.c_str(), 0666);
  std::string e = write_error(f, false);
  EXPECT_EQ(e, f + ": the file exists (use --force to replace it)");
  EXPECT_THROW(mb::check_output("-o", f, false), mb::UsageError);
  EXPECT_EQ(slurp(f), "old contents, longer than the new\n");
  EXPECT_NO_THROW(mb::check_output("-o", f, true));
  EXPECT_EQ(write_error(f, true), "");
  EXPECT_EQ(slurp(f), "new\n");  // truncated, not overwritten in place
  EXPECT_EQ(mode_of(f), 0644u);  // the mode asked for, not the old one
}

TEST(SafeOutput, NeverFollowsASymbolicLink) {
  mb_test::TempTree dir("mb_safe");
  const std::string target = dir.write("target", "keep me\n");
  dir.symlink(target, "link");
  dir.symlink(dir.path("nowhere"), "dangling");
  for (bool force : {false, true}) {
    SCOPED_TRACE(force);
    EXPECT_TRUE(contains(write_error(dir.path("link"), force), "is a symbolic link; refusing to follow it"));
    EXPECT_TRUE(contains(write_error(dir.path("dangling"), force), "is a symbolic link"));
    EXPECT_THROW(mb::check_output("-o", dir.path("link"), force), mb::UsageError);
  }
  EXPECT_EQ(slurp(target), "keep me\n");
  EXPECT_FALSE(std::ifstream(dir.path("nowhere")).good());  // not created through the link
}

TEST(SafeOutput, NeverWritesThroughALinkedDirectory) {
  // Whoever owns a directory on the path could point it at /etc: the write
  // must not follow it, with or without --force, new file or existing.
  mb_test::TempTree dir("mb_safe");
  dir.mkdir("victim");
  const std::string precious = dir.write("victim/precious", "keep me\n");
  dir.symlink(dir.path("victim"), "link");
  dir.mkdir("real");
  dir.symlink(dir.path("link"), "real/deeper");  // a link two steps down
  for (bool force : {false, true}) {
    SCOPED_TRACE(force);
    EXPECT_EQ(write_error(dir.path("link/precious"), force),
              dir.path("link/precious") + ": its directory " + dir.path("link") +
                  " is a symbolic link; refusing to follow it (give the path it points to)");
    EXPECT_TRUE(contains(write_error(dir.path("link/new"), force), "its directory " + dir.path("link") + " is a"));
    EXPECT_TRUE(contains(write_error(dir.path("real/deeper/new"), force), "its directory " + dir.path("real/deeper")));
    EXPECT_THROW(mb::check_output("-o", dir.path("link/new"), force), mb::UsageError);
  }
  EXPECT_EQ(slurp(precious), "keep me\n");
  EXPECT_FALSE(std::ifstream(dir.path("victim/new")).good());
  // The real directory works, and so do relative names and "..".
  EXPECT_EQ(write_error(dir.path("victim/new"), false), "");
  EXPECT_EQ(write_error(dir.path("real/../victim/other"), false), "");
  EXPECT_EQ(slurp(dir.path("victim/other")), "new\n");
  EXPECT_EQ(write_error(dir.path("missing/x"), false), dir.path("missing/x") + ": no directory " + dir.path("missing"));
}

TEST(SafeOutput, RefusesWhatIsNotOurRegularFile) {
  mb_test::TempTree dir("mb_safe");
  dir.mkdir("sub");
  EXPECT_EQ(write_error(dir.path("sub"), false), dir.path("sub") + ": is a directory");
  EXPECT_EQ(write_error(dir.path("sub"), true), dir.path("sub") + ": is a directory");
  // A FIFO would block the open; it is refused at once.
  ASSERT_EQ(mkfifo(dir.path("fifo").c_str(), 0600), 0);
  EXPECT_EQ(write_error(dir.path("fifo"), true), dir.path("fifo") + ": not a regular file");
  EXPECT_EQ(write_error("/dev/null", true), "/dev/null: not a regular file");
  // A second name would see the new contents.
  const std::string f = dir.write("one", "1\n");
  ASSERT_EQ(link(f.c_str(), dir.path("two").c_str()), 0);
  EXPECT_EQ(write_error(f, true), f + ": has 2 hard links; refusing to replace it");
  EXPECT_EQ(slurp(dir.path("two")), "1\n");
  EXPECT_EQ(write_error(dir.path("no/such/dir/x.svg"), false), dir.path("no/such/dir/x.svg") + ": no directory " +
                                                                  dir.path("no/such/dir"));
  EXPECT_EQ(write_error("", false), "the output file name is empty");
}

TEST(SafeOutput, RefusesToReplaceAnotherUsersFile) {
  REQUIRE_ROOT_UNIT();
  mb_test::TempTree dir("mb_safe");
  const std::string f = dir.write("theirs.prof", "theirs\n");
  ASSERT_EQ(chown(f.c_str(), 65534, 65534), 0);
  EXPECT_EQ(write_error(f, true), f + ": belongs to uid 65534; refusing to replace another user's file");
  EXPECT_EQ(slurp(f), "theirs\n");
}

TEST(ConfigTrust, TrustedOnlyWhenNobodyElseCanChangeIt) {
  mb_test::TempTree dir("mb_safe");
  const uid_t me = geteuid();
  const std::string f = dir.write("ok.toml", "[trace]\n");
  chmod(f.c_str(), 0644);
  EXPECT_EQ(mb::config_file_problem(f, me), "");
  EXPECT_EQ(mb::config_file_problem(dir.path("missing.toml"), me), "");  // the parser names it
  chmod(f.c_str(), 0664);
  EXPECT_EQ(mb::config_file_problem(f, me), "config " + f + " is writable by group/others (chmod go-w " + f + ")");
  chmod(f.c_str(), 0646);
  EXPECT_TRUE(contains(mb::config_file_problem(f, me), "writable by group/others"));
  chmod(f.c_str(), 0644);
  EXPECT_EQ(mb::config_file_problem(dir.path(), me), "config " + dir.path() + " is not a regular file");

  // Its directory: writable by others lets them swap the file, unless sticky.
  dir.mkdir("open");
  const std::string g = dir.write("open/cfg.toml", "[trace]\n");
  chmod(g.c_str(), 0644);
  chmod(dir.path("open").c_str(), 0777);
  EXPECT_EQ(mb::config_file_problem(g, me),
            "config " + g + ": its directory " + dir.path("open") + " is writable by group/others");
  chmod(dir.path("open").c_str(), 01777);
  EXPECT_EQ(mb::config_file_problem(g, me), "");
  // A trusted name that resolves into an untrusted directory.
  chmod(dir.path("open").c_str(), 0777);
  dir.symlink(g, "link.toml");
  EXPECT_TRUE(contains(mb::config_file_problem(dir.path("link.toml"), me), "its directory " + dir.path("open")));
}

TEST(ConfigTrust, AnotherOwnerIsRefused) {
  REQUIRE_ROOT_UNIT();
  mb_test::TempTree dir("mb_safe");
  const std::string f = dir.write("theirs.toml", "[trace]\n");
  chmod(f.c_str(), 0644);
  ASSERT_EQ(chown(f.c_str(), 65534, 65534), 0);
  EXPECT_EQ(mb::config_file_problem(f, 0), "config " + f + " belongs to uid 65534, not root");
  EXPECT_EQ(mb::config_file_problem(f, 65534), "");  // theirs to run with
  dir.mkdir("d");
  const std::string g = dir.write("d/cfg.toml", "[trace]\n");
  chmod(g.c_str(), 0644);
  ASSERT_EQ(chown(dir.path("d").c_str(), 65534, 65534), 0);
  EXPECT_EQ(mb::config_file_problem(g, 0), "config " + g + ": its directory " + dir.path("d") +
                                                " belongs to uid 65534, not root");
}
