// http_fuzz.cpp — a request reaching an HTTP worker: the input is what one
// connection sends, parsed by llhttp with the server's settings (strict, no
// leniency flags; pipelined requests one after the other) and the server's
// own reading of each request (request_parse.h: target, If-None-Match,
// Origin, Accept-Encoding, refusal of bodies and of versions other than
// 1.x), the documented size limits, then route()d twice: to a Worker on a
// real store (a few hundred symbols in five markets, some with awkward names)
// and to a Worker whose store does not exist. The response head is rendered
// with render_head() as the server does. Each input gets fresh Workers (the
// store, its reader and writer live for the whole process; its file in
// /dev/shm is unlinked as soon as both have it open, so none is left behind
// however the process ends), so an input's outcome does not depend on the
// inputs before it.
//
// Properties, for any bytes: no crash, hang or sanitizer report, and for
// every request routed:
//  - a head that RFC 9112 says MUST get 400 (§3.2: an HTTP/1.1 request
//    without Host, more than one Host line, an invalid Host value) is
//    refused before routing with a 400 error and Connection: close, and no
//    other head is (HeadRules, read independently of request_parse), and
//    the same for a field name that is not a token ("Host : x", RFC 9112
//    §5.1), which llhttp lets through;
//  - the status is one route() documents (200, 204, 304, 400, 404, 405, 503),
//    and it is the one the API's contract gives for the request: 204 exactly
//    for OPTIONS on a known path or "*", 405 (with Allow) exactly for other methods
//    than GET/HEAD/OPTIONS on a known path, 304 only for a data endpoint asked
//    with If-None-Match, 503 for data without a store (and only then, or from
//    /readyz), and for /v1/quotes, /v1/quotes/{s} and /v1/rank the 200 / 400
//    / 404 that docs/http.md gives for the query (checked by an independent
//    reading of the query here, not by the server's);
//  - a body whose content type is JSON is well-formed JSON (RFC 8259, UTF-8,
//    no duplicate keys), including a cached body the reply points to
//    (Reply::ext_body), joined to the rendered prefix;
//  - errors are exactly {"error":{"status":N,"message":"…"}} with N the reply
//    status (the one documented exception: /readyz's own 503 body);
//  - 204 and 304 have no body; HEAD gets the status and length of the GET;
//  - data bodies start with {"age_ms":<8 characters>,"commit":C, with C the
//    reply's commit; quotes come back in the order asked, every symbol in
//    either data or unknown, each record byte for byte the store's (or its
//    fields= subset, keys in order); rankings have the right total, offset,
//    page length, market and order, every record the store's;
//  - the rendered head parses as an HTTP/1.1 response with the reply's
//    status, a Content-Length equal to the body's length (none on 204/304),
//    the ETag, CORS headers exactly for a listed Origin, Vary: Origin on
//    every cacheable response (the CORS headers depend on Origin),
//    Connection: close exactly when the server will close.
// Not covered here: sockets, timeouts, backpressure, pipelining limits and
// gzip output (server.cpp's respond()), and the 408/413/414/431/505 error
// bodies (respond_error()); requests the parser refuses end the input.
#include <llhttp.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "fuzz_store.h"
#include "handlers.h"
#include "log.h"
#include "options.h"
#include "request_parse.h"
#include "response.h"
#include "store.h"
#include "test_quotes.h"
#include "utf8.h"
#include "worker.h"

using namespace tickfan;
using namespace tickfan::http;

namespace {

// --- a strict JSON reader (RFC 8259) -----------------------------------------

struct Json {
  enum Kind : uint8_t { null, boolean, number, string, array, object } kind = null;
  std::string str;  // string: decoded value; number: its text
  double num = 0;
  std::vector<Json> items;        // array elements, or object member values
  std::vector<std::string> keys;  // object member names, in order (keys[i] names items[i])
  size_t begin = 0, end = 0;      // span in the text
  const Json* get(std::string_view key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  // One JSON text: optional whitespace, one value, optional whitespace.
  bool parse(Json* out) {
    ws();
    if (!value(out, 0)) return false;
    ws();
    return i_ == s_.size() || fail("text after the value");
  }
  std::string why;

 private:
  static constexpr int kMaxDepth = 64;
  std::string_view s_;
  size_t i_ = 0;

  bool fail(const char* what) {
    if (why.empty()) why = std::string(what) + " at byte " + std::to_string(i_);
    return false;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool lit(const char* word) {
    size_t n = std::strlen(word);
    if (s_.substr(i_, n) != word) return fail("bad literal");
    i_ += n;
    return true;
  }
  bool value(Json* v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    if (i_ >= s_.size()) return fail("value expected");
    v->begin = i_;
    bool ok;
    switch (s_[i_]) {
      case '{': ok = object(v, depth); break;
      case '[': ok = array(v, depth); break;
      case '"': v->kind = Json::string, ok = string(&v->str); break;
      case 't': v->kind = Json::boolean, ok = lit("true"); break;
      case 'f': v->kind = Json::boolean, ok = lit("false"); break;
      case 'n': v->kind = Json::null, ok = lit("null"); break;
      default: ok = number(v);
    }
    v->end = i_;
    return ok;
  }
  bool object(Json* v, int depth) {
    v->kind = Json::object;
    ++i_;
    ws();
    if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
    for (;;) {
      ws();
      if (i_ >= s_.size() || s_[i_] != '"') return fail("member name expected");
      std::string key;
      if (!string(&key)) return false;
      if (v->get(key)) return fail("duplicate member name");
      ws();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("':' expected");
      ++i_;
      ws();
      v->keys.push_back(std::move(key));
      v->items.emplace_back();
      if (!value(&v->items.back(), depth + 1)) return false;
      ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      return fail("',' or '}' expected");
    }
  }
  bool array(Json* v, int depth) {
    v->kind = Json::array;
    ++i_;
    ws();
    if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
    for (;;) {
      ws();
      v->items.emplace_back();
      if (!value(&v->items.back(), depth + 1)) return false;
      ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      return fail("',' or ']' expected");
    }
  }
  bool hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      int h = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (h < 0) return fail("bad \\u escape");
      *cp = *cp * 16 + static_cast<uint32_t>(h);
    }
    return true;
  }
  // One well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
  // nothing above U+10FFFF) starting at i_.
  bool utf8(std::string* out) {
    auto b0 = static_cast<unsigned char>(s_[i_]);
    size_t extra;
    uint32_t cp, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      extra = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      extra = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      return fail("invalid UTF-8 lead byte");
    }
    if (i_ + extra >= s_.size()) return fail("truncated UTF-8 sequence");
    for (size_t k = 1; k <= extra; ++k) {
      auto b = static_cast<unsigned char>(s_[i_ + k]);
      if ((b & 0xC0) != 0x80) return fail("invalid UTF-8 continuation byte");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min) return fail("overlong UTF-8 sequence");
    if (cp >= 0xD800 && cp <= 0xDFFF) return fail("UTF-8-encoded surrogate");
    if (cp > 0x10FFFF) return fail("UTF-8 beyond U+10FFFF");
    out->append(s_.data() + i_, extra + 1);
    i_ += extra + 1;
    return true;
  }
  bool string(std::string* out) {
    ++i_;  // opening quote
    for (;;) {
      if (i_ >= s_.size()) return fail("unterminated string");
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') return ++i_, true;
      if (c < 0x20) return fail("unescaped control character in string");
      if (c >= 0x80) {
        if (!utf8(out)) return false;
        continue;
      }
      ++i_;
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (s_.substr(i_, 2) != "\\u") return fail("lone high surrogate escape");
            i_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("high surrogate without a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return fail("bad escape");
      }
    }
  }
  bool digits() {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool number(Json* v) {
    v->kind = Json::number;
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      digits();
    } else {
      return fail("value expected");
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return fail("digits expected after '.'");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return fail("digits expected in exponent");
    }
    v->str.assign(s_.data() + start, i_ - start);
    v->num = std::strtod(v->str.c_str(), nullptr);
    return true;
  }
};

// --- the store and the workers ---------------------------------------------------

const char* const kFieldNames[] = {"symbol",    "name",   "market",   "status", "ts",     "prev_close",
                                   "open",      "high",   "low",      "last",   "change", "change_pct",
                                   "amplitude", "volume", "turnover", "bid",    "ask"};
constexpr int kFieldCount = sizeof kFieldNames / sizeof kFieldNames[0];
const char* const kMarkets[] = {"sh", "sz", "bj", "hk", "us"};
const char* const kOrigins[] = {"https://a.example", "http://b.example:8080"};

struct Env {
  std::string path = "/dev/shm/tickfan-fuzz-http-" + std::to_string(::getpid());
  std::unique_ptr<shm::StoreWriter> writer;
  std::unique_ptr<shm::StoreReader> reader;  // lent to each input's Worker
  uint64_t seq = 0;
  Options opts, opts_nostore;
  std::map<std::string, std::string, std::less<>> json;   // symbol -> the store's rendering
  std::map<std::string, size_t, std::less<>> per_market;  // market code -> symbols ("" = all)

  Env() {
    log_set_level(LogLevel::error);
    ::unlink(path.c_str());
    shm::Status st;
    std::string err;
    writer = shm::StoreWriter::open(path, shm::WriterOptions{1024, 0600}, &st, &err);
    if (!writer) fuzz::fail("cannot create the store", err);
    reader = shm::StoreReader::open(path, &st, &err);
    if (!reader) fuzz::fail("cannot open the store for reading", err);
    // Nothing opens the store by name after this (each input's Worker is
    // lent `reader`; the writer keeps its descriptor and mapping), so the
    // name goes now: the file lives as long as they do and the kernel frees
    // it however the process ends. ~Env's unlink alone left it in /dev/shm
    // whenever libFuzzer stopped on a crash, a timeout or -rss_limit_mb
    // (it exits with _Exit: no destructors, no atexit) or the run was
    // killed; an atexit or signal handler cannot cover those either (and
    // libFuzzer owns the signal handlers). Tested by
    // killed_leaves_no_store.sh.
    if (::unlink(path.c_str()) != 0) fuzz::fail("cannot unlink the store", path);
    auto add = [&](const std::string& sym, int64_t last, int64_t volume, std::string_view name, TradingStatus s) {
      Quote q = testing::make_quote(sym, last, volume);
      if (!name.empty()) set_name(q, name);
      q.mutate_status(s);
      if (writer->upsert(q) != shm::Status::ok) fuzz::fail("the store refuses a seed quote", sym);
    };
    // Names a hand-written scanner could trip on (filter_fields): quotes,
    // backslashes, brackets, commas, braces, multi-byte UTF-8.
    const char* const names[] = {"",         "A\"B\\C",   "x],[y",    "}{,:\"",      "\\\\",
                                 "平安银行", "Ünïcödé 🚀", "a\"],\"b", "[[1,2],[3]]", "<script>"};
    int n = 0;
    auto next = [&](const std::string& sym) {
      ++n;
      int64_t last = 1000 + (n * 7919) % 200000;                              // fixed point, 4 decimals
      int64_t volume = ((n * 104729) % 5000) * 100 + (n % 3 == 0 ? 0 : 100);  // ties too
      TradingStatus st = n % 11 == 0 ? TradingStatus::Halted : TradingStatus::Trading;
      add(sym, last, volume, names[n % 10], st);
    };
    char b[32];
    for (int i = 0; i < 100; ++i) std::snprintf(b, sizeof b, "sh%06d", 600000 + i), next(b);
    for (int i = 1; i <= 80; ++i) std::snprintf(b, sizeof b, "sz%06d", i), next(b);
    for (int i = 0; i < 30; ++i) std::snprintf(b, sizeof b, "bj%06d", 830000 + i), next(b);
    for (int i = 1; i <= 40; ++i) std::snprintf(b, sizeof b, "hk%05d", i), next(b);
    for (const char* s : {"usAAPL", "usMSFT", "usBRK.B", "usBF-B", "us_X", "usT", "usGOOG", "usNVDA"}) next(s);
    // Valid symbols outside the five markets (ranked only under "all") and
    // the longest symbol allowed.
    for (const char* s : {"X", "idx.000001", "0123456789abcdef", "shA-B_C.D"}) next(s);
    writer->set_sync_state(shm::SyncState::live, 0, 0);
    writer->commit(1, ++seq);
    for (uint32_t slot = 0; slot < reader->used(); ++slot) {
      Quote q;
      char buf[kQuoteJsonMax];
      size_t len = 0;
      if (reader->read(slot, &q, buf, &len) != shm::Status::ok) fuzz::fail("seed record unreadable", "");
      std::string sym(quote_symbol(q));
      json[sym].assign(buf, len);
      per_market[""]++;
      if (q.market() != Market::Unknown) per_market[market_code(q.market())]++;
    }
    opts.store_path = path;  // by name only for Options' sake: each input's Worker is lent `reader`
    opts.cors_origins.assign(std::begin(kOrigins), std::end(kOrigins));
    opts_nostore = opts;
    opts_nostore.store_path = path + "-absent";
  }
  ~Env() {
    reader.reset();
    writer.reset();
  }
  // Keeps /readyz ready in long runs (its bound is 30 s): a new commit
  // between inputs when the last one is 10 s old.
  void keep_fresh() {
    if (wall_ns() - writer->state().commit_ns > 10'000'000'000) writer->commit(1, ++seq);
  }
};

Env& env() {
  static Env e;
  return e;
}

// --- an independent reading of the query (docs/http.md) ---------------------

bool unescape(std::string_view in, std::string* out);

// Names are percent-decoded like values (RFC 3986 §6.2.2.2: "sym%62ols" is
// "symbols"); a name with a malformed escape is kept as sent, so it names no
// parameter of ours and is ignored (docs/http.md).
struct Param {
  std::string key;
  std::string_view value;
};
std::vector<Param> params_of(std::string_view q) {
  std::vector<Param> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view raw = pair.substr(0, eq);
    std::string key;
    if (!unescape(raw, &key)) key.assign(raw);
    out.push_back({std::move(key), eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1)});
  }
  return out;
}

// True when one of `names` is given more than once (docs/http.md: 400).
bool repeated(const std::vector<Param>& ps, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names)
    if (std::count_if(ps.begin(), ps.end(), [&](const Param& p) { return p.key == n; }) > 1) return true;
  return false;
}

// %XX escapes (RFC 3986 §2.1); false on a malformed one or a NUL (query.h).
bool unescape(std::string_view in, std::string* out) {
  out->clear();
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return false;
    char c = static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
    if (c == '\0') return false;
    out->push_back(c);
    i += 2;
  }
  return true;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t c = s.find(',', pos);
    if (c == std::string_view::npos) c = s.size();
    if (c > pos) out.push_back(s.substr(pos, c - pos));
    pos = c + 1;
  }
  return out;
}

// Well-formed UTF-8 (RFC 3629), as JsonReader::utf8 checks it.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra = c >= 0xC2 && c <= 0xDF ? 1 : (c & 0xF0) == 0xE0 ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
    if (extra == 0 || i + extra >= s.size()) return false;
    uint32_t cp = c & (extra == 1 ? 0x1F : extra == 2 ? 0x0F : 0x07);
    for (size_t k = 1; k <= extra; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    uint32_t min = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000;
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

// --- checks -----------------------------------------------------------------

std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 300)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      out += b;
    }
  }
  if (s.size() > 300) out += "...";
  return out;
}

struct Ctx {
  const Request& req;
  const Reply& rep;
  std::string_view body;
  bool store;        // the worker has a store
  bool must_refuse;  // the head breaks a rule that needs a 400 (HeadRules)
  std::string what() const {
    return std::to_string(rep.status) + " for " + std::to_string(req.method) + " " + shown(req.target) +
           (store ? "" : " (no store)") + "; body: " + shown(body);
  }
  [[noreturn]] void fail(const char* property) const { fuzz::fail(property, what()); }
  void expect(bool ok, const char* property) const {
    if (!ok) fail(property);
  }
};

bool is_data(Endpoint e) { return e == Endpoint::quotes || e == Endpoint::quote || e == Endpoint::rank; }

const Json& member(const Ctx& c, const Json& obj, std::string_view key, Json::Kind kind) {
  const Json* v = obj.kind == Json::object ? obj.get(key) : nullptr;
  if (!v || v->kind != kind) fuzz::fail("body member missing or of the wrong type", std::string(key) + ": " + c.what());
  return *v;
}

// {"age_ms":<8 chars, right-aligned>,"commit":C,... with C the reply's.
void check_data_prefix(const Ctx& c, const Json& doc) {
  std::string_view b = c.body;
  std::string_view head = "{\"age_ms\":";
  c.expect(b.starts_with(head) && b.size() > head.size() + 8, "data body does not start with age_ms");
  // Spaces, then an integer (RFC 8259 allows the spaces), 8 characters in all.
  std::string_view age = b.substr(head.size(), 8);
  std::string_view num = age.substr(std::min(age.find_first_not_of(' '), age.size()));
  if (num.starts_with('-')) num.remove_prefix(1);
  c.expect(!num.empty() && num.find_first_not_of("0123456789") == std::string_view::npos &&
               b.substr(head.size() + 8).starts_with(",\"commit\":"),
           "age_ms not right-aligned in 8 characters");
  c.expect(member(c, doc, "commit", Json::number).str == std::to_string(c.rep.commit),
           "body commit differs from the reply's");
  c.expect(doc.keys.size() >= 3 && doc.keys[0] == "age_ms" && doc.keys[1] == "commit",
           "data body does not start with age_ms, commit");
  member(c, doc, "age_ms", Json::number);
  c.expect(c.rep.data_headers && c.rep.etag[0] != '\0', "data reply without data headers or ETag");
}

// The store's record for `symbol`, whole or restricted to `fields` (mask
// over kFieldNames; 0 = whole): keys in rendering order, bytes as stored.
void check_record(const Ctx& c, const Json& rec, uint32_t fields) {
  c.expect(rec.kind == Json::object, "record is not an object");
  const Json& sym = member(c, rec, "symbol", Json::string);
  auto it = env().json.find(sym.str);
  if (it == env().json.end()) fuzz::fail("record of a symbol the store does not have", sym.str + ": " + c.what());
  std::string_view text = c.body.substr(rec.begin, rec.end - rec.begin);
  if (fields == 0) {
    if (text != it->second) fuzz::fail("record differs from the store's", shown(text) + " vs " + shown(it->second));
    return;
  }
  size_t k = 0;
  for (int f = 0; f < kFieldCount; ++f) {
    if (!(fields & (1u << f))) continue;
    if (k >= rec.keys.size() || rec.keys[k] != kFieldNames[f])
      fuzz::fail("fields= record has the wrong keys", std::string(kFieldNames[f]) + " expected in " + shown(text));
    // Each member as the store rendered it.
    const Json& v = rec.items[k];
    std::string member_text = "\"" + rec.keys[k] + "\":" + std::string(c.body.substr(v.begin, v.end - v.begin));
    if (it->second.find(member_text) == std::string::npos)
      fuzz::fail("fields= member differs from the store's record", shown(member_text) + " not in " + shown(it->second));
    ++k;
  }
  if (k != rec.keys.size()) fuzz::fail("fields= record has extra keys", shown(text));
}

// The fields= value as the model reads it: adds the selected fields to
// *fields (symbol and ts always); false for a bad escape, an empty list or
// an unknown name, all of which the server must refuse with 400.
bool model_fields(std::string_view value, uint32_t* fields) {
  std::string scratch;
  if (!unescape(value, &scratch) || split_commas(scratch).empty()) return false;
  *fields = 1 | 1u << 4;
  bool ok = true;
  for (std::string_view f : split_commas(scratch)) {
    int i = 0;
    while (i < kFieldCount && f != kFieldNames[i]) ++i;
    if (i == kFieldCount)
      ok = false;
    else
      *fields |= 1u << i;
  }
  return ok;
}

// GET /v1/quotes?symbols=&fields=
void check_quotes(const Ctx& c, const Json* doc) {
  bool fields_ok = true, have = false;
  uint32_t fields = 0;
  std::string_view raw;
  for (const Param& p : params_of(c.req.query)) {
    if (p.key == "symbols") {
      raw = p.value, have = true;
    } else if (p.key == "fields" && !model_fields(p.value, &fields)) {
      fields_ok = false;
    }
  }
  std::string list;
  bool decoded = have && unescape(raw, &list);
  std::vector<std::string_view> entries = split_commas(list);
  bool ok = fields_ok && decoded && !entries.empty() && entries.size() <= env().opts.max_symbols &&
            !repeated(params_of(c.req.query), {"symbols", "fields"});
  if (!ok) return c.expect(c.rep.status == 400, "a bad /v1/quotes query is not 400");
  c.expect(c.rep.status == 200 || c.rep.status == 304, "a good /v1/quotes query is not 200 or 304");
  if (c.rep.status != 200) return;
  check_data_prefix(c, *doc);
  c.expect(doc->keys.size() == 4, "quotes body has other members than age_ms, commit, data, unknown");
  const Json& data = member(c, *doc, "data", Json::array);
  const Json& unknown = member(c, *doc, "unknown", Json::array);
  // Every symbol asked, in order, is either the next record or the next
  // unknown entry: none dropped, none added.
  size_t d = 0, u = 0;
  for (std::string_view e : entries) {
    bool known = env().json.count(e) != 0;
    if (known) {
      if (d >= data.items.size()) fuzz::fail("a known symbol is missing from data", std::string(e) + ": " + c.what());
      const Json& rec = data.items[d++];
      check_record(c, rec, fields);
      if (member(c, rec, "symbol", Json::string).str != e)
        fuzz::fail("data not in the order asked", std::string(e) + ": " + c.what());
    } else {
      if (u >= unknown.items.size())
        fuzz::fail("an unknown symbol is missing from unknown", shown(e) + ": " + c.what());
      const Json& un = unknown.items[u++];
      c.expect(un.kind == Json::string, "unknown entry is not a string");
      if (valid_utf8(e) && un.str != e)
        fuzz::fail("unknown entry differs from the symbol asked", shown(un.str) + " vs " + shown(e));
    }
  }
  c.expect(d == data.items.size() && u == unknown.items.size(), "quotes body has more entries than asked");
}

// GET /v1/quotes/{symbol}[?fields=]
void check_quote(const Ctx& c, const Json* doc) {
  uint32_t fields = 0;
  bool fields_ok = !repeated(params_of(c.req.query), {"fields"});
  for (const Param& p : params_of(c.req.query))
    if (p.key == "fields" && !model_fields(p.value, &fields)) fields_ok = false;
  if (!fields_ok) return c.expect(c.rep.status == 400, "a bad fields= on /v1/quotes/{symbol} is not 400");
  std::string sym;
  if (!unescape(c.req.path.substr(11), &sym))
    return c.expect(c.rep.status == 400, "a malformed symbol escape is not 400");
  if (!env().json.count(sym)) return c.expect(c.rep.status == 404, "an unknown symbol is not 404");
  c.expect(c.rep.status == 200 || c.rep.status == 304, "a known symbol is not 200 or 304");
  if (c.rep.status != 200) return;
  check_data_prefix(c, *doc);
  c.expect(doc->keys.size() == 3, "quote body has other members than age_ms, commit, data");
  const Json& rec = *doc->get("data");
  check_record(c, rec, fields);
  c.expect(member(c, rec, "symbol", Json::string).str == sym, "quote of another symbol");
}

// GET /v1/rank?by=&order=&limit=&offset=&market=
void check_rank(const Ctx& c, const Json* doc) {
  static const std::pair<const char*, const char*> kKeys[] = {{"change_pct", "change_pct"},
                                                              {"volume", "volume"},
                                                              {"turnover", "turnover"},
                                                              {"price", "last"},
                                                              {"amplitude", "amplitude"}};
  const char* by = "change_pct";
  const char* field = "change_pct";
  bool asc = false, ok = true;
  uint64_t limit = 20, offset = 0;
  std::string market;
  auto number = [](std::string_view v, uint64_t max, uint64_t* out) {
    if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string_view::npos) return false;
    uint64_t n = std::strtoull(std::string(v).c_str(), nullptr, 10);
    if (n > max) return false;
    *out = n;
    return true;
  };
  std::string decoded;
  for (Param p : params_of(c.req.query)) {
    bool ours = p.key == "by" || p.key == "order" || p.key == "limit" || p.key == "offset" || p.key == "market";
    if (!ours) continue;
    if (!unescape(p.value, &decoded)) {  // values are percent-decoded (docs/http.md)
      ok = false;
      continue;
    }
    p.value = decoded;
    if (p.key == "by") {
      auto k = std::find_if(std::begin(kKeys), std::end(kKeys), [&](auto& kv) { return p.value == kv.first; });
      if (k == std::end(kKeys))
        ok = false;
      else
        by = k->first, field = k->second;
    } else if (p.key == "order") {
      if (p.value == "asc" || p.value == "desc")
        asc = p.value == "asc";
      else
        ok = false;
    } else if (p.key == "limit") {
      ok &= number(p.value, env().opts.max_rank_limit, &limit) && limit > 0;
    } else if (p.key == "offset") {
      ok &= number(p.value, 1000000, &offset);
    } else if (p.key == "market") {
      if (std::find(std::begin(kMarkets), std::end(kMarkets), p.value) == std::end(kMarkets))
        ok = false;
      else
        market = p.value;
    }
  }
  ok &= !repeated(params_of(c.req.query), {"by", "order", "limit", "offset", "market"});
  if (!ok) return c.expect(c.rep.status == 400, "a bad /v1/rank query is not 400");
  c.expect(c.rep.status == 200 || c.rep.status == 304, "a good /v1/rank query is not 200 or 304");
  if (c.rep.status != 200) return;
  check_data_prefix(c, *doc);
  c.expect(member(c, *doc, "by", Json::string).str == by, "rank body: wrong by");
  c.expect(member(c, *doc, "order", Json::string).str == (asc ? "asc" : "desc"), "rank body: wrong order");
  const Json* m = doc->get("market");
  c.expect(m && (market.empty() ? m->kind == Json::null : m->kind == Json::string && m->str == market),
           "rank body: wrong market");
  size_t total = env().per_market[market];
  c.expect(member(c, *doc, "total", Json::number).str == std::to_string(total), "rank body: wrong total");
  c.expect(member(c, *doc, "offset", Json::number).str == std::to_string(offset), "rank body: wrong offset");
  const Json& data = member(c, *doc, "data", Json::array);
  size_t want = offset >= total ? 0 : std::min<uint64_t>(limit, total - offset);
  c.expect(data.items.size() == want, "rank body: wrong page length");
  double prev = 0;
  for (size_t i = 0; i < data.items.size(); ++i) {
    const Json& rec = data.items[i];
    check_record(c, rec, 0);
    if (!market.empty())
      c.expect(member(c, rec, "market", Json::string).str == market, "ranked record of another market");
    double v = member(c, rec, field, Json::number).num;
    if (i > 0 && (asc ? v < prev : v > prev)) c.fail("ranking out of order");
    prev = v;
  }
}

void check_error(const Ctx& c, const Json& doc) {
  c.expect(doc.kind == Json::object && doc.keys.size() == 1, "error body is not {\"error\":{...}}");
  const Json& err = member(c, doc, "error", Json::object);
  c.expect(err.keys.size() == 2, "error object has other members than status, message");
  c.expect(member(c, err, "status", Json::number).str == std::to_string(c.rep.status),
           "error status differs from the reply's");
  member(c, err, "message", Json::string);
  c.expect(c.rep.cache_control && std::strcmp(c.rep.cache_control, "no-store") == 0,
           "error not Cache-Control: no-store");
  c.expect(c.rep.etag[0] == '\0', "error with an ETag");
}

void check_reply(const Ctx& c) {
  const Request& req = c.req;
  const Reply& rep = c.rep;
  int s = rep.status;
  Endpoint e = rep.endpoint;
  if (c.must_refuse || req.refuse) {
    // RFC 9112 §3.2 (Host) and §5.1 (field names): 400 before routing, then close.
    c.expect(c.must_refuse && req.refuse, "Host / field-name rules read differently by the server");
    c.expect(s == 400 && rep.close && e == Endpoint::other, "a head breaking RFC 9112 §3.2/§5.1 is not 400 + close");
    Json doc;
    JsonReader reader(c.body);
    if (!reader.parse(&doc)) fuzz::fail("body is not well-formed JSON", reader.why + ": " + c.what());
    check_error(c, doc);
    return;
  }
  bool known = e != Endpoint::other;
  bool get = req.method == HTTP_GET || req.method == HTTP_HEAD;
  c.expect(s == 200 || s == 204 || s == 304 || s == 400 || s == 404 || s == 405 || s == 503, "undocumented status");
  bool options_star = req.method == HTTP_OPTIONS && req.path == "*";  // RFC 9110 §9.3.7
  c.expect((s == 204) == ((known || options_star) && req.method == HTTP_OPTIONS),
           "204 is for OPTIONS on a known path or *, and only");
  c.expect((s == 405) == (known && !get && req.method != HTTP_OPTIONS),
           "405 is for other methods on a known path, and only");
  if (s == 405 || s == 204) c.expect(rep.allow && std::strcmp(rep.allow, "GET, HEAD, OPTIONS") == 0, "wrong Allow");
  if (req.path == "*" && !options_star) c.expect(s == 400, "* with a method other than OPTIONS is not 400");
  if (!known && req.path != "*") c.expect(s == 404, "unknown path not 404");
  if (s == 304) c.expect(is_data(e) && !req.if_none_match.empty() && rep.etag[0], "304 without If-None-Match or ETag");
  if (s == 204 || s == 304) c.expect(c.body.empty() && !rep.ext_body, "204/304 with a body");
  if (known && get) {
    bool needs_store = is_data(e) || e == Endpoint::readyz;
    if (!c.store)
      c.expect(needs_store ? s == 503 : s == 200, "without a store: data and /readyz are 503, the rest 200");
    if (c.store) c.expect(s != 503 || e == Endpoint::readyz, "503 with the store open");
    if (e == Endpoint::healthz || e == Endpoint::metrics) c.expect(s == 200, "/healthz or /metrics not 200");
  }
  if (s == 204 || s == 304) return;

  c.expect(!c.body.empty(), "empty body");
  bool json = std::strcmp(rep.content_type, "application/json") == 0;
  if (!json) {
    c.expect(e == Endpoint::metrics && s == 200, "a body other than JSON outside /metrics");
    c.expect(c.body.back() == '\n' && c.body.find('\0') == std::string_view::npos, "metrics text malformed");
    return;
  }
  Json doc;
  JsonReader reader(c.body);
  if (!reader.parse(&doc)) fuzz::fail("body is not well-formed JSON", reader.why + ": " + c.what());
  if (s >= 400 && !(s == 503 && e == Endpoint::readyz && c.store)) {
    check_error(c, doc);
  } else if (e == Endpoint::readyz) {
    const char* state = s == 200 ? "ready" : "not_ready";
    c.expect(member(c, doc, "status", Json::string).str == state, "readyz status differs from its HTTP status");
  } else {
    c.expect(doc.kind == Json::object && !doc.get("error"), "an error body with a success status");
  }
  if (!get || !c.store) return;
  switch (e) {
    case Endpoint::quotes: check_quotes(c, &doc); break;
    case Endpoint::quote: check_quote(c, &doc); break;
    case Endpoint::rank: check_rank(c, &doc); break;
    case Endpoint::healthz: c.expect(member(c, doc, "status", Json::string).str == "ok", "healthz not ok"); break;
    default: break;
  }
}

// The head render_head() makes for this reply, read back by llhttp.
struct HeadSeen {
  std::vector<std::pair<std::string, std::string>> headers;
  bool complete = false;
  const std::string* get(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return &v;
    return nullptr;
  }
};

void check_head(const Ctx& c, Worker& w, size_t content_length, bool keep_alive, bool http10) {
  HeadParams hp;
  hp.content_length = content_length;
  hp.keep_alive = keep_alive && !c.rep.close;
  hp.http10 = http10;
  char head[kHeadMax];
  size_t hl = render_head(w, c.req, c.rep, hp, head);
  std::string_view text(head, hl);
  if (hl >= kHeadMax || !text.ends_with("\r\n\r\n")) fuzz::fail("response head truncated or unterminated", shown(text));

  static llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
      auto* h = static_cast<HeadSeen*>(p->data);
      if (h->headers.empty() || !h->headers.back().second.empty() || h->complete) h->headers.emplace_back();
      h->headers.back().first.append(at, len);
      h->complete = false;
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
      static_cast<HeadSeen*>(p->data)->headers.back().second.append(at, len);
      return 0;
    };
    s.on_header_value_complete = [](llhttp_t* p) {
      static_cast<HeadSeen*>(p->data)->complete = true;
      return 0;
    };
    s.on_headers_complete = [](llhttp_t*) { return 1; };  // the body is not part of the head
    return s;
  }();
  HeadSeen seen;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  parser.data = &seen;
  llhttp_errno_t err = llhttp_execute(&parser, head, hl);
  if (err != HPE_OK)
    fuzz::fail("response head does not parse", std::string(llhttp_errno_name(err)) + ": " + shown(text));
  if (parser.status_code != c.rep.status) fuzz::fail("response head has another status", shown(text));
  const std::string* cl = seen.get("Content-Length");
  bool bodyless = c.rep.status == 204 || c.rep.status == 304;
  if (bodyless ? cl != nullptr : !cl || *cl != std::to_string(content_length))
    fuzz::fail("Content-Length missing, wrong or present on 204/304", shown(text));
  const std::string* etag = seen.get("ETag");
  if ((etag != nullptr) != (c.rep.etag[0] != '\0') || (etag && *etag != c.rep.etag))
    fuzz::fail("ETag header differs from the reply's", shown(text));
  bool listed = std::find(std::begin(kOrigins), std::end(kOrigins), c.req.origin) != std::end(kOrigins);
  const std::string* acao = seen.get("Access-Control-Allow-Origin");
  if ((acao != nullptr) != listed || (acao && *acao != c.req.origin))
    fuzz::fail("CORS headers not exactly for a listed Origin", shown(c.req.origin) + ": " + shown(text));
  // A list of origins is configured: every cacheable response varies on Origin.
  const std::string* vary = seen.get("Vary");
  if (!c.rep.cache_control && (!vary || vary->find("Origin") == std::string::npos))
    fuzz::fail("cacheable response without Vary: Origin (origins are listed)", shown(text));
  const std::string* conn = seen.get("Connection");
  if ((conn && *conn == "close") != !hp.keep_alive) fuzz::fail("Connection: close differs from closing", shown(text));
  if (!seen.get("Date")) fuzz::fail("response without Date", shown(text));
}

// --- one connection's bytes ------------------------------------------------------

// An independent reading of the head rules that need a 400 before routing
// (RFC 9112 §3.2: one valid Host, required in HTTP/1.1; RFC 9112 §5.1 / RFC
// 9110 §5.1: a field name is a token, no whitespace before the colon).
struct HeadRules {
  std::string name, host;
  int hosts = 0;
  bool in_host = false, bad_name = false;
  void begin() { *this = HeadRules(); }
  void field_complete() {
    static const std::string_view kTchar =
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    bad_name |= name.find_first_not_of(kTchar) != std::string::npos;
    in_host = name.size() == 4 && strncasecmp(name.data(), "host", 4) == 0;
    hosts += in_host;
    name.clear();
  }
  static bool host_ok(std::string_view h) {
    while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
    const std::string_view reg = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=";
    size_t i = 0;
    if (h.starts_with('[')) {
      size_t close = h.find(']');
      if (close == std::string_view::npos || close == 1) return false;
      for (char c : h.substr(1, close - 1))
        if (c == '%' || (reg.find(c) == std::string_view::npos && c != ':')) return false;
      i = close + 1;
    } else {
      while (i < h.size() && h[i] != ':') {
        if (h[i] == '%') {
          if (i + 2 >= h.size() || !std::isxdigit(static_cast<unsigned char>(h[i + 1])) ||
              !std::isxdigit(static_cast<unsigned char>(h[i + 2])))
            return false;
          i += 3;
        } else if (reg.find(h[i]) != std::string_view::npos) {
          ++i;
        } else {
          return false;
        }
      }
    }
    if (i == h.size()) return true;
    return h[i] == ':' && h.substr(i + 1).find_first_not_of("0123456789") == std::string_view::npos;
  }
  bool must_refuse(llhttp_t* p) const {
    bool http11 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1;
    return bad_name || hosts > 1 || (hosts == 0 && http11) || (hosts == 1 && !host_ok(host));
  }
};

struct Conn {
  Env& env;
  Worker& w;
  Worker& nostore;
  RequestHead head;
  size_t header_bytes = 0;
  Buffer out;  // responses one after the other, as the server queues them
  std::string joined, twin_body;
  HeadRules rules;
};

// Routes `req` to `w` as server.cpp's respond() does (head room, then the
// body) and returns the reply; *body gets the whole body (ext_body included).
Reply route_one(Worker& w, const Request& req, Buffer& out, std::string* joined, std::string_view* body,
                bool counted = true) {
  out.tail(kHeadMax);
  out.commit(kHeadMax);
  size_t body_start = out.size();
  Reply rep;
  route(w, req, rep, out);
  *body = std::string_view(out.data() + body_start, out.size() - body_start);
  if (rep.ext_body) {
    if (rep.ext_body->size == 0) fuzz::fail("empty cached body", std::string(req.target));
    joined->assign(*body);
    joined->append(rep.ext_body->view());
    *body = *joined;
  }
  if (counted) w.metrics.count(rep.endpoint, rep.status, 0);  // as respond() does
  return rep;
}

// Returns true when the server closes the connection after this response.
bool serve(Conn& c, llhttp_t* p, Worker& w, bool store) {
  Request req;
  c.head.to_request(p, &req);
  w.refresh(0);
  std::string_view body;
  Reply rep = route_one(w, req, c.out, &c.joined, &body);
  Ctx ctx{req, rep, body, store, c.rules.must_refuse(p)};
  static const bool trace = std::getenv("TICKFAN_FUZZ_TRACE") != nullptr;  // one line per request routed
  if (trace) std::fprintf(stderr, "%s\n", ctx.what().substr(0, 200).c_str());
  check_reply(ctx);
  bool http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
  check_head(ctx, w, rep.status == 304 ? 0 : body.size(), llhttp_should_keep_alive(p), http10);
  if (req.head) {
    // HEAD: the GET's status and Content-Length (RFC 9110 §9.3.2). Not the
    // length for /readyz (its age_ms is not padded) and /metrics (the HEAD was
    // counted in between).
    Request get = req;
    get.method = HTTP_GET;
    get.head = false;
    Buffer scratch;
    std::string_view get_body;
    Reply g = route_one(w, get, scratch, &c.twin_body, &get_body, false);
    bool same_length = rep.endpoint == Endpoint::readyz || rep.endpoint == Endpoint::metrics || rep.status == 304 ||
                       get_body.size() == body.size();
    if (g.status != rep.status || !same_length)
      fuzz::fail("HEAD differs from GET", ctx.what() + " / GET: " + std::to_string(g.status) + " " + shown(get_body));
  }
  return rep.close;
}

Conn& conn_of(llhttp_t* p) { return *static_cast<Conn*>(p->data); }

llhttp_settings_t make_settings() {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = [](llhttp_t* p) {
    conn_of(p).header_bytes = 0;
    conn_of(p).head.begin();
    conn_of(p).rules.begin();
    return 0;
  };
  // The documented limits (414, 431) end the connection as in server.cpp.
  s.on_url = [](llhttp_t* p, const char* at, size_t len) {
    Conn& c = conn_of(p);
    if (c.head.url.size() + len > c.env.opts.max_uri_bytes) return static_cast<int>(HPE_USER);
    c.head.url.append(at, len);
    return 0;
  };
  s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
    Conn& c = conn_of(p);
    if ((c.header_bytes += len) > c.env.opts.max_header_bytes) return static_cast<int>(HPE_USER);
    c.head.field(at, len);
    c.rules.name.append(at, len);
    return 0;
  };
  s.on_header_field_complete = [](llhttp_t* p) {
    conn_of(p).head.field_complete();
    conn_of(p).rules.field_complete();
    return 0;
  };
  s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
    Conn& c = conn_of(p);
    if ((c.header_bytes += len) > c.env.opts.max_header_bytes) return static_cast<int>(HPE_USER);
    c.head.value(at, len);
    if (c.rules.in_host) c.rules.host.append(at, len);
    return 0;
  };
  s.on_header_value_complete = [](llhttp_t* p) {
    conn_of(p).head.value_complete();
    return 0;
  };
  s.on_headers_complete = [](llhttp_t* p) {
    if (refuse_head(p)) return -1;  // 505 or 413, and the connection closes
    conn_of(p).head.headers_complete();
    return 0;
  };
  s.on_message_complete = [](llhttp_t* p) {
    Conn& c = conn_of(p);
    bool close = serve(c, p, c.w, true);
    close |= serve(c, p, c.nostore, false);
    // The server closes after a response that does not keep the connection
    // alive, so whatever follows is never parsed.
    return llhttp_should_keep_alive(p) && !close ? 0 : static_cast<int>(HPE_PAUSED);
  };
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const llhttp_settings_t settings = make_settings();
  Env& e = env();
  e.keep_fresh();
  Worker w(e.opts, 0);
  w.reader = std::move(e.reader);
  Worker nostore(e.opts_nostore, 1);
  Conn c{e, w, nostore, {}, 0, {}, {}, {}, {}};
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.data = &c;
  // Any outcome is fine here (an error or a pause ends the connection); the
  // properties are checked per request, in on_message_complete.
  llhttp_execute(&parser, reinterpret_cast<const char*>(data), size);
  e.reader = std::move(w.reader);
  return 0;
}
