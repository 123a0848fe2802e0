// request.h — what a handler sees of a request and what it hands back. The
// server owns the bytes (both views point into per-connection buffers); a
// handler appends its body to `out` and fills in `Reply`, and the server wraps
// headers around it (response.cpp). Handlers return nothing: every outcome,
// errors included, is a Reply with a status.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tickfan::http {

struct CachedBody;

// Endpoints, for metrics labels and routing (fixed set: no per-path labels).
enum class Endpoint : uint8_t { quotes, quote, rank, healthz, readyz, metrics, other, count };
const char* endpoint_name(Endpoint e);

struct Request {
  uint8_t method = 0;       // llhttp_method_t
  bool head = false;        // HEAD: same headers as GET, no body (RFC 9110 §9.3.2)
  std::string_view target;  // raw request target
  std::string_view path;
  std::string_view query;  // after '?', raw (percent-encoded)
  bool accepts_gzip = false;
  std::string_view if_none_match;
  std::string_view origin;
  // Set when the head is well framed but must be refused with 400 before
  // routing (RFC 9112 §3.2 Host rules, §5.1 field names): the message of the
  // JSON error. route() answers it and the connection closes.
  const char* refuse = nullptr;
};

struct Reply {
  int status = 200;
  Endpoint endpoint = Endpoint::other;
  const char* content_type = "application/json";
  const char* cache_control = "no-store";
  const char* allow = nullptr;  // 405: the Allow header (RFC 9110 §15.5.6)
  bool data_headers = false;    // add X-Data-Age-Ms / X-Store-Commit
  int64_t age_ms = -1;
  uint64_t commit = 0;
  char etag[48] = {};         // full ETag value incl. W/ and quotes; empty: none
  bool compressible = false;  // eligible for gzip (adds Vary: Accept-Encoding)
  bool close = false;         // Connection: close after this response
  // Body continues with these bytes (a BodyCache entry), sent by reference.
  std::shared_ptr<const CachedBody> ext_body;
};

}  // namespace tickfan::http
