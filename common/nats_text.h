// nats_text.h — libnats' words about a failed connect, made fit for one log
// line, shared by the apiserver and the apiclient (each retries its first
// connect itself: libnats 3.4.1 gives up after a failure past the TCP
// connect, see ../shared/notes/nats.md and docs/apiclient.md).
#pragma once
#include <nats/nats.h>

#include <cctype>
#include <string>

namespace tickfan {

// Whether a server's error text is a refused login, which no retry fixes.
inline bool nats_mentions_login(const std::string& text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("authoriz") != std::string::npos || lower.find("authenticat") != std::string::npos;
}

// A connect attempt's text from the library's thread-local error, e.g.
// "(unix/sock.c:58): Timeout" -> "Timeout", with a hint where the library's
// own words do not say what happened.
inline std::string nats_attempt_error(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = last ? last : "";
  if (!text.empty() && text[0] == '(') {
    size_t at = text.find("): ");
    if (at != std::string::npos) text = text.substr(at + 3);
  }
  if (text.empty()) text = natsStatus_GetText(s);
  if (s == NATS_TIMEOUT) text += " (the server accepted the connection but did not answer)";
  if (s == NATS_NO_SERVER) text += " (refused or unreachable)";
  return text;
}

}  // namespace tickfan
