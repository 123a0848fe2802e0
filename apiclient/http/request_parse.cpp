// request_parse.cpp — see request_parse.h.
#include "request_parse.h"

#include <strings.h>

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

bool gzip_accepted(std::string_view ae) {
  while (!ae.empty()) {
    size_t comma = ae.find(',');
    std::string_view item = ae.substr(0, comma);
    ae = comma == std::string_view::npos ? std::string_view() : ae.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    if (coding.size() == 4 && strncasecmp(coding.data(), "gzip", 4) == 0) {
      if (semi == std::string_view::npos) return true;
      std::string_view params = item.substr(semi + 1);
      size_t q = params.find("q=");
      if (q == std::string_view::npos) return true;
      std::string_view v = params.substr(q + 2);
      return !(v.starts_with("0") && (v.size() == 1 || v.substr(1).find_first_not_of(".0 ") == std::string_view::npos));
    }
  }
  return false;
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
