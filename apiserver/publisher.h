// publisher.h — the apiserver's NATS connection: server list, credentials,
// TLS, reconnect-forever with a publish buffer, and callbacks that log and
// count disconnects, reconnects, slow consumers and async errors.
//
// Reconnect policy (docs/apiserver.md): never give up, wait 100 ms plus up to
// 150 ms jitter between attempts, keep publishing into a reconnect buffer
// while disconnected (a full buffer makes publish() fail: the batch's
// sequence is still consumed, so receivers see the gap and resync by
// snapshot). The first connect is retried in the background too, so the
// apiserver can start before NATS.
#pragma once
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "metrics.h"

namespace tickfan::apiserver {

struct NatsConfig {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name = "tickfan-apiserver";
  std::string user, password, token, creds_file;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key;
  bool tls_skip_verify = false;
  int reconnect_wait_ms = 100;
  int reconnect_jitter_ms = 150;
  int reconnect_buffer_mb = 64;
  bool send_asap = true;  // write each publish at once (see ../shared/notes/nats.md: p50 0.7 ms -> 0.1 ms)
};

class Publisher {
 public:
  explicit Publisher(MetricsRegistry& metrics);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Creates the connection (retrying in the background if the servers are
  // not up yet). False with a message for configuration errors.
  bool connect(const NatsConfig& cfg, std::string* error);
  // Returns NATS_OK or the client's error; never blocks on the network.
  natsStatus publish(const char* subject, const void* data, int len);
  // Subscribes `cb` (runs on a NATS thread) to `subject`.
  bool subscribe(const char* subject, natsMsgHandler cb, void* closure, std::string* error);
  // Waits up to timeout_ms for everything buffered to reach the server.
  natsStatus flush(int timeout_ms);
  void close();
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  natsConnection* connection() { return conn_; }

 private:
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);
  static void on_closed(natsConnection* nc, void* self);
  static void on_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* self);

  natsOptions* opts_ = nullptr;
  natsConnection* conn_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};  // our own close() is not a disconnection
  // The client runs callbacks on its own thread, after natsConnection_Close
  // returns; close() waits for the closed callback (always the last one) so
  // none can run on a destroyed Publisher.
  std::mutex closed_mu_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
  Counter* disconnects_;
  Counter* reconnects_;
  Counter* slow_consumers_;
  Counter* async_errors_;
};

}  // namespace tickfan::apiserver
