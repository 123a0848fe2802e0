// server.h — one worker process's HTTP/1.1 server: its own SO_REUSEPORT
// listening socket polled by libuv, connections parsed by llhttp, the limits
// and timeouts of docs/http.md, and responses written with one sendmsg per
// batch of pipelined requests, cached list bodies included.
#pragma once
#include <vector>

#include "options.h"

namespace tickfan::http {

// Exit codes of a worker, read by the supervisor.
inline constexpr int kWorkerExitOk = 0;
inline constexpr int kWorkerExitListen = 3;  // socket/bind/listen failed: restarting will not help

// CPU pinning (--cpu-affinity), decided by the supervisor: the CPU of every
// worker, and one datagram socket pair per worker through which the others
// hand it connections (SCM_RIGHTS). Empty when the workers are not pinned.
struct Handoff {
  std::vector<int> cpus;    // cpus[i]: the CPU worker i runs on
  std::vector<int> inbox;   // inbox[i]: where worker i receives connections
  std::vector<int> outbox;  // outbox[i]: where the others send them
};

// The CPUs to pin workers 0..workers-1 to: the CPUs this process may run on,
// in order, when there are exactly as many as workers and --cpu-affinity is
// auto; else empty (not pinned).
std::vector<int> worker_cpus(const Options& opts);

// Runs worker `index` until SIGTERM/SIGINT. Returns an exit code.
int run_worker(const Options& opts, int index, const Handoff& handoff);

}  // namespace tickfan::http
