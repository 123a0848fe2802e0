// request_parse.cpp — see request_parse.h.
#include "request_parse.h"

#include <strings.h>

namespace tickfan::http {

void RequestHead::begin() {
  url.clear();
  field_len_ = 0;
  field_long_ = false;
  cur_ = Hdr::none;
  inm.clear();
  origin.clear();
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
