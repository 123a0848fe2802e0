// replay.cpp — see replay.h.
#include "replay.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace tickfan::tools {

namespace {
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "2024-06-03T09:30:00[.fff]Z" -> ns since the epoch (UTC; 'Z' required so
// nobody replays the wrong hour because of a local time zone).
bool parse_iso(std::string_view s, int64_t* out) {
  int y, mo, d, h, mi, sec;
  char tail[32] = "";
  std::string text(s);
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &y, &mo, &d, &h, &mi, &sec, tail) < 6) return false;
  std::string_view rest(tail);
  int64_t frac_ns = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int64_t scale = 100000000;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      frac_ns += (rest.front() - '0') * scale;
      scale /= 10;
      rest.remove_prefix(1);
    }
  }
  if (rest != "Z") return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  // timegm normalises: month 13 or February 30 came back as some other
  // date, silently. Refuse what it had to move (and years past int64 ns).
  if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d || tm.tm_hour != h || tm.tm_min != mi ||
      tm.tm_sec != sec || y < 1970 || y > 2261)
    return false;
  *out = static_cast<int64_t>(t) * 1000000000 + frac_ns;
  return true;
}
}  // namespace

bool parse_time_spec(std::string_view text, TimeSpec* out, std::string* error) {
  *out = TimeSpec{};
  if (text.empty()) {
    *error = "empty time";
    return false;
  }
  if (text.find('T') != std::string_view::npos) {
    if (!parse_iso(text, &out->ns)) {
      *error = "'" + std::string(text) + "' is not a UTC time like 2024-06-03T09:30:00Z";
      return false;
    }
    out->set = out->absolute = true;
    return true;
  }
  if (all_digits(text) && text.size() >= 13) {
    // Past int64 nanoseconds (year 2262) it overflowed: 99999999999999999999
    // replayed the whole file instead of nothing.
    int64_t ms = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || ms > INT64_MAX / 1000000) {
      *error = "'" + std::string(text) + "' is out of range for epoch ms";
      return false;
    }
    out->ns = ms * 1000000;
    out->set = out->absolute = true;
    return true;
  }
  // Relative: a sequence of <number><unit>, a bare number meaning seconds.
  std::string_view s = text;
  if (s.front() == '+') s.remove_prefix(1);
  double total_s = 0;
  bool any = false;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) break;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
    if (ec != std::errc() || p != s.data() + i) break;
    s.remove_prefix(i);
    double unit = 1;
    if (s.starts_with("ms")) {
      unit = 1e-3;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      unit = 60;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      unit = 3600;
      s.remove_prefix(1);
    } else if (!s.empty()) {
      break;
    }
    total_s += v * unit;
    any = true;
  }
  if (!any || !s.empty()) {
    *error = "'" + std::string(text) + "' is not a time: use 90, 90s, 1500ms, 1m30s, 2024-06-03T09:30:00Z or epoch ms";
    return false;
  }
  if (!(total_s <= 1e9)) {  // ~31 years; 1e16s overflowed int64 nanoseconds (the window was ignored)
    *error = "'" + std::string(text) + "' is out of range (at most 1e9 s)";
    return false;
  }
  out->set = true;
  out->ns = static_cast<int64_t>(std::llround(total_s * 1e9));
  return true;
}

int64_t loop_period_ns(int64_t first_ns, int64_t last_ns, uint64_t events) {
  int64_t span = last_ns > first_ns ? last_ns - first_ns : 0;
  int64_t gap = events > 1 ? span / static_cast<int64_t>(events - 1) : 0;
  if (gap < 1000000) gap = 1000000;
  return span + gap;
}

uint64_t shifted_pass_limit(int64_t latest_ns, int64_t period_ns) {
  if (period_ns <= 0) return UINT64_MAX;
  if (latest_ns < 0) latest_ns = 0;
  // Pass k fits while k * period <= INT64_MAX - latest: passes 0 .. that k.
  return static_cast<uint64_t>((INT64_MAX - latest_ns) / period_ns) + 1;
}

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  char buf[48];
  auto whole = static_cast<long long>(seconds);
  int tenths = static_cast<int>((seconds - static_cast<double>(whole)) * 10);
  if (whole >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", whole / 3600, whole / 60 % 60, whole % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld.%d", whole / 60, whole % 60, tenths);
  }
  return buf;
}

std::string format_progress(const Progress& p) {
  char buf[256];
  std::string out;
  if (p.total) {
    std::snprintf(buf, sizeof buf, "%llu/%llu ticks (%.1f%%)", static_cast<unsigned long long>(p.done),
                  static_cast<unsigned long long>(p.total),
                  100.0 * static_cast<double>(p.done) / static_cast<double>(p.total));
  } else {
    std::snprintf(buf, sizeof buf, "%llu ticks", static_cast<unsigned long long>(p.done));
  }
  out += buf;
  if (p.passes != 1) {
    std::snprintf(buf, sizeof buf, ", pass %llu/%s", static_cast<unsigned long long>(p.pass),
                  p.passes ? std::to_string(p.passes).c_str() : "inf");
    out += buf;
  }
  out += ", at " + format_duration(static_cast<double>(p.position_ns) / 1e9);
  if (p.span_ns > 0) out += " of " + format_duration(static_cast<double>(p.span_ns) / 1e9);
  std::snprintf(buf, sizeof buf, ", %.0f ticks/s, ETA %s", p.rate,
                p.eta_s < 0 ? "?" : format_duration(p.eta_s).c_str());
  out += buf;
  return out;
}

}  // namespace tickfan::tools
