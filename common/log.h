// log.h — one-line structured logs to stderr: `2026-11-21T23:05:05.123Z level component msg key=value`.
// One line per event so operators can grep and ship them; a rate limiter keeps a
// flood of identical bad-input events from drowning everything else.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdio>

namespace tickfan {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

void log_set_level(LogLevel level);
LogLevel log_level();
// Parses "debug|info|warn|error"; returns false for anything else.
bool log_parse_level(const char* text, LogLevel* out);
void log_write(LogLevel level, const char* component, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Lets through at most `burst` events per `period_ns`, then counts the rest as
// suppressed and reports that count with the next event let through.
class RateLimit {
 public:
  RateLimit(uint32_t burst, int64_t period_ns) : burst_(burst), period_ns_(period_ns) {}
  // Returns true when the caller should log; *suppressed gets how many were
  // swallowed since the last allowed event.
  bool allow(uint64_t* suppressed);

 private:
  uint32_t burst_;
  int64_t period_ns_;
  std::atomic<int64_t> window_start_{0};
  std::atomic<uint32_t> in_window_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace tickfan

#define TF_LOG(level, component, ...)                                        \
  do {                                                                       \
    if (static_cast<int>(level) >= static_cast<int>(::tickfan::log_level())) \
      ::tickfan::log_write(level, component, __VA_ARGS__);                   \
  } while (0)
#define LOG_DEBUG(component, ...) TF_LOG(::tickfan::LogLevel::debug, component, __VA_ARGS__)
#define LOG_INFO(component, ...) TF_LOG(::tickfan::LogLevel::info, component, __VA_ARGS__)
#define LOG_WARN(component, ...) TF_LOG(::tickfan::LogLevel::warn, component, __VA_ARGS__)
#define LOG_ERROR(component, ...) TF_LOG(::tickfan::LogLevel::error, component, __VA_ARGS__)
