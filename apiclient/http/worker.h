// worker.h — the state one worker process serves from: its options, its
// read-only view of the store (opened lazily, so the frontend starts and keeps
// running while the writer is down), a per-loop-tick copy of the store header,
// the symbol->slot cache, the rankings cache, metrics and scratch buffers.
// One Worker per process and one thread per worker: nothing here is shared
// or locked.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "body_cache.h"
#include "buffer.h"
#include "gzip.h"
#include "metrics.h"
#include "options.h"
#include "rank_cache.h"
#include "request.h"
#include "store.h"

namespace tickfan::http {

// Metrics of one worker; rendered with worker="N" on every series.
struct HttpMetrics {
  MetricsRegistry registry;
  Counter* requests[static_cast<int>(Endpoint::count)][16] = {};  // by endpoint x status index
  Histogram* latency[static_cast<int>(Endpoint::count)] = {};
  Counter* bytes_out = nullptr;
  Counter* accepted = nullptr;
  Counter* rejected_overload = nullptr;  // 503 at --max-connections
  Counter* migrated = nullptr;           // handed to the worker of their CPU (--cpu-affinity)
  Counter* bad_request[8] = {};          // by BadReason
  Counter* gzip_responses = nullptr;
  Counter* gzip_compressions = nullptr;  // bodies compressed (the rest came compressed from the body cache)
  Counter* not_modified = nullptr;
  Counter* rank_recomputes = nullptr;
  Counter* cache_hits = nullptr;
  Counter* cache_misses = nullptr;
  Gauge* connections = nullptr;

  void init(int worker_index, std::function<double()> age_ms);
  void count(Endpoint e, int status, double seconds);
};

// Reasons a request is refused before routing (labels of bad_requests_total).
enum class BadReason : uint8_t { parse, uri_too_long, headers_too_large, header_timeout, body, overload, count };
const char* bad_reason_name(BadReason r);

struct Worker {
  Worker(const Options& o, int index);

  const Options& opts;
  int index;
  HttpMetrics metrics;
  RankCache rank;
  BodyCache bodies;
  Gzip gzip;

  // Store access. `reader` is null until the file exists and opens; retried at
  // most once a second so a missing store does not cost a syscall per request.
  std::unique_ptr<shm::StoreReader> reader;
  int64_t next_open_ns = 0;
  shm::StoreState state;  // copy of the header, refreshed once per loop tick
  // Monotonic time of the last /v1/rank request: within kRankWarmNs of it the
  // ranking timer keeps the snapshot fresh and its orderings sorted.
  int64_t rank_wanted_ns = 0;
  static constexpr int64_t kRankWarmNs = 5'000'000'000;
  bool rankings_in_use(int64_t mono_now) const {
    return rank_wanted_ns != 0 && mono_now - rank_wanted_ns < kRankWarmNs;
  }
  int64_t state_tick = -1;
  int64_t now_wall_ns = 0;  // wall clock at the same tick (data age)

  // symbol -> slot for symbols found once (slots never move; unknown symbols
  // are not cached because they may appear later).
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> slots;

  // Scratch reused by every request (one thread, so one of each).
  std::string decoded;  // percent-decoded query value
  std::string gz;       // compressed body
  Buffer unknown;       // /v1/quotes: the "unknown" array being built

  // Refreshes `state`/`now_wall_ns` if the loop tick changed; opens the store
  // if needed. Returns false when no store is available.
  bool refresh(int64_t tick);
  bool find(std::string_view symbol, uint32_t* slot);
  int64_t age_ms() const;
};

}  // namespace tickfan::http
