// metrics_http.h — a tiny HTTP/1.1 listener for operators and Prometheus:
// `GET /metrics` (MetricsRegistry::render(), text format 0.0.4) and
// `GET /healthz`. Every daemon (apiserver, apiclient writer) embeds one.
//
// It runs its own libuv loop on its own thread so a slow scraper can never
// stall a hot path, and a hot path never delays a scrape. Requests are parsed
// with llhttp; anything malformed, oversized or not a GET/HEAD is answered
// with an error status and the connection is closed.
//
//   MetricsHttpServer http(registry);
//   std::string err;
//   if (!http.start("127.0.0.1", 9100, &err)) { ... err names address and port ... }
//   ...
//   http.stop();  // also done by the destructor
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "metrics.h"

namespace tickfan {

// Port conventions for MetricsHttpServer::start.
inline constexpr int kMetricsPortDisabled = 0;  // do not listen at all
inline constexpr int kMetricsPortAny = -1;      // let the OS choose (tests); read it back with port()

class MetricsHttpServer {
 public:
  // `health` (optional) decides /healthz: true -> 200 "ok", false -> 503 with
  // the reason it wrote. It runs on the listener thread, so it must be
  // thread-safe (read atomics).
  using HealthFn = std::function<bool(std::string* reason)>;

  explicit MetricsHttpServer(const MetricsRegistry& registry, HealthFn health = {});
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds host:port and starts the listener thread. port 0 = disabled (returns
  // true, listens nowhere); port -1 = any free port. Returns false with a
  // message naming the address when binding fails. Call at most once.
  bool start(const std::string& host, int port, std::string* error);
  // Closes the listener and every connection, joins the thread. Idempotent.
  void stop();
  // The port actually bound (0 when disabled or not started).
  int port() const { return bound_port_; }
  bool running() const { return running_.load(std::memory_order_acquire); }

  // Requests served (any status) and requests rejected as malformed; for tests.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t bad_requests() const { return bad_requests_.load(std::memory_order_relaxed); }

  struct Impl;  // libuv/llhttp state, in metrics_http.cpp

 private:
  const MetricsRegistry& registry_;
  HealthFn health_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int bound_port_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bad_requests_{0};

  friend struct MetricsHttpAccess;
};

}  // namespace tickfan
