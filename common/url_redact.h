// url_redact.h — a NATS server URL fit for a log line. Users may give
// credentials in the URL (nats://user:password@host:4222, or a token:
// nats://token@host); logs keep the user name and hide the secret.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tickfan {

inline std::string redact_url(std::string_view url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);  // the authority ends here (RFC 3986 §3.2)
  if (end == std::string_view::npos) end = url.size();
  size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  std::string_view userinfo = url.substr(start, at - start);
  size_t colon = userinfo.find(':');
  std::string out(url.substr(0, start));
  if (colon == std::string_view::npos) {
    out += "***";  // a token
  } else {
    out += userinfo.substr(0, colon);
    out += ":***";
  }
  out += url.substr(at);
  return out;
}

// A server list for a log line: each URL redacted, comma-separated.
inline std::string redact_urls(const std::vector<std::string>& urls) {
  std::string out;
  for (const std::string& url : urls) {
    if (!out.empty()) out += ',';
    out += redact_url(url);
  }
  return out;
}

}  // namespace tickfan
