// options.h — every knob of the HTTP frontend in one struct, filled from the
// command line and an optional config file (CLI11). Defaults are the
// documented limits in docs/http.md; change both together.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tickfan::http {

struct Options {
  std::string store_path = "/dev/shm/tickfan.store";
  std::string listen_host = "127.0.0.1";
  int port = 8080;
  int worker_port_base = 0;  // > 0: worker i also listens on this + i, alone (per-worker /metrics)
  int workers = 0;           // 0: one per online CPU
  int backlog = 4096;
  int sndbuf = 0;  // SO_SNDBUF for accepted sockets (0: kernel autotuning)
  // "auto": when there are exactly as many workers as CPUs this process may
  // use, pin worker i to the i-th of them and keep each connection on the
  // worker of the CPU its packets arrive on (server.cpp). "off": never.
  std::string cpu_affinity = "auto";
  std::string tcp_congestion;  // TCP_CONGESTION of the listeners, inherited by connections ("": system default)

  // Limits (docs/http.md "Limits").
  size_t max_uri_bytes = 32768;        // request target; longer -> 414
  size_t max_header_bytes = 16384;     // all header fields; larger -> 431
  size_t max_symbols = 2000;           // per /v1/quotes request; more -> 400
  uint32_t max_rank_limit = 500;       // /v1/rank limit=; more -> 400
  uint32_t max_connections = 10000;    // per worker; more -> 503 + close
  uint32_t header_timeout_ms = 10000;  // request started but headers incomplete -> 408
  uint32_t idle_timeout_ms = 60000;    // keep-alive with no request -> close
  uint32_t shutdown_timeout_ms = 5000;  // SIGTERM: in-flight responses finish within this, then exit
  uint32_t linger_ms = 2000;             // draining the socket after an error response
  // Unsent output per worker (cached bodies' unsent bytes plus the memory of
  // output buffers); above it, reading pauses. Most of a worker's RSS under
  // load: about 5 MB + this + 2 MiB of read-ahead.
  size_t max_queued_bytes = 8u << 20;

  // Behaviour.
  uint32_t rank_interval_ms = 200;        // rankings recomputed at most this often (and once per commit)
  int64_t ready_max_age_ms = 30000;       // /readyz 503 when the last commit is older
  size_t body_cache_bytes = 4u << 20;     // per-worker cache of list bodies (0: off); counts in RSS
  size_t body_cache_min_symbols = 16;     // smaller lists are rendered every time
  size_t gzip_min_bytes = 1024;           // compress bodies at least this large
  int gzip_level = 1;                     // libdeflate level 1..12
  uint32_t cache_max_age_s = 1;           // Cache-Control max-age for data endpoints
  std::vector<std::string> cors_origins;  // exact origins, or "*"
  std::string log_level = "info";
};

// Parses argv (and --config FILE). Returns -1 to continue, else the exit code
// (0 after --help, 2 on a usage error, with the message printed).
int parse_options(int argc, char** argv, Options* out);

}  // namespace tickfan::http
