// response.cpp — see response.h. Header decisions, with their RFC sections:
//  - Date on every response: RFC 9110 §6.6.1 (an origin server with a clock MUST).
//  - Content-Length always (also on HEAD, the GET length: RFC 9110 §8.6, §9.3.2);
//    never on 304 bodies, which have none (RFC 9110 §15.4.5). With gzip the
//    length is that of a GET at the same moment. A cached list's gzip body is
//    compressed once per commit behind an uncompressed age_ms prefix, so its
//    length is constant per commit; other compressed bodies carry age_ms
//    inside the stream, whose digits change the size by a byte or two over
//    time (a different representation at another instant, hence the weak
//    ETag), accepted and documented in docs/http.md.
//  - ETag is weak (W/): bodies carry age_ms, which changes with time at the
//    same commit, so two responses are semantically equivalent, not byte
//    identical (RFC 9110 §8.8.1, §8.8.3).
//  - Vary: Accept-Encoding on anything we may compress (RFC 9110 §12.5.5), and
//    Origin on every cacheable response when a list of origins is configured
//    (the CORS headers then depend on Origin, RFC 9111 §4.1) and on every
//    response that echoes an origin.
//  - CORS: with "*", Access-Control-Allow-Origin: * on every response, the
//    canned 503 included; with a list, the request's Origin echoed when it
//    is listed. Refusals before routing know the Origin only if its field
//    line arrived before the fault (server.cpp, respond_error()); the canned
//    503 never does (the request is not read), so with a list it has none.
//  - X-Data-Age-Ms on every response while the store is open, refusals and
//    the canned 503 (render_overload) included: the server refreshes the
//    worker's copy of the store header before rendering any of them, so the
//    age is the one at sending, not at the last routed request.
//  - Connection: close when we are going to close (RFC 9112 §9.6); an
//    HTTP/1.0 client asking for keep-alive gets "Connection: keep-alive".
#include "response.h"

#include <llhttp.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

namespace tickfan::http {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {

struct Out {
  char* p;
  char* end;
  void lit(std::string_view s) {
    size_t n = s.size() <= static_cast<size_t>(end - p) ? s.size() : static_cast<size_t>(end - p);
    std::memcpy(p, s.data(), n);
    p += n;
  }
  void num(long long v) {  // by hand: snprintf showed up in profiles
    char tmp[24];
    char* e = tmp + sizeof tmp;
    char* b = e;
    unsigned long long u = v < 0 ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do {
      *--b = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u);
    if (v < 0) *--b = '-';
    lit(std::string_view(b, static_cast<size_t>(e - b)));
  }
};

// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (IMF-fixdate, RFC 9110 §5.6.7),
// formatted once per second.
std::string_view date_line() {
  static char line[64];
  static time_t last = 0;
  static size_t len = 0;
  time_t now = time(nullptr);
  if (now != last) {
    struct tm tm;
    gmtime_r(&now, &tm);
    len = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    last = now;
  }
  return std::string_view(line, len);
}

// How the CORS headers of a response depend on the request's Origin.
struct Cors {
  bool wildcard = false;  // "*" configured: Access-Control-Allow-Origin: * on every response
  bool listed = false;    // the request's Origin is one of the configured origins
  bool configured = false;
};

Cors cors_for(const Options& o, std::string_view origin) {
  Cors c;
  c.configured = !o.cors_origins.empty();
  for (const std::string& allowed : o.cors_origins) {
    if (allowed == "*") c.wildcard = true;
    if (!origin.empty() && origin.size() <= 256 && allowed == origin) c.listed = true;
  }
  return c;
}

}  // namespace

size_t render_head(const Worker& w, const Request& req, const Reply& rep, const HeadParams& hp, char* buf) {
  Out o{buf, buf + kHeadMax};
  o.lit("HTTP/1.1 ");
  o.num(rep.status);
  o.lit(" ");
  o.lit(reason_phrase(rep.status));
  o.lit("\r\nServer: tickfan\r\n");
  o.lit(date_line());
  if (rep.status != 304 && rep.status != 204) {
    o.lit("Content-Type: ");
    o.lit(rep.content_type);
    o.lit("\r\nContent-Length: ");
    o.num(static_cast<long long>(hp.content_length));
    o.lit("\r\n");
  }
  if (hp.gzip) o.lit("Content-Encoding: gzip\r\n");
  int64_t age = rep.data_headers ? rep.age_ms : w.age_ms();
  if (rep.data_headers || w.reader) {
    // Every response says how old the data behind this worker is.
    o.lit("X-Data-Age-Ms: ");
    o.num(age);
    o.lit("\r\n");
  }
  if (rep.data_headers) {
    o.lit("X-Store-Commit: ");
    o.num(static_cast<long long>(rep.commit));
    o.lit("\r\n");
  }
  if (rep.etag[0]) {
    o.lit("ETag: ");
    o.lit(rep.etag);
    o.lit("\r\n");
  }
  if (rep.cache_control) {
    o.lit("Cache-Control: ");
    o.lit(rep.cache_control);
    o.lit("\r\n");
  } else {
    // Data: shareable for a second or so; quotes refresh every few seconds
    // and If-None-Match makes revalidation cheap (RFC 9111 §5.2.2.1).
    o.lit("Cache-Control: public, max-age=");
    o.num(w.opts.cache_max_age_s);
    o.lit("\r\n");
  }
  if (rep.allow) {
    o.lit("Allow: ");
    o.lit(rep.allow);
    o.lit("\r\n");
  }
  Cors cors = cors_for(w.opts, req.origin);
  // With a list of origins the CORS headers depend on the request's Origin,
  // so every response a shared cache may store (public data, 200 and 304
  // alike) says so, whether this Origin was listed, absent or another one:
  // otherwise a cache could serve the response made for a request without
  // Origin to a listed origin, whose browser then fails the CORS check
  // (RFC 9110 §12.5.5, RFC 9111 §4.1). With "*" the header is the same for
  // every request (sent whether or not Origin is), so nothing varies.
  bool vary_origin = cors.configured && !cors.wildcard && (rep.cache_control == nullptr || cors.listed);
  if (rep.compressible || vary_origin) {
    o.lit("Vary: ");
    o.lit(rep.compressible ? (vary_origin ? "Accept-Encoding, Origin" : "Accept-Encoding") : "Origin");
    o.lit("\r\n");
  }
  if (cors.wildcard || cors.listed) {
    // Fetch standard CORS: echo the allowed origin (or *), and expose the
    // headers browsers hide by default so clients can revalidate and see age.
    o.lit("Access-Control-Allow-Origin: ");
    o.lit(cors.wildcard ? std::string_view("*") : req.origin);
    o.lit("\r\nAccess-Control-Expose-Headers: ETag, X-Data-Age-Ms, X-Store-Commit\r\n");
    if (rep.status == 204 && req.method == HTTP_OPTIONS) {
      o.lit(
          "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\nAccess-Control-Allow-Headers: If-None-Match\r\n"
          "Access-Control-Max-Age: 600\r\n");
    }
  }
  if (!hp.keep_alive) {
    o.lit("Connection: close\r\n");
  } else if (hp.http10) {
    o.lit("Connection: keep-alive\r\n");
  }
  o.lit("\r\n");
  return static_cast<size_t>(o.p - buf);
}

size_t render_overload(const Worker& w, char* buf) {
  static constexpr std::string_view kBody =
      "{\"error\":{\"status\":503,\"message\":\"too many connections, retry later\"}}";
  Out o{buf, buf + kOverloadMax};
  // RFC 9110 §15.6.4: 503 for a temporary overload, with Retry-After;
  // Date as on every response (§6.6.1).
  o.lit("HTTP/1.1 503 Service Unavailable\r\nServer: tickfan\r\n");
  o.lit(date_line());
  o.lit("Content-Type: application/json\r\nContent-Length: ");
  o.num(static_cast<long long>(kBody.size()));
  o.lit("\r\n");
  if (w.reader) {
    // The data's age, as in render_head (it used to be the one response
    // without it). Only the worker's header copy is read: no descriptor is
    // needed, and the caller may have none to spare.
    o.lit("X-Data-Age-Ms: ");
    o.num(w.age_ms());
    o.lit("\r\n");
  }
  if (cors_for(w.opts, {}).wildcard) {
    // CORS: with "*" every response may be read by any origin, this one
    // too, so a script sees the 503 (and may read when to retry) instead
    // of a network error. With a list of origins it has no CORS headers:
    // the answer is sent before the request is read (the point of it is
    // to spend nothing on the connection), so the Origin is unknown.
    o.lit("Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Retry-After, X-Data-Age-Ms\r\n");
  }
  o.lit("Retry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  o.lit(kBody);
  return static_cast<size_t>(o.p - buf);
}

}  // namespace tickfan::http
