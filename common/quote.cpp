// quote.cpp — see quote.h. render_quote_json is on the store writer's hot path
// (once per update), so it formats integers by hand instead of via printf.
#include "quote.h"

#include <cstring>

#include "fixed_point.h"

namespace tickfan {

namespace {
std::string_view padded_view(const uint8_t* data, size_t cap) {
  const char* p = reinterpret_cast<const char*>(data);
  return std::string_view(p, strnlen(p, cap));
}
bool set_padded(uint8_t* data, size_t cap, std::string_view text) {
  if (text.size() > cap) return false;
  std::memset(data, 0, cap);
  std::memcpy(data, text.data(), text.size());
  return true;
}
}  // namespace

std::string_view quote_symbol(const Quote& q) { return padded_view(q.symbol()->Data(), kSymbolMax); }
std::string_view quote_name(const Quote& q) { return padded_view(q.name()->Data(), kNameMax); }
bool set_symbol(Quote& q, std::string_view s) { return set_padded(q.mutable_symbol()->Data(), kSymbolMax, s); }
bool set_name(Quote& q, std::string_view s) { return set_padded(q.mutable_name()->Data(), kNameMax, s); }

const char* market_code(Market m) {
  switch (m) {
    case Market::SH: return "sh";
    case Market::SZ: return "sz";
    case Market::BJ: return "bj";
    case Market::HK: return "hk";
    case Market::US: return "us";
    default: return "unknown";
  }
}

Market market_from_code(std::string_view code) {
  if (code == "sh") return Market::SH;
  if (code == "sz") return Market::SZ;
  if (code == "bj") return Market::BJ;
  if (code == "hk") return Market::HK;
  if (code == "us") return Market::US;
  return Market::Unknown;
}

Market market_of_symbol(std::string_view symbol) { return market_from_code(symbol.substr(0, 2)); }

namespace {
const char* const kStatusNames[] = {"unknown", "pre_open", "trading",      "break",
                                    "halted",  "closed",   "auction_open", "auction_close"};
}

const char* status_name(TradingStatus s) {
  auto i = static_cast<size_t>(s);
  return i < std::size(kStatusNames) ? kStatusNames[i] : "unknown";
}

bool status_from_name(std::string_view name, TradingStatus* out) {
  for (size_t i = 0; i < std::size(kStatusNames); ++i) {
    if (name == kStatusNames[i]) {
      *out = static_cast<TradingStatus>(i);
      return true;
    }
  }
  return false;
}

int64_t quote_change_pct(const Quote& q) { return percent_fixed(quote_change(q), q.prev_close()); }
int64_t quote_amplitude_pct(const Quote& q) { return percent_fixed(saturating_sub(q.high(), q.low()), q.prev_close()); }

bool valid_symbol(std::string_view s) {
  if (s.empty() || s.size() > kSymbolMax) return false;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_display_name(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong encodings, surrogates and out-of-range code points.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

namespace {
// Appends into a fixed buffer; overflow is detected once at the end.
struct Out {
  char* p;
  char* end;
  bool ok = true;
  void lit(const char* s, size_t n) {
    if (static_cast<size_t>(end - p) < n) {
      ok = false;
      return;
    }
    std::memcpy(p, s, n);
    p += n;
  }
  // Literal keys: a constant-size copy the compiler inlines (the writer
  // renders ~40 of them per update).
  template <size_t N>
  void lit(const char (&s)[N]) {
    if (static_cast<size_t>(end - p) < N - 1) {
      ok = false;
      return;
    }
    std::memcpy(p, s, N - 1);
    p += N - 1;
  }
  void fixed(int64_t v) {
    if (end - p < 32) {
      ok = false;
      return;
    }
    p += format_fixed(v, p);
  }
  void integer(int64_t v) {
    if (end - p < 24) {
      ok = false;
      return;
    }
    p += format_int(v, p);
  }
  // JSON string body (RFC 8259 §7): escape quote, backslash and controls.
  void escaped(std::string_view s) {
    bool plain = true;
    for (char c : s) plain &= c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20;
    if (plain) {
      lit(s.data(), s.size());
      return;
    }
    for (char c : s) {
      if (c == '"' || c == '\\') {
        char e[2] = {'\\', c};
        lit(e, 2);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char e[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[(c >> 4) & 0xF], "0123456789abcdef"[c & 0xF]};
        lit(e, 6);
      } else {
        lit(&c, 1);
      }
    }
  }
  void levels(const flatbuffers::Array<Level, 5>* book) {
    lit("[");
    for (int i = 0; i < kBookDepth; ++i) {
      const Level* l = book->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (i) lit(",");
      lit("[");
      fixed(l->price());
      lit(",");
      integer(l->volume());
      lit("]");
    }
    lit("]");
  }
};
}  // namespace

size_t render_quote_json(const Quote& q, char* buf, size_t cap) {
  Out o{buf, buf + cap};
  o.lit("{\"symbol\":\"");
  o.escaped(quote_symbol(q));
  o.lit("\",\"name\":\"");
  o.escaped(quote_name(q));
  o.lit("\",\"market\":\"");
  const char* m = market_code(q.market());
  o.lit(m, std::strlen(m));
  o.lit("\",\"status\":\"");
  const char* st = status_name(q.status());
  o.lit(st, std::strlen(st));
  o.lit("\",\"ts\":");
  o.integer(q.exchange_ts_ns() / 1000000);
  o.lit(",\"prev_close\":");
  o.fixed(q.prev_close());
  o.lit(",\"open\":");
  o.fixed(q.open());
  o.lit(",\"high\":");
  o.fixed(q.high());
  o.lit(",\"low\":");
  o.fixed(q.low());
  o.lit(",\"last\":");
  o.fixed(q.last());
  o.lit(",\"change\":");
  o.fixed(quote_change(q));
  o.lit(",\"change_pct\":");
  o.fixed(quote_change_pct(q));
  o.lit(",\"amplitude\":");
  o.fixed(quote_amplitude_pct(q));
  o.lit(",\"volume\":");
  o.integer(q.volume());
  o.lit(",\"turnover\":");
  o.fixed(q.turnover());
  o.lit(",\"bid\":");
  o.levels(q.bids());
  o.lit(",\"ask\":");
  o.levels(q.asks());
  o.lit("}");
  return o.ok ? static_cast<size_t>(o.p - buf) : 0;
}

}  // namespace tickfan
