// replay.h — the parts of tickfan-replay worth testing on their own: time
// specifications for --from/--to, the loop period, and the progress line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace tickfan::tools {

// --from/--to values. Relative to the first event of the input:
//   "90", "90s", "1500ms", "2m", "1h", "1m30s" (also "+90s")
// Absolute (UTC):
//   "2024-06-03T09:30:00Z", "2024-06-03T09:30:00.250Z", or epoch milliseconds
//   "1717407000000" (13+ digits, so it cannot be mistaken for seconds).
struct TimeSpec {
  bool set = false;
  bool absolute = false;
  int64_t ns = 0;  // absolute: ns since the Unix epoch; relative: offset in ns
};
bool parse_time_spec(std::string_view text, TimeSpec* out, std::string* error);
// The event time a spec designates, given the input's first event time.
inline int64_t resolve_time(const TimeSpec& t, int64_t first_event_ns) {
  return t.absolute ? t.ns : first_event_ns + t.ns;
}

// How far apart two passes of a looped replay are, in event time: the span
// of the selected events plus one average gap between them (at least 1 ms),
// so the first event of pass k+1 follows the last of pass k like any other
// event would, and every exchange timestamp of pass k+1 is newer than every
// one of pass k (the apiserver drops older ones as stale).
int64_t loop_period_ns(int64_t first_ns, int64_t last_ns, uint64_t events);

// How many passes fit before pass k's shift (k periods) added to `latest_ns`,
// the latest time a pass shifts, would pass what int64 nanoseconds hold.
uint64_t shifted_pass_limit(int64_t latest_ns, int64_t period_ns);

// "1:02:03", "2:03.4" style durations for the progress line.
std::string format_duration(double seconds);

struct Progress {
  uint64_t done = 0;        // ticks written
  uint64_t total = 0;       // ticks the replay will write; 0 = unknown (endless loop)
  int64_t position_ns = 0;  // event time replayed so far, from the start of the window
  int64_t span_ns = 0;      // event time of the whole replay (all passes); 0 = unknown
  uint64_t pass = 1;        // current pass of a looped replay
  uint32_t passes = 1;      // 0 = forever
  double rate = 0;          // ticks/s over the last interval
  double eta_s = -1;        // < 0 = unknown
};
// One line, no newline: position, rate, ETA.
std::string format_progress(const Progress& p);

}  // namespace tickfan::tools
