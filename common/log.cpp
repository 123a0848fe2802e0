// log.cpp — see log.h. Formats the whole line into one buffer and writes it
// with a single write(2) so lines from several threads/processes never interleave.
#include "log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <ctime>

#include "clock.h"

namespace tickfan {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
const char* const kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool log_parse_level(const char* text, LogLevel* out) {
  for (int i = 0; i < 4; ++i) {
    if (std::strcmp(text, kNames[i]) == 0) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void log_write(LogLevel level, const char* component, const char* fmt, ...) {
  char line[2048];
  int64_t now = wall_ns();
  time_t secs = static_cast<time_t>(now / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        static_cast<int>((now / 1000000) % 1000), kNames[static_cast<int>(level)], component);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : std::min<size_t>(m, sizeof line - n - 2));
  line[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

bool RateLimit::allow(uint64_t* suppressed) {
  int64_t now = mono_ns();
  int64_t start = window_start_.load(std::memory_order_relaxed);
  if (now - start >= period_ns_) {
    if (window_start_.compare_exchange_strong(start, now, std::memory_order_relaxed)) {
      in_window_.store(0, std::memory_order_relaxed);
    }
  }
  if (in_window_.fetch_add(1, std::memory_order_relaxed) < burst_) {
    *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace tickfan
