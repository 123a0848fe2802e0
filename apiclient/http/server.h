// server.h — one worker process's HTTP/1.1 server: its own SO_REUSEPORT
// listening socket polled by libuv, connections parsed by llhttp, the limits
// and timeouts of docs/http.md, and responses written with one writev per
// batch of pipelined requests (plus sendfile for cached bodies).
#pragma once
#include "options.h"

namespace tickfan::http {

// Exit codes of a worker, read by the supervisor.
inline constexpr int kWorkerExitOk = 0;
inline constexpr int kWorkerExitListen = 3;  // socket/bind/listen failed: restarting will not help

// Runs worker `index` until SIGTERM/SIGINT. Returns an exit code.
int run_worker(const Options& opts, int index);

}  // namespace tickfan::http
