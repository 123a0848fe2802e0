// limits_test.cpp — every refusal of docs/http.md "Limits" and a corpus of
// malformed and hostile requests: each gets its status (or a close), the
// refusal is counted, and the server keeps serving other connections.
#include <doctest/doctest.h>
#include <libdeflate.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "fixture.h"

using namespace tickfan::testing;

namespace {
// Sends `bytes` on a fresh connection; returns the first response (status 0
// if the server closed without one).
HttpResponse raw(int port, const std::string& bytes, int timeout_ms = 3000) {
  RawConn c(port);
  if (!c.ok() || !c.send(bytes)) return {};
  return c.read(timeout_ms);
}
bool still_serving(int port) { return http_get(port, "/v1/quotes/sh600000").status == 200; }
// X-Data-Age-Ms of a response; -2 when it is absent or not a number.
long age_ms(const HttpResponse& r) {
  std::string v = r.header("X-Data-Age-Ms");
  if (v.empty() || v.find_first_not_of("-0123456789") != std::string::npos) return -2;
  return std::stol(v);
}
// Sends `req` on a fresh connection and checks it is refused the way a
// malformed request must be: 400, a JSON error body, Connection: close, and
// the connection closed. Returns the response for further checks.
HttpResponse refused_with_400_and_close(int port, const std::string& req) {
  CAPTURE(req);
  RawConn c(port);
  REQUIRE(c.send(req));
  auto r = c.read();
  CHECK(r.status == 400);
  CHECK(r.body.starts_with("{\"error\":{\"status\":400"));
  CHECK(r.header("Connection") == "close");
  CHECK(c.closed_within(3000));
  return r;
}
}  // namespace

TEST_CASE("unknown path is 404 and a wrong method is 405 with Allow, both with JSON bodies") {
  HttpFixture f;
  auto nf = http_get(f.port, "/nope");
  CHECK(nf.status == 404);
  CHECK(nf.body.starts_with("{\"error\":{\"status\":404"));
  auto post = http_get(f.port, "/v1/quotes/sh600000", {"Content-Length: 0"}, "POST");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD, OPTIONS");
  CHECK(post.body.find("\"status\":405") != std::string::npos);
  CHECK(raw(f.port, "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n").status == 505);
  CHECK(raw(f.port, "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n").status == 505);
}

TEST_CASE("Host (RFC 9112 §3.2): missing in HTTP/1.1, repeated or invalid is 400 + close; HTTP/1.0 may omit it") {
  HttpFixture f({}, 40, 1);  // one worker, so its /metrics counts every refusal
  const std::vector<std::string> refused = {
      "GET /healthz HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
      "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a:80x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: [::1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a@b\r\n\r\n",
      "GET http://a/healthz HTTP/1.1\r\n\r\n",  // absolute-form still needs Host
  };
  for (const auto& req : refused) CHECK(refused_with_400_and_close(f.port, req).body.find("Host") != std::string::npos);
  const std::vector<std::string> accepted = {
      "GET /healthz HTTP/1.0\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHOST: [::1]:80\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: quotes.example.com\t\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: \r\n\r\n",  // empty: allowed (RFC 9110 §7.2)
  };
  for (const auto& req : accepted) {
    CAPTURE(req);
    CHECK(raw(f.port, req).status == 200);
  }
  auto m = http_get(f.port, "/metrics");
  const std::string series = "tickfan_http_bad_requests_total{worker=\"0\",reason=\"parse\"} ";
  size_t at = m.body.find(series);
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(m.body.substr(at + series.size())) == static_cast<int>(refused.size()));
}

TEST_CASE("whitespace between a header name and the colon is 400 + close (RFC 9112 §5.1)") {
  HttpFixture f;
  for (const std::string& req : {std::string("GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
                                 std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nAccept-Encoding : gzip\r\n\r\n"),
                                 std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A b: 1\r\n\r\n"),
                                 std::string("GET /healthz HTTP/1.0\r\nX\"y: 1\r\n\r\n")}) {
    refused_with_400_and_close(f.port, req);
  }
  CHECK(still_serving(f.port));
}

TEST_CASE("a request target over the limit gets 414, a header section over the limit 431") {
  HttpFixture f({"--max-uri-bytes", "1024", "--max-header-bytes", "2048"});
  auto uri = raw(f.port, "GET /v1/quotes?symbols=" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(uri.status == 414);
  CHECK(uri.header("Connection") == "close");
  auto hdr = raw(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n");
  CHECK(hdr.status == 431);
  // Many small headers add up too.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": vvvvvvvvvvvvvvvv\r\n";
  CHECK(raw(f.port, many + "\r\n").status == 431);
  CHECK(still_serving(f.port));
}

TEST_CASE("refusals before routing (400, 408, 413, 414, 431, 505) carry the data's age when they are sent") {
  HttpFixture f({"--max-uri-bytes", "1024", "--max-header-bytes", "2048", "--header-timeout-ms", "1000"}, 40, 1);
  // The worker reads the store header for this request; then nothing asks
  // it to for a while. A refusal sent after that must report the age as of
  // its own sending (it used to repeat the one of the last routed request,
  // and had none at all until a routed request found a new store).
  auto data = http_get(f.port, "/v1/quotes/sh600000");
  REQUIRE(data.status == 200);
  const long before = age_ms(data);
  REQUIRE(before >= 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const std::vector<std::pair<int, std::string>> refused = {
      {400, "GARBAGE\r\n\r\n"},
      {413, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
      {414, "GET /v1/quotes?symbols=" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      {431, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n"},
      {505, "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"},
      // Last: route()'s own refusal (RFC 9112 §3.2) re-reads the header, as
      // every routed request does, and would hide the ones above.
      {400, "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n"},
  };
  long last = -2;
  for (const auto& [status, req] : refused) {
    CAPTURE(status);
    auto r = raw(f.port, req);
    CHECK(r.status == status);
    last = age_ms(r);
    CHECK(last >= before + 1000);
  }
  // 408: sent by the worker's sweep at least --header-timeout-ms after the
  // request began, so after the last refusal above.
  RawConn slow(f.port);
  REQUIRE(slow.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n"));
  auto timeout = slow.read(4000);
  CHECK(timeout.status == 408);
  CHECK(age_ms(timeout) >= last + 900);
}

TEST_CASE("CORS with --cors-origin *: every refusal before routing says Access-Control-Allow-Origin: *") {
  HttpFixture f(
      {"--cors-origin", "*", "--max-uri-bytes", "1024", "--max-header-bytes", "2048", "--header-timeout-ms", "1000"},
      40, 1);
  // docs/http.md, CORS: with "*" every response may be read by any origin,
  // with or without an Origin header; a browser's script then sees the
  // status instead of a network error.
  RawConn slow(f.port);  // 408, answered by the sweep while the others run
  REQUIRE(slow.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n"));
  const std::vector<std::pair<int, std::string>> refused = {
      {400, "GARBAGE\r\n\r\n"},
      {400, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nX-Bad: a\x01z\r\n\r\n"},
      {413, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
      {414, "GET /v1/quotes?symbols=" + std::string(2000, 'a') +
                " HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n"},
      {431, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n"},
      {505, "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"},
  };
  for (const auto& [status, req] : refused) {
    CAPTURE(req.substr(0, 80));
    auto r = raw(f.port, req);
    CHECK(r.status == status);
    CHECK(r.header("Access-Control-Allow-Origin") == "*");
    CHECK(r.header("Access-Control-Expose-Headers").find("X-Data-Age-Ms") != std::string::npos);
    CHECK(r.header("Vary").empty());  // the same for every Origin: nothing varies
  }
  auto timeout = slow.read(4000);
  CHECK(timeout.status == 408);
  CHECK(timeout.header("Access-Control-Allow-Origin") == "*");
}

TEST_CASE("CORS with a list of origins: a refusal echoes a listed Origin whose line it received whole, with Vary") {
  HttpFixture f({"--cors-origin", "https://a.example", "--max-uri-bytes", "1024", "--max-header-bytes", "2048",
                 "--header-timeout-ms", "1000"},
                40, 1);
  const std::string origin = "Origin: https://a.example\r\n";
  // 408s: one whose Origin line is over (echoed; the parser knows a line
  // is over when the next one begins), one cut inside the value, where
  // "https://a.example" may be the start of "https://a.example.evil"
  // (never echoed).
  RawConn slow_whole(f.port), slow_cut(f.port);
  REQUIRE(slow_whole.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n" + origin + "Accept: */*\r\n"));
  REQUIRE(slow_cut.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example"));
  struct Case {
    int status;
    std::string req;
    bool echoed;
  };
  const std::string big = "X-Big: " + std::string(4000, 'b') + "\r\n";
  const std::vector<Case> cases = {
      // The head is complete: the Origin is known as for any request.
      {413, "GET /healthz HTTP/1.1\r\nHost: x\r\n" + origin + "Content-Length: 5\r\n\r\nhello", true},
      {505, "GET /healthz HTTP/2.0\r\nHost: x\r\n" + origin + "\r\n", true},
      {413, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nContent-Length: 5\r\n\r\nhello",
       false},
      // A malformed line or an oversized header section: known if the
      // Origin line came first.
      {400, "GET /healthz HTTP/1.1\r\nHost: x\r\n" + origin + "X-Bad: a\x01z\r\n\r\n", true},
      {400, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01z\r\n" + origin + "\r\n", false},
      {400, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\x01\r\n\r\n", false},  // the fault in it
      {431, "GET /healthz HTTP/1.1\r\nHost: x\r\n" + origin + big + "\r\n", true},
      {431, "GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + origin + "\r\n", false},
      // The request target comes before any header.
      {414, "GET /v1/quotes?symbols=" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n" + origin + "\r\n", false},
  };
  auto check = [](const HttpResponse& r, bool echoed) {
    if (echoed) {
      CHECK(r.header("Access-Control-Allow-Origin") == "https://a.example");
      CHECK(r.header("Access-Control-Expose-Headers").find("X-Data-Age-Ms") != std::string::npos);
      // The echoed origin makes the response depend on Origin (Fetch, RFC 9111 §4.1).
      CHECK(r.header("Vary").find("Origin") != std::string::npos);
    } else {
      CHECK(r.header("Access-Control-Allow-Origin").empty());
      CHECK(r.header("Access-Control-Expose-Headers").empty());
    }
  };
  for (const auto& c : cases) {
    CAPTURE(c.req.substr(0, 100));
    auto r = raw(f.port, c.req);
    CHECK(r.status == c.status);
    CHECK(r.header("Connection") == "close");
    check(r, c.echoed);
  }
  auto whole = slow_whole.read(4000);
  CHECK(whole.status == 408);
  check(whole, true);
  auto cut = slow_cut.read(4000);
  CHECK(cut.status == 408);
  check(cut, false);
  CHECK(still_serving(f.port));
}

TEST_CASE("a body on GET gets 413 and the connection is closed") {
  HttpFixture f;
  RawConn c(f.port);
  REQUIRE(c.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  auto r = c.read();
  CHECK(r.status == 413);
  CHECK(c.closed_within(3000));
  CHECK(raw(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .status == 413);
  CHECK(still_serving(f.port));
}

TEST_CASE("slowloris: headers not complete within the header timeout get 408 and a close") {
  HttpFixture f({"--header-timeout-ms", "500"});
  RawConn slow(f.port);
  REQUIRE(slow.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(slow.send("X-Drip: 1\r\n"));
  CHECK(still_serving(f.port));  // others are served meanwhile
  auto r = slow.read(3000);
  CHECK(r.status == 408);
  CHECK(slow.closed_within(3000));
  // A connection that never sends a byte is closed too.
  RawConn silent(f.port);
  CHECK(silent.closed_within(3000));
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  HttpFixture f({"--idle-timeout-ms", "500"});
  RawConn c(f.port);
  // Timed from before the request: the server's idle timer starts after its
  // answer, so a test thread stalled after reading cannot shorten the wait.
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(c.read().status == 200);
  CHECK(c.closed_within(3000));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
}

// Builds a std::string from a literal that may contain NUL bytes.
template <size_t N>
std::string bytes(const char (&lit)[N]) {
  return std::string(lit, N - 1);
}

TEST_CASE("hostile corpus: protocol garbage gets an error status or a close, and the server keeps serving") {
  HttpFixture f({}, 40, 1);  // one worker, so its /metrics counts every refusal
  const std::vector<std::string> corpus = {
      bytes("GARBAGE\r\n\r\n"),
      bytes("GET\r\n\r\n"),
      bytes("GET /healthz HTTP/9.9\r\n\r\n"),
      bytes("GET /healthz HTTP/2.0\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nHo\0st: x\r\n\r\n"),
      bytes("GET /v1/quotes/sh6\0000 HTTP/1.1\r\nHost: x\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\n Folded: x\r\n\r\n"),
      bytes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),  // a TLS ClientHello
      bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      bytes("CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n"),
      std::string(70000, 'A'),
      "GET /" + std::string(40000, '/') + " HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (size_t i = 0; i < corpus.size(); ++i) {
    CAPTURE(i);
    RawConn c(f.port);
    REQUIRE(c.ok());
    c.send(corpus[i]);
    auto r = c.read(3000);
    if (r.status != 0) {
      CHECK(r.status >= 400);
      CHECK((r.body.starts_with("{\"error\"") || r.body.empty()));
    }
    // Either way the server closes (or has closed) the connection.
    CHECK(c.closed_within(3000));
  }
  // Pipelined garbage after a valid request: the valid one is answered first.
  RawConn p(f.port);
  REQUIRE(p.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n\r\nBLAH BLAH\r\n\r\n"));
  CHECK(p.read().status == 200);
  CHECK(p.read().status == 400);
  CHECK(p.closed_within(3000));
  CHECK(still_serving(f.port));
  auto m = http_get(f.port, "/metrics");
  const std::string series = "tickfan_http_bad_requests_total{worker=\"0\",reason=\"parse\"} ";
  size_t at = m.body.find(series);
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(m.body.substr(at + series.size())) >= 10);
}

TEST_CASE("hostile but well-formed requests get a 4xx JSON error and the connection stays usable") {
  HttpFixture f;
  const std::vector<std::string> targets = {
      "/v1/quotes?symbols=%zz",
      "/v1/quotes?symbols=%00",
      "/v1/quotes/%ff%fe",
      "/v1/quotes/%22%3Cscript%3E",
      "/v1/rank?limit=99999999999999999999999",
      "/v1/rank?offset=-1",
      "/v1/quotes?symbols=,,,,",
  };
  RawConn c(f.port);
  for (const auto& t : targets) {
    CAPTURE(t);
    REQUIRE(c.send("GET " + t + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read();
    CHECK(r.status >= 400);
    CHECK(r.status < 500);
    CHECK(r.body.starts_with("{\"error\":{\"status\":"));
    CHECK(r.body.find('<') == std::string::npos);  // echoed input is JSON-escaped, never raw markup
  }
  REQUIRE(c.send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(c.read().status == 200);
  // An Upgrade request is served as plain HTTP/1.1 (RFC 9110 §7.8 lets us
  // ignore Upgrade), then closed because we will not switch.
  RawConn u(f.port);
  REQUIRE(u.send("GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  auto ur = u.read();
  CHECK(ur.status == 200);
  CHECK(ur.header("Connection") == "close");
  CHECK(u.closed_within(3000));
}

TEST_CASE("connections over --max-connections get 503 and a close; others are served") {
  HttpFixture f({"--max-connections", "5"}, 40, 1);
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<RawConn>(f.port));
    REQUIRE(held.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(held.back()->read().status == 200);
  }
  auto over = raw(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(over.status == 503);
  CHECK(over.header("Retry-After") == "1");
  CHECK(over.header("Date").ends_with(" GMT"));  // RFC 9110 §6.6.1, on the canned answer too
  CHECK(over.header("Date").find("1994") == std::string::npos);  // the current date, not the placeholder
  CHECK(over.header("Server") == "tickfan");
  // Every response carries the data's age (docs/http.md), this one too.
  CHECK(age_ms(over) >= 0);
  CHECK(over.body.find("too many connections") != std::string::npos);
  REQUIRE(held[0]->send("GET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(held[0]->read().status == 200);
  held.clear();
  CHECK(wait_until([&] { return http_get(f.port, "/healthz").status == 200; }, 3000));
}

TEST_CASE("the canned 503 has Access-Control-Allow-Origin: * with --cors-origin *, none with a list of origins") {
  for (const char* cors : {"*", "https://a.example"}) {
    CAPTURE(cors);
    HttpFixture f({"--max-connections", "2", "--cors-origin", cors}, 40, 1);
    std::vector<std::unique_ptr<RawConn>> held;
    for (int i = 0; i < 2; ++i) {
      held.push_back(std::make_unique<RawConn>(f.port));
      REQUIRE(held.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      REQUIRE(held.back()->read().status == 200);
    }
    auto over = raw(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n");
    REQUIRE(over.status == 503);
    if (std::string(cors) == "*") {
      // Any origin may read it, so a script sees the 503 and when to retry.
      CHECK(over.header("Access-Control-Allow-Origin") == "*");
      CHECK(over.header("Access-Control-Expose-Headers") == "Retry-After, X-Data-Age-Ms");
      CHECK(over.header("Vary").empty());
    } else {
      // Answered before the request is read: its Origin is unknown, and
      // echoing one unread would be a guess (docs/http.md, CORS).
      CHECK(over.header("Access-Control-Allow-Origin").empty());
      CHECK(over.header("Access-Control-Expose-Headers").empty());
    }
    CHECK(over.header("Retry-After") == "1");
    CHECK(over.body.find("too many connections") != std::string::npos);
  }
}

namespace {
// Peak resident memory of a process (VmHWM), in bytes; 0 if unknown.
// (Unused in sanitizer builds, whose shadow memory makes RSS meaningless.)
[[maybe_unused]] size_t peak_rss(int pid) {
  std::string st = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = st.find("VmHWM:");
  return at == std::string::npos ? 0 : std::stoul(st.substr(at + 6)) * 1024;
}
int worker_pid(int port) {
  auto r = http_get(port, "/healthz");
  size_t p = r.body.find("\"pid\":");
  return p == std::string::npos ? 0 : std::stoi(r.body.substr(p + 6));
}
}  // namespace

TEST_CASE("2000 concurrent connections are all served, in bounded worker memory") {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4500) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 4500);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  REQUIRE(rl.rlim_cur >= 2100);
  HttpFixture f({"--max-connections", "5000"}, 400, 1);
  const int pid = worker_pid(f.port);
  REQUIRE(pid > 0);
  const int n = 2000;
  std::vector<std::unique_ptr<RawConn>> conns;
  conns.reserve(n);
  for (int i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<RawConn>(f.port));
    REQUIRE(conns.back()->ok());
  }
  // All open at once, then each asks for a 10-symbol list.
  for (auto& c : conns)
    REQUIRE(
        c->send("GET /v1/quotes?symbols=sh600000,sz000001,sh600002,sz000003,sh600004,"
                "sz000005,sh600006,sz000007,sh600008,sz000009 HTTP/1.1\r\nHost: x\r\n\r\n"));
  int ok = 0;
  for (auto& c : conns) ok += c->read(10000).status == 200;
  CHECK(ok == n);
  // Then each asks for a 300-symbol list (~128 KB; 100 different ones, so
  // some come from the body cache and most are rendered), all at once and
  // read one connection after the other: most of the output waits in the
  // worker. It used to keep each connection's 256 KB output buffer (VmHWM
  // 170-260 MB); now only unsent bytes, within --max-queued-bytes.
  std::vector<std::string> lists(100);
  for (int w = 0; w < 100; ++w)
    for (int i = w; i < w + 300; ++i) lists[w] += (i > w ? "," : "") + HttpFixture::symbol(i);
  for (int i = 0; i < n; ++i)
    REQUIRE(conns[i]->send("GET /v1/quotes?symbols=" + lists[i % 100] + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  ok = 0;
  for (auto& c : conns) {
    auto r = c->read(10000);
    ok += r.status == 200 && r.body.size() > 100000 && r.body.ends_with("]}");
  }
  CHECK(ok == n);
  auto m = http_get(f.port, "/metrics");
  CHECK(m.status == 200);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  size_t peak = peak_rss(pid);
  MESSAGE("worker VmHWM " << peak / 1024 << " KB");
  CHECK(peak > 0);
  CHECK(peak < (size_t{20} << 20));  // the target of the 2000-connection issue
#endif
}

TEST_CASE("a client that stops reading a large response is dropped after the idle timeout") {
  HttpFixture f({"--idle-timeout-ms", "700", "--body-cache-bytes", "0"}, 400, 1);
  RawConn c(f.port);
  int small = 4096;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string list;
  for (int i = 0; i < 400; ++i) {
    if (i) list += ',';
    list += HttpFixture::symbol(i);
  }
  std::string req;
  for (int i = 0; i < 40; ++i) req += "GET /v1/quotes?symbols=" + list + " HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(c.send(req));  // ~40 x 170 KB of responses, never read
  CHECK(still_serving(f.port));
  // The server gives up on it: the metrics show the connection gone.
  CHECK(wait_until(
      [&] {
        auto m = http_get(f.port, "/metrics");
        return m.body.find("tickfan_http_connections{worker=\"0\"} 1\n") != std::string::npos;
      },
      5000));
}

TEST_CASE("over the send-queue budget, every waiting connection is answered in full") {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2500) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 2500);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  REQUIRE(rl.rlim_cur >= 1000);
  // A 1-byte budget: any unsent output puts the worker over it, so almost
  // every connection waits; 800 x 3.2 KB requests exceed the 2 MiB
  // read-ahead, so some wait unread in the kernel and some in a stash.
  HttpFixture f({"--max-queued-bytes", "1", "--max-connections", "5000"}, 400, 1);
  std::string list;
  for (int i = 0; i < 400; ++i) {
    if (i) list += ',';
    list += HttpFixture::symbol(i);
  }
  const std::string req = "GET /v1/quotes?symbols=" + list + " HTTP/1.1\r\nHost: x\r\n\r\n";
  auto first = http_get(f.port, "/v1/quotes?symbols=" + list);
  REQUIRE(first.status == 200);
  const int n = 800;
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<RawConn>(f.port));
    REQUIRE(conns.back()->ok());
    REQUIRE(conns.back()->send(req));
  }
  int ok = 0;
  for (auto& c : conns) {
    auto r = c->read(20000);
    ok += r.status == 200 && r.body.size() == first.body.size() && r.body.ends_with("]}");
  }
  CHECK(ok == n);
  // Still usable after waiting: a second request on the same connections.
  int again = 0;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(conns[i]->send(req));
    again += conns[i]->read(5000).status == 200;
  }
  CHECK(again == 20);
  CHECK(still_serving(f.port));
}

namespace {
std::string list_of(int n) {
  std::string list;
  for (int i = 0; i < n; ++i) {
    if (i) list += ',';
    list += HttpFixture::symbol(i);
  }
  return list;
}
}  // namespace

TEST_CASE("a client that half-closes after its requests still gets every response in full") {
  // RFC 9112 §9.6: a half-close is not an abort. A small send buffer keeps
  // most of each 170 KB response in the server when the FIN arrives.
  HttpFixture f({"--sndbuf", "8192"}, 400, 1);
  const std::string target = "/v1/quotes?symbols=" + list_of(400);
  auto whole = http_get(f.port, target);
  REQUIRE(whole.status == 200);
  REQUIRE(whole.body.size() > 100000);
  SUBCASE("one request with Connection: close") {
    RawConn c(f.port);
    REQUIRE(c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server sees the FIN before we read
    auto r = c.read(5000);
    CHECK(r.status == 200);
    CHECK(r.body.size() == whole.body.size());
    CHECK(c.closed_within(3000));
  }
  SUBCASE("100 pipelined requests") {
    RawConn c(f.port);
    std::string req;
    for (int i = 0; i < 100; ++i) req += "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(c.send(req));
    REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int full = 0;
    for (int i = 0; i < 100; ++i) {
      auto r = c.read(5000);
      if (r.status != 200) break;
      full += r.body.size() == whole.body.size();
    }
    CHECK(full == 100);
    CHECK(c.closed_within(3000));  // then closed: nothing more can come
  }
  SUBCASE("nothing pending: closed at once; a request cut short gets no answer") {
    RawConn idle(f.port);
    REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(idle.read().status == 200);
    REQUIRE(::shutdown(idle.fd(), SHUT_WR) == 0);
    CHECK(idle.closed_within(1000));
    RawConn cut(f.port);
    REQUIRE(cut.send("GET /healthz HTTP/1.1\r\nHo"));
    REQUIRE(::shutdown(cut.fd(), SHUT_WR) == 0);
    CHECK(cut.read(1000).status == 0);
  }
  CHECK(still_serving(f.port));
}

namespace {
// CPU time (user + system) a process has used, in seconds.
double cpu_seconds(int pid) {
  std::string st = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t p = st.rfind(')');
  std::istringstream in(st.substr(p + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}
}  // namespace

TEST_CASE("out of file descriptors: new clients get 503, the worker does not spin, and it recovers") {
  HttpFixture f({}, 40, 1);  // makes the store; a second server runs on it with 256 descriptors
  TempDir dir;
  int port = free_port();
  // Hard limit too (sh's ulimit sets both), so the server cannot raise it.
  ChildProcess server({"/bin/sh", "-c", "ulimit -n 256 && exec \"$0\" \"$@\"", binary("apiclient/http/tickfan-http"),
                       "--store", f.dir.file("store"), "--port", std::to_string(port), "--workers", "1",
                       "--cors-origin", "*", "--log-level", "warn"},
                      dir.file("http.log"));
  REQUIRE(wait_until([&] { return http_get(port, "/healthz").status == 200; }, 5000));
  const int pid = worker_pid(port);
  REQUIRE(pid > 0);
  // 400 idle connections: more than the worker can hold.
  std::vector<std::unique_ptr<RawConn>> idle;
  for (int i = 0; i < 400; ++i) {
    idle.push_back(std::make_unique<RawConn>(port));
    REQUIRE(idle.back()->ok());
  }
  // Until the worker has run out (not a fixed sleep: a slow machine accepts later).
  REQUIRE(wait_until([&] { return read_file(dir.file("http.log")).find("out of file descriptors") != std::string::npos; },
                     5000));
  // A new client is told 503 at once instead of waiting in the backlog.
  auto r = raw(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2000);
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");
  CHECK(age_ms(r) >= 0);  // the data's age, known without a descriptor
  CHECK(r.header("Access-Control-Allow-Origin") == "*");  // --cors-origin *: every response, this one too
  // And the worker is not spinning on its readable listening socket.
  double t0 = cpu_seconds(pid);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double busy = cpu_seconds(pid) - t0;
  MESSAGE("worker CPU over 1 s: " << busy << " s");
  CHECK(busy < 0.3);
  idle.clear();
  CHECK(wait_until([&] { return http_get(port, "/healthz").status == 200; }, 3000));
  std::string log = read_file(dir.file("http.log"));
  CHECK(log.find("out of file descriptors") != std::string::npos);
  CHECK(log.find("RLIMIT_NOFILE is 256") != std::string::npos);  // the start-up warning
  CHECK(log.find("restarting in") == std::string::npos);
}

TEST_CASE("gzip of a cached list is compressed once per commit; HEAD and repeated GETs reuse it") {
  HttpFixture f({}, 400, 1);
  const std::string target = "/v1/quotes?symbols=" + list_of(300);
  auto plain = http_get(f.port, target);
  REQUIRE(plain.status == 200);
  auto compressions = [&] {
    auto m = http_get(f.port, "/metrics").body;
    const std::string series = "tickfan_http_gzip_compressions_total{worker=\"0\"} ";
    size_t at = m.find(series);
    return at == std::string::npos ? -1 : std::stoi(m.substr(at + series.size()));
  };
  libdeflate_decompressor* dec = libdeflate_alloc_decompressor();
  auto gunzip = [&](const std::string& in) {
    std::string out(plain.body.size() + 64, '\0');
    size_t got = 0;
    if (libdeflate_gzip_decompress(dec, in.data(), in.size(), out.data(), out.size(), &got) != LIBDEFLATE_SUCCESS)
      return std::string("(bad gzip)");
    out.resize(got);
    return out;
  };
  size_t gz_len = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(f.port, target, {"Accept-Encoding: gzip"});
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Encoding") == "gzip");
    std::string body = gunzip(r.body);
    // Same list; only age_ms (8 characters, right-aligned) may differ.
    CHECK(body.size() == plain.body.size());
    CHECK(body.substr(20) == plain.body.substr(20));
    gz_len = r.body.size();
  }
  auto head = http_get(f.port, target, {"Accept-Encoding: gzip"}, "HEAD");
  CHECK(head.header("Content-Length") == std::to_string(gz_len));
  CHECK(compressions() == 1);
  f.commit();  // a new commit: compressed again, once
  for (int i = 0; i < 2; ++i) CHECK(gunzip(http_get(f.port, target, {"Accept-Encoding: gzip"}).body).size() > 100000);
  CHECK(compressions() == 2);
  libdeflate_free_decompressor(dec);
}
