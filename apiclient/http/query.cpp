// query.cpp — see query.h.
#include "query.h"

namespace tickfan::http {

bool next_param(std::string_view* q, QueryParam* p) {
  while (!q->empty()) {
    size_t amp = q->find('&');
    std::string_view pair = q->substr(0, amp);
    *q = amp == std::string_view::npos ? std::string_view() : q->substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    p->key = pair.substr(0, eq);
    p->value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    // Names are decoded as values are (RFC 3986 §6.2.2.2; form encoding
    // decodes names too); only names with a '%' pay for it. On a malformed
    // escape the raw name stays (query.h).
    if (p->key.find('%') != std::string_view::npos && percent_decode(p->key, &p->key_buf)) p->key = p->key_buf;
    return true;
  }
  return false;
}

namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.find('%') == std::string_view::npos) {
    out->assign(in);
    return true;
  }
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return false;
      c = static_cast<char>(h * 16 + l);
      if (c == '\0') return false;
      i += 2;
    }
    out->push_back(c);
  }
  return true;
}

bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

void json_escape(std::string_view s, Buffer* out) {
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push('\\');
      out->push(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f || c == '<' || c == '>') {
      // Controls must be escaped; < and > are escaped too so an echoed
      // symbol can never form markup if a client mis-renders the body.
      char e[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out->append(e, 6);
    } else if (c >= 0x80) {
      // Keep well-formed multi-byte sequences; replace anything else so the
      // body stays valid UTF-8 JSON whatever a client sent.
      size_t extra = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
      bool ok = extra > 0 && i + extra < s.size();
      uint32_t cp = c & (0x3Fu >> extra);
      for (size_t k = 1; ok && k <= extra; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        ok = (b & 0xC0) == 0x80;
        cp = (cp << 6) | (b & 0x3F);
      }
      // Well-formed also means no overlong form, no UTF-16 surrogate and
      // nothing past U+10FFFF (RFC 3629 §3-4): "%C0%AF" in a symbol used to
      // come back as the bytes C0 AF, invalid UTF-8 in the JSON body
      // (found by tests/fuzz/http_fuzz.cpp).
      static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
      ok = ok && cp >= kMin[extra] && (cp < 0xD800 || cp > 0xDFFF) && cp <= 0x10FFFF;
      if (ok) {
        out->append(s.data() + i, extra + 1);
        i += extra;
      } else {
        out->append("\xEF\xBF\xBD", 3);
      }
    } else {
      out->push(static_cast<char>(c));
    }
  }
}

}  // namespace tickfan::http
