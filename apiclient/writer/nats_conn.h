// nats_conn.h — the apiclient's NATS connection: options for a front box
// (reconnect forever with short jittered waits, SendAsap, explicit pending
// limits), the delta and reply subscriptions, and the snapshot request.
//
// Threading — why the store has exactly one writer thread without a hand-off
// queue: the connection uses the library's global delivery pool with ONE
// thread (nats_SetMessageDeliveryPoolSize(1)), so every subscription's
// callbacks (deltas, snapshot replies, and the idle timeouts of the delta
// subscriptions) run serially on that one library thread. The handler does
// its store writes right there, which saves a thread hop per message (a
// measured 10–40 µs of the latency budget on a busy 2-core box). Connection
// events (disconnected, reconnected, slow consumer) arrive on other library
// threads and are only queued; the delivery thread picks them up on its next
// message, or the daemon's own timer does (daemon.h).
//
// The first connect is ours, not the library's: libnats 3.4.1's "retry on
// failed connect" only survives a refused TCP connect. Any failure after the
// TCP connect (a server that accepts and never answers, a TLS or protocol
// error) clears its current server, and its reconnect thread then closes the
// connection for good ("No server available for connection"). So the
// constructor makes one attempt, and if that fails, a connector thread of ours
// retries (reconnect wait + jitter, the cause logged at a bounded rate) until
// a connection exists; it then subscribes and reports NatsEvent::reconnected,
// which starts the resync. Once connected, outages are the library's to
// reconnect (forever). A refused login is never retried (the handler is told).
//
// Permission violations are fatal: nats-server answers a denied SUB or PUB
// with -ERR 'Permissions Violation for ...' and keeps the connection, and
// libnats only reports NATS_NOT_PERMITTED to the error handler. A denied
// delta subject would leave a store that says live while no update ever
// arrives, so the handler is told (on_fatal) with the server's text.
#pragma once
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tickfan::apiclient {

struct NatsConfig {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name = "tickfan-apiclient";
  std::string creds_file;  // NATS 2 user JWT + nkey seed (.creds)
  std::string user, password;
  std::string token;
  bool tls = false;  // require TLS (also implied by tls:// URLs)
  std::string tls_ca, tls_cert, tls_key;
  bool tls_skip_verify = false;     // tests only
  int64_t reconnect_wait_ms = 100;  // notes/nats.md: 100–250 ms with jitter for front boxes
  int64_t reconnect_jitter_ms = 100;
  int pending_msgs = 100'000;  // per subscription: messages waiting for the delivery thread
  int64_t pending_bytes = 512LL << 20;
};

enum class NatsEvent : uint8_t { disconnected, reconnected, slow_consumer };

class NatsHandler {
 public:
  virtual ~NatsHandler() = default;
  // Delivery thread. Takes ownership of msg. `reply` = on our snapshot inbox.
  virtual void on_message(natsMsg* msg, bool reply) = 0;
  // Any library thread other than the delivery thread, or the connector
  // thread: must only record it.
  virtual void on_event(NatsEvent e) = 0;
  // Nothing a retry fixes: the library closed the connection for good, the
  // server refused our login, or it denied one of our subscriptions or the
  // snapshot request (permissions). `what` says which, with the server's or
  // library's text. Any thread; must only record it (the daemon exits 1).
  virtual void on_fatal(const std::string& what) = 0;
};

class NatsConn {
 public:
  // Makes the first connect attempt (up to the library's 2 s connect timeout
  // against a server that accepts but does not answer). If it fails, the
  // connector thread keeps trying once subscribe() is called: the daemon must
  // start and keep the store readable without NATS. Throws
  // std::runtime_error on a configuration error (bad creds file, TLS files)
  // and on a refused login.
  NatsConn(const NatsConfig& config, NatsHandler& handler);
  ~NatsConn();
  NatsConn(const NatsConn&) = delete;
  NatsConn& operator=(const NatsConn&) = delete;

  // Subscribes to the delta subjects and to this client's reply inbox
  // `<inbox>.*`. Connected: at once, and throws on failure (start-up only; a
  // connection the library already closed names its last error); a denied
  // subscription goes to on_fatal, naming its subject. Not connected yet:
  // starts the connector thread, which subscribes once it has a connection.
  void subscribe(const std::vector<std::string>& delta_subjects);
  // Publishes a snapshot request with reply `<inbox>.<request_id>`. The
  // state machine sends none while !connected() (the library would buffer it).
  natsStatus request_snapshot(const std::string& subject, const std::string& payload, uint64_t request_id);
  // True while the connection is up (natsConnection_Status == CONNECTED).
  // False until the connector thread has connected and subscribed.
  bool connected() const {
    natsConnection* nc = nc_.load(std::memory_order_acquire);
    return nc && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
  }
  // Parses the request id from a reply subject (0 = not one of our requests).
  uint64_t request_id_of(const char* subject) const;
  // Messages the library dropped for slow consumption, summed over subscriptions.
  int64_t dropped() const;
  // Messages waiting for the delivery thread, summed over subscriptions.
  int64_t pending() const;
  // Called by the daemon's timer: while not connected, remembers why (the
  // connection's last error), for the message when the library gives up and
  // closes the connection; a refused login on a reconnect is reported
  // (on_fatal) at once.
  void watch();
  // Stops the connector thread (waiting out an attempt in progress: up to the
  // 2 s connect timeout), unsubscribes, closes, and waits for the library's
  // threads to finish: no handler call runs after this returns. Idempotent.
  void close();

 private:
  void init();
  // One natsConnection_Connect. NATS_OK: *nc is connected. Else *why says
  // why (the library's text, without its source location).
  natsStatus connect_once(natsConnection** nc, std::string* why);
  // The connector thread: retries until connected (then subscribes and
  // reports NatsEvent::reconnected), a refused login (on_fatal) or close().
  void connect_loop();
  // Creates the subscriptions on `nc`; throws (see subscribe()). False when
  // the server denied one (already reported through on_fatal).
  bool subscribe_on(natsConnection* nc);
  std::string servers_text() const;
  static void on_delta(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_disconnected(natsConnection*, void* closure);
  static void on_reconnected(natsConnection*, void* closure);
  static void on_error(natsConnection*, natsSubscription*, natsStatus err, void* closure);
  static void on_closed_cb(natsConnection*, void* closure);
  // The connection's last error ("" if none), e.g. "nats: Authorization Violation".
  static std::string last_error(natsConnection* nc);
  void note_error(natsConnection* nc, bool log = true);
  // Why the connection closed: what it last said, and the refusal noted before
  // (the library replaces "Authorization Violation" with "No server available
  // for connection" by the time it closes).
  std::string closed_reason(natsConnection* nc);

  NatsConfig config_;
  NatsHandler& handler_;
  natsOptions* opts_ = nullptr;
  // Set once: by the constructor (connected at the first attempt), or by the
  // connector thread only after it has subscribed, so that connected() stays
  // false, and no snapshot request leaves, before the reply inbox exists.
  std::atomic<natsConnection*> nc_{nullptr};
  bool attempted_ = false;  // a connect was tried: the library's threads need joining
  mutable std::mutex subs_mu_;  // subs_: appended by subscribe, read by the heartbeat
  std::vector<natsSubscription*> subs_;
  std::vector<std::string> delta_subjects_;
  std::string inbox_;
  std::thread connector_;
  std::mutex connector_mu_;
  std::condition_variable connector_cv_;  // wakes the connector's wait at close()
  std::atomic<bool> closing_{false};  // our own close(): the closed callback is expected
  std::atomic<bool> refusal_reported_{false};
  std::mutex error_mu_;
  std::string noted_error_;  // last error seen while not connected
};

}  // namespace tickfan::apiclient
