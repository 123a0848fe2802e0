// nats_conn.h — the apiclient's NATS connection: options for a front box
// (reconnect forever with short jittered waits, SendAsap, explicit pending
// limits), the delta and reply subscriptions, and the snapshot request.
// Library callbacks do nothing but hand messages and events to the MsgQueue.
#pragma once
#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "queue.h"

namespace tickfan::apiclient {

struct NatsConfig {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name = "tickfan-apiclient";
  std::string creds_file;          // NATS 2 user JWT + nkey seed (.creds)
  std::string user, password;
  std::string token;
  bool tls = false;                // require TLS (also implied by tls:// URLs)
  std::string tls_ca, tls_cert, tls_key;
  int64_t reconnect_wait_ms = 100; // notes/nats.md: 100–250 ms with jitter for front boxes
  int64_t reconnect_jitter_ms = 100;
  int pending_msgs = 100'000;      // per subscription, and for the hand-off queue
  int64_t pending_bytes = 512LL << 20;
};

class NatsConn {
 public:
  // Connects (or keeps trying in the background if no server is up yet: the
  // daemon must start and keep the store readable without NATS). Throws
  // std::runtime_error on a configuration error (bad creds file, TLS files).
  NatsConn(const NatsConfig& config, MsgQueue& queue);
  ~NatsConn();
  NatsConn(const NatsConn&) = delete;
  NatsConn& operator=(const NatsConn&) = delete;

  // Subscribes to the delta subjects and to this client's reply inbox
  // `<inbox>.*`. Throws on failure (start-up only).
  void subscribe(const std::vector<std::string>& delta_subjects);
  // Publishes a snapshot request with reply `<inbox>.<request_id>`. Safe when
  // disconnected (the library buffers it; the state machine's timeout covers loss).
  natsStatus request_snapshot(const std::string& subject, const std::string& payload, uint64_t request_id);
  // Parses the request id from a reply subject; 0 when it is not ours.
  uint64_t request_id_of(const char* subject) const;
  // Messages the library dropped for slow consumption, summed over subscriptions.
  int64_t dropped() const;
  bool connected() const;
  void close();

 private:
  static void on_delta(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_disconnected(natsConnection*, void* closure);
  static void on_reconnected(natsConnection*, void* closure);
  static void on_error(natsConnection*, natsSubscription*, natsStatus err, void* closure);

  NatsConfig config_;
  MsgQueue& queue_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  std::vector<natsSubscription*> subs_;
  std::string inbox_;
};

}  // namespace tickfan::apiclient
