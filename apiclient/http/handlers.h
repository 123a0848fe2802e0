// handlers.h — the endpoints (handlers/*.cpp) and the router that picks one
// (router.cpp). Each handler appends its body to `out` and sets `rep`; the
// server adds the headers. Bodies of errors are JSON too:
//   {"error":{"status":404,"message":"unknown symbol: xx"}}
#pragma once
#include <algorithm>
#include <string_view>

#include "buffer.h"
#include "query.h"
#include "request.h"
#include "worker.h"

namespace tickfan::http {

void route(Worker& w, const Request& req, Reply& rep, Buffer& out);

void handle_quotes(Worker& w, const Request& req, Reply& rep, Buffer& out);
void handle_quote(Worker& w, const Request& req, std::string_view symbol, Reply& rep, Buffer& out);
void handle_rank(Worker& w, const Request& req, Reply& rep, Buffer& out);
void handle_healthz(Worker& w, const Request& req, Reply& rep, Buffer& out);
void handle_readyz(Worker& w, const Request& req, Reply& rep, Buffer& out);
void handle_metrics(Worker& w, const Request& req, Reply& rep, Buffer& out);

// Replaces whatever the handler appended since `body_start` with a JSON error.
void error_reply(Reply& rep, Buffer& out, size_t body_start, int status, std::string_view message,
                 std::string_view detail = {});
// True when If-None-Match matches `etag` (weak comparison, RFC 9110 §13.1.2;
// "*" matches any current representation).
bool etag_matches(std::string_view if_none_match, std::string_view etag);
// Sets the data headers and the ETag from the worker's current store state.
void set_data_reply(Worker& w, Reply& rep, uint64_t commit, int64_t commit_ns);
// Appends `{"age_ms":A,"commit":C,` (the start of every data body).
void append_data_prefix(const Reply& rep, Buffer& out);
// The common head of a data body (quotes, rankings), after set_data_reply:
// the server's Cache-Control, compression allowed, and If-None-Match
// answered with 304 before anything is rendered (RFC 9110 §13.1.2,
// §15.4.5). False when the 304 is the whole answer; otherwise appends the
// body prefix and the caller renders the rest.
bool begin_data_body(const Request& req, Reply& rep, Buffer& out);
// Weak ETag from the commit sequence and commit time (so a recreated store,
// whose count restarts, does not collide): W/"<commit>-<commit_ns hex>".
void format_etag(uint64_t commit, int64_t commit_ns, char* out, size_t cap);

}  // namespace tickfan::http
