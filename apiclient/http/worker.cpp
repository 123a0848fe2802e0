// worker.cpp — see worker.h: lazy store opening, the per-tick header copy, the
// slot cache and the worker's metric series.
#include "worker.h"

#include <cinttypes>
#include <cstdio>

#include "clock.h"
#include "log.h"

namespace tickfan::http {

namespace {
const char* const kEndpointNames[] = {"quotes", "quote", "rank", "healthz", "readyz", "metrics", "other"};
const char* const kBadNames[] = {"parse", "uri_too_long", "headers_too_large", "header_timeout", "body", "overload"};
// Statuses the server can produce; anything else lands in the last index.
const int kStatuses[] = {200, 204, 304, 400, 404, 405, 408, 413, 414, 431, 500, 503, 505};
constexpr int kStatusCount = sizeof(kStatuses) / sizeof(kStatuses[0]);
}  // namespace

const char* endpoint_name(Endpoint e) { return kEndpointNames[static_cast<int>(e)]; }
const char* bad_reason_name(BadReason r) { return kBadNames[static_cast<int>(r)]; }

void HttpMetrics::init(int worker_index, std::function<double()> age_ms) {
  registry.set_common_labels("worker=\"" + std::to_string(worker_index) + "\"");
  for (int e = 0; e < static_cast<int>(Endpoint::count); ++e) {
    std::string ep = std::string("endpoint=\"") + kEndpointNames[e] + "\"";
    latency[e] = &registry.histogram("tickfan_http_request_duration_seconds",
                                     "time from a request's last byte parsed to its response queued",
                                     latency_buckets_seconds(), ep);
    // Series are registered up front for the statuses each endpoint can
    // answer with most often; the rest on first use (count()).
    for (int s : {200, 304, 400, 404, 503}) {
      for (int i = 0; i < kStatusCount; ++i) {
        if (kStatuses[i] == s) {
          requests[e][i] = &registry.counter("tickfan_http_requests_total", "requests answered, by endpoint and status",
                                             ep + ",status=\"" + std::to_string(s) + "\"");
        }
      }
    }
  }
  bytes_out =
      &registry.counter("tickfan_http_response_bytes_total", "response bytes queued for sending (headers+body)");
  accepted = &registry.counter("tickfan_http_connections_accepted_total", "connections accepted");
  rejected_overload = &registry.counter("tickfan_http_connections_rejected_total",
                                        "connections answered 503 and closed at --max-connections");
  migrated = &registry.counter("tickfan_http_connections_migrated_total",
                               "connections handed to the worker of the CPU their packets arrive on");
  for (int r = 0; r < static_cast<int>(BadReason::count); ++r) {
    bad_request[r] = &registry.counter("tickfan_http_bad_requests_total", "requests refused before routing, by reason",
                                       std::string("reason=\"") + kBadNames[r] + "\"");
  }
  gzip_responses = &registry.counter("tickfan_http_gzip_responses_total", "responses sent gzip-encoded");
  gzip_compressions = &registry.counter("tickfan_http_gzip_compressions_total",
                                        "bodies compressed for gzip responses (cached lists: once per list and commit)");
  not_modified = &registry.counter("tickfan_http_not_modified_total", "304 answers to If-None-Match");
  rank_recomputes = &registry.counter("tickfan_http_rank_snapshots_total", "ranking snapshots taken");
  cache_hits =
      &registry.counter("tickfan_http_body_cache_total", "list bodies served from the body cache", "result=\"hit\"");
  cache_misses =
      &registry.counter("tickfan_http_body_cache_total", "list bodies served from the body cache", "result=\"miss\"");
  connections = &registry.gauge("tickfan_http_connections", "open connections");
  registry.gauge_fn("tickfan_http_data_age_seconds", "age of the store's last commit (-1: no store/commit)",
                    std::move(age_ms));
}

void HttpMetrics::count(Endpoint e, int status, double seconds) {
  int ei = static_cast<int>(e);
  int si = kStatusCount;
  for (int i = 0; i < kStatusCount; ++i) {
    if (kStatuses[i] == status) {
      si = i;
      break;
    }
  }
  Counter*& c = requests[ei][si];
  if (!c) {
    std::string st = si < kStatusCount ? std::to_string(status) : "other";
    c = &registry.counter("tickfan_http_requests_total", "requests answered, by endpoint and status",
                          std::string("endpoint=\"") + kEndpointNames[ei] + "\",status=\"" + st + "\"");
  }
  c->inc();
  latency[ei]->observe(seconds);
}

Worker::Worker(const Options& o, int idx) : opts(o), index(idx), bodies(o.body_cache_bytes), gzip(o.gzip_level) {
  metrics.init(idx, [this] {
    int64_t a = age_ms();
    return a < 0 ? -1.0 : static_cast<double>(a) / 1000.0;
  });
  metrics.registry.gauge_fn("tickfan_http_rank_snapshot_seconds", "time the last ranking snapshot took",
                            [this] { return static_cast<double>(rank.last_build_ns()) / 1e9; });
}

bool Worker::refresh(int64_t tick) {
  if (tick == state_tick) return reader != nullptr;
  state_tick = tick;
  now_wall_ns = wall_ns();
  if (!reader) {
    int64_t now = mono_ns();
    if (now < next_open_ns) return false;
    next_open_ns = now + 1000000000;
    shm::Status st;
    std::string err;
    reader = shm::StoreReader::open(opts.store_path, &st, &err);
    if (!reader) {
      static RateLimit limit(1, 60'000'000'000);
      uint64_t suppressed = 0;
      if (limit.allow(&suppressed)) {
        LOG_WARN("http", "store not available, serving 503 for data: %s (suppressed=%" PRIu64 ")", err.c_str(),
                 suppressed);
      }
      return false;
    }
    LOG_INFO("http", "worker=%d store opened path=%s", index, opts.store_path.c_str());
  }
  state = reader->state();
  return true;
}

bool Worker::find(std::string_view symbol, uint32_t* slot) {
  auto it = slots.find(symbol);
  if (it != slots.end()) {
    *slot = it->second;
    return true;
  }
  if (!reader || reader->find(symbol, slot) != shm::Status::ok) return false;
  slots.emplace(std::string(symbol), *slot);
  return true;
}

int64_t Worker::age_ms() const {
  if (!reader || state.commit_ns == 0) return -1;
  int64_t a = (now_wall_ns - state.commit_ns) / 1000000;
  return a < 0 ? 0 : a;
}

}  // namespace tickfan::http
