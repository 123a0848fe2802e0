// config.cpp — see config.h. Every option's help text says what it does and
// its unit; defaults are shown by --help.
#include "config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>

#include "cli_checks.h"

namespace tickfan::apiserver {

namespace {
// Millisecond options are multiplied into int64 nanoseconds: bounded to a day
// (overflow, and a 0 or negative threshold that trips at every check, were
// accepted).
constexpr int64_t kMaxMs = 86'400'000;

}  // namespace

int parse_options(int argc, char** argv, Options* out) {
  ServerConfig& c = out->server;
  CLI::App app{
      "tickfan-apiserver: reads ticks from upstream sources, validates and de-duplicates them, and publishes\n"
      "FlatBuffer QuoteBatch messages to NATS on <prefix>.<market>.<shard>; answers snapshot requests on\n"
      "<prefix>-snapshot. Example:\n"
      "  tickfan-apiserver --nats nats://127.0.0.1:4222 --source 'synthetic:?rate=2000'\n"
      "  tickfan-apiserver --config /etc/tickfan/apiserver.toml\n"
      "Docs: docs/apiserver.md (operation), docs/ticks.md (input formats), docs/protocol.md (wire)."};
  app.set_config("--config", "", "Read options from this TOML file (command-line values win)")->check(RegularFile);
  // An unknown key in the file (a typo such as heartbeat-msx) is an error
  // naming it, not silently ignored (CLI11's default).
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.option_defaults()->always_capture_default();

  std::vector<std::string> sources;
  app.add_option("-s,--source", sources,
                 "Input, repeatable: file:PATH[?follow=1], stdin:, tcp://HOST:PORT, "
                 "synthetic:[?symbols=5000&rate=20000&seed=1&count=0]; every kind also takes name=LABEL and "
                 "priority=N (smaller = preferred on equal timestamps), e.g. 'tcp://feed-a:9000?name=a&priority=1'")
      ->required()
      ->group("Sources");
  // Was std::stoll in a transform: a word aborted the process, "1e3" meant 1,
  // a huge value overflowed, a negative one refused every tick.
  int64_t max_future_ms = c.limits.max_future_ns / 1000000;
  app.add_option("--max-future-ms", max_future_ms, "Reject ticks stamped further ahead of our clock (ms)")
      ->check(CLI::Range(int64_t{0}, kMaxMs))
      ->group("Sources");
  app.add_option("--ring-size", c.ring_capacity, "Per-source hand-off ring, in quotes (power of two)")
      ->check(CLI::Range(64u, 1u << 22))
      ->group("Sources");

  std::vector<std::string> servers;
  app.add_option("--nats", servers, "NATS server URL, repeatable or comma-separated (a cluster's members)")
      ->delimiter(',')
      ->check(NatsUrl)
      ->default_str("nats://127.0.0.1:4222")
      ->group("NATS");
  app.add_option("--nats-user", c.nats.user, "User name")->check(NatsConnectText)->group("NATS");
  app.add_option("--nats-password", c.nats.password, "Password (prefer the config file to the command line)")
      ->check(NatsConnectText)
      ->group("NATS");
  app.add_option("--nats-token", c.nats.token, "Authentication token")->check(NatsConnectText)->group("NATS");
  app.add_option("--nats-creds", c.nats.creds_file, "Credentials file (JWT + NKey seed)")
      ->check(RegularFile)
      ->group("NATS");
  app.add_flag("--nats-tls", c.nats.tls, "Require TLS")->group("NATS");
  app.add_option("--nats-tls-ca", c.nats.tls_ca, "CA certificates file (PEM) to verify the server")
      ->check(RegularFile)
      ->group("NATS");
  app.add_option("--nats-tls-cert", c.nats.tls_cert, "Client certificate chain (PEM)")
      ->check(RegularFile)
      ->group("NATS");
  app.add_option("--nats-tls-key", c.nats.tls_key, "Client private key (PEM)")->check(RegularFile)->group("NATS");
  app.add_flag("--nats-tls-skip-verify", c.nats.tls_skip_verify, "Do not verify the server certificate (tests only)")
      ->group("NATS");
  // Bounded as in the apiclient: a zero or negative wait would make the
  // connector retry a dead server in a tight loop.
  app.add_option("--nats-reconnect-wait-ms", c.nats.reconnect_wait_ms, "Wait between reconnect attempts (ms)")
      ->check(CLI::Range(10, 60000))
      ->group("NATS");
  app.add_option("--nats-reconnect-jitter-ms", c.nats.reconnect_jitter_ms, "Random extra wait per attempt (ms)")
      ->check(CLI::Range(0, 60000))
      ->group("NATS");
  app.add_option("--nats-reconnect-buffer-mb", c.nats.reconnect_buffer_mb,
                 "Publishes kept while disconnected (MiB); beyond it publishes fail and receivers resync")
      ->check(CLI::Range(1, 2047))
      ->group("NATS");
  app.add_flag("--send-asap,!--no-send-asap", c.nats.send_asap,
               "Write every publish at once (low latency) instead of letting the client coalesce for ~1 ms")
      ->group("NATS");

  app.add_option("--prefix", c.prefix,
                 "Subject prefix: deltas on <prefix>.<market>.<shard>, snapshots on <prefix>-snapshot")
      ->check(NatsSubjectPrefix)
      ->group("Publishing");
  app.add_option("--shards", c.shards, "Shards (subjects) per market; must match the apiclients")
      ->check(CLI::Range(1u, 256u))
      ->group("Publishing");
  app.add_option("--publisher-id", c.publisher_id, "Name carried in every batch (default: host name)")
      ->group("Publishing");
  app.add_option("--max-batch", c.max_batch, "Flush a subject's batch at this many quotes")
      ->check(CLI::Range(size_t{1}, size_t{3000}))
      ->group("Publishing");
  double max_delay_ms = 2;
  app.add_option("--max-delay-ms", max_delay_ms,
                 "Flush a subject's batch when its oldest quote waited this long (ms); an idle input flushes at once")
      ->check(NotNaN)
      ->check(CLI::Range(0.0, 10000.0))
      ->group("Publishing");
  app.add_option("--snapshot-part", c.snapshot_part, "Quotes per snapshot part message")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->group("Publishing");
  double refresh_s = 0;
  app.add_option("--refresh-s", refresh_s, "Re-publish every last value as deltas every N seconds (0 = off)")
      ->check(NotNaN)
      ->check(CLI::Range(0.0, 86400.0))
      ->group("Publishing");

  int64_t errors = c.breaker.error_threshold, window_ms = 10000, silence_ms = 5000, open_ms = 2000;
  // 0 errors opened every breaker at once, a negative count wrapped to 4e9.
  app.add_option("--breaker-errors", errors, "Errors within --breaker-window-ms that open a source's breaker")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->group("Health");
  app.add_option("--breaker-window-ms", window_ms, "Error counting window (ms)")
      ->check(CLI::Range(int64_t{1}, kMaxMs))
      ->group("Health");
  app.add_option("--breaker-silence-ms", silence_ms, "A source silent this long while others deliver is cut off (ms)")
      ->check(CLI::Range(int64_t{1}, kMaxMs))
      ->group("Health");
  app.add_option("--breaker-open-ms", open_ms, "How long a breaker stays open before probing (ms)")
      ->check(CLI::Range(int64_t{1}, kMaxMs))
      ->group("Health");
  app.add_option("--breaker-probe-ticks", c.breaker.probe_ticks, "Good ticks in half-open that close the breaker")
      ->check(CLI::Range(1u, 1000000u))
      ->group("Health");

  double state_interval_ms = 1000;
  app.add_option("--state-file", c.state_file,
                 "Keep the last value of every symbol in this store file (shm/ format) so a restart can answer "
                 "snapshots at once; e.g. /var/lib/tickfan/apiserver.store")
      ->group("State");
  app.add_option("--state-interval-ms", state_interval_ms, "How often changed symbols are written to --state-file (ms)")
      ->check(NotNaN)
      ->check(CLI::Range(10.0, 600000.0))
      ->group("State");

  app.add_option("--metrics-addr", out->metrics_addr, "Address of the /metrics and /healthz listener")
      ->group("Operations");
  // 70000 used to listen on 70000 mod 65536, -7 on any port.
  app.add_option("--metrics-port", out->metrics_port, "Port of the listener (0 = off, -1 = any free port, logged)")
      ->check(CLI::Range(-1, 65535))
      ->group("Operations");
  app.add_option("--log-level", out->log_level, "debug, info, warn or error")->check(LogLevelName)->group("Operations");
  app.add_flag("--exit-when-done", c.exit_when_done,
               "Exit once every source has ended (files read, synthetic count reached) and all is published")
      ->group("Operations");

  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  try {
    for (const auto& s : sources) c.sources.push_back(parse_source_uri(s));
  } catch (const std::invalid_argument& e) {
    std::cerr << "tickfan-apiserver: " << e.what() << "\n";
    return 2;
  }
  // Two stdin: sources are two threads reading one descriptor: each took
  // pieces of the other's lines (20 000 piped lines gave 5 151 ticks and a
  // stream of rejects) with nothing saying why.
  if (std::count_if(c.sources.begin(), c.sources.end(),
                    [](const SourceSpec& s) { return s.kind == SourceKind::stdin_; }) > 1) {
    std::cerr << "tickfan-apiserver: --source stdin: given more than once (there is one standard input)\n";
    return 2;
  }
  if (!servers.empty()) c.nats.servers = servers;
  c.limits.max_future_ns = max_future_ms * 1000000;
  c.max_delay_ns = static_cast<int64_t>(max_delay_ms * 1e6);
  c.refresh_ns = static_cast<int64_t>(refresh_s * 1e9);
  c.state_interval_ns = static_cast<int64_t>(state_interval_ms * 1e6);
  c.breaker.error_threshold = static_cast<uint32_t>(errors);
  c.breaker.error_window_ns = window_ms * 1000000;
  c.breaker.silence_ns = silence_ms * 1000000;
  c.breaker.open_ns = open_ms * 1000000;
  if ((c.ring_capacity & (c.ring_capacity - 1)) != 0) {
    std::cerr << "tickfan-apiserver: --ring-size " << c.ring_capacity << " is not a power of two\n";
    return 2;
  }
  if (c.publisher_id.empty()) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    c.publisher_id = host[0] ? host : "apiserver";
  }
  return -1;
}

}  // namespace tickfan::apiserver
