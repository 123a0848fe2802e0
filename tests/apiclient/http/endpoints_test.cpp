// endpoints_test.cpp — every endpoint of docs/http.md against a real store
// and the real binary: bodies, data age, ETag/304, gzip, CORS, HEAD,
// keep-alive and pipelining.
#include <doctest/doctest.h>
#include <libdeflate.h>

#include <chrono>
#include <string>
#include <thread>

#include "fixture.h"

using namespace tickfan::testing;

namespace {
std::string gunzip(const std::string& in) {
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  std::string out(in.size() * 20 + 4096, '\0');
  size_t got = 0;
  auto r = libdeflate_gzip_decompress(d, in.data(), in.size(), out.data(), out.size(), &got);
  libdeflate_free_decompressor(d);
  if (r != LIBDEFLATE_SUCCESS) return "";
  out.resize(got);
  return out;
}
std::string after(const std::string& s, const std::string& marker) {
  size_t p = s.find(marker);
  return p == std::string::npos ? "" : s.substr(p);
}
// The fixture's symbols `ids` all appear in `body`, in that order.
void check_in_order(const std::string& body, std::initializer_list<int> ids) {
  size_t prev = 0;
  bool first = true;
  for (int id : ids) {
    size_t at = body.find(HttpFixture::symbol(id));
    CHECK_MESSAGE(at != std::string::npos, HttpFixture::symbol(id));
    if (!first) CHECK_MESSAGE(prev < at, HttpFixture::symbol(id));
    prev = at;
    first = false;
  }
}
}  // namespace

TEST_CASE("quotes list returns each known symbol in order, reports unknown ones, and carries the data age") {
  HttpFixture f;
  auto r = http_get(f.port, "/v1/quotes?symbols=sh600000,sz000001,nosuch,sh600002");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(!r.header("X-Data-Age-Ms").empty());
  CHECK(r.body.starts_with("{\"age_ms\":"));
  CHECK(r.body.find("\"commit\":1,") != std::string::npos);
  size_t a = r.body.find("\"symbol\":\"sh600000\""), b = r.body.find("\"symbol\":\"sz000001\""),
         c = r.body.find("\"symbol\":\"sh600002\"");
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c != std::string::npos);
  CHECK(r.body.find("\"ts\":1732200000123") != std::string::npos);  // every quote carries its timestamp
  CHECK(r.body.ends_with("],\"unknown\":[\"nosuch\"]}"));
}

TEST_CASE("fields= returns only those fields plus symbol and ts, on the list and on one quote") {
  HttpFixture f;
  auto r = http_get(f.port, "/v1/quotes?symbols=sh600000&fields=last,volume");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\"data\":[{\"symbol\":\"sh600000\",\"ts\":1732200000123,\"last\":10,\"volume\":100}]") !=
        std::string::npos);
  // Every quote carries its timestamp, whatever fields= selects.
  auto last = http_get(f.port, "/v1/quotes?symbols=sh600000&fields=last");
  CHECK(last.body.find("[{\"symbol\":\"sh600000\",\"ts\":1732200000123,\"last\":10}]") != std::string::npos);
  auto one = http_get(f.port, "/v1/quotes/sh600000?fields=last%2Cvolume");
  REQUIRE(one.status == 200);
  CHECK(one.body.ends_with("\"data\":{\"symbol\":\"sh600000\",\"ts\":1732200000123,\"last\":10,\"volume\":100}}"));
  for (const char* t : {"/v1/quotes?symbols=sh600000&fields=bogus", "/v1/quotes/sh600000?fields=bogus"}) {
    auto bad = http_get(f.port, t);
    CHECK(bad.status == 400);
    CHECK(bad.body.find("unknown field: bogus") != std::string::npos);
  }
  for (const char* t : {"/v1/quotes?symbols=sh600000&fields=", "/v1/quotes?symbols=sh600000&fields=,,",
                        "/v1/quotes/sh600000?fields="}) {
    auto empty = http_get(f.port, t);
    CHECK(empty.status == 400);
    CHECK(empty.body.find("fields is empty") != std::string::npos);
  }
}

TEST_CASE("a repeated query parameter is 400 naming it, never silently resolved") {
  HttpFixture f;
  for (const char* t :
       {"/v1/quotes?symbols=sh600000&symbols=sz000001", "/v1/quotes?symbols=sh600000&fields=last&fields=ts",
        "/v1/rank?by=volume&by=price", "/v1/rank?limit=1&order=asc&limit=2", "/v1/rank?market=sh&market=sz",
        "/v1/rank?offset=1&offset=1", "/v1/rank?order=asc&order=desc"}) {
    CAPTURE(t);
    auto r = http_get(f.port, t);
    CHECK(r.status == 400);
    std::string name = std::string(t).substr(std::string(t).rfind('&') + 1);
    name = name.substr(0, name.find('='));
    CHECK(r.body == "{\"error\":{\"status\":400,\"message\":\"repeated query parameter: " + name + "\"}}");
  }
  // Parameters the endpoint does not define are still ignored (cache busters).
  CHECK(http_get(f.port, "/v1/quotes?symbols=sh600000&_=1&_=2").status == 200);
}

TEST_CASE("query parameter names are percent-decoded like values, for the at-most-once rule too") {
  // RFC 3986 §2.1, §6.2.2.2: "%62" is "b", so "sym%62ols" names the same
  // parameter as "symbols" (form encoding decodes names as well).
  HttpFixture f;
  auto list = http_get(f.port, "/v1/quotes?sym%62ols=sh600000,sz000001&%66%69%65%6C%64%73=last");
  REQUIRE(list.status == 200);
  CHECK(list.body.ends_with("\"data\":[{\"symbol\":\"sh600000\",\"ts\":1732200000123,\"last\":10},"
                            "{\"symbol\":\"sz000001\",\"ts\":1732200000123,\"last\":10.01}],\"unknown\":[]}"));
  auto one = http_get(f.port, "/v1/quotes/sh600000?fi%65lds=last");
  REQUIRE(one.status == 200);
  CHECK(one.body.ends_with("\"data\":{\"symbol\":\"sh600000\",\"ts\":1732200000123,\"last\":10}}"));
  auto rank = http_get(f.port, "/v1/rank?%62y=volume&lim%69t=1&%6Frder=asc");
  REQUIRE(rank.status == 200);
  CHECK(rank.body.find("\"by\":\"volume\",\"order\":\"asc\"") != std::string::npos);
  CHECK(rank.body.find("\"data\":[{\"symbol\":\"sh600000\"") != std::string::npos);  // the lowest volume
  CHECK(rank.body.find("},{") == std::string::npos);                                     // limit=1 applied
  // The decoded name is what counts as a repeat, and what the error names.
  for (const auto& [target, name] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/quotes?symbols=sh600000&sym%62ols=sz000001", "symbols"},
           {"/v1/quotes?%73ymbols=sh600000&symbol%73=sz000001", "symbols"},
           {"/v1/quotes?symbols=sh600000&fields=last&%66ields=ts", "fields"},
           {"/v1/quotes/sh600000?fields=last&fi%65lds=ts", "fields"},
           {"/v1/rank?by=volume&%62y=price", "by"},
           {"/v1/rank?m%61rket=sh&market=sz", "market"}}) {
    CAPTURE(target);
    auto r = http_get(f.port, target);
    CHECK(r.status == 400);
    CHECK(r.body == "{\"error\":{\"status\":400,\"message\":\"repeated query parameter: " + name + "\"}}");
  }
  // A name with a malformed escape names none of the endpoint's parameters:
  // ignored like any other unknown one ('+' is not a space here, query.h).
  CHECK(http_get(f.port, "/v1/quotes?symbols=sh600000&sym%6=x&%zz=1&%00=2&symbols+=3").status == 200);
}

TEST_CASE("quotes list refuses a missing or oversized symbol list with 400 and a JSON error") {
  HttpFixture f({"--max-symbols", "1000"});
  auto r = http_get(f.port, "/v1/quotes");
  CHECK(r.status == 400);
  CHECK(r.body.find("\"error\":{\"status\":400") != std::string::npos);
  std::string many;
  for (int i = 0; i < 1000; ++i) {
    if (i) many += ',';
    many += HttpFixture::symbol(i % 40);
  }
  auto ok = http_get(f.port, "/v1/quotes?symbols=" + many);
  CHECK(ok.status == 200);  // the documented maximum is served
  CHECK(http_get(f.port, "/v1/quotes?symbols=" + many + ",sh600000").status == 400);
}

TEST_CASE("a single quote is served, and an unknown symbol is 404 with a JSON error") {
  HttpFixture f;
  auto r = http_get(f.port, "/v1/quotes/sz000001");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\"data\":{\"symbol\":\"sz000001\"") != std::string::npos);
  auto nf = http_get(f.port, "/v1/quotes/sh999999");
  CHECK(nf.status == 404);
  CHECK(nf.body.find("unknown symbol: sh999999") != std::string::npos);
  CHECK(!nf.header("X-Data-Age-Ms").empty());
}

TEST_CASE("rank orders by the requested key and direction, filters by market and pages") {
  HttpFixture f;
  auto r = http_get(f.port, "/v1/rank?by=volume&limit=3");
  REQUIRE(r.status == 200);
  // Volume is (i+1)*100: the top three are symbols 39, 38, 37.
  check_in_order(r.body, {39, 38, 37});
  CHECK(r.body.find("\"total\":40") != std::string::npos);
  auto asc = http_get(f.port, "/v1/rank?by=price&order=asc&limit=2&offset=1&market=sh");
  REQUIRE(asc.status == 200);
  // sh symbols are the even i; ascending price skipping the first -> i=2, 4.
  CHECK(asc.body.find(HttpFixture::symbol(2)) < asc.body.find(HttpFixture::symbol(4)));
  CHECK(asc.body.find(HttpFixture::symbol(0)) == std::string::npos);
  CHECK(asc.body.find("\"market\":\"sh\"") != std::string::npos);
  // Values are percent-decoded like symbols.
  auto enc = http_get(f.port, "/v1/rank?by=change%5Fpct&order=%61sc&limit=%32&market=%73h");
  REQUIRE(enc.status == 200);
  CHECK(enc.body.find("\"by\":\"change_pct\",\"order\":\"asc\",\"market\":\"sh\"") != std::string::npos);
  CHECK(http_get(f.port, "/v1/rank?by=%zz").status == 400);
  CHECK(http_get(f.port, "/v1/rank?by=nonsense").status == 400);
  CHECK(http_get(f.port, "/v1/rank?limit=0").status == 400);
  CHECK(http_get(f.port, "/v1/rank?market=xx").status == 400);
}

TEST_CASE("rank ties keep store-slot order in both directions") {
  HttpFixture f;
  // Symbols 10..39 all have the same amplitude (high 10.5, low 10.1), the
  // lowest of all: ascending starts with them, in slot (insertion) order.
  auto asc = http_get(f.port, "/v1/rank?by=amplitude&order=asc&limit=3");
  REQUIRE(asc.status == 200);
  check_in_order(asc.body, {10, 11, 12});
  // Descending ends with the same tie, also in slot order.
  auto desc = http_get(f.port, "/v1/rank?by=amplitude&order=desc&limit=3&offset=37");
  REQUIRE(desc.status == 200);
  check_in_order(desc.body, {37, 38, 39});
}

TEST_CASE("rank reflects a new commit after the rank interval") {
  HttpFixture f({"--rank-interval-ms", "50"});
  CHECK(http_get(f.port, "/v1/rank?by=volume&limit=1").body.find(HttpFixture::symbol(39)) != std::string::npos);
  f.writer->upsert(make_quote(HttpFixture::symbol(0), 100000, 999999));
  f.commit();
  CHECK(wait_until(
      [&] {
        return http_get(f.port, "/v1/rank?by=volume&limit=1").body.find(HttpFixture::symbol(0)) != std::string::npos;
      },
      3000));
}

TEST_CASE("rankings in steady use are refreshed off the request path, by the worker's ranking timer") {
  HttpFixture f({"--rank-interval-ms", "50"}, 40, 1);
  auto snapshots = [&] {
    auto m = http_get(f.port, "/metrics").body;
    const std::string series = "tickfan_http_rank_snapshots_total{worker=\"0\"} ";
    size_t at = m.find(series);
    return at == std::string::npos ? -1 : std::stoi(m.substr(at + series.size()));
  };
  REQUIRE(http_get(f.port, "/v1/rank?by=volume&limit=1").status == 200);  // takes the first snapshot itself
  int before = snapshots();
  REQUIRE(before >= 1);
  f.writer->upsert(make_quote(HttpFixture::symbol(0), 100000, 999999));
  f.commit();
  // No rank request meanwhile: the timer takes the new commit's snapshot.
  CHECK(wait_until([&] { return snapshots() > before; }, 2000));
  int after = snapshots();
  // So the next request finds it ready, already showing the new commit.
  CHECK(http_get(f.port, "/v1/rank?by=volume&limit=1").body.find(HttpFixture::symbol(0)) != std::string::npos);
  // No commit, no new snapshot.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(snapshots() == after);
}

TEST_CASE("healthz, readyz and metrics answer") {
  HttpFixture f;
  auto h = http_get(f.port, "/healthz");
  CHECK(h.status == 200);
  CHECK(h.body.find("\"status\":\"ok\"") != std::string::npos);
  auto ready = http_get(f.port, "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.find("\"writer_alive\":true") != std::string::npos);
  http_get(f.port, "/v1/quotes/sh600000");
  auto m = http_get(f.port, "/metrics");
  CHECK(m.status == 200);
  CHECK(m.header("Content-Type").starts_with("text/plain; version=0.0.4"));
  CHECK(m.body.find("tickfan_http_requests_total{worker=\"") != std::string::npos);
  CHECK(m.body.find("tickfan_http_request_duration_seconds_bucket") != std::string::npos);
  CHECK(m.body.find("tickfan_http_data_age_seconds") != std::string::npos);
  CHECK(m.body.find("tickfan_http_response_bytes_total") != std::string::npos);
  CHECK(m.body.find("tickfan_http_connections{") != std::string::npos);
  CHECK(m.body.find("sh600000") == std::string::npos);  // no per-symbol labels
}

TEST_CASE("ETag follows the commit and If-None-Match gets 304 without a body") {
  HttpFixture f;
  auto r = http_get(f.port, "/v1/quotes?symbols=sh600000");
  std::string etag = r.header("ETag");
  REQUIRE(etag.starts_with("W/\""));
  auto nm = http_get(f.port, "/v1/quotes?symbols=sh600000", {"If-None-Match: " + etag});
  CHECK(nm.status == 304);
  CHECK(nm.body.empty());
  CHECK(nm.header("ETag") == etag);
  CHECK(http_get(f.port, "/v1/quotes/sh600000", {"If-None-Match: \"x\", " + etag}).status == 304);
  f.commit();
  auto changed = http_get(f.port, "/v1/quotes?symbols=sh600000", {"If-None-Match: " + etag});
  CHECK(changed.status == 200);
  CHECK(changed.header("ETag") != etag);
}

TEST_CASE("gzip is used when accepted and the body is large enough, and decodes to the plain body") {
  HttpFixture f;
  std::string list = "sh600000,sz000001,sh600002,sz000003,sh600004,sz000005";
  auto plain = http_get(f.port, "/v1/quotes?symbols=" + list);
  auto gz = http_get(f.port, "/v1/quotes?symbols=" + list, {"Accept-Encoding: br, gzip;q=0.8"});
  REQUIRE(gz.status == 200);
  CHECK(gz.header("Content-Encoding") == "gzip");
  CHECK(gz.header("Vary").find("Accept-Encoding") != std::string::npos);
  CHECK(gz.body.size() < plain.body.size());
  CHECK(after(gunzip(gz.body), "\"data\"") == after(plain.body, "\"data\""));
  CHECK(
      http_get(f.port, "/v1/quotes?symbols=" + list, {"Accept-Encoding: gzip;q=0"}).header("Content-Encoding").empty());
  CHECK(
      http_get(f.port, "/v1/quotes/sh600000", {"Accept-Encoding: gzip"}).header("Content-Encoding").empty());  // small
}

TEST_CASE("Accept-Encoding: several lines, case, tabs, x-gzip, * and q=0 (RFC 9110 §12.5.3, §12.4.2)") {
  HttpFixture f;
  std::string list = "/v1/quotes?symbols=sh600000,sz000001,sh600002,sz000003,sh600004,sz000005";
  auto enc = [&](std::vector<std::string> h) { return http_get(f.port, list, h).header("Content-Encoding"); };
  CHECK(enc({"Accept-Encoding: br", "Accept-Encoding: gzip"}) == "gzip");  // two lines are one list
  CHECK(enc({"Accept-Encoding: GZIP"}) == "gzip");
  CHECK(enc({"Accept-Encoding: \tgzip\t;\tq=0.5"}) == "gzip");
  CHECK(enc({"Accept-Encoding: x-gzip"}) == "gzip");
  CHECK(enc({"Accept-Encoding: *"}) == "gzip");
  CHECK(enc({"Accept-Encoding: br, *;q=0.1"}) == "gzip");
  CHECK(enc({"Accept-Encoding: gzip;q=0.001"}) == "gzip");
  CHECK(enc({"Accept-Encoding: gzip;q=1.000"}) == "gzip");
  CHECK(enc({"Accept-Encoding: GZIP; Q=0"}).empty());  // q=0: not acceptable, whatever the case
  CHECK(enc({"Accept-Encoding: gzip;q=0.000"}).empty());
  CHECK(enc({"Accept-Encoding: *, gzip;q=0"}).empty());  // an explicit gzip;q=0 beats *
  CHECK(enc({"Accept-Encoding: *;q=0"}).empty());
  CHECK(enc({"Accept-Encoding: gzip;q=0", "Accept-Encoding: *"}).empty());
  CHECK(enc({"Accept-Encoding: br, identity"}).empty());
  CHECK(enc({"Accept-Encoding: gzipx, xgzip"}).empty());
  CHECK(enc({"Accept-Encoding: "}).empty());
  CHECK(enc({}).empty());
}

TEST_CASE("CORS headers only for configured origins, with ETag exposed; preflight gets 204") {
  HttpFixture f({"--cors-origin", "https://a.example"});
  auto ok = http_get(f.port, "/v1/quotes/sh600000", {"Origin: https://a.example"});
  CHECK(ok.header("Access-Control-Allow-Origin") == "https://a.example");
  CHECK(ok.header("Access-Control-Expose-Headers").find("ETag") != std::string::npos);
  CHECK(ok.header("Vary").find("Origin") != std::string::npos);
  CHECK(http_get(f.port, "/v1/quotes/sh600000", {"Origin: https://evil.example"})
            .header("Access-Control-Allow-Origin")
            .empty());
  auto pre = http_get(f.port, "/v1/quotes/sh600000",
                      {"Origin: https://a.example", "Access-Control-Request-Method: GET"}, "OPTIONS");
  CHECK(pre.status == 204);
  CHECK(pre.header("Access-Control-Allow-Methods").find("GET") != std::string::npos);
}

TEST_CASE("with a list of CORS origins every cacheable response has Vary: Origin; with * none needs it") {
  HttpFixture f({"--cors-origin", "https://a.example"});
  // A shared cache must not give the response made without Origin (no
  // Access-Control-Allow-Origin) to https://a.example: 200 and 304 both vary.
  for (const std::vector<std::string>& h :
       std::vector<std::vector<std::string>>{{}, {"Origin: https://evil.example"}, {"Origin: https://a.example"}}) {
    auto r = http_get(f.port, "/v1/quotes/sh600000", h);
    REQUIRE(r.status == 200);
    CHECK(r.header("Vary") == "Accept-Encoding, Origin");
    std::vector<std::string> inm = h;
    inm.push_back("If-None-Match: " + r.header("ETag"));
    auto nm = http_get(f.port, "/v1/quotes?symbols=sh600000", inm);
    REQUIRE(nm.status == 304);
    CHECK(nm.header("Vary") == "Accept-Encoding, Origin");
    CHECK(http_get(f.port, "/v1/rank?limit=1", h).header("Vary") == "Accept-Encoding, Origin");
  }
  HttpFixture any({"--cors-origin", "*"});
  auto plain = http_get(any.port, "/v1/quotes/sh600000");
  CHECK(plain.header("Access-Control-Allow-Origin") == "*");  // the same with or without Origin
  CHECK(plain.header("Vary") == "Accept-Encoding");
  CHECK(
      http_get(any.port, "/v1/quotes/sh600000", {"Origin: https://b.example"}).header("Access-Control-Allow-Origin") ==
      "*");
  HttpFixture none;
  CHECK(http_get(none.port, "/v1/quotes/sh600000").header("Vary") == "Accept-Encoding");
}

TEST_CASE("OPTIONS * (the server as a whole) is 204 with Allow (RFC 9110 §9.3.7)") {
  HttpFixture f;
  RawConn c(f.port);
  REQUIRE(c.send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read();
  CHECK(r.status == 204);
  CHECK(r.header("Allow") == "GET, HEAD, OPTIONS");
  CHECK(r.body.empty());
  CHECK(c.read().status == 200);  // the connection stays usable
  CHECK(http_get(f.port, "/nope", {}, "OPTIONS").status == 404);
  // The asterisk-form is only for OPTIONS (RFC 9112 §3.2.4): a malformed target otherwise.
  RawConn g(f.port);
  REQUIRE(g.send("GET * HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto bad = g.read();
  CHECK(bad.status == 400);
  CHECK(bad.body.find("only for OPTIONS") != std::string::npos);
}

TEST_CASE("HEAD has the GET headers and no body, and the connection stays usable") {
  HttpFixture f;
  RawConn c(f.port);
  REQUIRE(c.send(
      "HEAD /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/quotes/sh600000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto h = c.read(3000, true);
  CHECK(h.status == 200);
  auto g = c.read();
  CHECK(g.status == 200);
  CHECK(h.header("Content-Length") == g.header("Content-Length"));
  CHECK(g.body.size() == std::stoul(g.header("Content-Length")));
}

TEST_CASE("pipelined requests are answered in order on one keep-alive connection") {
  HttpFixture f;
  RawConn c(f.port);
  std::string req;
  for (int i = 0; i < 50; ++i) req += "GET /v1/quotes/" + HttpFixture::symbol(i % 40) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(c.send(req));
  for (int i = 0; i < 50; ++i) {
    auto r = c.read();
    REQUIRE(r.status == 200);
    CHECK(r.body.find(HttpFixture::symbol(i % 40)) != std::string::npos);
  }
  // HTTP/1.0 without keep-alive: answered, then closed.
  REQUIRE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
  CHECK(c.read().status == 200);
  CHECK(c.closed_within(2000));
}

TEST_CASE("a cached list body is reused within a commit and re-rendered after the next commit") {
  HttpFixture f({"--body-cache-min-symbols", "2"}, 40, 1);
  std::string q = "/v1/quotes?symbols=sh600000,sz000001,sh600002";
  auto first = http_get(f.port, q);
  auto second = http_get(f.port, q);
  REQUIRE(second.status == 200);
  CHECK(after(second.body, "\"data\"") == after(first.body, "\"data\""));
  CHECK(second.body.size() == std::stoul(second.header("Content-Length")));
  auto head = http_get(f.port, q, {}, "HEAD");
  CHECK(head.header("Content-Length") == second.header("Content-Length"));
  CHECK(http_get(f.port, "/metrics").body.find("tickfan_http_body_cache_total{worker=\"0\",result=\"hit\"} 2") !=
        std::string::npos);
  f.writer->upsert(make_quote("sh600000", 123400));
  f.commit();
  auto third = http_get(f.port, q);
  CHECK(third.body.find("\"last\":12.34") != std::string::npos);
  // Pipelined cached responses interleave correctly with uncached ones.
  RawConn c(f.port);
  REQUIRE(c.send("GET " + q + " HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/quotes/sz000001 HTTP/1.1\r\nHost: x\r\n\r\nGET " +
                 q + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto a = c.read(), b = c.read(), d = c.read();
  CHECK(after(a.body, "\"data\"") == after(third.body, "\"data\""));
  CHECK(b.body.find("\"data\":{\"symbol\":\"sz000001\"") != std::string::npos);
  CHECK(after(d.body, "\"data\"") == after(third.body, "\"data\""));
}
