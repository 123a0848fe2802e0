// quote.h — helpers around the wire Quote struct (schemas/quotes.fbs) that every
// component needs: symbol/name access, market codes, derived figures, and the
// canonical JSON rendering that the store keeps pre-rendered per record.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quotes_generated.h"

namespace tickfan {

using wire::Level;
using wire::Market;
using wire::Quote;
using wire::TradingStatus;

inline constexpr size_t kSymbolMax = 16;  // bytes, ASCII
inline constexpr size_t kNameMax = 32;    // bytes, UTF-8
inline constexpr int kBookDepth = 5;

static_assert(sizeof(Quote) == 288, "wire Quote is frozen (schemas/quotes.fbs rule 2)");
static_assert(std::is_trivially_copyable_v<Quote>, "Quote is memcpy'd into the store");

std::string_view quote_symbol(const Quote& q);
std::string_view quote_name(const Quote& q);
// Both return false (and leave the quote unchanged) when the text does not fit.
bool set_symbol(Quote& q, std::string_view symbol);
bool set_name(Quote& q, std::string_view name);

// "sh", "sz", "bj", "hk", "us" or "unknown".
const char* market_code(Market m);
// Parses a market code; Market::Unknown when not recognised.
Market market_from_code(std::string_view code);
// Market implied by a symbol's two-letter prefix ("sh600000" -> SH).
Market market_of_symbol(std::string_view symbol);

// "trading", "halted", ...; parse returns false for an unknown name.
const char* status_name(TradingStatus s);
bool status_from_name(std::string_view name, TradingStatus* out);

// Saturating: stores and wires hold validated (non-negative) prices, but the
// JSON of a damaged record is rendered too (a store's repair, its verify), and
// rendering must be defined for any bytes (found by tests/fuzz/store).
inline int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_sub_overflow(a, b, &r)) return r;
  return b < 0 ? INT64_MAX : INT64_MIN;
}
inline int64_t quote_change(const Quote& q) { return saturating_sub(q.last(), q.prev_close()); }
// Percent with 4 decimals (fixed point, same scale as prices).
int64_t quote_change_pct(const Quote& q);
int64_t quote_amplitude_pct(const Quote& q);

// True when the symbol is 1..16 chars of [A-Za-z0-9._-].
bool valid_symbol(std::string_view symbol);
// True when `text` is well-formed UTF-8 without control characters.
bool valid_display_name(std::string_view text);

// Renders the quote as one compact JSON object, e.g.
//   {"symbol":"sh600000","name":"浦发银行","market":"sh","status":"trading",
//    "ts":1732200000123,"prev_close":10.23,"open":10.25,"high":10.5,"low":10.1,
//    "last":10.33,"change":0.1,"change_pct":0.9775,"amplitude":3.91,
//    "volume":123456,"turnover":1275000.5,"bid":[[10.32,1200],...],"ask":[...]}
// `ts` is the exchange timestamp in ms since the Unix epoch. Returns the length,
// or 0 when it does not fit in `cap` bytes. kQuoteJsonMax always fits.
inline constexpr size_t kQuoteJsonMax = 640;
size_t render_quote_json(const Quote& q, char* out, size_t cap);

}  // namespace tickfan
