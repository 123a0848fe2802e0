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

size_t format_int(int64_t value, char* out) {
  char tmp[24];
  size_t n = 0;
  uint64_t v = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t len = 0;
  if (value < 0) out[len++] = '-';
  while (n > 0) out[len++] = tmp[--n];
  return len;
}

size_t format_fixed(int64_t value, int decimals, char* out) {
  uint64_t v = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  uint64_t scale = 1;
  for (int d = 0; d < decimals; ++d) scale *= 10;
  uint64_t whole = v / scale, frac = v % scale;
  size_t len = 0;
  if (value < 0) out[len++] = '-';
  len += format_int(static_cast<int64_t>(whole), out + len);
  if (frac != 0) {
    int digits = decimals;
    while (frac % 10 == 0) {
      frac /= 10;
      --digits;
    }
    out[len++] = '.';
    for (int d = digits - 1; d >= 0; --d) {
      out[len + static_cast<size_t>(d)] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    len += static_cast<size_t>(digits);
  }
  return len;
}

int64_t percent_fixed(int64_t numerator, int64_t denominator) {
  if (denominator == 0) return 0;
  __int128 n = static_cast<__int128>(numerator) * 1000000;
  __int128 d = denominator;
  bool negative = (n < 0) != (d < 0);
  if (n < 0) n = -n;
  if (d < 0) d = -d;
  __int128 q = (n + d / 2) / d;
  return static_cast<int64_t>(negative ? -q : q);
}

}  // namespace tickfan
