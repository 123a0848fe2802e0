// clock.h — the two clocks tickfan uses: wall time (timestamps that cross
// machines: exchange, receive, commit) and monotonic time (timeouts, latency).
#pragma once
#include <cstdint>
#include <ctime>

namespace tickfan {

inline int64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace tickfan
