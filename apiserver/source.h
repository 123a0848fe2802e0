// source.h — one upstream feed: a thread that turns bytes (or simulated
// ticks) into validated Quotes in its own QuoteRing for the core thread.
//
// URIs (repeatable --source), options after '?' joined by '&':
//   file:PATH[?follow=1]        CSV/JSON lines; follow = tail a growing file
//   stdin:                      CSV/JSON lines from standard input
//   tcp://HOST:PORT             connect and read lines; reconnects with capped
//                               exponential backoff
//   synthetic:[?symbols=5000&rate=20000&seed=1&count=0]
//                               built-in market simulator (rate 0 = flat out,
//                               count 0 = forever)
// Every source also takes name=LABEL (metrics/log label) and priority=N
// (smaller = preferred when two sources deliver the same exchange timestamp;
// default 100).
//
// Parsing and validation happen here, on the source's own thread, so several
// feeds use several cores and the core thread only arbitrates and publishes.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "ring.h"
#include "validate.h"

namespace tickfan::apiserver {

enum class SourceKind { file, stdin_, tcp, synthetic };

struct SourceSpec {
  std::string uri;
  SourceKind kind = SourceKind::file;
  std::string name;
  int priority = 100;
  std::string path;  // file
  bool follow = false;
  std::string host;  // tcp
  int port = 0;
  uint32_t symbols = 5000;  // synthetic
  double rate = 20000;      // ticks/s in total; 0 = as fast as possible
  uint64_t seed = 1;
  uint64_t count = 0;  // stop after this many ticks; 0 = never
};

// Parses one --source URI; throws std::invalid_argument with a message naming
// the URI and the offending part.
SourceSpec parse_source_uri(const std::string& uri);

struct SourceContext {
  MetricsRegistry* metrics = nullptr;
  Doorbell* bell = nullptr;
  ValidateLimits limits;
  uint32_t ring_capacity = 4096;  // slots, power of two (1.2 MB: stays in cache)
};

class Source {
 public:
  Source(SourceSpec spec, const SourceContext& ctx, int index);
  virtual ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Throws std::runtime_error when the source cannot start (missing file...).
  virtual void prepare() {}
  void start();
  void request_stop() { stop_.store(true, std::memory_order_relaxed); }
  void join();

  const SourceSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int index() const { return index_; }
  QuoteRing& ring() { return ring_; }
  // True once the source will produce nothing more (EOF without follow,
  // synthetic count reached, or stopped) and everything it made is published.
  bool done() const { return done_.load(std::memory_order_acquire); }
  // Errors (rejected lines, connection failures) so far; the breaker watches it.
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t ticks() const { return ticks_in_->value(); }

 protected:
  virtual void run() = 0;

  // Line sources: feed raw bytes; complete lines are parsed, validated and
  // committed to the ring. `eof` treats a trailing partial line as complete.
  void feed(const char* data, size_t n, bool eof);
  // Drops a partial line (connection lost mid-line), counting it.
  void discard_partial(const char* why);
  // The next free ring slot to build a tick in place (no extra copy); waits
  // while the ring is full. commit_slot() makes it a tick; not committing
  // (a rejected line) leaves the slot free for the next one.
  Quote* slot();
  void commit_slot() {
    ring_.commit();
    ticks_in_->inc();
  }
  // Publishes committed slots and wakes the core.
  void flush();
  // Counts an error that is not a line (connect failure, read error).
  void count_error() { errors_.fetch_add(1, std::memory_order_relaxed); }
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  // Sleeps up to `ms`, returning early (false) when a stop was requested.
  bool sleep_ms(int ms);

  // Counts and logs (rate-limited) one refused record; `line` is quoted.
  void reject(Reject r, const std::string& detail, std::string_view line);

  SourceSpec spec_;
  SourceContext ctx_;
  Counter* ticks_in_ = nullptr;

 private:
  void handle_line(std::string_view line);

  int index_;
  QuoteRing ring_;
  LineParser parser_;
  std::string carry_;  // partial line across reads
  bool skipping_long_ = false;
  uint64_t line_no_ = 0;
  std::string detail_;
  Counter* lines_ = nullptr;
  Counter* rejected_[kRejectCount] = {};
  RateLimit log_limit_{10, 1'000'000'000};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> errors_{0};
};

// Builds the right Source for a spec (source_file.cpp, source_tcp.cpp,
// source_synthetic.cpp).
std::unique_ptr<Source> make_source(const SourceSpec& spec, const SourceContext& ctx, int index);
std::unique_ptr<Source> make_file_source(const SourceSpec& spec, const SourceContext& ctx, int index);
std::unique_ptr<Source> make_tcp_source(const SourceSpec& spec, const SourceContext& ctx, int index);
std::unique_ptr<Source> make_synthetic_source(const SourceSpec& spec, const SourceContext& ctx, int index);

inline constexpr size_t kMaxLine = 64 * 1024;

}  // namespace tickfan::apiserver
