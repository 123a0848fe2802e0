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
#pragma once
#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
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
  // Any library thread other than the delivery thread: must only record it.
  virtual void on_event(NatsEvent e) = 0;
  // The library closed the connection for good, or the server refused our
  // login (at start or on a reconnect): no message will come again. `why` is the
  // connection's last error. Any library thread; must only record it.
  virtual void on_closed(const std::string& why) = 0;
};

class NatsConn {
 public:
  // Connects (or keeps trying in the background if no server is up yet: the
  // daemon must start and keep the store readable without NATS). Throws
  // std::runtime_error on a configuration error (bad creds file, TLS files).
  NatsConn(const NatsConfig& config, NatsHandler& handler);
  ~NatsConn();
  NatsConn(const NatsConn&) = delete;
  NatsConn& operator=(const NatsConn&) = delete;

  // Subscribes to the delta subjects and to this client's reply inbox
  // `<inbox>.*`, then sends one "kick" message to `<inbox>.0` so the delivery
  // thread starts the first sync at once. Throws on failure (start-up only;
  // a connection the library already closed names its last error).
  void subscribe(const std::vector<std::string>& delta_subjects);
  // Publishes a snapshot request with reply `<inbox>.<request_id>`. The
  // state machine sends none while !connected() (the library would buffer it).
  natsStatus request_snapshot(const std::string& subject, const std::string& payload, uint64_t request_id);
  // True while the connection is up (natsConnection_Status == CONNECTED).
  bool connected() const { return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }
  // Parses the request id from a reply subject (0 = the kick or not ours).
  uint64_t request_id_of(const char* subject) const;
  // Messages the library dropped for slow consumption, summed over subscriptions.
  int64_t dropped() const;
  // Messages waiting for the delivery thread, summed over subscriptions.
  int64_t pending() const;
  // Called by the daemon's timer: while not connected, remembers why (the
  // connection's last error), for the message when the library gives up and
  // closes the connection; a refused login is reported as closed at once.
  void watch();
  // Unsubscribes, closes, and waits for the library's threads to finish: no
  // handler call runs after this returns. Idempotent.
  void close();

 private:
  void init();
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
  natsConnection* nc_ = nullptr;
  std::vector<natsSubscription*> subs_;
  std::string inbox_;
  std::atomic<bool> closing_{false};  // our own close(): the closed callback is expected
  std::atomic<bool> refusal_reported_{false};
  std::mutex error_mu_;
  std::string noted_error_;  // last error seen while not connected
};

}  // namespace tickfan::apiclient
