// Unit tests for membalancer/sysfs.h: list and size parsing, trimming, reading
// files. Errors are mb::UsageError (exit status 2) naming the option.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "membalancer/error.h"
#include "membalancer/sysfs.h"
#include "temp_tree.h"

namespace {

using mb::parse_int_list;
using mb::parse_size;
using V = std::vector<int>;

// Expects fn to throw a UsageError with status 2 whose message contains every
// one of `parts`.
template <typename Fn>
void expect_usage_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no UsageError thrown";
  } catch (const mb::UsageError& e) {
    EXPECT_EQ(e.status(), 2);
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(Trim, Whitespace) {
  EXPECT_EQ(mb::trim(""), "");
  EXPECT_EQ(mb::trim("  \t\n"), "");
  EXPECT_EQ(mb::trim(" a b \n"), "a b");
  EXPECT_EQ(mb::trim("x"), "x");
}

TEST(ParseIntList, RangesAndSingles) {
  EXPECT_EQ(parse_int_list("0-3,8,10-11", "cpus"), (V{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_int_list("5", "cpus"), (V{5}));
  EXPECT_EQ(parse_int_list("2-2", "cpus"), (V{2}));
  EXPECT_EQ(parse_int_list("0,2", "nodes"), (V{0, 2}));
}

TEST(ParseIntList, EmptyAndWhitespace) {
  EXPECT_EQ(parse_int_list("", "cpus"), V{});
  EXPECT_EQ(parse_int_list("\n", "cpus"), V{});  // a memory-only node's cpulist
  EXPECT_EQ(parse_int_list(" 0-1\n", "cpus"), (V{0, 1}));
  EXPECT_EQ(parse_int_list(" 1 , 3 ", "cpus"), (V{1, 3}));
}

TEST(ParseIntList, Errors) {
  expect_usage_error([] { parse_int_list("3-1", "node/online"); }, {"node/online", "3-1"});
  expect_usage_error([] { parse_int_list("a", "--cpus"); }, {"--cpus", "'a'"});
  expect_usage_error([] { parse_int_list("1,,2", "--cpus"); }, {"--cpus"});
  expect_usage_error([] { parse_int_list("-1", "--cpus"); }, {"--cpus"});
  expect_usage_error([] { parse_int_list("1-", "--cpus"); }, {"--cpus"});
  expect_usage_error([] { parse_int_list("1-2-3", "--cpus"); }, {"--cpus"});
  expect_usage_error([] { parse_int_list("0x3", "--cpus"); }, {"--cpus"});
  // Bounded: a huge range is refused, not expanded.
  expect_usage_error([] { parse_int_list("0-99999999", "--cpus"); }, {"--cpus"});
}

TEST(ParseSize, PlainAndUnits) {
  EXPECT_EQ(parse_size("4096", "--x"), 4096u);
  EXPECT_EQ(parse_size("0", "--x"), 0u);
  EXPECT_EQ(parse_size("64K", "--x"), 64ull << 10);
  EXPECT_EQ(parse_size("64k", "--x"), 64ull << 10);
  EXPECT_EQ(parse_size("200M", "--x"), 200ull << 20);
  EXPECT_EQ(parse_size("2G", "--x"), 2ull << 30);
  EXPECT_EQ(parse_size("1T", "--x"), 1ull << 40);
  EXPECT_EQ(parse_size("2GiB", "--x"), 2ull << 30);
  EXPECT_EQ(parse_size("3MiB", "--x"), 3ull << 20);
  EXPECT_EQ(parse_size("1kb", "--x"), 1024u);
  EXPECT_EQ(parse_size("12B", "--x"), 12u);
  EXPECT_EQ(parse_size(" 8M\n", "--x"), 8ull << 20);
  EXPECT_EQ(parse_size("16777215T", "--x"), 16777215ull << 40);  // the largest whole-T size
}

TEST(ParseSize, Errors) {
  expect_usage_error([] { parse_size("", "--region-size"); }, {"--region-size", "not a size"});
  expect_usage_error([] { parse_size("M", "--region-size"); }, {"--region-size", "not a size"});
  expect_usage_error([] { parse_size("-4K", "--max-pages"); }, {"--max-pages", "not a size"});
  expect_usage_error([] { parse_size("12Q", "--max-pages"); }, {"--max-pages", "12Q", "unit"});
  expect_usage_error([] { parse_size("1.5G", "--max-pages"); }, {"--max-pages", "unit"});
  expect_usage_error([] { parse_size("4 K", "--max-pages"); }, {"--max-pages"});
  // Overflow: 2^24 T is 2^64 bytes.
  expect_usage_error([] { parse_size("16777216T", "--max-pages"); }, {"--max-pages", "too large"});
  expect_usage_error([] { parse_size("99999999999999999999", "--max-pages"); }, {"--max-pages"});
}

TEST(ReadTextFile, ReadsWholeFileOrNothing) {
  mb_test::TempTree dir("mb_sysfs");
  std::string content = "line 1\nline 2\n" + std::string(10000, 'x');
  std::string path = dir.write("f", content);
  auto got = mb::read_text_file(path);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, content);
  auto empty = mb::read_text_file(dir.write("empty", ""));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "");
  EXPECT_FALSE(mb::read_text_file(dir.path("missing")).has_value());
}

}  // namespace
