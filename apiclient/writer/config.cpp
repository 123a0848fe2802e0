// config.cpp — see config.h.
#include "config.h"

#include <uv.h>

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

// --prefix becomes subjects <prefix>.<market>.<shard>, <prefix>.> and
// <prefix>-snapshot, so it must be literal NATS tokens: an empty one, an
// empty token ("a..b", a trailing dot), a space or a wildcard made an
// invalid subject that failed only once connected (and with no server
// reachable the daemon retried for ever with nothing said), and "a.*"
// subscribed to a wildcard and published requests to one. 200 bytes keeps
// every subject well inside the server's 4 KiB control line (a 5 000-byte
// prefix made the server close the connection).
const CLI::Validator SubjectPrefix(
    [](std::string& prefix) -> std::string {
      const std::string why =
          "Not a subject prefix (dot-separated tokens, no spaces or wildcards * >, at most 200 "
          "bytes): '" +
          prefix + "'";
      if (prefix.empty() || prefix.size() > 200 || prefix.front() == '.' || prefix.back() == '.' ||
          prefix.find("..") != std::string::npos)
        return why;
      for (char ch : prefix)
        if (ch <= ' ' || ch > '~' || ch == '*' || ch == '>') return why;
      return "";
    },
    "SUBJECT");

// Whether the [host]:port part of a NATS URL (after any scheme:// and
// user:password@) has a usable port: none (the default 4222) or 1..65535,
// and an IPv6 host in balanced brackets.
bool nats_host_port_ok(std::string_view hp) {
  size_t colon = hp.rfind(':');
  if (!hp.empty() && hp.front() == '[') {
    size_t close = hp.find(']');
    if (close == std::string_view::npos) return false;
    colon = close + 1 < hp.size() && hp[close + 1] == ':' ? close + 1 : std::string_view::npos;
    if (colon == std::string_view::npos && close + 1 != hp.size()) return false;
  }
  if (colon == std::string_view::npos) return true;
  std::string_view port = hp.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
  int n = std::stoi(std::string(port));
  return n >= 1 && n <= 65535;
}

// A --nats entry libnats can never connect to was retried for ever: an
// empty one ("--nats ''", or nats = [""] in the file: "Invalid Argument"),
// a port that is no number or past 65535 ("invalid port 'abc'", or
// 99999 silently wrapped), an unclosed IPv6 bracket.
const CLI::Validator NatsUrl(
    [](std::string& url) -> std::string {
      if (url.find_first_not_of(" \t") == std::string::npos) return "Empty NATS server URL";
      std::string_view hp = url;
      if (size_t scheme = hp.find("://"); scheme != std::string_view::npos) hp.remove_prefix(scheme + 3);
      if (size_t at = hp.rfind('@'); at != std::string_view::npos) hp.remove_prefix(at + 1);
      while (!hp.empty() && hp.back() == '/') hp.remove_suffix(1);
      if (hp.empty() || !nats_host_port_ok(hp))
        return "Not a NATS server URL ([nats://][user:password@]host[:port], port 1..65535): " + url;
      return "";
    },
    "URL");

// libnats 3.4.1 copies --nats-name, -user, -password and -token into its
// CONNECT JSON without escaping them: a '"' or a control character made
// JSON the server refused, which looked like a retryable failure ("Expected
// 'PONG', got ''"), retried for ever; a '\' made a different string or
// broken JSON. The value itself is not echoed (it may be a secret).
const CLI::Validator ConnectText(
    [](std::string& text) -> std::string {
      for (char ch : text)
        if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
          return "Contains a '\"', a '\\' or a control character, which libnats sends unescaped (the server "
                 "refuses every connect)";
      return "";
    },
    "TEXT");

// --metrics-addr is parsed the way the listener does (common/metrics_http.cpp):
// a name such as localhost failed only after the store was opened, exit 1.
const CLI::Validator MetricsAddress(
    [](std::string& host) -> std::string {
      sockaddr_storage addr{};
      int rc = host.find(':') != std::string::npos
                   ? uv_ip6_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&addr))
                   : uv_ip4_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in*>(&addr));
      return rc == 0 ? "" : "Not an IPv4/IPv6 address (names are not resolved): '" + host + "'";
    },
    "ADDR");

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
      ->check(ConnectText)
      ->capture_default_str();
  app.add_option("--nats-creds", c->nats.creds_file, "NATS .creds file (user JWT + nkey seed)")->check(RegularFile);
  app.add_option("--nats-user", c->nats.user, "NATS user")->check(ConnectText);
  app.add_option("--nats-password", c->nats.password, "NATS password")->check(ConnectText);
  app.add_option("--nats-token", c->nats.token, "NATS token")->check(ConnectText);
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
      ->check(SubjectPrefix)
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
      ->check(MetricsAddress)
      ->capture_default_str();
  app.add_option("--metrics-port", c->metrics_port, "Port of the /metrics listener (0 = off, -1 = any)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--log-level", c->log_level, "debug|info|warn|error")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  CLI::Option* samples =
      app.add_option("--latency-samples", c->latency_samples, "Benchmarks: keep up to N raw per-quote latencies")
          ->check(CLI::Range(size_t{0}, size_t{100'000'000}));
  CLI::Option* samples_file = app.add_option("--latency-samples-file", c->latency_samples_file,
                                             "Benchmarks: write the raw (ingest ns, latency ns) pairs here at exit");
  // One is useless without the other: samples kept but never written, or an
  // empty file written at exit.
  samples->needs(samples_file);
  samples_file->needs(samples);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes (105 bad value, 103 missing config file, ...) are
    // not ours: every usage error is 2, as config.h and the docs say.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
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
