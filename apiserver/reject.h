// reject.h — why an input line was refused. Every reason is a Prometheus
// series (tickfan_apiserver_rejected_total{source,reason}) and appears by name
// in the rate-limited log line, so operators can tell a broken feed from a
// feed that merely changed its format.
#pragma once
#include <cstdint>

namespace tickfan::apiserver {

enum class Reject : uint8_t {
  parse_error,      // not valid CSV/JSON syntax
  unknown_field,    // a column/key this build does not know
  missing_field,    // symbol, last, prev_close or ts absent
  duplicate_field,  // the same key twice in one JSON object
  bad_number,       // a numeric field that is not a decimal number
  bad_symbol,       // characters outside [A-Za-z0-9._-] or empty
  symbol_too_long,  // more than 16 bytes
  bad_name,         // display name not UTF-8 or longer than 32 bytes
  bad_market,       // unknown market code, or one that contradicts the symbol
  bad_status,       // unknown trading status name
  negative_price,
  negative_volume,
  high_below_low,
  last_out_of_range,  // last outside [low, high]
  bad_timestamp,      // zero or negative exchange timestamp
  future_timestamp,   // exchange timestamp further ahead of our clock than allowed
  field_count,        // CSV row with a different number of columns than its header
  missing_header,     // CSV data before any header line
  line_too_long,      // longer than the line limit (64 KiB)
  kCount
};

inline constexpr int kRejectCount = static_cast<int>(Reject::kCount);

inline const char* reject_name(Reject r) {
  static constexpr const char* kNames[] = {"parse_error",    "unknown_field",     "missing_field",   "duplicate_field",
                                           "bad_number",     "bad_symbol",        "symbol_too_long", "bad_name",
                                           "bad_market",     "bad_status",        "negative_price",  "negative_volume",
                                           "high_below_low", "last_out_of_range", "bad_timestamp",   "future_timestamp",
                                           "field_count",    "missing_header",    "line_too_long"};
  static_assert(sizeof kNames / sizeof kNames[0] == kRejectCount);
  return kNames[static_cast<int>(r)];
}

}  // namespace tickfan::apiserver
