// request_parse.h — what the server keeps of a request while llhttp parses
// it, and how that becomes the Request a handler sees: the request target
// and the header fields we read (Host, Accept-Encoding, If-None-Match,
// Origin), collected from llhttp's callbacks (a name or a value may arrive in
// several pieces), the checks made once the head is complete, and the split
// of the target into path and query. server.cpp
// calls these from its llhttp callbacks (and adds the size limits and
// timeouts); the HTTP fuzz target (tests/fuzz/http_fuzz.cpp) drives the same
// code, so what it fuzzes is the server's own reading of a request.
#pragma once
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "request.h"

namespace tickfan::http {

class RequestHead {
 public:
  std::string url;          // request target as received (its limit is checked by the caller)
  std::string inm, origin;  // If-None-Match, Origin; repeated fields combined into a list
  std::string host;         // Host (validated in to_request)
  int host_lines = 0;       // Host field lines seen (counted by name, empty values too)
  bool accepts_gzip = false;

  // One call per llhttp callback of the same name.
  void begin();  // on_message_begin
  void field(const char* at, size_t len) {
    // field-name is a token (RFC 9110 §5.1); llhttp 8.1 in strict mode still
    // passes "Host : x" (the name "Host ") and "Ho st: x" through, and has no
    // setting that refuses them, so we check every byte here. RFC 9112 §5.1:
    // whitespace between a field name and the colon MUST be rejected with 400.
    for (size_t i = 0; i < len; ++i) bad_field_name_ |= !is_tchar(at[i]);
    if (field_len_ + len > sizeof field_) {
      field_long_ = true;  // no header we use is this long
    } else {
      std::memcpy(field_ + field_len_, at, len);
      field_len_ = static_cast<uint8_t>(field_len_ + len);
    }
  }
  void field_complete();
  void value(const char* at, size_t len) {
    switch (cur_) {
      case Hdr::accept_encoding: accept_encoding_.append(at, len); break;
      case Hdr::if_none_match: inm.append(at, len); break;
      case Hdr::origin: origin.append(at, len); break;
      case Hdr::host: host.append(at, len); break;
      default: break;
    }
  }
  void value_complete() {
    if (cur_ == Hdr::if_none_match || cur_ == Hdr::origin) {
      // Several fields of the same name combine into a comma list (RFC 9110 §5.3).
      std::string& s = cur_ == Hdr::if_none_match ? inm : origin;
      s.push_back(',');
    } else if (cur_ == Hdr::accept_encoding) {
      // So are Accept-Encoding lines: "br" then "gzip" is "br,gzip", not
      // "brgzip" (RFC 9110 §5.3).
      accept_encoding_.push_back(',');
    }
    cur_ = Hdr::none;
  }
  // After refuse_head() let the head through: final header values.
  void headers_complete();
  // The Origin of a head refused before it was complete (respond_error():
  // a parse error, 408, 431) or at its end (413, 505, before
  // headers_complete()): the value of the Origin field lines llhttp has
  // finished (it ends a value when the next line begins), "" while one is
  // not (what it says in full is unknown; a prefix of it must not pass for
  // a listed origin).
  std::string_view origin_received() const {
    if (cur_ == Hdr::origin) return {};
    std::string_view o = origin;
    if (!o.empty() && o.back() == ',') o.remove_suffix(1);
    return o;
  }
  // The request as handlers see it (views into this object and its url);
  // sets Request::refuse when the head breaks a rule that needs a 400.
  void to_request(llhttp_t* p, Request* r) const;

  static bool is_tchar(char c) {
    // tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
    auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
    return u < 0x80 && std::strchr("!#$%&'*+-.^_`|~", u) != nullptr && u != 0;
  }

 private:
  enum class Hdr : uint8_t { none, accept_encoding, if_none_match, origin, host };
  char field_[20];
  uint8_t field_len_ = 0;
  bool field_long_ = false;
  bool bad_field_name_ = false;
  Hdr cur_ = Hdr::none;
  std::string accept_encoding_;
};

// At on_headers_complete: 0 if the head is acceptable, else the status the
// request is refused with before routing (505: not HTTP/1.x; 413: it has a
// body).
int refuse_head(llhttp_t* p);

// True when Accept-Encoding makes gzip acceptable: gzip or x-gzip listed
// with a weight above 0, or else "*" with a weight above 0 (RFC 9110
// §12.5.3, §12.4.2; case-insensitive, OWS trimmed).
bool gzip_accepted(std::string_view accept_encoding);

// A Host field value as RFC 9110 §7.2 allows it: uri-host [ ":" port ]
// (empty is allowed: a target without an authority).
bool valid_host(std::string_view host);

// Splits the request target into path and query; absolute-form
// ("http://host/path", RFC 9112 §3.2.2) is accepted and its authority ignored.
void split_target(std::string_view target, Request* r);

}  // namespace tickfan::http
