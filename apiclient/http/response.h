// response.h — the status line and header section of a response, rendered
// into a small buffer that the server places right before the body already
// sitting in the connection's output buffer (so the response goes out as one
// contiguous write, and pipelined responses as one writev).
#pragma once
#include <cstddef>
#include <cstdint>

#include "request.h"
#include "worker.h"

namespace tickfan::http {

inline constexpr size_t kHeadMax = 1536;  // room reserved before each body

struct HeadParams {
  size_t content_length = 0;
  bool gzip = false;
  bool keep_alive = true;
  bool http10 = false;  // answer keep-alive explicitly to an HTTP/1.0 client
};

// Writes the head into buf (kHeadMax bytes); returns its length.
size_t render_head(const Worker& w, const Request& req, const Reply& rep, const HeadParams& hp, char* buf);
const char* reason_phrase(int status);

// The answer to a connection refused at --max-connections or for want of a
// descriptor (no parser state exists for it): 503 with Server, Date,
// X-Data-Age-Ms (while the store is open, as on every response; the caller
// refreshes w's header copy first), Retry-After, Connection: close, and with
// --cors-origin * Access-Control-Allow-Origin: * (with a list of origins no
// CORS headers: the request, and so its Origin, is never read).
// Written into buf (kOverloadMax bytes); returns its length.
inline constexpr size_t kOverloadMax = 512;
size_t render_overload(const Worker& w, char* buf);

}  // namespace tickfan::http
