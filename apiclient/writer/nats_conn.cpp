// nats_conn.cpp — see nats_conn.h.
#include "nats_conn.h"

#include <cctype>
#include <cstring>
#include <stdexcept>

#include "log.h"
#include "nats_creds.h"
#include "nats_text.h"
#include "url_redact.h"

namespace tickfan::apiclient {

namespace {
void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK)
    throw std::runtime_error(what + ": " + natsStatus_GetText(s) + " (" + nats_GetLastError(nullptr) + ")");
}

}  // namespace

NatsConn::NatsConn(const NatsConfig& config, NatsHandler& handler) : config_(config), handler_(handler) {
  try {
    init();
  } catch (...) {
    close();  // no destructor runs for a throwing constructor
    throw;
  }
}

void NatsConn::init() {
  // One delivery thread for every subscription: it is the store's writer
  // thread (see nats_conn.h). Process-wide, set before the connection exists.
  check(nats_SetMessageDeliveryPoolSize(1), "NATS delivery pool");
  check(natsOptions_Create(&opts_), "nats options");
  check(natsOptions_UseGlobalMessageDelivery(opts_, true), "NATS global delivery");
  std::vector<const char*> urls;
  for (const std::string& s : config_.servers) urls.push_back(s.c_str());
  if (urls.empty()) throw std::runtime_error("no NATS server given (--nats)");
  check(natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size())), "NATS server list");
  check(natsOptions_SetName(opts_, config_.name.c_str()), "NATS client name");
  if (!config_.creds_file.empty()) {
    // Refused here, by name, if no connect could use it (nats_creds.h).
    if (std::string bad = check_nats_creds_file(config_.creds_file); !bad.empty()) throw std::runtime_error(bad);
    check(natsOptions_SetUserCredentialsFromFiles(opts_, config_.creds_file.c_str(), nullptr),
          "NATS credentials file " + config_.creds_file);
  }
  if (!config_.user.empty())
    check(natsOptions_SetUserInfo(opts_, config_.user.c_str(), config_.password.c_str()), "NATS user");
  if (!config_.token.empty()) check(natsOptions_SetToken(opts_, config_.token.c_str()), "NATS token");
  if (config_.tls || config_.tls_skip_verify || !config_.tls_ca.empty() || !config_.tls_cert.empty()) {
    check(natsOptions_SetSecure(opts_, true), "NATS TLS");
    if (config_.tls_skip_verify) check(natsOptions_SkipServerVerification(opts_, true), "NATS TLS skip verify");
    if (!config_.tls_ca.empty())
      check(natsOptions_LoadCATrustedCertificates(opts_, config_.tls_ca.c_str()), "NATS TLS CA " + config_.tls_ca);
    if (!config_.tls_cert.empty()) {
      check(natsOptions_LoadCertificatesChain(opts_, config_.tls_cert.c_str(), config_.tls_key.c_str()),
            "NATS TLS certificate " + config_.tls_cert);
    }
  }
  // Front boxes never give up: reconnect forever, quickly, with jitter so a
  // fleet does not stampede a restarted server.
  check(natsOptions_SetMaxReconnect(opts_, -1), "NATS max reconnect");
  check(natsOptions_SetReconnectWait(opts_, config_.reconnect_wait_ms), "NATS reconnect wait");
  check(natsOptions_SetReconnectJitter(opts_, config_.reconnect_jitter_ms, config_.reconnect_jitter_ms * 5),
        "NATS jitter");
  // The C client's flusher otherwise waits ~1 ms to coalesce writes
  // (notes/nats.md); requests should leave at once.
  check(natsOptions_SetSendAsap(opts_, true), "NATS send asap");
  check(natsOptions_SetDisconnectedCB(opts_, &NatsConn::on_disconnected, this), "NATS disconnected cb");
  check(natsOptions_SetReconnectedCB(opts_, &NatsConn::on_reconnected, this), "NATS reconnected cb");
  check(natsOptions_SetErrorHandler(opts_, &NatsConn::on_error, this), "NATS error handler");
  // The library closes the connection for good on a refused login (at the
  // first connect, or after repeated refusals on reconnect), reconnect
  // forever or not. A writer left with a closed connection would sit there
  // doing nothing while holding the store: the daemon exits 1 instead.
  check(natsOptions_SetClosedCB(opts_, &NatsConn::on_closed_cb, this), "NATS closed cb");
  // No natsOptions_SetRetryOnFailedConnect: libnats 3.4.1 gives up for good
  // when an attempt fails after the TCP connect (see nats_conn.h); the
  // connector thread retries instead.
  natsInbox* inbox = nullptr;
  check(natsInbox_Create(&inbox), "NATS inbox");
  inbox_ = inbox;
  natsInbox_Destroy(inbox);
  natsConnection* nc = nullptr;
  std::string why;
  natsStatus s = connect_once(&nc, &why);
  if (s == NATS_OK) {
    nc_.store(nc, std::memory_order_release);
    LOG_INFO("nats", "connected to %s", servers_text().c_str());
  } else if (s == NATS_CONNECTION_AUTH_FAILED || nats_mentions_login(why)) {
    // Retrying will not change the answer; the supervisor restarts us.
    throw std::runtime_error("NATS login refused by " + servers_text() + ": " + why);
  } else {
    LOG_WARN("nats", "not connected to %s yet (%s); retrying in the background", servers_text().c_str(), why.c_str());
  }
}

natsStatus NatsConn::connect_once(natsConnection** nc, std::string* why) {
  attempted_ = true;
  *nc = nullptr;
  natsStatus s = natsConnection_Connect(nc, opts_);
  if (s == NATS_OK) return s;
  *why = nats_attempt_error(s);
  if (*nc) {  // not expected without retry-on-failed-connect; never leak one
    natsConnection_Destroy(*nc);
    *nc = nullptr;
  }
  return s;
}

std::string NatsConn::servers_text() const {
  return redact_urls(config_.servers);
}

void NatsConn::connect_loop() {
  ConnectRetry retry(config_.reconnect_wait_ms, config_.reconnect_jitter_ms);
  for (;;) {
    if (!retry.wait(connector_mu_, connector_cv_, [&] { return closing_.load(); })) return;
    natsConnection* nc = nullptr;
    std::string why;
    natsStatus s = connect_once(&nc, &why);
    retry.attempted();
    if (s == NATS_OK) {
      if (closing_.load()) {
        natsConnection_Destroy(nc);  // close() is waiting for us; nothing was subscribed
        return;
      }
      bool subscribed = false;
      try {
        subscribed = subscribe_on(nc);
      } catch (const std::exception& e) {
        handler_.on_fatal(e.what());
      }
      nc_.store(nc, std::memory_order_release);  // close() releases it
      if (!subscribed) return;  // the daemon is on its way out
      LOG_INFO("nats", "connected to %s after %llu attempts", servers_text().c_str(),
               static_cast<unsigned long long>(retry.attempts()));
      // What the library's connected callback used to say: start the resync.
      handler_.on_event(NatsEvent::reconnected);
      return;
    }
    if (closing_.load()) return;  // the attempt close() waited out: no "retrying"
    if (s == NATS_CONNECTION_AUTH_FAILED || nats_mentions_login(why)) {
      handler_.on_fatal("login refused by " + servers_text() + ": " + why + "; not retrying");
      return;
    }
    uint64_t unlogged = 0;
    if (retry.should_log(why, &unlogged)) {
      std::string quiet = unlogged ? ", " + std::to_string(unlogged) + " failed attempts not logged" : "";
      LOG_WARN("nats", "connect to %s failed: %s (attempt %llu%s); retrying", servers_text().c_str(), why.c_str(),
               static_cast<unsigned long long>(retry.attempts()), quiet.c_str());
    }
  }
}

NatsConn::~NatsConn() { close(); }

void NatsConn::close() {
  {
    std::lock_guard<std::mutex> lock(connector_mu_);
    closing_.store(true);
  }
  connector_cv_.notify_all();
  if (connector_.joinable()) connector_.join();  // an attempt in progress ends within the connect timeout
  {
    std::lock_guard<std::mutex> lock(subs_mu_);
    for (natsSubscription* sub : subs_) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
    subs_.clear();
  }
  natsConnection* nc = nc_.exchange(nullptr);
  if (nc) {
    // Closed by the library already (a refused login): nothing more can be
    // delivered. libnats 3.4.1 then keeps a reference to a subscription made
    // while it was (re)connecting, and nats_CloseAndWait would wait its whole
    // timeout for it with no thread of its own left (measured: 5 s, in about
    // one start in ten).
    bool closed_by_library = natsConnection_IsClosed(nc);
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
    // Joins the library's threads (the delivery thread included), so no
    // handler call can still be running or start later.
    natsStatus s = nats_CloseAndWait(closed_by_library ? 300 : 5000);
    if (s != NATS_OK) LOG_DEBUG("nats", "close: %s", natsStatus_GetText(s));
  } else if (attempted_) {
    // Never connected: no connection of ours is left, only the library's own
    // threads (timers, async callbacks) to join.
    natsStatus s = nats_CloseAndWait(300);
    if (s != NATS_OK) LOG_DEBUG("nats", "close: %s", natsStatus_GetText(s));
  }
  attempted_ = false;
  if (opts_) {
    natsOptions_Destroy(opts_);
    opts_ = nullptr;
  }
}

std::string NatsConn::last_error(natsConnection* nc) {
  const char* text = nullptr;
  if (nc == nullptr || natsConnection_GetLastError(nc, &text) == NATS_OK || text == nullptr) return "";
  return text;
}

void NatsConn::note_error(natsConnection* nc, bool log) {
  std::string e = last_error(nc);
  if (e.empty()) return;
  std::lock_guard<std::mutex> lock(error_mu_);
  if (e != noted_error_) {
    if (log) LOG_WARN("nats", "not connected: %s", e.c_str());
    noted_error_ = e;
  }
}

void NatsConn::watch() {
  natsConnection* nc = nc_.load(std::memory_order_acquire);
  if (!nc || natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED) return;
  note_error(nc);
  // On a reconnect libnats closes the connection only after two refusals in
  // a row (and before this daemon did its own first connect, its retry was
  // measured to go on for good after one). A refusal is not something a
  // retry fixes: give up at the first (exit 1, the supervisor restarts us and
  // logs it again).
  std::string noted;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    noted = noted_error_;
  }
  if (nats_mentions_login(noted) && !refusal_reported_.exchange(true))
    handler_.on_fatal("login refused: " + noted + "; not retrying");
}

std::string NatsConn::closed_reason(natsConnection* nc) {
  std::string now = last_error(nc);
  std::string before;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    before = noted_error_;
  }
  if (now.empty()) now = "closed by the NATS library";
  if (before.empty() || before == now) return now;
  return before + " (then: " + now + ")";
}

void NatsConn::subscribe(const std::vector<std::string>& delta_subjects) {
  delta_subjects_ = delta_subjects;
  natsConnection* nc = nc_.load(std::memory_order_acquire);
  if (nc) {
    subscribe_on(nc);
  } else {
    // The connector subscribes once connected; the daemon's resync waits
    // for its NatsEvent::reconnected.
    connector_ = std::thread([this] { connect_loop(); });
  }
}

bool NatsConn::subscribe_on(natsConnection* nc) {
  auto add = [&](const std::string& subject, natsMsgHandler cb) {
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Subscribe(&sub, nc, subject.c_str(), cb, this);
    if (s == NATS_CONNECTION_CLOSED) {
      // Closed by the library before we got here: say why (a refused login).
      throw std::runtime_error("NATS connection closed before subscribing to " + subject + ": " + closed_reason(nc));
    }
    check(s, "NATS subscribe " + subject);
    {
      std::lock_guard<std::mutex> lock(subs_mu_);
      subs_.push_back(sub);  // close() releases it, also when we throw below
    }
    // Explicit limits (the default 65 536 messages filled up in measurements).
    // Past them the library drops and reports NATS_SLOW_CONSUMER: we resync.
    int bytes = static_cast<int>(config_.pending_bytes);  // <= INT32_MAX (config.cpp)
    s = natsSubscription_SetPendingLimits(sub, config_.pending_msgs, bytes);
    if (s != NATS_OK && natsConnection_IsClosed(nc)) {
      // The server's -ERR to this very SUB (e.g. "maximum subscriptions
      // exceeded") can make the library close the connection one round trip
      // later, before we get here: say why rather than "Invalid Subscription"
      // (measured: 2 starts in 60 against max_subscriptions: 1).
      throw std::runtime_error("NATS connection closed while subscribing to " + subject + ": " + closed_reason(nc));
    }
    check(s, "NATS pending limits " + subject);
  };
  for (const std::string& s : delta_subjects_) add(s, &NatsConn::on_delta);
  add(inbox_ + ".*", &NatsConn::on_reply);
  // Make sure the server has the subscriptions before the first snapshot
  // request; when not connected (an outage right now) they are sent on
  // reconnect, before it.
  if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED && natsConnection_FlushTimeout(nc, 2000) == NATS_OK) {
    // A denied SUB is answered by -ERR before the flush's PONG, and only
    // SUBs were sent so far: decide here, before the first sync could make
    // the store say live without deltas. (The error handler sees it too, a
    // little later, on another thread.)
    const char* text = nullptr;
    if (natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED) {
      handler_.on_fatal("permission denied by the NATS server: " + std::string(text && *text ? text : "Not Permitted"));
      return false;
    }
  }
  LOG_INFO("nats", "subscribed subjects=%zu inbox=%s.*", delta_subjects_.size(), inbox_.c_str());
  return true;
}

natsStatus NatsConn::request_snapshot(const std::string& subject, const std::string& payload, uint64_t request_id) {
  natsConnection* nc = nc_.load(std::memory_order_acquire);
  if (!nc) return NATS_NOT_YET_CONNECTED;
  std::string reply = inbox_ + "." + std::to_string(request_id);
  return natsConnection_PublishRequest(nc, subject.c_str(), reply.c_str(), payload.data(),
                                       static_cast<int>(payload.size()));
}

uint64_t NatsConn::request_id_of(const char* subject) const {
  size_t n = inbox_.size();
  if (std::strncmp(subject, inbox_.c_str(), n) != 0 || subject[n] != '.') return 0;
  uint64_t id = 0;
  for (const char* p = subject + n + 1; *p; ++p) {
    if (*p < '0' || *p > '9') return 0;
    id = id * 10 + static_cast<uint64_t>(*p - '0');
  }
  return id;
}

int64_t NatsConn::dropped() const {
  std::lock_guard<std::mutex> lock(subs_mu_);
  int64_t total = 0;
  for (natsSubscription* sub : subs_) {
    int64_t d = 0;
    if (natsSubscription_GetDropped(sub, &d) == NATS_OK) total += d;
  }
  return total;
}

int64_t NatsConn::pending() const {
  std::lock_guard<std::mutex> lock(subs_mu_);
  int64_t total = 0;
  for (natsSubscription* sub : subs_) {
    int msgs = 0, bytes = 0;
    if (natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK) total += msgs;
  }
  return total;
}

void NatsConn::on_delta(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<NatsConn*>(closure)->handler_.on_message(msg, false);
}

void NatsConn::on_reply(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<NatsConn*>(closure);
  // On a reconnect libnats sends our SUBs again before anything else, so a
  // SUB the server now denies is answered (-ERR, recorded as the
  // connection's last error by the same reader thread) before any snapshot
  // reply. The error handler runs on another thread, maybe later: without
  // this check the snapshot could be applied and the store say live, for a
  // moment, with its deltas denied. Replies are rare (a resync's chunks).
  const char* text = nullptr;
  if (natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED) {
    natsMsg_Destroy(msg);
    if (!self->closing_.load())
      self->handler_.on_fatal("permission denied by the NATS server: " +
                              std::string(text && *text ? text : "Not Permitted"));
    return;
  }
  self->handler_.on_message(msg, true);
}

void NatsConn::on_disconnected(natsConnection* nc, void* closure) {
  if (natsConnection_IsClosed(nc)) return;  // our own close at shutdown
  static_cast<NatsConn*>(closure)->note_error(nc);
  static_cast<NatsConn*>(closure)->handler_.on_event(NatsEvent::disconnected);
}

void NatsConn::on_reconnected(natsConnection*, void* closure) {
  static_cast<NatsConn*>(closure)->handler_.on_event(NatsEvent::reconnected);
}

void NatsConn::on_closed_cb(natsConnection* nc, void* closure) {
  auto* self = static_cast<NatsConn*>(closure);
  if (self->closing_.load()) return;  // our own close at shutdown
  // `nc`, not nc_: this can run before the connector has published it.
  self->handler_.on_fatal("connection closed by the NATS library: " + self->closed_reason(nc));
}

void NatsConn::on_error(natsConnection* nc, natsSubscription*, natsStatus err, void* closure) {
  auto* self = static_cast<NatsConn*>(closure);
  if (err == NATS_SLOW_CONSUMER) {
    self->handler_.on_event(NatsEvent::slow_consumer);
    return;
  }
  if (err == NATS_NOT_PERMITTED) {
    // -ERR 'Permissions Violation for Subscription to "<subject>"' (or for
    // Publish to the snapshot subject): the server keeps the connection and
    // libnats passes only the status, keeping the server's text as the
    // connection's last error. We subscribe to nothing and publish nothing
    // we can do without, so any denial is fatal. The text can already be a
    // later violation's (libnats keeps one): still a subject that was denied.
    if (self->closing_.load()) return;
    const char* text = nullptr;
    std::string what = natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED && text && *text
                           ? text
                           : "Not Permitted (the server's text was already replaced)";
    self->handler_.on_fatal("permission denied by the NATS server: " + what);
    return;
  }
  static RateLimit limit(5, 1'000'000'000);
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_WARN("nats", "async error %s suppressed=%llu", natsStatus_GetText(err),
             static_cast<unsigned long long>(suppressed));
  }
}

}  // namespace tickfan::apiclient
