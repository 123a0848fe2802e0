// handlers/quotes.cpp — GET /v1/quotes?symbols=a,b,c[&fields=f,g] and
// GET /v1/quotes/{symbol}. The hot path of the whole system: each record's
// pre-rendered JSON is copied from the store straight into the response
// buffer (Buffer::tail), nothing is parsed or re-rendered unless the client
// asked for a field subset.
#include <cstring>

#include "handlers.h"

namespace tickfan::http {

namespace {

// Top-level keys of render_quote_json, in its order. `fields=` selects among
// them; "symbol" and "ts" are always sent, so rows can be matched to requests
// and every quote carries its timestamp (docs/http.md).
const char* const kFields[] = {"symbol",    "name",   "market",   "status", "ts",     "prev_close",
                               "open",      "high",   "low",      "last",   "change", "change_pct",
                               "amplitude", "volume", "turnover", "bid",    "ask"};
constexpr int kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

int field_index(std::string_view name) {
  for (int i = 0; i < kFieldCount; ++i)
    if (name == kFields[i]) return i;
  return -1;
}

constexpr uint32_t kAlwaysFields = 1u << 0 | 1u << 4;  // symbol, ts

// Reads a `fields=` value (percent-encoded, comma-separated, empty entries
// skipped) into a mask over kFields. False with an error reply when it is
// malformed, names no field at all, or names an unknown one.
bool parse_fields(std::string_view raw, uint32_t* mask, Reply& rep, Buffer& out, size_t start) {
  std::string fields;
  if (!percent_decode(raw, &fields)) {
    error_reply(rep, out, start, 400, "malformed percent-escape in fields");
    return false;
  }
  std::string_view f = fields;
  uint32_t m = 0;
  bool any = false;
  while (!f.empty()) {
    size_t c = f.find(',');
    std::string_view name = f.substr(0, c);
    f = c == std::string_view::npos ? std::string_view() : f.substr(c + 1);
    if (name.empty()) continue;
    int fi = field_index(name);
    if (fi < 0) {
      error_reply(rep, out, start, 400, "unknown field: ", name);
      return false;
    }
    m |= 1u << fi;
    any = true;
  }
  if (!any) {
    // "fields=" selecting nothing is a client mistake, not "all fields".
    error_reply(rep, out, start, 400, "fields is empty");
    return false;
  }
  *mask = m | kAlwaysFields;
  return true;
}

// Copies the members of the flat JSON object `in` whose key is in `mask`.
// The input is our own rendering (keys without escapes, values that are
// strings, numbers or arrays of numbers), so a small scanner suffices.
void filter_fields(std::string_view in, uint32_t mask, Buffer& out) {
  out.push('{');
  bool first = true;
  size_t i = 1;
  while (i < in.size() && in[i] == '"') {
    size_t key_end = in.find('"', i + 1);
    if (key_end == std::string_view::npos) break;
    std::string_view key = in.substr(i + 1, key_end - i - 1);
    size_t v = key_end + 2;  // skip ":
    size_t j = v;
    if (j < in.size() && in[j] == '"') {
      for (++j; j < in.size() && in[j] != '"'; ++j)
        if (in[j] == '\\') ++j;
      ++j;
    } else if (j < in.size() && in[j] == '[') {
      int depth = 0;
      for (; j < in.size(); ++j) {
        if (in[j] == '[') ++depth;
        if (in[j] == ']' && --depth == 0) {
          ++j;
          break;
        }
      }
    } else {
      while (j < in.size() && in[j] != ',' && in[j] != '}') ++j;
    }
    int fi = field_index(key);
    if (fi >= 0 && (mask & (1u << fi))) {
      if (!first) out.push(',');
      first = false;
      out.append(in.data() + i, j - i);
    }
    i = j + 1;  // skip ',' (or '}' at the end)
  }
  out.push('}');
}

// Appends one record (whole or filtered). False when the store refused it
// (e.g. busy): the caller reports the symbol as unavailable.
bool append_record(Worker& w, uint32_t slot, uint32_t mask, Buffer& out) {
  size_t len = 0;
  if (mask == 0) {
    char* dst = out.tail(kQuoteJsonMax);
    if (w.reader->read_json(slot, dst, &len) != shm::Status::ok || len == 0) return false;
    out.commit(len);
    return true;
  }
  char buf[kQuoteJsonMax];
  if (w.reader->read_json(slot, buf, &len) != shm::Status::ok || len == 0) return false;
  filter_fields(std::string_view(buf, len), mask, out);
  return true;
}

bool check_store(Worker& w, Reply& rep, Buffer& out, size_t start) {
  if (w.reader) return true;
  error_reply(rep, out, start, 503, "store not available (writer not started yet?)");
  return false;
}

}  // namespace

void handle_quotes(Worker& w, const Request& req, Reply& rep, Buffer& out) {
  size_t start = out.size();
  if (!check_store(w, rep, out, start)) return;
  std::string_view symbols_raw;
  uint32_t mask = 0;
  static constexpr std::string_view kParams[] = {"symbols", "fields"};
  OnceParams params(kParams);
  std::string_view q = req.query;
  QueryParam p;
  while (next_param(&q, &p)) {
    bool repeated = false;
    int i = params.index(p.key, &repeated);
    if (i < 0) continue;
    if (repeated) return error_reply(rep, out, start, 400, "repeated query parameter: ", p.key);
    if (i == 0) {
      symbols_raw = p.value;
    } else if (!parse_fields(p.value, &mask, rep, out, start)) {
      return;
    }
  }
  if (!params.seen(0)) return error_reply(rep, out, start, 400, "missing query parameter: symbols");
  // A cached body for this exact query at this commit means it was valid
  // when rendered (same query, same limits): skip re-validating several KB
  // of symbols.
  if (w.bodies.enabled()) {
    if (auto hit = w.bodies.find(req.query, w.state.commit_count, w.state.commit_ns)) {
      w.metrics.cache_hits->inc();
      set_data_reply(w, rep, w.state.commit_count, w.state.commit_ns);
      if (begin_data_body(req, rep, out)) rep.ext_body = std::move(hit);
      return;
    }
  }
  std::string_view list = symbols_raw;
  if (symbols_raw.find('%') != std::string_view::npos) {
    if (!percent_decode(symbols_raw, &w.decoded))
      return error_reply(rep, out, start, 400, "malformed percent-escape in symbols");
    list = w.decoded;
  }
  // Empty entries (",,", a trailing comma) are not symbols and are skipped.
  size_t count = 0;
  for (size_t i = 0; i < list.size(); ++i) count += list[i] != ',' && (i == 0 || list[i - 1] == ',');
  if (count == 0) return error_reply(rep, out, start, 400, "symbols is empty");
  if (count > w.opts.max_symbols)
    return error_reply(rep, out, start, 400, "too many symbols (maximum ", std::to_string(w.opts.max_symbols) + ")");

  set_data_reply(w, rep, w.state.commit_count, w.state.commit_ns);
  if (!begin_data_body(req, rep, out)) return;  // 304: nothing rendered
  bool cacheable = w.bodies.enabled() && count >= w.opts.body_cache_min_symbols;
  if (cacheable) w.metrics.cache_misses->inc();
  size_t tail_start = out.size();
  out.append("\"data\":[");
  // Unknown (or unreadable) symbols are echoed after the data array: a
  // requested symbol is never dropped silently.
  Buffer& unknown = w.unknown;
  unknown.clear();
  bool first = true;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t c = list.find(',', pos);
    if (c == std::string_view::npos) c = list.size();
    std::string_view sym = list.substr(pos, c - pos);
    pos = c + 1;
    if (sym.empty()) continue;
    uint32_t slot;
    size_t mark = out.size();
    if (!first) out.push(',');
    if (valid_symbol(sym) && w.find(sym, &slot) && append_record(w, slot, mask, out)) {
      first = false;
      continue;
    }
    out.resize(mark);
    if (!unknown.empty()) unknown.push(',');
    unknown.push('"');
    json_escape(sym, &unknown);
    unknown.push('"');
  }
  out.append("],\"unknown\":[");
  out.append(unknown.data(), unknown.size());
  out.append("]}");
  if (cacheable) {
    w.bodies.insert(req.query, rep.commit, w.state.commit_ns,
                    std::string_view(out.data() + tail_start, out.size() - tail_start));
  }
}

void handle_quote(Worker& w, const Request& req, std::string_view raw, Reply& rep, Buffer& out) {
  size_t start = out.size();
  if (!check_store(w, rep, out, start)) return;
  // fields= works as on the list (it used to be ignored here).
  uint32_t mask = 0;
  static constexpr std::string_view kParams[] = {"fields"};
  OnceParams params(kParams);
  std::string_view q = req.query;
  QueryParam p;
  while (next_param(&q, &p)) {
    bool repeated = false;
    if (params.index(p.key, &repeated) < 0) continue;
    if (repeated) return error_reply(rep, out, start, 400, "repeated query parameter: ", p.key);
    if (!parse_fields(p.value, &mask, rep, out, start)) return;
  }
  std::string& sym = w.decoded;
  uint32_t slot;
  if (!percent_decode(raw, &sym)) return error_reply(rep, out, start, 400, "malformed percent-escape in symbol");
  set_data_reply(w, rep, w.state.commit_count, w.state.commit_ns);
  if (!valid_symbol(sym) || !w.find(sym, &slot)) return error_reply(rep, out, start, 404, "unknown symbol: ", sym);
  // Preconditions only apply to a resource that exists (RFC 9110 §13.2.2).
  if (!begin_data_body(req, rep, out)) return;
  out.append("\"data\":");
  if (!append_record(w, slot, mask, out)) return error_reply(rep, out, start, 503, "record busy, retry");
  out.push('}');
}

}  // namespace tickfan::http
