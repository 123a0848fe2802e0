// MetricsHttpServer: real loopback sockets against the listener thread, port
// chosen by the OS, so the tests can run next to anything else on the machine.
#include "metrics_http.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

using namespace tickfan;

namespace {
// Sends `request` and reads until the server closes (or 3 s pass).
std::string exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}
}  // namespace

TEST_CASE("metrics listener serves /metrics and /healthz on an OS-chosen port") {
  MetricsRegistry reg;
  reg.counter("tf_test_total", "A test counter").inc(7);
  std::atomic<bool> healthy{true};
  MetricsHttpServer http(reg, [&](std::string* reason) {
    if (!healthy) *reason = "nats disconnected";
    return healthy.load();
  });
  std::string err;
  REQUIRE(http.start("127.0.0.1", kMetricsPortAny, &err));
  REQUIRE(http.port() > 0);

  std::string r = exchange(http.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(r.find("tf_test_total 7\n") != std::string::npos);

  r = exchange(http.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  healthy = false;
  r = exchange(http.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(r.find("nats disconnected") != std::string::npos);

  r = exchange(http.port(), "GET /nope HTTP/1.0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 404", 0) == 0);
  r = exchange(http.port(), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 405", 0) == 0);
  http.stop();
  CHECK_FALSE(http.running());
}

TEST_CASE("metrics listener answers two keep-alive requests on one connection") {
  MetricsRegistry reg;
  MetricsHttpServer http(reg);
  std::string err;
  REQUIRE(http.start("127.0.0.1", kMetricsPortAny, &err));
  std::string r = exchange(http.port(),
                           "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t first = r.find("HTTP/1.1 200 OK");
  REQUIRE(first != std::string::npos);
  CHECK(r.find("HTTP/1.1 200 OK", first + 1) != std::string::npos);
}

TEST_CASE("metrics listener closes malformed requests and keeps serving") {
  MetricsRegistry reg;
  MetricsHttpServer http(reg);
  std::string err;
  REQUIRE(http.start("127.0.0.1", kMetricsPortAny, &err));
  std::string r = exchange(http.port(), "this is not http\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 400", 0) == 0);
  std::string huge = "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n";
  r = exchange(http.port(), huge);
  CHECK(r.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(http.bad_requests() == 2);
  r = exchange(http.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200 OK", 0) == 0);
}

TEST_CASE("metrics listener: port 0 disables it, a taken port is a clear error") {
  MetricsRegistry reg;
  MetricsHttpServer off(reg);
  std::string err;
  CHECK(off.start("127.0.0.1", kMetricsPortDisabled, &err));
  CHECK(off.port() == 0);
  CHECK_FALSE(off.running());

  MetricsHttpServer a(reg);
  REQUIRE(a.start("127.0.0.1", kMetricsPortAny, &err));
  MetricsHttpServer b(reg);
  CHECK_FALSE(b.start("127.0.0.1", a.port(), &err));
  CHECK(err.find("127.0.0.1:" + std::to_string(a.port())) != std::string::npos);
  CHECK_FALSE(b.start("not-an-ip", 1, &err));
  CHECK(err.find("not-an-ip") != std::string::npos);
}
