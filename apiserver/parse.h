// parse.h — turns one input line (CSV with a header, or a JSON object) into a
// wire Quote. Syntax and per-field problems are reported here; cross-field
// rules (high >= low, timestamps, ...) live in validate.h.
//
// The formats are documented with examples in docs/ticks.md. A source may mix
// them line by line: a line starting with '{' is JSON, anything else is CSV,
// and a CSV line whose first column is `symbol` is a (new) header. Blank lines
// and lines starting with '#' are skipped.
//
// Parsing works on the caller's buffer without allocating (the header column
// map is built once per header line), so a busy feed costs no heap traffic.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "quote.h"
#include "reject.h"

namespace tickfan::apiserver {

// The fields a line may carry; CSV headers and JSON keys use these names.
enum class Field : uint8_t {
  symbol,
  name,
  market,
  status,
  prev_close,
  open,
  high,
  low,
  last,
  volume,
  turnover,
  ts,
  ts_ns,
  bid1,
  bid2,
  bid3,
  bid4,
  bid5,
  bid1_vol,
  bid2_vol,
  bid3_vol,
  bid4_vol,
  bid5_vol,
  ask1,
  ask2,
  ask3,
  ask4,
  ask5,
  ask1_vol,
  ask2_vol,
  ask3_vol,
  ask4_vol,
  ask5_vol,
  bid,
  ask,  // JSON only: [[price, volume], ...] best first
  change,
  change_pct,
  amplitude,  // derived; accepted (so rendered JSON replays) and ignored
  kCount
};
inline constexpr int kFieldCount = static_cast<int>(Field::kCount);
const char* field_name(Field f);
// Looks a field up by name; false when unknown.
bool field_from_name(std::string_view name, Field* out);

// Which fields a line carried (bit i = Field i); validate.h fills defaults.
using FieldSet = uint64_t;
inline constexpr FieldSet bit(Field f) { return FieldSet{1} << static_cast<int>(f); }

enum class LineKind { tick, skipped, rejected };

class LineParser {
 public:
  // Parses `line` (without its '\n'). On LineKind::tick, *out holds the quote
  // (receive_ts_ns left 0) and *present the fields seen; on rejected, *reason
  // and *detail (e.g. the offending field name) say why.
  LineKind parse(std::string_view line, Quote* out, FieldSet* present, Reject* reason, std::string* detail);

  bool has_header() const { return columns_ > 0; }

 private:
  LineKind parse_csv(std::string_view line, Quote* out, FieldSet* present, Reject* reason, std::string* detail);
  LineKind parse_json(std::string_view line, Quote* out, FieldSet* present, Reject* reason, std::string* detail);
  LineKind read_header(std::string_view line, Reject* reason, std::string* detail);

  static constexpr int kMaxColumns = 64;
  std::array<Field, kMaxColumns> header_{};
  int columns_ = 0;
};

// Sets one field of *q from its text value (already unquoted/unescaped).
// Shared by the CSV and JSON paths; returns false with *reason on failure.
bool set_field(Quote* q, Field f, std::string_view value, Reject* reason);

}  // namespace tickfan::apiserver
