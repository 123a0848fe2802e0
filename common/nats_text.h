// nats_text.h — what the apiserver and the apiclient share about retrying
// their first NATS connect themselves (libnats 3.4.1 gives up after a failure
// past the TCP connect, see docs/apiclient.md): libnats' words about a failed
// attempt made fit for one log line, and the pacing of the retries.
#pragma once
#include <nats/nats.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "clock.h"

namespace tickfan {

// Whether a server's error text is a refused login, which no retry fixes.
inline bool nats_mentions_login(const std::string& text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("authoriz") != std::string::npos || lower.find("authenticat") != std::string::npos;
}

// The library's thread-local error without its source position, e.g.
// "(unix/sock.c:58): Timeout" -> "Timeout"; the status' name if it has none.
inline std::string nats_last_error(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = last ? last : "";
  if (!text.empty() && text[0] == '(') {
    size_t at = text.find("): ");
    if (at != std::string::npos) text = text.substr(at + 3);
  }
  if (text.empty()) text = natsStatus_GetText(s);
  return text;
}

// A connect attempt's text (nats_last_error), with a hint where the
// library's own words do not say what happened.
inline std::string nats_attempt_error(natsStatus s) {
  std::string text = nats_last_error(s);
  if (s == NATS_TIMEOUT) text += " (the server accepted the connection but did not answer)";
  if (s == NATS_NO_SERVER) text += " (refused or unreachable)";
  return text;
}

// Paces a connector thread's attempts as libnats paces its reconnects (wait
// plus 0..jitter, so a fleet does not stampede a server that comes back) and
// decides which failures get a log line: every failure counts, but a dead
// server refuses several connects a second, so a new cause is logged at once
// and the same one at most every 5 s.
class ConnectRetry {
 public:
  ConnectRetry(int wait_ms, int jitter_ms)
      : wait_ms_(wait_ms), jitter_ms_(jitter_ms), rng_(static_cast<uint32_t>(mono_ns())), logged_ns_(mono_ns()) {}
  // Waits before the next attempt; false if `stop()` turned true meanwhile
  // (the waker notifies `cv` holding `mu`).
  template <typename Stop>
  bool wait(std::mutex& mu, std::condition_variable& cv, Stop stop) {
    int64_t ms = wait_ms_;
    if (jitter_ms_ > 0) ms += static_cast<int64_t>(rng_() % (static_cast<uint32_t>(jitter_ms_) + 1));
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, std::chrono::milliseconds(ms), stop);
  }
  // Counts an attempt (the first, made before the thread, is counted already).
  void attempted() { ++attempts_; }
  uint64_t attempts() const { return attempts_; }
  // Whether this failure, with cause `why`, gets a log line; if so
  // *not_logged is the number of failures skipped since the last line.
  bool should_log(const std::string& why, uint64_t* not_logged) {
    int64_t now = mono_ns();
    if (why == logged_why_ && now - logged_ns_ < 5'000'000'000) {
      ++unlogged_;
      return false;
    }
    *not_logged = unlogged_;
    logged_why_ = why;
    logged_ns_ = now;
    unlogged_ = 0;
    return true;
  }

 private:
  int wait_ms_, jitter_ms_;
  std::minstd_rand rng_;
  uint64_t attempts_ = 1;
  uint64_t unlogged_ = 0;
  std::string logged_why_;
  int64_t logged_ns_;
};

}  // namespace tickfan
