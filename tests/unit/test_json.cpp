// Unit tests for membalancer/json.h: string escaping (RFC 8259), containers
// and commas, numbers.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "membalancer/json.h"

namespace {

using mb::json_quote;
using mb::JsonWriter;

TEST(JsonQuote, PlainText) {
  EXPECT_EQ(json_quote(""), "\"\"");
  EXPECT_EQ(json_quote("abc 123"), "\"abc 123\"");
}

TEST(JsonQuote, QuotesAndBackslashes) {
  EXPECT_EQ(json_quote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(json_quote("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(json_quote("\\\""), "\"\\\\\\\"\"");
  EXPECT_EQ(json_quote("/"), "\"/\"");  // solidus needs no escape
}

TEST(JsonQuote, NamedControlCharacters) {
  EXPECT_EQ(json_quote("\n"), "\"\\n\"");
  EXPECT_EQ(json_quote("\r"), "\"\\r\"");
  EXPECT_EQ(json_quote("\t"), "\"\\t\"");
  EXPECT_EQ(json_quote("\b"), "\"\\b\"");
  EXPECT_EQ(json_quote("\f"), "\"\\f\"");
}

TEST(JsonQuote, OtherControlCharactersAsUnicodeEscapes) {
  EXPECT_EQ(json_quote("\x01"), "\"\\u0001\"");
  EXPECT_EQ(json_quote("\x1f"), "\"\\u001f\"");
  EXPECT_EQ(json_quote("\x7f"), "\"\\u007f\"");
  EXPECT_EQ(json_quote(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(json_quote("\x1b[0m"), "\"\\u001b[0m\"");
  // Every byte below 0x20 comes out escaped: no raw control byte survives.
  for (int c = 0; c < 0x20; ++c) {
    std::string q = json_quote(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(q[1], '\\') << c;
    for (char x : q) EXPECT_GE(static_cast<unsigned char>(x), 0x20) << c;
  }
}

TEST(JsonQuote, Utf8PassesThrough) {
  EXPECT_EQ(json_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json_quote("\xe2\x82\xac \xf0\x9f\x98\x80"), "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(JsonWriter, EmptyContainers) {
  EXPECT_EQ(JsonWriter().begin_object().end_object().str(), "{}");
  EXPECT_EQ(JsonWriter().begin_array().end_array().str(), "[]");
}

TEST(JsonWriter, FlatObject) {
  JsonWriter w;
  w.begin_object().field("a", 1).field("b", "x").field("c", true).field("d", false).end_object();
  EXPECT_EQ(w.str(), R"({"a":1,"b":"x","c":true,"d":false})");
}

TEST(JsonWriter, NestedContainersAndCommas) {
  JsonWriter w;
  w.begin_object();
  w.field("a", 1);
  w.key("b").begin_array();
  w.value(1).value("x");
  w.begin_object().end_object();
  w.begin_array().end_array();
  w.begin_object().field("k", 2).key("l").begin_array().value(3).end_array().end_object();
  w.end_array();
  w.key("c").begin_object().field("d", "e").end_object();
  w.field("f", std::string("g"));
  w.end_object();
  EXPECT_EQ(w.str(), R"({"a":1,"b":[1,"x",{},[],{"k":2,"l":[3]}],"c":{"d":"e"},"f":"g"})");
}

TEST(JsonWriter, ArrayOfObjects) {
  JsonWriter w;
  w.begin_array();
  for (int i = 0; i < 3; ++i) w.begin_object().field("i", i).end_object();
  w.end_array();
  EXPECT_EQ(w.str(), R"([{"i":0},{"i":1},{"i":2}])");
}

TEST(JsonWriter, KeysAreEscaped) {
  JsonWriter w;
  w.begin_object().field("a\"b\n", "c\\d").end_object();
  EXPECT_EQ(w.str(), R"({"a\"b\n":"c\\d"})");
}

TEST(JsonWriter, Integers) {
  JsonWriter w;
  w.begin_array();
  w.value(0).value(-5).value(42u);
  w.value(std::numeric_limits<uint64_t>::max());
  w.value(std::numeric_limits<int64_t>::min());
  w.value(static_cast<uint64_t>(1) << 40);
  w.end_array();
  EXPECT_EQ(w.str(), "[0,-5,42,18446744073709551615,-9223372036854775808,1099511627776]");
}

TEST(JsonWriter, Doubles) {
  JsonWriter w;
  w.begin_array();
  w.value(0.5).value(0.0).value(-2.25).value(1e20).value(1.0 / 3).value(100.0);
  w.end_array();
  EXPECT_EQ(w.str(), "[0.5,0,-2.25,1e+20,0.333333,100]");
}

TEST(JsonWriter, NonFiniteDoublesAreNull) {
  JsonWriter w;
  w.begin_object();
  w.field("nan", std::nan(""));
  w.field("inf", std::numeric_limits<double>::infinity());
  w.field("ninf", -std::numeric_limits<double>::infinity());
  w.field("after", 1);
  w.end_object();
  EXPECT_EQ(w.str(), R"({"nan":null,"inf":null,"ninf":null,"after":1})");
}

}  // namespace
