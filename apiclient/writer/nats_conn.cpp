// nats_conn.cpp — see nats_conn.h.
#include "nats_conn.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "log.h"

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
    // The library reads the file only when connecting, and a bad one then
    // ends in a closed connection saying just "No server available for
    // connection": check its shape here, where the error can name it.
    std::ifstream in(config_.creds_file);
    std::stringstream text;
    text << in.rdbuf();
    std::string body = text.str();
    size_t first = body.find("-----BEGIN");
    if (!in || first == std::string::npos || body.find("-----BEGIN", first + 1) == std::string::npos)
      throw std::runtime_error("NATS credentials file " + config_.creds_file +
                               ": not a .creds file (expected a user JWT block and an nkey seed block)");
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
  // Start even when no server is up: the store stays readable (stale) and the
  // connect completes in the background; on_reconnected then triggers a sync.
  check(natsOptions_SetRetryOnFailedConnect(opts_, true, &NatsConn::on_reconnected, this), "NATS retry on connect");
  natsStatus s = natsConnection_Connect(&nc_, opts_);
  if (s == NATS_NOT_YET_CONNECTED) {
    // Why (refused connection, TLS handshake, a refused login...): the
    // library keeps it as the thread's last error.
    note_error(nc_, false);
    std::string why = last_error(nc_);
    LOG_WARN("nats", "not connected to %s yet (%s); retrying in the background",
             config_.servers[0].c_str(), why.empty() ? natsStatus_GetText(s) : why.c_str());
  } else {
    check(s, "NATS connect to " + config_.servers[0]);
    LOG_INFO("nats", "connected to %s", config_.servers[0].c_str());
  }
  natsInbox* inbox = nullptr;
  check(natsInbox_Create(&inbox), "NATS inbox");
  inbox_ = inbox;
  natsInbox_Destroy(inbox);
}

NatsConn::~NatsConn() { close(); }

void NatsConn::close() {
  closing_.store(true);
  for (natsSubscription* sub : subs_) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  subs_.clear();
  if (nc_) {
    // Closed by the library already (a refused login): nothing more can be
    // delivered. libnats 3.4.1 then keeps a reference to a subscription made
    // while it was (re)connecting, and nats_CloseAndWait would wait its whole
    // timeout for it with no thread of its own left (measured: 5 s, in about
    // one start in ten).
    bool closed_by_library = natsConnection_IsClosed(nc_);
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
    nc_ = nullptr;
    // Joins the library's threads (the delivery thread included), so no
    // handler call can still be running or start later.
    natsStatus s = nats_CloseAndWait(closed_by_library ? 300 : 5000);
    if (s != NATS_OK) LOG_DEBUG("nats", "close: %s", natsStatus_GetText(s));
  }
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
  if (!nc_ || natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED) return;
  note_error(nc_);
  // libnats closes the connection after a refused login only on some paths
  // (the first connect; two refusals in a row on a reconnect): when the first
  // attempt found no server and a later one is refused, it was measured to go
  // on retrying for good. A refusal is not something a retry fixes: give up
  // as if it had closed (exit 1, the supervisor restarts us and logs it again).
  std::string noted;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    noted = noted_error_;
  }
  std::string lower;
  for (char c : noted) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("authoriz") != std::string::npos || lower.find("authenticat") != std::string::npos) {
    if (!refusal_reported_.exchange(true)) handler_.on_closed(noted + " (login refused; not retrying)");
  }
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
  auto add = [&](const std::string& subject, natsMsgHandler cb) {
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Subscribe(&sub, nc_, subject.c_str(), cb, this);
    if (s == NATS_CONNECTION_CLOSED) {
      // Closed by the library before we got here: say why (a refused login).
      throw std::runtime_error("NATS connection closed before subscribing to " + subject + ": " + closed_reason(nc_));
    }
    check(s, "NATS subscribe " + subject);
    subs_.push_back(sub);  // close() releases it, also when we throw below
    // Explicit limits (the default 65 536 messages filled up in measurements).
    // Past them the library drops and reports NATS_SLOW_CONSUMER: we resync.
    int bytes = static_cast<int>(config_.pending_bytes);  // <= INT32_MAX (config.cpp)
    s = natsSubscription_SetPendingLimits(sub, config_.pending_msgs, bytes);
    if (s != NATS_OK && natsConnection_IsClosed(nc_)) {
      // The server's -ERR to this very SUB (e.g. "maximum subscriptions
      // exceeded") can make the library close the connection one round trip
      // later, before we get here: say why rather than "Invalid Subscription"
      // (measured: 2 starts in 60 against max_subscriptions: 1).
      throw std::runtime_error("NATS connection closed while subscribing to " + subject + ": " + closed_reason(nc_));
    }
    check(s, "NATS pending limits " + subject);
  };
  for (const std::string& s : delta_subjects) add(s, &NatsConn::on_delta);
  add(inbox_ + ".*", &NatsConn::on_reply);
  // Make sure the server has the subscriptions before the first snapshot
  // request; when not connected yet they are sent on connect, before it.
  if (natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED) natsConnection_FlushTimeout(nc_, 2000);
  LOG_INFO("nats", "subscribed subjects=%zu inbox=%s.*", delta_subjects.size(), inbox_.c_str());
  std::string kick = inbox_ + ".0";
  natsConnection_Publish(nc_, kick.c_str(), nullptr, 0);
}

natsStatus NatsConn::request_snapshot(const std::string& subject, const std::string& payload, uint64_t request_id) {
  std::string reply = inbox_ + "." + std::to_string(request_id);
  return natsConnection_PublishRequest(nc_, subject.c_str(), reply.c_str(), payload.data(),
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
  int64_t total = 0;
  for (natsSubscription* sub : subs_) {
    int64_t d = 0;
    if (natsSubscription_GetDropped(sub, &d) == NATS_OK) total += d;
  }
  return total;
}

int64_t NatsConn::pending() const {
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

void NatsConn::on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<NatsConn*>(closure)->handler_.on_message(msg, true);
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
  // `nc`, not nc_: this can run before natsConnection_Connect has returned it.
  self->handler_.on_closed(self->closed_reason(nc));
}

void NatsConn::on_error(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  if (err == NATS_SLOW_CONSUMER) {
    static_cast<NatsConn*>(closure)->handler_.on_event(NatsEvent::slow_consumer);
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
