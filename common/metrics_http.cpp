// metrics_http.cpp — see metrics_http.h. One libuv loop on one thread; each
// connection owns an llhttp parser and a fixed read buffer, so a scrape costs
// one render() and one write.
#include "metrics_http.h"

#include <llhttp.h>
#include <uv.h>

#include <cstring>

#include "log.h"

namespace tickfan {

namespace {
// Limits that keep a confused or hostile client from growing our memory:
// a scrape request is one short line and a few headers.
constexpr size_t kMaxUrl = 2048;
constexpr size_t kMaxHeaderBytes = 16384;
constexpr int kMaxConnections = 64;
}  // namespace

struct MetricsHttpServer::Impl {
  uv_loop_t loop{};
  uv_tcp_t listener{};
  uv_async_t stop_async{};
  llhttp_settings_t settings{};
  MetricsHttpServer* owner = nullptr;
  int connections = 0;
};

// Static callbacks need the server's private state; this friend gives them
// that access without widening the public header.
struct MetricsHttpAccess {
  struct Conn {
    uv_tcp_t tcp{};
    llhttp_t parser{};
    MetricsHttpServer::Impl* impl = nullptr;
    std::string url;
    size_t header_bytes = 0;
    bool closing = false;
    char buf[4096];
  };
  struct WriteReq {
    uv_write_t req{};
    std::string data;
    Conn* conn = nullptr;
    bool close_after = false;
  };

  static void on_close(uv_handle_t* h) {
    auto* conn = static_cast<Conn*>(h->data);
    if (conn != nullptr) {
      conn->impl->connections--;
      delete conn;
    }
  }

  static void close_conn(Conn* conn) {
    conn->closing = true;
    auto* h = reinterpret_cast<uv_handle_t*>(&conn->tcp);
    if (!uv_is_closing(h)) uv_close(h, on_close);
  }

  static void on_write(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    if (status < 0 || w->close_after) close_conn(w->conn);
    delete w;
  }

  static void send(Conn* conn, std::string data, bool close_after) {
    auto* w = new WriteReq;
    w->req.data = w;
    w->data = std::move(data);
    w->conn = conn;
    w->close_after = close_after;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn->tcp), &buf, 1, on_write) != 0) {
      close_conn(conn);
      delete w;
    }
  }

  static std::string response(const char* status, const char* content_type, const std::string& body, bool head,
                              bool keep_alive) {
    std::string out = "HTTP/1.1 ";
    out += status;
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    if (!head) out += body;  // RFC 9110 §9.3.2: HEAD gets GET's headers, no content
    return out;
  }

  static int on_message_begin(llhttp_t* p) {
    auto* conn = static_cast<Conn*>(p->data);
    conn->url.clear();
    conn->header_bytes = 0;
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, size_t len) {
    auto* conn = static_cast<Conn*>(p->data);
    if (conn->url.size() + len > kMaxUrl) return -1;
    conn->url.append(at, len);
    return 0;
  }

  static int on_header_bytes(llhttp_t* p, const char*, size_t len) {
    auto* conn = static_cast<Conn*>(p->data);
    conn->header_bytes += len;
    return conn->header_bytes > kMaxHeaderBytes ? -1 : 0;
  }

  static int on_message_complete(llhttp_t* p) {
    auto* conn = static_cast<Conn*>(p->data);
    MetricsHttpServer* srv = conn->impl->owner;
    srv->requests_.fetch_add(1, std::memory_order_relaxed);
    uint8_t method = llhttp_get_method(p);
    bool head = method == HTTP_HEAD;
    bool keep_alive = llhttp_should_keep_alive(p) != 0;
    std::string_view path(conn->url);
    if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

    std::string out;
    if (method != HTTP_GET && !head) {
      out = response("405 Method Not Allowed", "text/plain", "only GET and HEAD\n", false, keep_alive);
    } else if (path == "/metrics") {
      // The content type Prometheus expects for the 0.0.4 text format.
      out = response("200 OK", "text/plain; version=0.0.4; charset=utf-8", srv->registry_.render(), head, keep_alive);
    } else if (path == "/healthz") {
      std::string reason;
      bool ok = !srv->health_ || srv->health_(&reason);
      if (ok) {
        out = response("200 OK", "text/plain", "ok\n", head, keep_alive);
      } else {
        out = response("503 Service Unavailable", "text/plain", reason + "\n", head, keep_alive);
      }
    } else {
      out = response("404 Not Found", "text/plain", "not found\n", head, keep_alive);
    }
    send(conn, std::move(out), !keep_alive);
    if (!keep_alive) {
      conn->closing = true;
      return HPE_PAUSED;  // stop parsing: the connection closes after this write
    }
    return 0;
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* conn = static_cast<Conn*>(h->data);
    *buf = uv_buf_init(conn->buf, sizeof conn->buf);
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<Conn*>(s->data);
    if (nread < 0) {
      close_conn(conn);
      return;
    }
    if (nread == 0 || conn->closing) return;
    llhttp_errno_t err = llhttp_execute(&conn->parser, buf->base, static_cast<size_t>(nread));
    if (err == HPE_OK || (err == HPE_PAUSED && conn->closing)) return;
    // Malformed, oversized, or an upgrade we do not speak: say so and hang up
    // (RFC 9112 §2.2 lets a server close after a bad request).
    conn->impl->owner->bad_requests_.fetch_add(1, std::memory_order_relaxed);
    conn->closing = true;
    uv_read_stop(s);
    send(conn, response("400 Bad Request", "text/plain", "bad request\n", false, false), true);
  }

  static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* impl = static_cast<MetricsHttpServer::Impl*>(server->data);
    auto* conn = new Conn;
    conn->impl = impl;
    conn->tcp.data = conn;
    uv_tcp_init(&impl->loop, &conn->tcp);
    impl->connections++;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&conn->tcp)) != 0 || impl->connections > kMaxConnections) {
      close_conn(conn);
      return;
    }
    llhttp_init(&conn->parser, HTTP_REQUEST, &impl->settings);
    conn->parser.data = conn;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&conn->tcp), on_alloc, on_read);
  }

  static void on_stop(uv_async_t* a) {
    auto* impl = static_cast<MetricsHttpServer::Impl*>(a->data);
    // Close every handle (listener, async, connections); uv_run then returns.
    // Only connections carry a Conn in `data` and need freeing.
    uv_walk(
        &impl->loop,
        [](uv_handle_t* h, void* arg) {
          auto* impl = static_cast<MetricsHttpServer::Impl*>(arg);
          if (uv_is_closing(h)) return;
          bool is_conn = h != reinterpret_cast<uv_handle_t*>(&impl->listener) &&
                         h != reinterpret_cast<uv_handle_t*>(&impl->stop_async);
          uv_close(h, is_conn ? on_close : nullptr);
        },
        impl);
  }
};

MetricsHttpServer::MetricsHttpServer(const MetricsRegistry& registry, HealthFn health)
    : registry_(registry), health_(std::move(health)) {}

MetricsHttpServer::~MetricsHttpServer() { stop(); }

bool MetricsHttpServer::start(const std::string& host, int port, std::string* error) {
  if (port == kMetricsPortDisabled) return true;
  if (impl_) {
    *error = "metrics listener already started";
    return false;
  }
  auto impl = std::make_unique<Impl>();
  impl->owner = this;
  llhttp_settings_init(&impl->settings);
  impl->settings.on_message_begin = MetricsHttpAccess::on_message_begin;
  impl->settings.on_url = MetricsHttpAccess::on_url;
  impl->settings.on_header_field = MetricsHttpAccess::on_header_bytes;
  impl->settings.on_header_value = MetricsHttpAccess::on_header_bytes;
  impl->settings.on_message_complete = MetricsHttpAccess::on_message_complete;

  std::string where = host + ":" + std::to_string(port < 0 ? 0 : port);
  int bind_port = port < 0 ? 0 : port;
  sockaddr_storage addr{};
  int rc = host.find(':') != std::string::npos
               ? uv_ip6_addr(host.c_str(), bind_port, reinterpret_cast<sockaddr_in6*>(&addr))
               : uv_ip4_addr(host.c_str(), bind_port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) {
    *error = "metrics listen address '" + host + "' is not an IP address: " + uv_strerror(rc);
    return false;
  }
  uv_loop_init(&impl->loop);
  uv_tcp_init(&impl->loop, &impl->listener);
  impl->listener.data = impl.get();
  uv_async_init(&impl->loop, &impl->stop_async, MetricsHttpAccess::on_stop);
  impl->stop_async.data = impl.get();
  rc = uv_tcp_bind(&impl->listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl->listener), 64, MetricsHttpAccess::on_connection);
  if (rc != 0) {
    *error = "metrics listener cannot bind " + where + ": " + uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->listener), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->stop_async), nullptr);
    uv_run(&impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl->loop);
    return false;
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&impl->listener, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl_ = std::move(impl);
  running_.store(true, std::memory_order_release);
  Impl* raw = impl_.get();
  thread_ = std::thread([raw] {
    uv_run(&raw->loop, UV_RUN_DEFAULT);
    uv_loop_close(&raw->loop);
  });
  LOG_INFO("metrics", "listening addr=%s:%d paths=/metrics,/healthz", host.c_str(), bound_port_);
  return true;
}

void MetricsHttpServer::stop() {
  if (!impl_) return;
  uv_async_send(&impl_->stop_async);
  if (thread_.joinable()) thread_.join();
  impl_.reset();
  running_.store(false, std::memory_order_release);
}

}  // namespace tickfan
