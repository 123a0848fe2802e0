// request_parse.cpp — see request_parse.h.
#include "request_parse.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

namespace tickfan::http {

void RequestHead::begin() {
  url.clear();
  field_len_ = 0;
  field_long_ = false;
  cur_ = Hdr::none;
  inm.clear();
  origin.clear();
  host.clear();
  host_lines = 0;
  bad_field_name_ = false;
  accept_encoding_.clear();
  accepts_gzip = false;
}

void RequestHead::field_complete() {
  std::string_view f(field_, field_len_);
  cur_ = Hdr::none;
  if (!field_long_) {
    // Field names are case-insensitive (RFC 9110 §5.1).
    auto is = [&](const char* name) { return f.size() == strlen(name) && strncasecmp(f.data(), name, f.size()) == 0; };
    if (is("accept-encoding"))
      cur_ = Hdr::accept_encoding;
    else if (is("if-none-match"))
      cur_ = Hdr::if_none_match;
    else if (is("origin"))
      cur_ = Hdr::origin;
    else if (is("host"))
      cur_ = Hdr::host, ++host_lines;
  }
  field_len_ = 0;
  field_long_ = false;
}

void RequestHead::headers_complete() {
  if (!inm.empty() && inm.back() == ',') inm.pop_back();
  if (!origin.empty() && origin.back() == ',') origin.pop_back();
  accepts_gzip = gzip_accepted(accept_encoding_);
}

void RequestHead::to_request(llhttp_t* p, Request* r) const {
  r->method = llhttp_get_method(p);
  r->head = r->method == HTTP_HEAD;
  split_target(url, r);
  r->accepts_gzip = accepts_gzip;
  r->if_none_match = inm;
  r->origin = origin;
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without
  // Host, and to any request (HTTP/1.0 too) with more than one Host line or
  // an invalid Host value. HTTP/1.0 may omit Host. The head is well framed,
  // so the 400 goes through route() (counted as a parse refusal) and the
  // connection closes after it.
  r->refuse = nullptr;
  if (bad_field_name_) {
    // RFC 9112 §5.1: whitespace between a field name and the colon MUST be
    // rejected with 400; any other non-token byte in a name is malformed
    // too (RFC 9110 §5.1). (field() records it.)
    r->refuse = "invalid header field name (whitespace before the colon?)";
  } else if (host_lines > 1) {
    r->refuse = "more than one Host header field";
  } else if (host_lines == 0 && llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1) {
    r->refuse = "missing Host header field (required in HTTP/1.1)";
  } else if (host_lines == 1 && !valid_host(host)) {
    r->refuse = "invalid Host header field";
  }
}

bool valid_host(std::string_view h) {
  // Host = uri-host [ ":" port ] (RFC 9110 §7.2), uri-host = IP-literal /
  // IPv4address / reg-name (RFC 3986 §3.2.2; IPv4address is a reg-name
  // lexically), port = *DIGIT. llhttp strips leading whitespace; trailing
  // OWS is not part of the value (RFC 9110 §5.5).
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  auto unreserved_or_sub = [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           (u != 0 && std::strchr("-._~!$&'()*+,;=", u) != nullptr);
  };
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  size_t i = 0;
  if (!h.empty() && h[0] == '[') {
    // IP-literal: IPv6address or IPvFuture, checked by alphabet only.
    size_t close = h.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (size_t k = 1; k < close; ++k)
      if (!unreserved_or_sub(h[k]) && h[k] != ':') return false;
    i = close + 1;
  } else {
    for (; i < h.size() && h[i] != ':'; ++i) {
      if (h[i] == '%') {
        if (i + 2 >= h.size() || !hex(h[i + 1]) || !hex(h[i + 2])) return false;
        i += 2;
      } else if (!unreserved_or_sub(h[i])) {
        return false;
      }
    }
  }
  if (i == h.size()) return true;
  if (h[i] != ':') return false;
  for (++i; i < h.size(); ++i)
    if (h[i] < '0' || h[i] > '9') return false;
  return true;
}

int refuse_head(llhttp_t* p) {
  // Only HTTP/1.x is spoken here; llhttp accepts "HTTP/2.0" in an HTTP/1
  // request line, which we refuse with 505 (RFC 9110 §15.6.6, RFC 9112 §2.3).
  if (llhttp_get_http_major(p) != 1) return 505;
  // GET/HEAD content has no defined semantics here (RFC 9110 §9.3.1) and we
  // will not read it: refuse any body with 413 (RFC 9110 §15.5.14) and close.
  if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)) return 413;
  return 0;
}

namespace {
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 9110
// §12.4.2): true when it is above 0. A malformed one counts as 0, so a
// garbled preference never turns compression on.
bool qvalue_positive(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return false;
  std::string_view frac = v.substr(1);
  if (!frac.empty()) {
    if (frac[0] != '.' || frac.size() > 4) return false;
    frac.remove_prefix(1);
    if (frac.find_first_not_of("0123456789") != std::string_view::npos) return false;
  }
  return v[0] == '1' || frac.find_first_not_of('0') != std::string_view::npos;
}
}  // namespace

bool gzip_accepted(std::string_view ae) {
  // Accept-Encoding (RFC 9110 §12.5.3): a list of codings, each with an
  // optional weight ";q=" (§12.4.2). Codings and parameter names are
  // case-insensitive; "x-gzip" is gzip (§8.4.1.3); "*" matches any coding
  // not listed; q=0 means "not acceptable". Elements and parameters are
  // trimmed of OWS (spaces and tabs). An explicit gzip/x-gzip decides;
  // otherwise "*" does; otherwise no gzip.
  int gzip = -1, star = -1;  // -1: not mentioned; 0: refused; 1: acceptable
  while (!ae.empty()) {
    size_t comma = ae.find(',');
    std::string_view item = ae.substr(0, comma);
    ae = comma == std::string_view::npos ? std::string_view() : ae.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view coding = trim_ows(item.substr(0, semi));
    std::string_view params = semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1);
    bool ok = true;
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view param = trim_ows(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      size_t eq = param.find('=');
      if (eq != std::string_view::npos && iequals(trim_ows(param.substr(0, eq)), "q"))
        ok = qvalue_positive(trim_ows(param.substr(eq + 1)));
    }
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip = std::max(gzip, ok ? 1 : 0);
    } else if (coding == "*") {
      star = std::max(star, ok ? 1 : 0);
    }
  }
  return gzip >= 0 ? gzip == 1 : star == 1;
}

void split_target(std::string_view t, Request* r) {
  if (t.starts_with("http://") || t.starts_with("https://")) {
    size_t slash = t.find('/', t.find("//") + 2);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  r->target = t;
  size_t q = t.find('?');
  r->path = t.substr(0, q);
  r->query = q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
  size_t hash = r->query.find('#');
  if (hash != std::string_view::npos) r->query = r->query.substr(0, hash);
}

}  // namespace tickfan::http
