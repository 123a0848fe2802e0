// query.h — the query-string helpers the handlers share: split
// `a=1&b=2` (names percent-decoded on the way), percent-decode (RFC 3986
// §2.1; '+' is a space only in HTML form encoding, which clients of a JSON
// API do not use, so it stays '+'), parse bounded integers and escape text
// for JSON error bodies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "buffer.h"

namespace tickfan::http {

struct QueryParam {
  // The name, percent-decoded: an escaped unreserved character is the
  // character itself (RFC 3986 §2.1, §6.2.2.2), so "sym%62ols" is "symbols"
  // (it used to be an unknown parameter, ignored). A name whose escapes are
  // malformed (or decode to NUL) is left as sent: it still holds a '%', so it
  // names none of an endpoint's parameters and is ignored like any unknown
  // one, never refused (cache busters carry arbitrary names).
  std::string_view key;
  std::string_view value;  // still percent-encoded: each handler decodes what it uses
  std::string key_buf;     // a decoded key's bytes (reused from one parameter to the next)
};
// Takes the next key=value from *q (advancing it); false at the end.
bool next_param(std::string_view* q, QueryParam* p);

// The parameters an endpoint defines, each allowed once: a repeat is 400
// naming it, never "the last one wins" (a repeated symbols= used to drop
// symbols silently; docs/http.md). Keys come decoded from next_param(), so
// "symbols=a&sym%62ols=b" is a repeat too. Parameters not named are ignored.
template <size_t N>
class OnceParams {
 public:
  explicit OnceParams(const std::string_view (&names)[N]) : names_(names) {}
  // Index of `key` among the names, or -1 if it is not one of them;
  // *repeated is set when it was already seen.
  int index(std::string_view key, bool* repeated) {
    for (size_t i = 0; i < N; ++i) {
      if (key != names_[i]) continue;
      *repeated = (seen_ >> i) & 1;
      seen_ |= 1u << i;
      return static_cast<int>(i);
    }
    return -1;
  }
  bool seen(size_t i) const { return (seen_ >> i) & 1; }

 private:
  const std::string_view (&names_)[N];
  unsigned seen_ = 0;
};
// Decodes %XX escapes into *out; false on a malformed escape or a NUL byte.
bool percent_decode(std::string_view in, std::string* out);
// Decimal, no sign, at most `max`; false otherwise.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out);
// Appends `s` as the inside of a JSON string (quotes not included), escaping
// quotes, backslashes and control bytes; non-UTF-8 bytes become U+FFFD.
void json_escape(std::string_view s, Buffer* out);

}  // namespace tickfan::http
