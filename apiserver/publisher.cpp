// publisher.cpp — see publisher.h.
#include "publisher.h"

#include "log.h"
#include "url_redact.h"

namespace tickfan::apiserver {

Publisher::Publisher(MetricsRegistry& m) {
  disconnects_ = &m.counter("tickfan_apiserver_nats_disconnects_total", "NATS disconnections");
  reconnects_ = &m.counter("tickfan_apiserver_nats_reconnects_total", "NATS reconnections");
  slow_consumers_ =
      &m.counter("tickfan_apiserver_nats_slow_consumer_total", "NATS slow-consumer errors (snapshot requests)");
  async_errors_ = &m.counter("tickfan_apiserver_nats_errors_total", "NATS asynchronous errors");
  m.gauge_fn("tickfan_apiserver_nats_connected", "1 when connected to NATS",
             [this] { return connected() ? 1.0 : 0.0; });
}

Publisher::~Publisher() { close(); }

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
  char url[256] = "";
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  LOG_INFO("nats", "reconnected url=%s", redact_url(url).c_str());
}

void Publisher::on_closed(natsConnection*, void* p) {
  auto* self = static_cast<Publisher*>(p);
  self->connected_.store(false);
  LOG_INFO("nats", "connection closed");
  std::lock_guard<std::mutex> lock(self->closed_mu_);
  self->closed_ = true;
  self->closed_cv_.notify_all();
}

void Publisher::on_error(natsConnection*, natsSubscription*, natsStatus err, void* p) {
  auto* self = static_cast<Publisher*>(p);
  static RateLimit limit(5, 1'000'000'000);
  if (err == NATS_SLOW_CONSUMER) {
    self->slow_consumers_->inc();
  } else {
    self->async_errors_->inc();
  }
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_WARN("nats", "async error=\"%s\" suppressed=%llu", natsStatus_GetText(err),
             static_cast<unsigned long long>(suppressed));
  }
}

bool Publisher::connect(const NatsConfig& cfg, std::string* error) {
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
  if (!cfg.creds_file.empty() &&
      (s = natsOptions_SetUserCredentialsFromFiles(opts_, cfg.creds_file.c_str(), nullptr)) != NATS_OK) {
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
  natsOptions_SetRetryOnFailedConnect(
      opts_, true,
      [](natsConnection* nc, void* p) {
        static_cast<Publisher*>(p)->connected_.store(true);
        char url[256] = "";
        natsConnection_GetConnectedUrl(nc, url, sizeof url);
        LOG_INFO("nats", "connected (after retrying) url=%s", redact_url(url).c_str());
      },
      this);
  natsOptions_SetSendAsap(opts_, cfg.send_asap);
  natsOptions_SetDisconnectedCB(opts_, on_disconnected, this);
  natsOptions_SetReconnectedCB(opts_, on_reconnected, this);
  natsOptions_SetClosedCB(opts_, on_closed, this);
  natsOptions_SetErrorHandler(opts_, on_error, this);

  s = natsConnection_Connect(&conn_, opts_);
  if (s == NATS_OK) {
    connected_.store(true);
    char url[256] = "";
    natsConnection_GetConnectedUrl(conn_, url, sizeof url);
    LOG_INFO("nats", "connected url=%s send_asap=%d", redact_url(url).c_str(), cfg.send_asap ? 1 : 0);
  } else if (s == NATS_NOT_YET_CONNECTED) {
    LOG_WARN("nats", "no server reachable yet, retrying in the background servers=%zu", cfg.servers.size());
  } else {
    return fail("nats connect", s);
  }
  return true;
}

natsStatus Publisher::publish(const char* subject, const void* data, int len) {
  return natsConnection_Publish(conn_, subject, data, len);
}

bool Publisher::subscribe(const char* subject, natsMsgHandler cb, void* closure, std::string* error) {
  natsStatus s = natsConnection_Subscribe(&sub_, conn_, subject, cb, closure);
  if (s != NATS_OK) {
    *error = std::string("nats subscribe ") + subject + ": " + natsStatus_GetText(s);
    return false;
  }
  natsSubscription_SetPendingLimits(sub_, 10000, 64 * 1024 * 1024);
  return true;
}

natsStatus Publisher::flush(int timeout_ms) { return conn_ ? natsConnection_FlushTimeout(conn_, timeout_ms) : NATS_OK; }

void Publisher::close() {
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
  closing_.store(true);
  if (conn_) {
    natsConnection_Close(conn_);
    {
      std::unique_lock<std::mutex> lock(closed_mu_);
      closed_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return closed_; });
    }
    natsConnection_Destroy(conn_);
    conn_ = nullptr;
  }
  if (opts_) {
    natsOptions_Destroy(opts_);
    opts_ = nullptr;
  }
}

}  // namespace tickfan::apiserver
