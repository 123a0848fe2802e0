// breaker.h — per-source health as a circuit breaker.
//
//            errors >= threshold in window,             cool-down over
//            or silent while others deliver   ┌──────┐ ───────────────► ┌───────────┐
//   ┌────────┐ ─────────────────────────────► │ open │                  │ half_open │
//   │ closed │                                └──────┘ ◄─────────────── └───────────┘
//   └────────┘ ◄────────────────────────────────────── any error, or still silent
//                     probe_ticks good ticks in half_open
//
// While open, the source's ticks are not published (counted as
// dropped{reason="breaker_open"}) as long as some other source is closed;
// half_open lets ticks through to probe. Pure logic with time passed in, so
// it is tested without clocks or threads.
#pragma once
#include <cstdint>

namespace tickfan::apiserver {

enum class BreakerState : int { closed = 0, open = 1, half_open = 2 };
const char* breaker_state_name(BreakerState s);

struct BreakerConfig {
  uint32_t error_threshold = 50;  // errors within error_window_ns that open it
  int64_t error_window_ns = 10'000'000'000;
  int64_t silence_ns = 5'000'000'000;  // no ticks this long while others deliver
  int64_t open_ns = 2'000'000'000;     // cool-down before probing
  uint32_t probe_ticks = 100;          // good ticks in half_open that close it
};

class Breaker {
 public:
  Breaker(const BreakerConfig& cfg, int64_t now_ns) : cfg_(cfg), last_activity_(now_ns), window_start_(now_ns) {}
  // Feeds the source's cumulative tick and error counts. `others_active` is
  // true when another source delivered within the silence threshold.
  // Returns true when the state changed; *why then names the cause.
  bool update(int64_t now_ns, uint64_t ticks, uint64_t errors, bool others_active, const char** why);
  BreakerState state() const { return state_; }
  int64_t last_activity_ns() const { return last_activity_; }

 private:
  bool go(BreakerState s, int64_t now, const char* reason, const char** why);

  BreakerConfig cfg_;
  BreakerState state_ = BreakerState::closed;
  uint64_t last_ticks_ = 0, last_errors_ = 0;
  int64_t last_activity_;
  int64_t window_start_;
  uint64_t window_errors_ = 0;
  int64_t since_ = 0;  // when the current state began
  uint64_t probe_ticks_ = 0;
};

}  // namespace tickfan::apiserver
