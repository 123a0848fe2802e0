// router.cpp — maps (method, path) to a handler. Only GET and HEAD read
// resources here; OPTIONS answers CORS preflights; anything else is 405 with
// Allow (RFC 9110 §15.5.6). Unknown paths are 404 (RFC 9110 §15.5.5).
#include <llhttp.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "handlers.h"

namespace tickfan::http {

namespace {
constexpr const char* kAllow = "GET, HEAD, OPTIONS";
}

void format_etag(uint64_t commit, int64_t commit_ns, char* out, size_t cap) {
  // W/"<commit decimal>-<commit_ns hex>", formatted by hand (per request).
  char tmp[48];
  char* p = tmp + sizeof tmp;
  *--p = '"';
  auto ns = static_cast<uint64_t>(commit_ns);
  do {
    *--p = "0123456789abcdef"[ns & 15];
    ns >>= 4;
  } while (ns);
  *--p = '-';
  do {
    *--p = static_cast<char>('0' + commit % 10);
    commit /= 10;
  } while (commit);
  *--p = '"';
  *--p = '/';
  *--p = 'W';
  size_t n = static_cast<size_t>(tmp + sizeof tmp - p);
  if (n >= cap) n = cap - 1;
  memcpy(out, p, n);
  out[n] = '\0';
}

void set_data_reply(Worker& w, Reply& rep, uint64_t commit, int64_t commit_ns) {
  rep.data_headers = true;
  rep.commit = commit;
  rep.age_ms = commit_ns == 0 ? -1 : std::max<int64_t>(0, (w.now_wall_ns - commit_ns) / 1000000);
  format_etag(commit, commit_ns, rep.etag, sizeof rep.etag);
}

bool begin_data_body(const Request& req, Reply& rep, Buffer& out) {
  rep.cache_control = nullptr;  // the server's data Cache-Control
  rep.compressible = true;
  if (!req.if_none_match.empty() && etag_matches(req.if_none_match, rep.etag)) {
    rep.status = 304;
    return false;
  }
  append_data_prefix(rep, out);
  return true;
}

void append_data_prefix(const Reply& rep, Buffer& out) {
  // age_ms is right-aligned in 8 characters (JSON allows the spaces) so a
  // body's length depends on the quotes only, not on when it was asked for:
  // length-checking clients (ab counts a changed length as a failure) and
  // byte-range caches see one size per commit.
  out.append("{\"age_ms\":");
  char num[24];
  size_t n = 0;
  long long a = rep.age_ms;
  bool neg = a < 0;
  unsigned long long u = neg ? 0ULL - static_cast<unsigned long long>(a) : static_cast<unsigned long long>(a);
  do {
    num[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) num[n++] = '-';
  for (size_t i = n; i < 8; ++i) out.push(' ');
  while (n) out.push(num[--n]);
  out.append(",\"commit\":");
  out.append_uint(rep.commit);
  out.push(',');
}

bool etag_matches(std::string_view inm, std::string_view etag) {
  // Weak comparison: opaque-tags equal whether or not either is W/-prefixed.
  std::string_view tag = etag.substr(etag.starts_with("W/") ? 2 : 0);
  while (!inm.empty()) {
    size_t comma = inm.find(',');
    std::string_view item = inm.substr(0, comma);
    inm = comma == std::string_view::npos ? std::string_view() : inm.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == tag) return true;
  }
  return false;
}

void error_reply(Reply& rep, Buffer& out, size_t body_start, int status, std::string_view message,
                 std::string_view detail) {
  out.resize(body_start);
  rep.status = status;
  rep.content_type = "application/json";
  rep.cache_control = "no-store";
  rep.compressible = false;
  rep.etag[0] = '\0';
  out.append("{\"error\":{\"status\":");
  out.append_uint(static_cast<unsigned>(status));
  out.append(",\"message\":\"");
  json_escape(message, &out);
  json_escape(detail, &out);
  out.append("\"}}");
}

void route(Worker& w, const Request& req, Reply& rep, Buffer& out) {
  if (req.refuse) {
    // A head that RFC 9112 says MUST get 400 (request_parse.cpp: Host rules,
    // §3.2; field names, §5.1): refused before routing, counted like the
    // parser's refusals, and the connection closes after the answer.
    rep.endpoint = Endpoint::other;
    rep.close = true;
    if (Counter* bad = w.metrics.bad_request[static_cast<int>(BadReason::parse)]) bad->inc();
    error_reply(rep, out, out.size(), 400, "bad request: ", req.refuse);
    return;
  }
  std::string_view p = req.path;
  if (p == "*") {
    // "OPTIONS *" asks about the server as a whole (RFC 9110 §9.3.7, the
    // asterisk-form of RFC 9112 §3.2.4): 204 with the methods we allow. The
    // asterisk-form is only defined for OPTIONS, so with any other method
    // the request target itself is malformed: 400, not 404.
    rep.endpoint = Endpoint::other;
    if (req.method == HTTP_OPTIONS) {
      rep.status = 204;
      rep.allow = kAllow;
    } else {
      error_reply(rep, out, out.size(), 400, "the request target * is only for OPTIONS (RFC 9112 §3.2.4)", "");
    }
    return;
  }
  Endpoint e = Endpoint::other;
  std::string_view symbol;
  if (p == "/v1/quotes") {
    e = Endpoint::quotes;
  } else if (p.starts_with("/v1/quotes/") && p.size() > 11) {
    e = Endpoint::quote;
    symbol = p.substr(11);
  } else if (p == "/v1/rank") {
    e = Endpoint::rank;
  } else if (p == "/healthz") {
    e = Endpoint::healthz;
  } else if (p == "/readyz") {
    e = Endpoint::readyz;
  } else if (p == "/metrics") {
    e = Endpoint::metrics;
  }
  rep.endpoint = e;
  size_t start = out.size();
  if (e == Endpoint::other) {
    error_reply(rep, out, start, 404, "no such resource: ", req.path);
    return;
  }
  if (req.method == HTTP_OPTIONS) {
    // CORS preflight (Fetch standard) or a plain OPTIONS: 204 with Allow; the
    // server adds the Access-Control-* headers when the Origin is allowed.
    rep.status = 204;
    rep.allow = kAllow;
    return;
  }
  if (req.method != HTTP_GET && req.method != HTTP_HEAD) {
    rep.allow = kAllow;
    error_reply(rep, out, start, 405, "method not allowed; use GET or HEAD");
    return;
  }
  switch (e) {
    case Endpoint::quotes: handle_quotes(w, req, rep, out); break;
    case Endpoint::quote: handle_quote(w, req, symbol, rep, out); break;
    case Endpoint::rank: handle_rank(w, req, rep, out); break;
    case Endpoint::healthz: handle_healthz(w, req, rep, out); break;
    case Endpoint::readyz: handle_readyz(w, req, rep, out); break;
    case Endpoint::metrics: handle_metrics(w, req, rep, out); break;
    default: break;
  }
}

}  // namespace tickfan::http
