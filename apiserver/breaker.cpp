// breaker.cpp — see breaker.h for the state diagram.
#include "breaker.h"

namespace tickfan::apiserver {

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
  }
  return "unknown";
}

bool Breaker::go(BreakerState s, int64_t now, const char* reason, const char** why) {
  state_ = s;
  since_ = now;
  probe_ticks_ = 0;
  window_start_ = now;
  window_errors_ = 0;
  *why = reason;
  return true;
}

bool Breaker::update(int64_t now, uint64_t ticks, uint64_t errors, bool others_active, const char** why) {
  uint64_t new_ticks = ticks - last_ticks_;
  uint64_t new_errors = errors - last_errors_;
  last_ticks_ = ticks;
  last_errors_ = errors;
  if (new_ticks > 0) last_activity_ = now;
  if (now - window_start_ > cfg_.error_window_ns) {
    window_start_ = now;
    window_errors_ = 0;
  }
  window_errors_ += new_errors;
  bool silent = now - last_activity_ > cfg_.silence_ns && others_active;

  switch (state_) {
    case BreakerState::closed:
      if (window_errors_ >= cfg_.error_threshold) return go(BreakerState::open, now, "errors", why);
      if (silent) return go(BreakerState::open, now, "silent", why);
      return false;
    case BreakerState::open:
      if (now - since_ >= cfg_.open_ns) return go(BreakerState::half_open, now, "probing", why);
      return false;
    case BreakerState::half_open:
      if (new_errors > 0) return go(BreakerState::open, now, "errors while probing", why);
      probe_ticks_ += new_ticks;
      if (probe_ticks_ >= cfg_.probe_ticks) return go(BreakerState::closed, now, "probe passed", why);
      if (now - since_ > cfg_.silence_ns && probe_ticks_ == 0 && others_active) {
        return go(BreakerState::open, now, "still silent", why);
      }
      return false;
  }
  return false;
}

}  // namespace tickfan::apiserver
