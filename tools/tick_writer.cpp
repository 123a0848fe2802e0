// tick_writer.cpp — see tick_writer.h. Fixed-point values go through
// format_fixed (shortest exact decimal), so no float ever touches a price.
#include "tick_writer.h"

#include "fixed_point.h"

namespace tickfan::tools {

namespace {

void put_fixed(std::string* out, int64_t v) {
  char buf[32];  // format_fixed/format_int need 32 bytes of room
  out->append(buf, format_fixed(v, buf));
}
void put_int(std::string* out, int64_t v) {
  char buf[32];  // format_fixed/format_int need 32 bytes of room
  out->append(buf, format_int(v, buf));
}

// JSON string body (RFC 8259 §7): quote and backslash escaped; names never
// hold control characters (the apiserver refuses them), but escape anyway.
void put_json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static const char hex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(hex[(c >> 4) & 0xF]);
      out->push_back(hex[c & 0xF]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// CSV cell (RFC 4180 §2): quoted only when it holds a comma, quote or space
// at an edge (the parser trims unquoted cells).
void put_csv_text(std::string* out, std::string_view s) {
  bool quote = s.find_first_of(",\"") != std::string_view::npos ||
               (!s.empty() && (s.front() == ' ' || s.back() == ' ' || s.back() == '\t'));
  if (!quote) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

constexpr std::string_view kCsvHeader =
    "symbol,name,market,status,prev_close,open,high,low,last,volume,turnover,ts_ns,"
    "bid1,bid2,bid3,bid4,bid5,bid1_vol,bid2_vol,bid3_vol,bid4_vol,bid5_vol,"
    "ask1,ask2,ask3,ask4,ask5,ask1_vol,ask2_vol,ask3_vol,ask4_vol,ask5_vol\n";

}  // namespace

bool tick_format_from_name(std::string_view name, TickFormat* out) {
  if (name == "jsonl" || name == "json") {
    *out = TickFormat::jsonl;
    return true;
  }
  if (name == "csv") {
    *out = TickFormat::csv;
    return true;
  }
  return false;
}

std::string_view csv_header() { return kCsvHeader; }

void append_tick_line(const Quote& q, TickFormat format, std::string* out) {
  // An unknown market is left out so the apiserver derives it from the
  // symbol (it refuses the literal "unknown").
  const bool has_market = q.market() != Market::Unknown;
  if (format == TickFormat::jsonl) {
    out->append("{\"symbol\":");
    put_json_string(out, quote_symbol(q));
    if (!quote_name(q).empty()) {
      out->append(",\"name\":");
      put_json_string(out, quote_name(q));
    }
    if (has_market) {
      out->append(",\"market\":\"");
      out->append(market_code(q.market()));
      out->push_back('"');
    }
    out->append(",\"status\":\"");
    out->append(status_name(q.status()));
    out->append("\",\"prev_close\":");
    put_fixed(out, q.prev_close());
    out->append(",\"open\":");
    put_fixed(out, q.open());
    out->append(",\"high\":");
    put_fixed(out, q.high());
    out->append(",\"low\":");
    put_fixed(out, q.low());
    out->append(",\"last\":");
    put_fixed(out, q.last());
    out->append(",\"volume\":");
    put_int(out, q.volume());
    out->append(",\"turnover\":");
    put_fixed(out, q.turnover());
    out->append(",\"ts_ns\":");
    put_int(out, q.exchange_ts_ns());
    for (int side = 0; side < 2; ++side) {
      out->append(side == 0 ? ",\"bid\":[" : ",\"ask\":[");
      const auto* levels = side == 0 ? q.bids() : q.asks();
      for (int i = 0; i < kBookDepth; ++i) {
        if (i) out->push_back(',');
        out->push_back('[');
        put_fixed(out, levels->Get(i)->price());
        out->push_back(',');
        put_int(out, levels->Get(i)->volume());
        out->push_back(']');
      }
      out->push_back(']');
    }
    out->append("}\n");
    return;
  }
  put_csv_text(out, quote_symbol(q));
  out->push_back(',');
  put_csv_text(out, quote_name(q));
  out->push_back(',');
  if (has_market) out->append(market_code(q.market()));
  out->push_back(',');
  out->append(status_name(q.status()));
  for (int64_t v : {q.prev_close(), q.open(), q.high(), q.low(), q.last()}) {
    out->push_back(',');
    put_fixed(out, v);
  }
  out->push_back(',');
  put_int(out, q.volume());
  out->push_back(',');
  put_fixed(out, q.turnover());
  out->push_back(',');
  put_int(out, q.exchange_ts_ns());
  for (int side = 0; side < 2; ++side) {
    const auto* levels = side == 0 ? q.bids() : q.asks();
    for (int i = 0; i < kBookDepth; ++i) {
      out->push_back(',');
      put_fixed(out, levels->Get(i)->price());
    }
    for (int i = 0; i < kBookDepth; ++i) {
      out->push_back(',');
      put_int(out, levels->Get(i)->volume());
    }
  }
  out->push_back('\n');
}

}  // namespace tickfan::tools
