// cli_checks.h — what every tickfan binary's command line shares: CLI11
// validators for values that CLI11 would let through but that can only fail
// later (a hang, a spin, a retry for ever), and one rule for usage errors:
// exit 2, whatever CLI11's own code. A configuration mistake is named at
// start, never discovered by a daemon that looks alive.
#pragma once
#include <arpa/inet.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

#include "url_redact.h"

namespace tickfan {

// Parses argv; returns -1 to go on, else the exit code: 0 after --help, 2
// for any usage error (CLI11's own codes, 101..109, are not ours).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return -1;
}

// Files read at start (config, credentials, TLS, recordings). CLI::ExistingFile
// accepts a FIFO or a device, whose read would block start-up forever.
inline const CLI::Validator RegularFile(
    [](std::string& path) -> std::string {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) return "File does not exist: " + path;
      if (!S_ISREG(st.st_mode)) return "Not a regular file (a FIFO or device would block the read): " + path;
      return "";
    },
    "FILE");

// CLI::Range lets NaN through (every comparison with it is false), and a NaN
// turned into int64 nanoseconds is undefined. Checked before the range.
inline const CLI::Validator NotNaN(
    [](std::string& v) -> std::string {
      double d = 0;
      return CLI::detail::lexical_cast(v, d) && std::isnan(d) ? "NaN is not a number" : "";
    },
    "");

// The subject prefix starts every subject (<prefix>.<market>.<shard>,
// <prefix>.>, <prefix>-snapshot), so it must be literal NATS tokens: a
// wildcard published or subscribed where nobody meets it, and a space or an
// empty token ("a..b", a trailing dot) failed only once connected. 200 bytes
// keeps every subject well inside the server's 4 KiB control line.
inline const CLI::Validator NatsSubjectPrefix(
    [](std::string& prefix) -> std::string {
      bool ok = !prefix.empty() && prefix.size() <= 200 && prefix.front() != '.' && prefix.back() != '.' &&
                prefix.find("..") == std::string::npos;
      for (unsigned char ch : prefix) ok = ok && ch > ' ' && ch <= '~' && ch != '*' && ch != '>';
      if (ok) return "";
      return "Not a subject prefix (dot-separated tokens, no spaces or wildcards * >, at most 200 bytes): '" +
             prefix + "'";
    },
    "SUBJECT");

// A --nats entry libnats can never connect to was retried for ever ("Invalid
// Argument", "refused or unreachable"): an empty one, a port that is not
// 1..65535 (nats://h:99999 silently wrapped), an unclosed IPv6 bracket. The
// URL is echoed with its password redacted.
inline const CLI::Validator NatsUrl(
    [](std::string& url) -> std::string {
      std::string_view u(url);
      if (u.find_first_not_of(" \t") == std::string_view::npos) return "Empty NATS server URL";
      if (size_t s = u.find("://"); s != std::string_view::npos) u.remove_prefix(s + 3);
      if (size_t at = u.rfind('@'); at != std::string_view::npos) u.remove_prefix(at + 1);  // user:password@
      while (!u.empty() && u.back() == '/') u.remove_suffix(1);
      const std::string shown = "'" + redact_url(url) + "'";
      if (u.empty()) return "Not a NATS server URL (no host): " + shown;
      size_t colon = u.rfind(':');
      if (u.front() == '[') {
        size_t close = u.find(']');
        if (close == std::string_view::npos) return "Not a NATS server URL (unclosed [): " + shown;
        if (close + 1 != u.size() && u[close + 1] != ':') return "Not a NATS server URL: " + shown;
        colon = close + 1 < u.size() ? close + 1 : std::string_view::npos;
      }
      if (colon == std::string_view::npos) return "";  // the default port
      std::string_view port = u.substr(colon + 1);
      int n = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
      if (ec != std::errc() || end != port.data() + port.size() || n < 1 || n > 65535)
        return "Not a NATS server URL (port must be 1..65535): " + shown;
      return "";
    },
    "URL");

// libnats 3.4.1 copies the client name, user, password and token into its
// CONNECT JSON without escaping them: a '"' or a control character made JSON
// the server refused, which looked like a retryable failure ("Expected
// 'PONG', got ''") and was retried for ever; a '\' made a different string.
// The value is not echoed (it may be a secret).
inline const CLI::Validator NatsConnectText(
    [](std::string& text) -> std::string {
      for (char ch : text)
        if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
          return "Contains a '\"', a '\\' or a control character, which libnats sends unescaped (the server "
                 "refuses every connect)";
      return "";
    },
    "TEXT");

// An address to bind or listen on, given as a number: a name such as
// localhost passed the command line and failed later (in every HTTP worker,
// or after the store was opened), exit 1, as if it were a runtime failure.
inline const CLI::Validator NumericAddress(
    [](std::string& host) -> std::string {
      in6_addr a;
      if (inet_pton(AF_INET, host.c_str(), &a) == 1 || inet_pton(AF_INET6, host.c_str(), &a) == 1) return "";
      return "Not an IPv4/IPv6 address (names are not resolved): '" + host + "'";
    },
    "ADDR");

// --log-level: a typo used to be silently "info" (log_parse_level names).
inline const CLI::Validator LogLevelName = CLI::IsMember({"debug", "info", "warn", "error"});

}  // namespace tickfan
