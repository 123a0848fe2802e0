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

// Canned answer for a connection refused at --max-connections (no parser
// state exists yet): 503 with Server, Date, Retry-After and Connection:
// close; no X-Data-Age-Ms (no worker state is consulted for it). Reading
// kOverloadResponse as bytes (const char*) refreshes its Date line, whose
// length is fixed, so kOverloadResponseLen stays valid.
class OverloadResponse {
 public:
  operator const char*() const;  // NOLINT(google-explicit-constructor): used as the bytes
};
extern const OverloadResponse kOverloadResponse;
extern const size_t kOverloadResponseLen;

}  // namespace tickfan::http
