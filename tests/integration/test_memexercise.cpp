// memexercise, the workload the tests and users run: its options do what
// docs/memexercise.md says. Needs no privilege.
#include <unistd.h>

#include "tests/integration/harness.h"

using namespace mbtest;

namespace {

// Runs memexercise for a moment with `args` and returns its one report line.
nlohmann::json report_of(std::vector<std::string> args) {
  std::string dir = temp_dir();
  args.insert(args.begin(), bin("memexercise"));
  for (const char* a : {"--duration", "0.1", "--report", "-"}) args.push_back(a);
  Ran r = run(args, dir, "mx", 30);
  EXPECT_EQ(r.status, 0) << r.err;
  auto lines = lines_of(r.out);
  if (lines.size() != 1u) {
    ADD_FAILURE() << "expected one report line, got: " << r.out << r.err;
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(lines[0]);
}

}  // namespace

// --hot-offset rounds down to a page, --hot-size rounds up to whole pages, each
// on its own: an offset inside a page used to add a page to the hot range (and
// a range that fits once rounded was refused).
TEST(Memexercise, HotRangeRoundsOffsetDownAndSizeUp) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto j = report_of({"--size", "1M", "--hot-offset", "100", "--hot-size", std::to_string(page)});
  EXPECT_EQ(j.value("hot_size", 0u), page);
  EXPECT_EQ(hex(j["hot_start"]), hex(j["region_start"]));

  j = report_of({"--size", "1M", "--hot-offset", std::to_string(page + 100), "--hot-size", "1"});
  EXPECT_EQ(j.value("hot_size", 0u), page);
  EXPECT_EQ(hex(j["hot_start"]), hex(j["region_start"]) + page);

  j = report_of({"--size", "1M", "--hot-size", std::to_string(page + 1)});
  EXPECT_EQ(j.value("hot_size", 0u), 2 * page);

  // Offset 100 is offset 0: the whole region is a hot range that fits.
  j = report_of({"--size", "1M", "--hot-offset", "100", "--hot-size", "1M"});
  EXPECT_EQ(j.value("hot_size", 0u), 1u << 20);
}
