// fixed_point.cpp — see fixed_point.h.
#include "fixed_point.h"

#include <cstring>

namespace tickfan {

bool parse_fixed(std::string_view text, int decimals, int64_t* out) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    negative = text[i] == '-';
    ++i;
  }
  // Accumulate as unsigned with an explicit overflow bound.
  const uint64_t limit = static_cast<uint64_t>(INT64_MAX);
  uint64_t acc = 0;
  int frac_digits = 0;
  bool any_digit = false, seen_dot = false, round_up = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (seen_dot) return false;
      seen_dot = true;
      continue;
    }
    if (c < '0' || c > '9') return false;
    any_digit = true;
    if (seen_dot && frac_digits >= decimals) {
      // First dropped digit decides rounding; later ones cannot change it.
      if (frac_digits == decimals) round_up = c >= '5';
      ++frac_digits;
      continue;
    }
    if (acc > (limit - static_cast<uint64_t>(c - '0')) / 10) return false;
    acc = acc * 10 + static_cast<uint64_t>(c - '0');
    if (seen_dot) ++frac_digits;
  }
  if (!any_digit) return false;
  for (int d = frac_digits; d < decimals; ++d) {
    if (acc > limit / 10) return false;
    acc *= 10;
  }
  if (round_up) {
    if (acc == limit) return false;
    ++acc;
  }
  *out = negative ? -static_cast<int64_t>(acc) : static_cast<int64_t>(acc);
  return true;
}

namespace {
// "00".."99": two digits per division halves the divisions of the hot path
// (the store writer renders ~30 numbers per update).
constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Decimal digits of v. Quotes are mostly small numbers, so compare upward.
inline size_t digit_count(uint64_t v) {
  size_t n = 1;
  for (;;) {
    if (v < 10) return n;
    if (v < 100) return n + 1;
    if (v < 1000) return n + 2;
    if (v < 10000) return n + 3;
    v /= 10000;
    n += 4;
  }
}

// Writes exactly `digits` digits of v ending at out + digits. The digits go
// straight to their final place: an earlier version built them in a scratch
// buffer and copied it out in 8-byte blocks, and each copy stalled on store
// forwarding (8-byte loads over 2-byte stores): two thirds of the render time.
inline void write_digits(uint64_t v, char* out, size_t digits) {
  char* p = out + digits;
  while (v >= 100) {
    p -= 2;
    std::memcpy(p, kDigitPairs + (v % 100) * 2, 2);
    v /= 100;
  }
  if (v >= 10) {
    std::memcpy(p - 2, kDigitPairs + v * 2, 2);
  } else {
    p[-1] = static_cast<char>('0' + v);
  }
}
}  // namespace

size_t format_int(int64_t value, char* out) {
  uint64_t v = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  size_t sign = value < 0;
  out[0] = '-';  // overwritten by the first digit when positive
  size_t digits = digit_count(v);
  write_digits(v, out + sign, digits);
  return sign + digits;
}

// Every price goes through here (~20 per rendered quote): with the scale a
// compile-time constant the divisions become multiplications.
size_t format_fixed(int64_t value, char* out) {
  static_assert(kPriceScale == 10000, "the fraction is written as two digit pairs");
  uint64_t v = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  uint64_t whole = v / 10000, frac = v % 10000;
  size_t len = value < 0;
  out[0] = '-';
  size_t digits = digit_count(whole);
  write_digits(whole, out + len, digits);
  len += digits;
  if (frac != 0) {
    // Shortest exact form: drop trailing zeros of the 4 fraction digits.
    char* p = out + len;
    p[0] = '.';
    std::memcpy(p + 1, kDigitPairs + (frac / 100) * 2, 2);
    std::memcpy(p + 3, kDigitPairs + (frac % 100) * 2, 2);
    size_t kept = frac % 100 ? (frac % 10 ? 4 : 3) : (frac % 1000 ? 2 : 1);
    len += 1 + kept;
  }
  return len;
}

int64_t percent_fixed(int64_t numerator, int64_t denominator) {
  if (denominator == 0) return 0;
  // Fast path in 64 bits (every realistic price difference fits): the
  // 128-bit division below is a library call on the writer's hot path.
  // Bounds keep n * 10^6 + d / 2 inside int64.
  constexpr int64_t kSafeDen = 1'000'000'000'000;
  constexpr int64_t kSafeNum = (INT64_MAX - kSafeDen) / 1000000;
  if (numerator > -kSafeNum && numerator < kSafeNum && denominator > -kSafeDen && denominator < kSafeDen) {
    int64_t n = numerator * 1000000, d = denominator;
    bool negative = (n < 0) != (d < 0);
    if (n < 0) n = -n;
    if (d < 0) d = -d;
    int64_t q = (n + d / 2) / d;
    return negative ? -q : q;
  }
  __int128 n = static_cast<__int128>(numerator) * 1000000;
  __int128 d = denominator;
  bool negative = (n < 0) != (d < 0);
  if (n < 0) n = -n;
  if (d < 0) d = -d;
  __int128 q = (n + d / 2) / d;
  return static_cast<int64_t>(negative ? -q : q);
}

}  // namespace tickfan
