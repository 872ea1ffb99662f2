// Symbolizer: addresses of functions of this very test binary (a PIE) and of
// a shared library it uses (libc), given the process's recorded maps, come
// back as the functions' names, with file:line where there is debug info.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "membalancer/clock.h"
#include "membalancer/profile_file.h"
#include "profiler/symbolizer.h"

using namespace mb;
using namespace mb::prof;

extern "C" __attribute__((noinline)) int mb_symbolizer_test_target(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}

namespace {

// This process as a recorder sees it, with maps (its own when none given).
ProfileInfo self_info(const std::vector<ProfileMap>& maps = read_proc_maps(getpid())) {
  ProfileInfo info;
  info.add_maps(0, static_cast<uint32_t>(getpid()), maps);
  ProfileProcess p;
  p.tgid = static_cast<uint32_t>(getpid());
  p.name = "unit_tests";
  info.processes.push_back(p);
  return info;
}

}  // namespace

TEST(ProfileSymbolizer, NamesAFunctionOfThisExecutableWithItsLine) {
  ProfileInfo info = self_info();
  ProfileProcesses procs(info);
  Symbolizer sym(procs);
  uint64_t ip = reinterpret_cast<uint64_t>(&mb_symbolizer_test_target) + 2;
  const Symbol& s = sym.lookup(static_cast<uint32_t>(getpid()), ip);
  EXPECT_EQ(s.function, "mb_symbolizer_test_target");
  EXPECT_EQ(s.module, "unit_tests");
  EXPECT_EQ(s.offset, 2u);
  EXPECT_NE(s.file.find("test_profile_symbolizer.cpp"), std::string::npos) << s.file;
  EXPECT_GT(s.line, 0);
  // Cached: the second lookup is a hit and the same answer.
  const Symbol& again = sym.lookup(static_cast<uint32_t>(getpid()), ip);
  EXPECT_EQ(&again, &s);
  EXPECT_EQ(sym.cache_hits(), 1u);
}

TEST(ProfileSymbolizer, NamesAFunctionOfASharedLibrary) {
  ProfileInfo info = self_info();
  ProfileProcesses procs(info);
  Symbolizer sym(procs);
  int (*fn)(int) = &::abs;
  uint64_t ip = reinterpret_cast<uint64_t>(fn);
  const Symbol& s = sym.lookup(static_cast<uint32_t>(getpid()), ip);
  EXPECT_NE(s.module.find("libc"), std::string::npos) << s.module;
  EXPECT_EQ(s.function, "abs");
}

TEST(ProfileSymbolizer, UnknownPlaces) {
  ProfileInfo info = self_info();
  ProfileProcesses procs(info);
  Symbolizer sym(procs);
  EXPECT_EQ(sym.lookup(static_cast<uint32_t>(getpid()), 0xffffffff81000000ULL).module, "[kernel]");
  EXPECT_EQ(sym.lookup(static_cast<uint32_t>(getpid()), 0x10).module, "[unmapped]");
  EXPECT_EQ(sym.lookup(12345678, 0x401000).function, "[unknown]");
  EXPECT_EQ(demangle("_ZN2mb4prof10SymbolizerD2Ev"), "mb::prof::Symbolizer::~Symbolizer()");
}

// A library linked with lld (bin/libsymtest_lld.so, next to this test):
// its code segment's p_vaddr is its p_offset + 0x1000, so the mapping of its
// code has file offset 0 a page above where the file's offset 0 is loaded.
// The load base was taken from the offset-0 mapping found by walking back
// from the address: that mapping itself, a page too high, and every name in
// the library came out wrong. The base now comes from the program headers.
TEST(ProfileSymbolizer, NamesAFunctionOfALibraryWhoseCodeIsNotAtItsFileOffset) {
  const std::string lib = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "libsymtest_lld.so";
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror() << " (make builds it)";
  const uint64_t fn = reinterpret_cast<uint64_t>(dlsym(h, "symtest_lib_spin"));
  ASSERT_NE(fn, 0u) << dlerror();
  std::vector<ProfileMap> maps = read_proc_maps(getpid());
  ProfileInfo info = self_info(maps);
  // The layout that misled: the code's mapping has offset 0 and is not the
  // library's first mapping (that one, also offset 0, is the base).
  const ProfileMap* code = nullptr;
  const ProfileMap* first = nullptr;
  for (const auto& m : info.mappings) {
    if (m.path != lib) continue;
    if (!first) first = &m;
    if (fn >= m.start && fn < m.end) code = &m;
  }
  ASSERT_NE(code, nullptr);
  EXPECT_EQ(code->offset, 0u);
  EXPECT_EQ(first->offset, 0u);
  EXPECT_LT(first->start, code->start);
  {
    ProfileProcesses procs(info);
    Symbolizer sym(procs);
    const Symbol& s = sym.lookup(static_cast<uint32_t>(getpid()), fn + 4);
    EXPECT_EQ(s.function, "symtest_lib_spin");
    EXPECT_EQ(s.module, "libsymtest_lld.so");
    EXPECT_EQ(s.offset, 4u);
    EXPECT_NE(s.file.find("symtest_lib.cpp"), std::string::npos) << s.file;
  }
  // Nor does it need the mapping of offset 0 (a gap, or a recording that
  // missed it): the code's own mapping and the file's headers place it.
  std::erase_if(maps, [&](const ProfileMap& m) { return m.path == lib && m.start < code->start; });
  {
    const ProfileInfo without = self_info(maps);
    ProfileProcesses procs(without);
    Symbolizer sym(procs);
    EXPECT_EQ(sym.lookup(static_cast<uint32_t>(getpid()), fn + 4).function, "symtest_lib_spin");
  }
  dlclose(h);
}

// The file at a recorded path is not always the one recorded: a FIFO there
// hung the open, a binary replaced since gave wrong names silently. Neither
// is read; the module says why.
TEST(ProfileSymbolizer, ReadsNoFifoNorAFileChangedSinceTheRecording) {
  char dir[] = "/tmp/mbsym.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/fifo", exe = std::string(dir) + "/exe";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(system(("cp /proc/self/exe " + exe).c_str()), 0);  // modified now
  ProfileInfo info;
  info.add_maps(0, 42, {{0x1000000, 0x2000000, 0, kMapRead | kMapExec, fifo},
                       {0x3000000, 0x4000000, 0, kMapRead | kMapExec, exe}});
  ProfileProcesses procs(info);
  Symbolizer sym(procs, 1000000000ULL);  // recorded in 1970: exe changed since
  EXPECT_EQ(sym.lookup(42, 0x1000100).module, "fifo (not a regular file)");
  const Symbol& s = sym.lookup(42, 0x3000100);
  EXPECT_EQ(s.module, "exe (changed since the recording)");
  EXPECT_EQ(s.function, "[unknown]");
  unlink(fifo.c_str());
  unlink(exe.c_str());
  rmdir(dir);
}

namespace {

// A copy of this test binary (a PIE with a build-id) mapped at 0x3000000 in
// process 42, described as a recorder describes it.
struct RecordedCopy {
  char dir[32] = "/tmp/mbsym.XXXXXX";
  std::string exe;
  ProfileInfo info;
  RecordedCopy() {
    EXPECT_NE(mkdtemp(dir), nullptr);
    exe = std::string(dir) + "/exe";
    EXPECT_EQ(system(("cp /proc/self/exe " + exe).c_str()), 0);
    struct stat st;
    EXPECT_EQ(stat(exe.c_str(), &st), 0);
    ProfileMap m{0x3000000, 0x4000000, 0, kMapRead | kMapExec, exe, st.st_dev, st.st_ino};
    info.add_maps(0, 42, {m});
    info.files.push_back(read_mapped_file(-1, m));  // no such process: read at the path
  }
  ~RecordedCopy() {
    unlink(exe.c_str());
    rmdir(dir);
  }
  // The module of an address in the copy, by a symbolizer of a recording
  // started now (after the copy: its modification time is no reason).
  std::string module() {
    ProfileProcesses procs(info);
    Symbolizer sym(procs, mb::clock_ns(CLOCK_REALTIME));
    return sym.lookup(42, 0x3000100).module;
  }
};

}  // namespace

// A binary rewritten in place by another build, its modification time put
// back (a build tool that keeps times, a copy with cp -p): the same device,
// inode and time, but not the file recorded. Its build-id tells; it used to
// be read, its functions named from the other build.
TEST(ProfileSymbolizer, AFileReplacedInPlaceByAnotherBuildIsRefused) {
  RecordedCopy r;
  const ProfileFile& rec = r.info.files[0];
  ASSERT_FALSE(rec.build_id.empty()) << "the test binary has a build-id";
  EXPECT_EQ(rec.path, r.exe);
  EXPECT_EQ(r.module(), "exe") << "the file recorded is read";
  // Another build: the same bytes but for the build-id's last one.
  std::ifstream in(r.exe, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const size_t at = bytes.find(rec.build_id);
  ASSERT_NE(at, std::string::npos);
  int fd = open(r.exe.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const char flipped = static_cast<char>(~bytes[at + rec.build_id.size() - 1]);
  ASSERT_EQ(pwrite(fd, &flipped, 1, static_cast<off_t>(at + rec.build_id.size() - 1)), 1);
  const timespec times[2] = {{0, UTIME_OMIT},
                             {static_cast<time_t>(rec.mtime_ns / 1000000000ULL), static_cast<long>(rec.mtime_ns % 1000000000ULL)}};
  ASSERT_EQ(futimens(fd, times), 0);
  close(fd);
  struct stat st;
  ASSERT_EQ(stat(r.exe.c_str(), &st), 0);
  ASSERT_EQ(st.st_ino, rec.inode);
  ASSERT_EQ(mtime_ns(st),
            rec.mtime_ns);
  EXPECT_EQ(r.module(), "exe (another build since the recording)");
}

// The build-id decides when both have one: the same build copied over the
// recorded file (a new inode, a new time: a reinstall) is read.
TEST(ProfileSymbolizer, TheSameBuildCopiedOverIsRead) {
  RecordedCopy r;
  ASSERT_EQ(system(("cp " + r.exe + " " + r.exe + ".new && mv " + r.exe + ".new " + r.exe).c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat(r.exe.c_str(), &st), 0);
  ASSERT_NE(st.st_ino, r.info.files[0].inode);
  EXPECT_EQ(r.module(), "exe");
}

// A file without a build-id must be the very file recorded: another put at
// its path with the recorded time is refused.
TEST(ProfileSymbolizer, AFileWithoutBuildIdMustBeTheSameInode) {
  RecordedCopy r;
  r.info.files[0].build_id.clear();
  EXPECT_EQ(r.module(), "exe");
  const uint64_t t = r.info.files[0].mtime_ns;
  ASSERT_EQ(system(("cp " + r.exe + " " + r.exe + ".new && mv " + r.exe + ".new " + r.exe).c_str()), 0);
  const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(t / 1000000000ULL), static_cast<long>(t % 1000000000ULL)}};
  ASSERT_EQ(utimensat(AT_FDCWD, r.exe.c_str(), times, 0), 0);
  EXPECT_EQ(r.module(), "exe (changed since the recording)");
}

// A file deleted since it was mapped: /proc/PID/maps says "PATH (deleted)".
// The module names the file and says so (it was "exe (deleted) (unreadable)":
// the path with the suffix was opened); a file of the name now is another
// one, not read.
TEST(ProfileSymbolizer, ADeletedFileIsNamedAndNotRead) {
  char dir[] = "/tmp/mbsym.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string exe = std::string(dir) + "/exe";
  ASSERT_EQ(system(("cp /proc/self/exe " + exe).c_str()), 0);
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  std::vector<ProfileMap> maps = read_proc_maps(getpid());
  for (auto& m : maps)
    if (m.path == self) m.path = exe + " (deleted)";
  const ProfileInfo info = self_info(maps);
  ProfileProcesses procs(info);
  Symbolizer sym(procs);
  const Symbol& s = sym.lookup(static_cast<uint32_t>(getpid()), reinterpret_cast<uint64_t>(&mb_symbolizer_test_target));
  EXPECT_EQ(s.module, "exe (deleted)");
  EXPECT_EQ(s.function, "[unknown]");
  unlink(exe.c_str());
  rmdir(dir);
}
