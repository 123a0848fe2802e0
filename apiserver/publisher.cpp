// publisher.cpp — see publisher.h.
#include "publisher.h"

#include <chrono>
#include <cstring>

#include "log.h"
#include "nats_creds.h"
#include "nats_text.h"
#include "url_redact.h"

namespace tickfan::apiserver {

Publisher::Publisher(MetricsRegistry& m, FatalHandler on_fatal) : on_fatal_(std::move(on_fatal)) {
  disconnects_ = &m.counter("tickfan_apiserver_nats_disconnects_total", "NATS disconnections");
  reconnects_ = &m.counter("tickfan_apiserver_nats_reconnects_total", "NATS reconnections");
  slow_consumers_ =
      &m.counter("tickfan_apiserver_nats_slow_consumer_total", "NATS slow-consumer errors (snapshot requests)");
  async_errors_ = &m.counter("tickfan_apiserver_nats_errors_total", "NATS asynchronous errors");
  m.gauge_fn("tickfan_apiserver_nats_connected", "1 when connected to NATS",
             [this] { return connected() ? 1.0 : 0.0; });
}

Publisher::~Publisher() { close(); }

void Publisher::report_fatal(const std::string& why) {
  if (!fatal_reported_.exchange(true) && on_fatal_) on_fatal_(why);
}

std::string Publisher::servers_text() const {
  return redact_urls(cfg_.servers);
}

std::string Publisher::closed_reason(natsConnection* nc) {
  const char* text = nullptr;
  std::string now;
  if (natsConnection_GetLastError(nc, &text) != NATS_OK && text && *text) now = text;
  std::string before;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    before = noted_error_;
  }
  if (now.empty()) now = "no reason given";
  if (before.empty() || before == now) return now;
  return before + " (then: " + now + ")";
}

void Publisher::on_disconnected(natsConnection*, void* p) {
  auto* self = static_cast<Publisher*>(p);
  if (self->connected_.exchange(false) && !self->closing_.load()) {
    self->disconnects_->inc();
    LOG_WARN("nats", "disconnected, buffering publishes until reconnected");
  }
}

void Publisher::on_reconnected(natsConnection* nc, void* p) {
  auto* self = static_cast<Publisher*>(p);
  self->connected_.store(true);
  self->reconnects_->inc();
  {
    std::lock_guard<std::mutex> lock(self->error_mu_);
    self->noted_error_.clear();  // a cause from before this reconnect explains nothing later
  }
  char url[256] = "";
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  LOG_INFO("nats", "reconnected url=%s", redact_url(url).c_str());
}

void Publisher::on_closed(natsConnection* nc, void* p) {
  auto* self = static_cast<Publisher*>(p);
  self->connected_.store(false);
  if (self->closing_.load()) {
    LOG_INFO("nats", "connection closed");
  } else {
    // The library closes for good by itself (two refused logins in a row on
    // a reconnect, a server -ERR it does not know): no publish will ever
    // succeed again. Running on would look alive and publish nothing; the
    // supervisor restarts a process that exits.
    std::string why = self->closed_reason(nc);
    LOG_ERROR("nats", "connection closed by the NATS library: %s; nothing can be published any more", why.c_str());
    self->report_fatal("NATS connection closed by the library: " + why);
  }
  std::lock_guard<std::mutex> lock(self->closed_mu_);
  self->closed_ = true;
  self->closed_cv_.notify_all();
}

void Publisher::on_error(natsConnection* nc, natsSubscription*, natsStatus err, void* p) {
  auto* self = static_cast<Publisher*>(p);
  static RateLimit limit(5, 1'000'000'000);
  if (err == NATS_SLOW_CONSUMER) {
    self->slow_consumers_->inc();
  } else {
    self->async_errors_->inc();
    const char* text = nullptr;
    if (natsConnection_GetLastError(nc, &text) != NATS_OK && text && *text) {
      std::lock_guard<std::mutex> lock(self->error_mu_);
      self->noted_error_ = text;
    }
  }
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_WARN("nats", "async error=\"%s\" suppressed=%llu", natsStatus_GetText(err),
             static_cast<unsigned long long>(suppressed));
  }
}

bool Publisher::connect(const NatsConfig& cfg, const std::string& snapshot_subject, natsMsgHandler on_snapshot,
                        void* closure, std::string* error) {
  cfg_ = cfg;
  snapshot_subject_ = snapshot_subject;
  on_snapshot_ = on_snapshot;
  snapshot_closure_ = closure;
  auto fail = [&](const char* what, natsStatus s) {
    *error = std::string(what) + ": " + natsStatus_GetText(s);
    const char* last = nats_GetLastError(nullptr);
    if (last && *last) *error += std::string(" (") + last + ")";
    return false;
  };
  natsStatus s = natsOptions_Create(&opts_);
  if (s != NATS_OK) return fail("nats options", s);
  std::vector<const char*> urls;
  for (const auto& u : cfg.servers) urls.push_back(u.c_str());
  if ((s = natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size()))) != NATS_OK) {
    return fail("nats server list", s);
  }
  natsOptions_SetName(opts_, cfg.name.c_str());
  if (!cfg.user.empty() && (s = natsOptions_SetUserInfo(opts_, cfg.user.c_str(), cfg.password.c_str())) != NATS_OK) {
    return fail("nats user/password", s);
  }
  if (!cfg.token.empty() && (s = natsOptions_SetToken(opts_, cfg.token.c_str())) != NATS_OK) {
    return fail("nats token", s);
  }
  if (!cfg.creds_file.empty()) {
    // Refused here, by name, if no connect could use it (nats_creds.h).
    if (std::string bad = check_nats_creds_file(cfg.creds_file); !bad.empty()) {
      *error = bad;
      return false;
    }
    if ((s = natsOptions_SetUserCredentialsFromFiles(opts_, cfg.creds_file.c_str(), nullptr)) != NATS_OK)
      return fail(("nats credentials file " + cfg.creds_file).c_str(), s);
  }
  if (cfg.tls || !cfg.tls_ca.empty() || !cfg.tls_cert.empty()) {
    if ((s = natsOptions_SetSecure(opts_, true)) != NATS_OK) return fail("nats TLS", s);
    if (!cfg.tls_ca.empty() && (s = natsOptions_LoadCATrustedCertificates(opts_, cfg.tls_ca.c_str())) != NATS_OK) {
      return fail(("nats TLS CA file " + cfg.tls_ca).c_str(), s);
    }
    if (!cfg.tls_cert.empty() &&
        (s = natsOptions_LoadCertificatesChain(opts_, cfg.tls_cert.c_str(), cfg.tls_key.c_str())) != NATS_OK) {
      return fail(("nats TLS certificate " + cfg.tls_cert).c_str(), s);
    }
    if (cfg.tls_skip_verify) natsOptions_SkipServerVerification(opts_, true);
  }
  natsOptions_SetAllowReconnect(opts_, true);
  natsOptions_SetMaxReconnect(opts_, -1);  // forever
  natsOptions_SetReconnectWait(opts_, cfg.reconnect_wait_ms);
  natsOptions_SetReconnectJitter(opts_, cfg.reconnect_jitter_ms, cfg.reconnect_jitter_ms * 4);
  natsOptions_SetReconnectBufSize(opts_, cfg.reconnect_buffer_mb * 1024 * 1024);
  // No natsOptions_SetRetryOnFailedConnect: libnats 3.4.1 gives up for good
  // when an attempt fails after the TCP connect (publisher.h); the connector
  // thread retries instead.
  natsOptions_SetSendAsap(opts_, cfg.send_asap);
  natsOptions_SetDisconnectedCB(opts_, on_disconnected, this);
  natsOptions_SetReconnectedCB(opts_, on_reconnected, this);
  natsOptions_SetClosedCB(opts_, on_closed, this);
  natsOptions_SetErrorHandler(opts_, on_error, this);

  natsConnection* nc = nullptr;
  std::string why;
  s = connect_once(&nc, &why);
  if (s == NATS_OK) {
    bool subscribed = subscribe_on(nc, error);
    hand_over(nc);  // close() releases it, also after a failed subscribe
    if (!subscribed) return false;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    LOG_INFO("nats", "connected url=%s send_asap=%d", redact_url(url).c_str(), cfg.send_asap ? 1 : 0);
    return true;
  }
  if (s == NATS_CONNECTION_AUTH_FAILED || nats_mentions_login(why)) {
    // Retrying will not change the answer; the supervisor restarts us.
    *error = "nats login refused by " + servers_text() + ": " + why;
    return false;
  }
  LOG_WARN("nats", "not connected yet servers=%s error=\"%s\"; retrying in the background", servers_text().c_str(),
           why.c_str());
  connector_ = std::thread([this] { connect_loop(); });
  return true;
}

natsStatus Publisher::connect_once(natsConnection** nc, std::string* why) {
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

bool Publisher::subscribe_on(natsConnection* nc, std::string* error) {
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(&sub, nc, snapshot_subject_.c_str(), on_snapshot_, snapshot_closure_);
  if (s != NATS_OK) {
    *error = "nats subscribe " + snapshot_subject_ + ": " + natsStatus_GetText(s);
    if (s == NATS_CONNECTION_CLOSED) *error += " (" + closed_reason(nc) + ")";
    return false;
  }
  sub_ = sub;
  natsSubscription_SetPendingLimits(sub_, 10000, 64 * 1024 * 1024);
  return true;
}

std::string Publisher::hand_over(natsConnection* nc) {
  std::lock_guard<std::mutex> lock(buffer_mu_);
  size_t failed = 0;
  for (const Buffered& b : buffered_) {
    if (natsConnection_Publish(nc, b.subject.c_str(), b.data.data(), static_cast<int>(b.data.size())) != NATS_OK) {
      ++failed;
    }
  }
  std::string sent;
  if (!buffered_.empty()) {
    sent = " buffered_batches=" + std::to_string(buffered_.size()) +
           " buffered_bytes=" + std::to_string(buffered_bytes_) + " buffered_failed=" + std::to_string(failed);
  }
  buffered_.clear();
  buffered_.shrink_to_fit();
  buffered_bytes_ = 0;
  connected_.store(natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED);
  conn_.store(nc, std::memory_order_release);
  return sent;
}

void Publisher::connect_loop() {
  ConnectRetry retry(cfg_.reconnect_wait_ms, cfg_.reconnect_jitter_ms);
  for (;;) {
    if (!retry.wait(connector_mu_, connector_cv_, [&] { return closing_.load(); })) return;
    natsConnection* nc = nullptr;
    std::string why;
    natsStatus s = connect_once(&nc, &why);
    retry.attempted();
    if (s == NATS_OK) {
      std::string error;
      bool subscribed = closing_.load() || subscribe_on(nc, &error);
      std::string sent = hand_over(nc);  // close() releases it
      if (closing_.load()) return;
      if (!subscribed) {
        LOG_ERROR("nats", "%s", error.c_str());
        report_fatal(error);
        return;
      }
      char url[256] = "";
      natsConnection_GetConnectedUrl(nc, url, sizeof url);
      LOG_INFO("nats", "connected url=%s attempts=%llu send_asap=%d%s", redact_url(url).c_str(),
               static_cast<unsigned long long>(retry.attempts()), cfg_.send_asap ? 1 : 0, sent.c_str());
      return;
    }
    if (closing_.load()) return;  // the attempt close() waited out: no "retrying"
    if (s == NATS_CONNECTION_AUTH_FAILED || nats_mentions_login(why)) {
      std::string what = "login refused by " + servers_text() + ": " + why;
      LOG_ERROR("nats", "%s; not retrying", what.c_str());
      report_fatal("NATS " + what);
      return;
    }
    uint64_t unlogged = 0;
    if (retry.should_log(why, &unlogged)) {
      LOG_WARN("nats", "connect failed servers=%s error=\"%s\" attempt=%llu not_logged=%llu; retrying",
               servers_text().c_str(), why.c_str(), static_cast<unsigned long long>(retry.attempts()),
               static_cast<unsigned long long>(unlogged));
    }
  }
}

natsStatus Publisher::publish(const char* subject, const void* data, int len) {
  natsConnection* nc = conn_.load(std::memory_order_acquire);
  if (nc) return natsConnection_Publish(nc, subject, data, len);
  std::lock_guard<std::mutex> lock(buffer_mu_);
  // The connector may have handed over while we waited for the lock: the
  // buffer is then already sent, and this goes after it.
  if ((nc = conn_.load(std::memory_order_acquire)) != nullptr) return natsConnection_Publish(nc, subject, data, len);
  size_t size = std::strlen(subject) + static_cast<size_t>(len);
  if (buffered_bytes_ + size > static_cast<size_t>(cfg_.reconnect_buffer_mb) * 1024 * 1024) {
    return NATS_INSUFFICIENT_BUFFER;
  }
  Buffered b;
  b.subject = subject;
  if (len > 0) b.data.assign(static_cast<const char*>(data), static_cast<size_t>(len));
  buffered_.push_back(std::move(b));
  buffered_bytes_ += size;
  return NATS_OK;
}

natsStatus Publisher::flush(int timeout_ms) {
  if (natsConnection* nc = conn_.load(std::memory_order_acquire)) return natsConnection_FlushTimeout(nc, timeout_ms);
  std::lock_guard<std::mutex> lock(buffer_mu_);
  if (!buffered_.empty()) {
    LOG_WARN("nats", "never connected: published batches not delivered batches=%zu bytes=%zu", buffered_.size(),
             buffered_bytes_);
  }
  return NATS_NOT_YET_CONNECTED;
}

size_t Publisher::undelivered_batches() const {
  std::lock_guard<std::mutex> lock(buffer_mu_);
  return buffered_.size();
}

void Publisher::close() {
  {
    std::lock_guard<std::mutex> lock(connector_mu_);
    closing_.store(true);
  }
  connector_cv_.notify_all();
  if (connector_.joinable()) connector_.join();  // an attempt in progress ends within the connect timeout
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
  if (natsConnection* nc = conn_.exchange(nullptr)) {
    natsConnection_Close(nc);
    {
      std::unique_lock<std::mutex> lock(closed_mu_);
      closed_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return closed_; });
    }
    natsConnection_Destroy(nc);
  }
  if (opts_) {
    natsOptions_Destroy(opts_);
    opts_ = nullptr;
  }
  std::lock_guard<std::mutex> lock(buffer_mu_);
  buffered_.clear();
  buffered_bytes_ = 0;
}

}  // namespace tickfan::apiserver
