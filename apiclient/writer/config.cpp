// config.cpp — see config.h.
#include "config.h"

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>

#include "cli_checks.h"
#include "quote.h"

namespace tickfan::apiclient {

std::vector<std::string> Config::delta_subjects() const {
  if (markets.empty()) return {subject_prefix + ".>"};
  std::vector<std::string> out;
  for (const std::string& m : markets) out.push_back(subject_prefix + "." + m + ".*");
  return out;
}

std::string Config::snapshot_request_payload() const {
  std::string out;
  for (const std::string& m : markets) {
    if (!out.empty()) out += ',';
    out += m;
  }
  return out;
}

namespace {

// Returns a market listed twice (each would be a second subscription to the
// same subjects, every delta delivered twice), or "".
std::string repeated_market(const std::vector<std::string>& markets) {
  for (size_t i = 0; i < markets.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (markets[i] == markets[j]) return markets[i];
  return "";
}

}  // namespace

int parse_config(int argc, char** argv, Config* c) {
  CLI::App app{"tickfan-apiclient: NATS quote batches -> the local shared-memory store (single writer)"};
  app.set_config("--config", "", "TOML config file (flags on the command line win)")->check(RegularFile);
  // An unknown key in the file (a typo such as heartbeat-msx) is an error
  // naming it, not silently ignored (CLI11's default).
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--store", c->store_path, "Store file to create or reopen (e.g. /dev/shm/tickfan.store)")->required();
  app.add_option("--capacity", c->capacity, "Symbols the store holds; used only when creating it")
      ->capture_default_str()
      ->check(CLI::Range(1u, 50'000'000u));
  app.add_option("--nats", c->nats.servers, "NATS server URL(s), comma-separated or repeated")
      ->delimiter(',')
      ->check(NatsUrl)
      ->capture_default_str();
  app.add_option("--nats-name", c->nats.name, "Client name shown by the NATS server")
      ->check(NatsConnectText)
      ->capture_default_str();
  app.add_option("--nats-creds", c->nats.creds_file, "NATS .creds file (user JWT + nkey seed)")->check(RegularFile);
  app.add_option("--nats-user", c->nats.user, "NATS user")->check(NatsConnectText);
  app.add_option("--nats-password", c->nats.password, "NATS password")->check(NatsConnectText);
  app.add_option("--nats-token", c->nats.token, "NATS token")->check(NatsConnectText);
  app.add_flag("--nats-tls", c->nats.tls, "Require TLS to the NATS server");
  app.add_option("--nats-tls-ca", c->nats.tls_ca, "CA bundle to verify the NATS server")->check(RegularFile);
  CLI::Option* tls_cert =
      app.add_option("--nats-tls-cert", c->nats.tls_cert, "Client certificate (mutual TLS)")->check(RegularFile);
  CLI::Option* tls_key =
      app.add_option("--nats-tls-key", c->nats.tls_key, "Client key (mutual TLS)")->check(RegularFile);
  // One without the other is a mistake: a key alone was silently ignored, a
  // certificate alone failed deep inside the TLS set-up.
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_flag("--nats-tls-skip-verify", c->nats.tls_skip_verify, "Do not verify the server certificate (tests only)");
  app.add_option("--nats-reconnect-wait-ms", c->nats.reconnect_wait_ms, "Wait between NATS reconnect attempts")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--nats-reconnect-jitter-ms", c->nats.reconnect_jitter_ms, "Random extra wait per reconnect attempt")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  app.add_option("--pending-msgs", c->nats.pending_msgs, "Messages allowed to wait for the apply thread")
      ->capture_default_str()
      ->check(CLI::Range(1000, 100'000'000));
  app.add_option("--pending-bytes", c->nats.pending_bytes, "Bytes allowed to wait for the apply thread")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1} << 20, int64_t{INT32_MAX}));  // libnats takes an int
  app.add_option("--prefix", c->subject_prefix, "Delta subjects are <prefix>.<market>.<shard>")
      ->check(NatsSubjectPrefix)
      ->capture_default_str();
  app.add_option("--markets", c->markets, "Markets to follow, e.g. sh,sz (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"sh", "sz", "bj", "hk", "us"}));
  int64_t snapshot_timeout_ms = c->sync.snapshot_timeout_ns / 1'000'000;
  int64_t retry_min_ms = c->sync.retry_min_ns / 1'000'000;
  int64_t retry_max_ms = c->sync.retry_max_ns / 1'000'000;
  app.add_option("--snapshot-timeout-ms", snapshot_timeout_ms,
                 "Silence while waiting for a snapshot reply before retrying")
      ->capture_default_str()
      ->check(CLI::Range(50, 600000));
  app.add_option("--retry-min-ms", retry_min_ms, "First snapshot retry delay (doubles per failure)")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--retry-max-ms", retry_max_ms, "Snapshot retry delay ceiling")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--max-buffered", c->sync.max_buffered, "Deltas buffered while a snapshot is in flight")
      ->capture_default_str()
      ->check(CLI::Range(size_t{100}, size_t{100'000'000}));
  app.add_option("--heartbeat-ms", c->heartbeat_ms, "Store heartbeat period")
      ->capture_default_str()
      ->check(CLI::Range(10, 5000));
  app.add_option("--metrics-addr", c->metrics_host, "Address of the /metrics listener")
      ->check(NumericAddress)
      ->capture_default_str();
  app.add_option("--metrics-port", c->metrics_port, "Port of the /metrics listener (0 = off, -1 = any)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--log-level", c->log_level, "debug|info|warn|error")->capture_default_str()->check(LogLevelName);
  CLI::Option* samples =
      app.add_option("--latency-samples", c->latency_samples, "Benchmarks: keep up to N raw per-quote latencies")
          ->check(CLI::Range(size_t{0}, size_t{100'000'000}));
  CLI::Option* samples_file = app.add_option("--latency-samples-file", c->latency_samples_file,
                                             "Benchmarks: write the raw (ingest ns, latency ns) pairs here at exit");
  // One is useless without the other: samples kept but never written, or an
  // empty file written at exit.
  samples->needs(samples_file);
  samples_file->needs(samples);
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (std::string m = repeated_market(c->markets); !m.empty()) {
    std::fprintf(stderr, "--markets: %s is listed twice\n", m.c_str());
    return 2;
  }
  c->sync.snapshot_timeout_ns = snapshot_timeout_ms * 1'000'000;
  c->sync.retry_min_ns = retry_min_ms * 1'000'000;
  c->sync.retry_max_ns = std::max(retry_max_ms, retry_min_ms) * 1'000'000;
  return -1;
}

}  // namespace tickfan::apiclient
