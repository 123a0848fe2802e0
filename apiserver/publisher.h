// publisher.h — the apiserver's NATS connection: server list, credentials,
// TLS, reconnect-forever with a publish buffer, and callbacks that log and
// count disconnects, reconnects, slow consumers and async errors.
//
// Reconnect policy (docs/apiserver.md): never give up, wait 100 ms plus up to
// 150 ms jitter between attempts, keep publishing into a reconnect buffer
// while disconnected (a full buffer makes publish() fail: the batch's
// sequence is still consumed, so receivers see the gap and resync by
// snapshot).
//
// The first connect is ours, not the library's: libnats 3.4.1's "retry on
// failed connect" only survives a refused TCP connect. Any failure after the
// TCP connect (a server that accepts and never answers, a TLS or protocol
// error) clears its current server, and its reconnect thread then closes the
// connection for good ("No server available for connection"): the apiserver
// used to run on, looking alive, without ever publishing. So connect() makes
// one attempt, and if that fails a connector thread of ours retries (reconnect
// wait + jitter, the cause logged at a bounded rate) until a connection
// exists; it then subscribes and hands the connection over. Until then
// publishes go to a buffer of our own (same size limit as the library's
// reconnect buffer), sent in order on the new connection before anything
// else, as the library's retry used to do. Once connected, outages are the
// library's to reconnect (forever).
//
// Fatal, reported through the FatalHandler (the apiserver then exits 1 so its
// supervisor restarts it): a refused login at a later attempt (at the first
// one connect() fails instead), and any close the library decides on by
// itself (two refused logins in a row on a reconnect, a server -ERR it does
// not know): a closed connection never publishes again.
#pragma once
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
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
  // Told, at most once, that nothing can be published any more; `why` names
  // the cause. Runs on a library or connector thread: must only record it.
  using FatalHandler = std::function<void(const std::string& why)>;

  Publisher(MetricsRegistry& metrics, FatalHandler on_fatal);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Makes the first connect attempt (up to the library's 2 s connect timeout
  // against a server that accepts but does not answer) and subscribes
  // `on_snapshot` (runs on a NATS thread) to `snapshot_subject`. If the
  // attempt fails, the connector thread keeps trying and subscribes once
  // connected. False with a message for configuration errors and a refused
  // login.
  bool connect(const NatsConfig& cfg, const std::string& snapshot_subject, natsMsgHandler on_snapshot, void* closure,
               std::string* error);
  // Returns NATS_OK or the client's error; never blocks on the network.
  // Before the first connection: buffered (NATS_INSUFFICIENT_BUFFER when full).
  natsStatus publish(const char* subject, const void* data, int len);
  // Waits up to timeout_ms for everything buffered to reach the server.
  // Never connected: NATS_NOT_YET_CONNECTED at once (what was buffered is
  // lost, and logged).
  natsStatus flush(int timeout_ms);
  // Batches published but held for a connection that never came (lost if
  // the process stops now); 0 once connected.
  size_t undelivered_batches() const;
  // Stops the connector (waiting out an attempt in progress: up to the 2 s
  // connect timeout), closes, and waits for the last callback. Idempotent.
  void close();
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  // Null until the first connection exists.
  natsConnection* connection() const { return conn_.load(std::memory_order_acquire); }

 private:
  // One natsConnection_Connect. NATS_OK: *nc is connected. Else *why says
  // why (the library's text, without its source location).
  natsStatus connect_once(natsConnection** nc, std::string* why);
  // Subscribes the snapshot handler on `nc`. False with *error on failure.
  bool subscribe_on(natsConnection* nc, std::string* error);
  // Sends what was buffered on `nc`, then publishes it as the connection:
  // from here publish() goes straight to the library. Returns what was sent,
  // for the log ("" when nothing was buffered).
  std::string hand_over(natsConnection* nc);
  void connect_loop();
  void report_fatal(const std::string& why);
  std::string servers_text() const;
  std::string closed_reason(natsConnection* nc);
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);
  static void on_closed(natsConnection* nc, void* self);
  static void on_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* self);

  FatalHandler on_fatal_;
  std::atomic<bool> fatal_reported_{false};
  NatsConfig cfg_;
  std::string snapshot_subject_;
  natsMsgHandler on_snapshot_ = nullptr;
  void* snapshot_closure_ = nullptr;
  natsOptions* opts_ = nullptr;
  // Set once (under buffer_mu_), by connect() or the connector, after the
  // snapshot subscription exists and the buffer was sent; close() clears it.
  std::atomic<natsConnection*> conn_{nullptr};
  natsSubscription* sub_ = nullptr;  // written before conn_ is set, read by close() after the connector ended
  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};  // our own close() is not a disconnection
  // The connector thread, and what wakes its wait between attempts at close().
  std::thread connector_;
  std::mutex connector_mu_;
  std::condition_variable connector_cv_;
  // Publishes made before the first connection, in order.
  struct Buffered {
    std::string subject, data;
  };
  mutable std::mutex buffer_mu_;
  std::vector<Buffered> buffered_;
  size_t buffered_bytes_ = 0;
  // The last asynchronous error's text: on a reconnect, libnats has often
  // replaced the cause (a refused login) by the time it closes the connection.
  std::mutex error_mu_;
  std::string noted_error_;
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
