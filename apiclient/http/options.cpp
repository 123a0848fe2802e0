// options.cpp — CLI11 definitions for Options; the flag names are the
// interface operators and scripts/run-local.sh rely on.
#include "options.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "cli_checks.h"

namespace tickfan::http {

namespace {

// A --cors-origin entry is compared byte for byte with the request's Origin
// (response.cpp cors_for), which a browser sends as scheme://host[:port]:
// no path, no trailing slash, no spaces, at most 256 bytes. Anything else
// can never match, so it was accepted and silently did nothing (e.g. the
// " https://b.example" of "https://a.example, https://b.example").
const CLI::Validator CorsOrigin(
    [](std::string& origin) -> std::string {
      if (origin == "*") return "";
      const std::string why = "Not an origin (scheme://host[:port], or *): '" + origin + "'";
      if (origin.empty() || origin.size() > 256) return why;
      for (char ch : origin)
        if (ch <= ' ' || ch > '~') return why;
      size_t sep = origin.find("://");
      if (sep == std::string::npos || sep == 0 || sep + 3 == origin.size()) return why;
      if (origin.find('/', sep + 3) != std::string::npos) return why;
      return "";
    },
    "ORIGIN");

}  // namespace

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{"tickfan-http: HTTP quote API served from the tickfan shared-memory store"};
  app.set_config("--config", "", "read options from this TOML/INI file")->check(RegularFile);
  // An unknown key in the file (a typo such as max-conections) is an error
  // naming it; CLI11's default ignored it, so the setting silently did nothing.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--store", o->store_path, "store file written by tickfan-apiclient")->capture_default_str();
  app.add_option("--host", o->listen_host, "listen address")->check(NumericAddress)->capture_default_str();
  app.add_option("--port", o->port, "listen port (every worker binds it with SO_REUSEPORT)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--worker-port-base", o->worker_port_base,
                 "worker i also listens alone on this port + i (scrape each worker's /metrics there; 0: off)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--workers", o->workers, "worker processes (0 = number of CPUs)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--cpu-affinity", o->cpu_affinity,
                 "auto: when workers = CPUs, pin one worker per CPU and serve each connection on the worker of the "
                 "CPU its packets arrive on; off")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  app.add_option("--tcp-congestion", o->tcp_congestion,
                 "TCP congestion control of client connections, e.g. cubic (empty: the system default)");
  app.add_option("--backlog", o->backlog, "listen backlog per worker")
      ->check(CLI::Range(1, INT_MAX))  // listen() took 0 or less as the system maximum
      ->capture_default_str();
  app.add_option("--sndbuf", o->sndbuf, "SO_SNDBUF of client sockets in bytes (0: kernel autotuning)")
      ->check(CLI::Range(0, INT_MAX / 2))  // the kernel doubles it; a negative one was ignored silently
      ->capture_default_str();
  app.add_option("--max-uri-bytes", o->max_uri_bytes, "longest request target (else 414)")->capture_default_str();
  app.add_option("--max-header-bytes", o->max_header_bytes, "largest header section (else 431)")->capture_default_str();
  app.add_option("--max-symbols", o->max_symbols, "most symbols per /v1/quotes request (else 400)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-rank-limit", o->max_rank_limit, "largest /v1/rank limit= (else 400)")
      ->check(CLI::Range(1u, 1'000'000u))  // 0 answered every limit= with 400 "limit must be 1..0"
      ->capture_default_str();
  app.add_option("--max-connections", o->max_connections, "open connections per worker (else 503)")
      ->check(CLI::Range(1u, 10'000'000u))  // 0 answered every connection 503
      ->capture_default_str();
  app.add_option("--max-queued-bytes", o->max_queued_bytes,
                 "unsent response bytes per worker (output buffers counted by their size) before connections stop reading")
      ->capture_default_str();
  // 0 closed every new connection at the next sweep, request or not.
  app.add_option("--header-timeout-ms", o->header_timeout_ms, "time to receive a request's headers (else 408)")
      ->check(CLI::Range(1u, UINT32_MAX))
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", o->idle_timeout_ms, "keep-alive idle time before close")
      ->check(CLI::Range(1u, UINT32_MAX))
      ->capture_default_str();
  app.add_option("--shutdown-timeout-ms", o->shutdown_timeout_ms,
                 "on SIGTERM: stop accepting, close idle connections, finish in-flight responses for at most this "
                 "long, then exit")
      ->capture_default_str();
  app.add_option("--rank-interval-ms", o->rank_interval_ms, "rankings recomputed at most this often")
      ->check(CLI::Range(0u, 3'600'000u))  // twice it must fit the uint32_t (rank.cpp)
      ->capture_default_str();
  app.add_option("--ready-max-age-ms", o->ready_max_age_ms, "/readyz fails when the data is older")
      ->check(CLI::Range(int64_t{1}, INT64_MAX))  // 0 or less: /readyz 503 for ever
      ->capture_default_str();
  app.add_option("--body-cache-bytes", o->body_cache_bytes, "per-worker cache of rendered list bodies (0: off)")
      ->capture_default_str();
  app.add_option("--body-cache-min-symbols", o->body_cache_min_symbols,
                 "cache list bodies of at least this many symbols")
      ->capture_default_str();
  app.add_option("--gzip-min-bytes", o->gzip_min_bytes, "gzip bodies at least this large")->capture_default_str();
  app.add_option("--gzip-level", o->gzip_level, "libdeflate level")->check(CLI::Range(1, 12))->capture_default_str();
  app.add_option("--cache-max-age", o->cache_max_age_s, "Cache-Control max-age (s) for data")->capture_default_str();
  app.add_option("--cors-origin", o->cors_origins, "allowed CORS origin (repeatable, or *)")
      ->delimiter(',')
      ->check(CorsOrigin);
  app.add_option("--log-level", o->log_level, "debug|info|warn|error")->capture_default_str();
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  // A missing store is fine (the workers serve 503 until the writer creates
  // it), but a directory, FIFO or device at the path can never become one:
  // the workers used to start anyway, log a warning a minute and answer 503
  // for ever.
  struct stat st {};
  if (::stat(o->store_path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      fprintf(stderr, "tickfan-http: --store %s is not a regular file (a directory, FIFO or device is never a store)\n",
              o->store_path.c_str());
      return 2;
    }
  } else if (errno == ENOTDIR || errno == ENAMETOOLONG || errno == ELOOP) {
    // Nothing can ever be created at such a path: a component is not a
    // directory, a name is too long, or symlinks loop.
    fprintf(stderr, "tickfan-http: --store %s can never hold a store: %s\n", o->store_path.c_str(),
            std::strerror(errno));
    return 2;
  }
  if (o->max_uri_bytes < 64 || o->max_header_bytes < 256) {
    fprintf(stderr, "tickfan-http: --max-uri-bytes must be >= 64 and --max-header-bytes >= 256\n");
    return 2;
  }
  return -1;
}

}  // namespace tickfan::http
