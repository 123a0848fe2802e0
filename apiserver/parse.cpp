// parse.cpp — see parse.h. Hand-written scanners: the JSON accepted here is a
// flat object of strings, numbers and [[price,volume],...] arrays, which is all
// a tick needs; anything else is a parse_error naming the position.
#include "parse.h"

#include <charconv>
#include <cstring>

#include "fixed_point.h"
#include "utf8.h"

namespace tickfan::apiserver {

namespace {
constexpr const char* kFieldNames[] = {
    "symbol",   "name",   "market",   "status",   "prev_close", "open",     "high",     "low",
    "last",     "volume", "turnover", "ts",       "ts_ns",      "bid1",     "bid2",     "bid3",
    "bid4",     "bid5",   "bid1_vol", "bid2_vol", "bid3_vol",   "bid4_vol", "bid5_vol", "ask1",
    "ask2",     "ask3",   "ask4",     "ask5",     "ask1_vol",   "ask2_vol", "ask3_vol", "ask4_vol",
    "ask5_vol", "bid",    "ask",      "change",   "change_pct", "amplitude"};
static_assert(sizeof kFieldNames / sizeof kFieldNames[0] == kFieldCount);

bool parse_int(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

Level* level(Quote* q, bool bid, int i) {
  return bid ? q->mutable_bids()->GetMutablePointer(i) : q->mutable_asks()->GetMutablePointer(i);
}
}  // namespace

const char* field_name(Field f) { return kFieldNames[static_cast<int>(f)]; }

bool field_from_name(std::string_view name, Field* out) {
  for (int i = 0; i < kFieldCount; ++i) {
    if (name == kFieldNames[i]) {
      *out = static_cast<Field>(i);
      return true;
    }
  }
  return false;
}

bool set_field(Quote* q, Field f, std::string_view v, Reject* reason) {
  int64_t n = 0;
  auto price = [&](void (Quote::*mutate)(int64_t)) {
    if (!parse_fixed(v, kPriceDecimals, &n)) {
      *reason = Reject::bad_number;
      return false;
    }
    (q->*mutate)(n);
    return true;
  };
  auto integer = [&](void (Quote::*mutate)(int64_t)) {
    if (!parse_int(v, &n)) {
      *reason = Reject::bad_number;
      return false;
    }
    (q->*mutate)(n);
    return true;
  };
  switch (f) {
    case Field::symbol:
      if (v.size() > kSymbolMax) {
        *reason = Reject::symbol_too_long;
        return false;
      }
      if (!valid_symbol(v)) {
        *reason = Reject::bad_symbol;
        return false;
      }
      set_symbol(*q, v);
      return true;
    case Field::name:
      if (v.size() > kNameMax || !valid_display_name(v)) {
        *reason = Reject::bad_name;
        return false;
      }
      set_name(*q, v);
      return true;
    case Field::market: {
      Market m = market_from_code(v);
      if (m == Market::Unknown) {
        *reason = Reject::bad_market;
        return false;
      }
      q->mutate_market(m);
      return true;
    }
    case Field::status: {
      TradingStatus s;
      if (!status_from_name(v, &s)) {
        *reason = Reject::bad_status;
        return false;
      }
      q->mutate_status(s);
      return true;
    }
    case Field::prev_close: return price(&Quote::mutate_prev_close);
    case Field::open: return price(&Quote::mutate_open);
    case Field::high: return price(&Quote::mutate_high);
    case Field::low: return price(&Quote::mutate_low);
    case Field::last: return price(&Quote::mutate_last);
    case Field::volume: return integer(&Quote::mutate_volume);
    case Field::turnover: return price(&Quote::mutate_turnover);
    case Field::ts:
      // Milliseconds since the Unix epoch; kept apart from ts_ns so a feed
      // never has to guess the unit.
      if (!parse_int(v, &n) || n > INT64_MAX / 1000000 || n < INT64_MIN / 1000000) {
        *reason = Reject::bad_number;
        return false;
      }
      q->mutate_exchange_ts_ns(n * 1000000);
      return true;
    case Field::ts_ns: return integer(&Quote::mutate_exchange_ts_ns);
    case Field::change:
    case Field::change_pct:
    case Field::amplitude:
    case Field::bid:
    case Field::ask:
    case Field::kCount: return true;
    default: break;
  }
  // Book levels: bid1..bid5, bid1_vol..bid5_vol, ask1..ask5, ask1_vol..ask5_vol.
  int i = static_cast<int>(f) - static_cast<int>(Field::bid1);
  bool bid = i < 10;
  int k = i % 10;
  Level* l = level(q, bid, k % 5);
  if (k < 5) {
    if (!parse_fixed(v, kPriceDecimals, &n)) {
      *reason = Reject::bad_number;
      return false;
    }
    l->mutate_price(n);
  } else {
    if (!parse_int(v, &n)) {
      *reason = Reject::bad_number;
      return false;
    }
    l->mutate_volume(n);
  }
  return true;
}

LineKind LineParser::parse(std::string_view line, Quote* out, FieldSet* present, Reject* reason, std::string* detail) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view t = trim(line);
  if (t.empty() || t.front() == '#') return LineKind::skipped;
  std::memset(static_cast<void*>(out), 0, sizeof(Quote));
  *present = 0;
  if (t.front() == '{') return parse_json(t, out, present, reason, detail);
  return parse_csv(t, out, present, reason, detail);
}

namespace {
// Splits the next CSV field off `rest` (RFC 4180 quoting: "a ""b"", c").
// Returns false on an unterminated quote. *scratch holds unescaped text.
bool next_csv_field(std::string_view* rest, std::string_view* field, std::string* scratch, bool* more) {
  std::string_view s = *rest;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (!s.empty() && s.front() == '"') {
    scratch->clear();
    size_t i = 1;
    for (;;) {
      if (i >= s.size()) return false;
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          scratch->push_back('"');
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      scratch->push_back(s[i++]);
    }
    *field = *scratch;
    s.remove_prefix(i);
    size_t comma = s.find(',');
    if (trim(s.substr(0, comma)).size() != 0) return false;  // junk after the closing quote
    *more = comma != std::string_view::npos;
    *rest = *more ? s.substr(comma + 1) : std::string_view{};
    return true;
  }
  size_t comma = s.find(',');
  *field = trim(s.substr(0, comma));
  *more = comma != std::string_view::npos;
  *rest = *more ? s.substr(comma + 1) : std::string_view{};
  return true;
}
}  // namespace

LineKind LineParser::read_header(std::string_view line, Reject* reason, std::string* detail) {
  std::string_view rest = line, field;
  std::string scratch;
  int n = 0;
  bool more = true;
  FieldSet seen = 0;
  while (more) {
    if (!next_csv_field(&rest, &field, &scratch, &more)) {
      *reason = Reject::parse_error;
      *detail = "unterminated quote in header";
      columns_ = 0;
      return LineKind::rejected;
    }
    Field f;
    if (n >= kMaxColumns || !field_from_name(field, &f) || f == Field::bid || f == Field::ask) {
      *reason = n >= kMaxColumns ? Reject::field_count : Reject::unknown_field;
      *detail = "header column '" + std::string(field) + "'";
      columns_ = 0;  // a broken header invalidates the rows after it, loudly
      return LineKind::rejected;
    }
    if (seen & bit(f)) {
      *reason = Reject::duplicate_field;
      *detail = "header column '" + std::string(field) + "'";
      columns_ = 0;
      return LineKind::rejected;
    }
    seen |= bit(f);
    header_[n++] = f;
  }
  columns_ = n;
  return LineKind::skipped;
}

LineKind LineParser::parse_csv(std::string_view line, Quote* out, FieldSet* present, Reject* reason,
                               std::string* detail) {
  // A row whose first column is literally "symbol" is a header (files may be
  // concatenated, each with its own header).
  if (line.substr(0, 6) == "symbol" && (line.size() == 6 || line[6] == ',' || line[6] == ' ')) {
    return read_header(line, reason, detail);
  }
  if (columns_ == 0) {
    *reason = Reject::missing_header;
    detail->clear();
    return LineKind::rejected;
  }
  std::string_view rest = line, field;
  std::string scratch;  // only used by quoted fields (names); SSO avoids the heap for most
  bool more = true;
  int n = 0;
  while (more) {
    if (!next_csv_field(&rest, &field, &scratch, &more)) {
      *reason = Reject::parse_error;
      *detail = "bad quoting in column " + std::to_string(n + 1);
      return LineKind::rejected;
    }
    if (n >= columns_) {
      *reason = Reject::field_count;
      *detail = "more than " + std::to_string(columns_) + " columns";
      return LineKind::rejected;
    }
    Field f = header_[n++];
    if (field.empty()) continue;  // an empty cell means "not given"
    if (!set_field(out, f, field, reason)) {
      *detail = field_name(f);
      return LineKind::rejected;
    }
    *present |= bit(f);
  }
  if (n != columns_) {
    *reason = Reject::field_count;
    *detail = std::to_string(n) + " of " + std::to_string(columns_) + " columns";
    return LineKind::rejected;
  }
  return LineKind::tick;
}

namespace {
// A minimal JSON scanner over one line.
struct JsonScan {
  std::string_view s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool hex4(uint32_t* out) {
    if (i + 4 > s.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return false;
    }
    *out = v;
    return true;
  }
  // A string; fast path returns a view into the line when there are no escapes.
  bool string(std::string_view* out, std::string* scratch) {
    ws();
    if (i >= s.size() || s[i] != '"') return false;
    size_t start = ++i;
    while (i < s.size() && s[i] != '"' && s[i] != '\\') ++i;
    if (i < s.size() && s[i] == '"') {
      *out = s.substr(start, i - start);
      ++i;
      return true;
    }
    scratch->assign(s.substr(start, i - start));
    while (i < s.size()) {
      char c = s[i++];
      if (c == '"') {
        *out = *scratch;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        scratch->push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"': scratch->push_back('"'); break;
        case '\\': scratch->push_back('\\'); break;
        case '/': scratch->push_back('/'); break;
        case 'b': scratch->push_back('\b'); break;
        case 'f': scratch->push_back('\f'); break;
        case 'n': scratch->push_back('\n'); break;
        case 'r': scratch->push_back('\r'); break;
        case 't': scratch->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair (RFC 8259 §7)
            uint32_t lo;
            if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') return false;
            i += 2;
            if (!hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          append_utf8(scratch, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  // A bare token (number, true/false/null): the text up to a delimiter.
  bool token(std::string_view* out) {
    ws();
    size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t') ++i;
    *out = s.substr(start, i - start);
    return i > start;
  }
  // A string or a bare token.
  bool scalar(std::string_view* out, std::string* scratch) {
    ws();
    if (i < s.size() && s[i] == '"') return string(out, scratch);
    return token(out);
  }
};
}  // namespace

LineKind LineParser::parse_json(std::string_view line, Quote* out, FieldSet* present, Reject* reason,
                                std::string* detail) {
  JsonScan js{line};
  std::string key_scratch, value_scratch;
  auto syntax = [&](const char* what) {
    *reason = Reject::parse_error;
    *detail = std::string(what) + " at column " + std::to_string(js.i + 1);
    return LineKind::rejected;
  };
  if (!js.eat('{')) return syntax("expected '{'");
  if (js.eat('}')) {
    *reason = Reject::missing_field;
    *detail = "symbol";
    return LineKind::rejected;
  }
  for (;;) {
    std::string_view key, value;
    if (!js.string(&key, &key_scratch)) return syntax("expected a key");
    if (!js.eat(':')) return syntax("expected ':'");
    Field f;
    if (!field_from_name(key, &f)) {
      *reason = Reject::unknown_field;
      *detail = std::string(key.substr(0, 64));
      return LineKind::rejected;
    }
    if (*present & bit(f)) {
      *reason = Reject::duplicate_field;
      *detail = field_name(f);
      return LineKind::rejected;
    }
    if (f == Field::bid || f == Field::ask) {
      // [[price, volume], ...] best first, at most 5 levels.
      if (!js.eat('[')) return syntax("expected '[' for book levels");
      int n = 0;
      if (!js.eat(']')) {
        for (;;) {
          std::string_view p, v;
          if (n >= kBookDepth) {
            *reason = Reject::field_count;
            *detail = std::string(field_name(f)) + " has more than 5 levels";
            return LineKind::rejected;
          }
          if (!js.eat('[') || !js.scalar(&p, &value_scratch)) return syntax("expected [price,volume]");
          Field pf = static_cast<Field>(static_cast<int>(f == Field::bid ? Field::bid1 : Field::ask1) + n);
          if (!set_field(out, pf, p, reason)) {
            *detail = field_name(pf);
            return LineKind::rejected;
          }
          if (!js.eat(',') || !js.scalar(&v, &value_scratch)) return syntax("expected [price,volume]");
          Field vf = static_cast<Field>(static_cast<int>(pf) + 5);
          if (!set_field(out, vf, v, reason)) {
            *detail = field_name(vf);
            return LineKind::rejected;
          }
          if (!js.eat(']')) return syntax("expected ']'");
          ++n;
          if (js.eat(']')) break;
          if (!js.eat(',')) return syntax("expected ',' or ']'");
        }
      }
    } else {
      js.ws();
      if (js.i < line.size() && (line[js.i] == '{' || line[js.i] == '[')) return syntax("nested value");
      if (!js.scalar(&value, &value_scratch)) return syntax("expected a value");
      if (value == "null") {  // explicit "not given"
        if (js.eat('}')) break;
        if (!js.eat(',')) return syntax("expected ',' or '}'");
        continue;
      }
      if (!set_field(out, f, value, reason)) {
        *detail = field_name(f);
        return LineKind::rejected;
      }
    }
    *present |= bit(f);
    if (js.eat('}')) break;
    if (!js.eat(',')) return syntax("expected ',' or '}'");
  }
  js.ws();
  if (js.i != line.size()) return syntax("trailing characters");
  return LineKind::tick;
}

}  // namespace tickfan::apiserver
