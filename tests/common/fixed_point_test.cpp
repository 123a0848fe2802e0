// Fixed-point parsing, formatting and derived percentages: the edge cases
// market data actually produces (limit moves, negative change, zero volume).
#include "fixed_point.h"

#include <doctest/doctest.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace tickfan;

static std::string fmt(int64_t v) {
  char buf[32];
  return std::string(buf, format_fixed(v, buf));
}

TEST_CASE("parse_fixed reads decimal text exactly") {
  int64_t v = 0;
  CHECK(parse_fixed("10.33", 4, &v));
  CHECK(v == 103300);
  CHECK(parse_fixed("-0.5", 4, &v));
  CHECK(v == -5000);
  CHECK(parse_fixed("12", 4, &v));
  CHECK(v == 120000);
  CHECK(parse_fixed("0.00005", 4, &v));  // rounds half away from zero
  CHECK(v == 1);
  CHECK(parse_fixed("-0.00005", 4, &v));
  CHECK(v == -1);
  CHECK(parse_fixed("1.23449", 4, &v));
  CHECK(v == 12345);
  CHECK(parse_fixed(".5", 4, &v));
  CHECK(v == 5000);
}

TEST_CASE("parse_fixed rejects what is not a plain decimal") {
  int64_t v = 7;
  CHECK_FALSE(parse_fixed("", 4, &v));
  CHECK_FALSE(parse_fixed("-", 4, &v));
  CHECK_FALSE(parse_fixed("1e5", 4, &v));
  CHECK_FALSE(parse_fixed("1.2.3", 4, &v));
  CHECK_FALSE(parse_fixed("12a", 4, &v));
  CHECK_FALSE(parse_fixed("NaN", 4, &v));
  CHECK_FALSE(parse_fixed("99999999999999999999", 4, &v));  // overflows int64 after scaling
  CHECK(v == 7);
}

TEST_CASE("format_fixed writes the shortest exact decimal") {
  CHECK(fmt(103300) == "10.33");
  CHECK(fmt(-5000) == "-0.5");
  CHECK(fmt(120000) == "12");
  CHECK(fmt(0) == "0");
  CHECK(fmt(1) == "0.0001");
  CHECK(fmt(-1) == "-0.0001");
  CHECK(fmt(INT64_MIN) == "-922337203685477.5808");
  CHECK(fmt(INT64_MAX) == "922337203685477.5807");
}

TEST_CASE("format_fixed and format_int agree with printf on every digit count and random values") {
  // The formatters are hand-tuned (digit pairs, in-place writes); printf is
  // the slow, obviously right reference.
  auto ref_fixed = [](int64_t v) {
    uint64_t a = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%04" PRIu64, v < 0 ? "-" : "", a / 10000, a % 10000);
    std::string s(buf);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  auto ref_int = [](int64_t v) { return std::to_string(v); };
  auto int_of = [](int64_t v) {
    char buf[24];
    return std::string(buf, format_int(v, buf));
  };
  std::vector<int64_t> values = {0,     1,        9,         10,        99,        100,       9999,         10000,
                                 10001, 99999999, 100000000, 100000001, INT64_MAX, INT64_MIN, INT64_MIN + 1};
  // Runs of 20 000 values from where the whole part gains digits and the
  // fraction's trailing zeros change (the formatters' length branches).
  for (int64_t base : {int64_t{0}, int64_t{10000}, int64_t{99990000}, int64_t{100000000}, int64_t{10000000000000000}})
    for (int64_t d = 0; d < 20000; ++d) values.push_back(base + d);
  for (int64_t p = 1, k = 0; k < 18; ++k, p *= 10) {  // every digit count and its neighbours
    for (int64_t d : {-1, 0, 1}) {
      values.push_back(p + d);
      values.push_back(-(p + d));
      values.push_back(9 * p + d);
    }
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    auto v = static_cast<int64_t>(rng() >> (1 + rng() % 63));  // every magnitude, >= 0
    values.push_back(i % 2 ? v : -v);
  }
  for (int64_t v : values) {
    INFO(v);
    REQUIRE(fmt(v) == ref_fixed(v));
    REQUIRE(int_of(v) == ref_int(v));
  }
}

TEST_CASE("the formatters write nothing beyond the room they document") {
  // Callers size their buffers by the room fixed_point.h documents: 32 bytes
  // (format_fixed), 24 (format_int). A faster formatter may store whole words
  // past the number, but never past that room.
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{123456789}, INT64_MAX, INT64_MIN, int64_t{-99999999}}) {
    INFO(v);
    char buf[48];
    std::memset(buf, '#', sizeof buf);
    format_fixed(v, buf);
    for (size_t i = 32; i < sizeof buf; ++i) REQUIRE(buf[i] == '#');
    std::memset(buf, '#', sizeof buf);
    format_int(v, buf);
    for (size_t i = 24; i < sizeof buf; ++i) REQUIRE(buf[i] == '#');
  }
}

TEST_CASE("format then parse is the identity") {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{103300}, int64_t{-99999}, INT64_MAX, INT64_MIN + 1}) {
    char buf[32];
    size_t n = format_fixed(v, buf);
    int64_t back = 0;
    REQUIRE(parse_fixed(std::string_view(buf, n), 4, &back));
    CHECK(back == v);
  }
}

TEST_CASE("percent_fixed: change %, limit up / limit down, negative change") {
  // prev close 10.00, limit up +10% = 11.00, limit down -10% = 9.00.
  CHECK(percent_fixed(110000 - 100000, 100000) == 100000);  // +10.0000 %
  CHECK(percent_fixed(90000 - 100000, 100000) == -100000);  // -10.0000 %
  CHECK(percent_fixed(103300 - 102300, 102300) == 9775);    // +0.9775 % (0.97751...)
  CHECK(percent_fixed(101300 - 102300, 102300) == -9775);   // symmetric rounding
  CHECK(percent_fixed(5, 0) == 0);                          // no previous close: 0, not a crash
  CHECK(percent_fixed(0, 102300) == 0);
  // Beyond the 64-bit fast path the 128-bit path gives the same rounding.
  CHECK(percent_fixed(INT64_MAX / 2, INT64_MAX) == 500000);
  CHECK(percent_fixed(-(INT64_MAX / 2), INT64_MAX) == -500000);
  CHECK(percent_fixed(3, 2'000'000'000'000) == 0);
}
