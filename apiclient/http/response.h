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
// state exists yet): 503 with Retry-After and Connection: close.
extern const char kOverloadResponse[];
extern const size_t kOverloadResponseLen;

}  // namespace tickfan::http
