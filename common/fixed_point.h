// fixed_point.h — prices as integers: value = price * 10^kPriceDecimals.
//
// The wire and the store never hold floats (schemas/quotes.fbs). Parsing reads
// decimal text exactly; formatting writes the shortest exact decimal. Derived
// figures (change %, amplitude) are computed in integers with round-half-away-
// from-zero so every process renders the same digits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tickfan {

inline constexpr int kPriceDecimals = 4;
inline constexpr int64_t kPriceScale = 10000;

// Parses "-12.345" style decimal text into fixed point with `decimals` digits.
// Digits beyond `decimals` are rounded half away from zero. Rejects empty text,
// exponents, stray characters and values that overflow int64.
bool parse_fixed(std::string_view text, int decimals, int64_t* out);

// Writes `value` / 10^kPriceDecimals as the shortest exact decimal ("10.33",
// "-0.5", "12"). Returns the number of chars written (at most 21); `out` needs
// 32 bytes of room.
size_t format_fixed(int64_t value, char* out);

// Writes a signed integer in decimal (at most 20 chars); `out` needs 24 bytes
// of room.
size_t format_int(int64_t value, char* out);

// (numerator * 10^6) / denominator rounded half away from zero: a percentage
// with 4 decimals when numerator/denominator are prices. 0 when denominator is 0.
int64_t percent_fixed(int64_t numerator, int64_t denominator);

}  // namespace tickfan
