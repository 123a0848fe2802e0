// Unit tests of the apiserver's parts, in process: line parsing, validation,
// source URIs, arbitration, the breaker state machine, the simulator and
// snapshot cutting.
#include <doctest/doctest.h>

#include <cstring>

#include "arbiter.h"
#include "batch.h"
#include "breaker.h"
#include "parse.h"
#include "snapshot.h"
#include "source.h"
#include "synthetic.h"
#include "validate.h"

using namespace tickfan;
using namespace tickfan::apiserver;

namespace {
constexpr int64_t kNow = 1'800'000'000'000'000'000;  // ns

struct Parsed {
  LineKind kind;
  Quote q;
  FieldSet present = 0;
  Reject reason = Reject::parse_error;
  std::string detail;
};

Parsed parse(LineParser& p, std::string_view line, bool validate = true) {
  Parsed r;
  r.kind = p.parse(line, &r.q, &r.present, &r.reason, &r.detail);
  if (validate && r.kind == LineKind::tick &&
      !validate_tick(&r.q, r.present, kNow, ValidateLimits{}, &r.reason, &r.detail)) {
    r.kind = LineKind::rejected;
  }
  return r;
}
}  // namespace

TEST_CASE("CSV: header maps columns, empty cells are defaults, quoted names keep commas") {
  LineParser p;
  CHECK(parse(p, "symbol,name,prev_close,last,ts,volume,bid1,bid1_vol").kind == LineKind::skipped);
  auto r = parse(p, "sh600000,\"浦发, 银行\",10.00,10.33,1800000000000,123,10.32,1200\r");
  REQUIRE(r.kind == LineKind::tick);
  CHECK(quote_symbol(r.q) == "sh600000");
  CHECK(quote_name(r.q) == "浦发, 银行");
  CHECK(r.q.market() == Market::SH);
  CHECK(r.q.status() == TradingStatus::Trading);
  CHECK(r.q.last() == 103300);
  CHECK(r.q.open() == 103300);  // normalised from last
  CHECK(r.q.volume() == 123);
  CHECK(r.q.exchange_ts_ns() == 1'800'000'000'000'000'000);
  CHECK(r.q.bids()->Get(0)->price() == 103200);
  CHECK(r.q.bids()->Get(0)->volume() == 1200);
  CHECK(parse(p, "").kind == LineKind::skipped);
  CHECK(parse(p, "# comment").kind == LineKind::skipped);
}

TEST_CASE("CSV: data before a header, unknown header column, wrong column count are rejected by reason") {
  LineParser p;
  CHECK(parse(p, "sh600000,1,2").reason == Reject::missing_header);
  auto h = parse(p, "symbol,last,colour");
  CHECK(h.kind == LineKind::rejected);
  CHECK(h.reason == Reject::unknown_field);
  CHECK(h.detail.find("colour") != std::string::npos);
  CHECK(parse(p, "sh600000,1,2").reason == Reject::missing_header);  // the broken header is not used
  parse(p, "symbol,prev_close,last,ts");
  CHECK(parse(p, "sh600000,1,2").reason == Reject::field_count);
  CHECK(parse(p, "sh600000,1,2,3,4").reason == Reject::field_count);
  CHECK(parse(p, "sh600000,1,2,1800000000000").kind == LineKind::tick);
}

TEST_CASE("JSON: flat object with book arrays, escapes, null, and the rendered-quote fields") {
  LineParser p;
  auto r = parse(
      p,
      R"({"symbol":"sz000001","name":"\u5e73\u5b89 \"A\"","market":"sz","status":"halted","prev_close":"11.5",)"
      R"("last":11.6,"high":12,"low":11,"ts_ns":1800000000000000000,"change":0.1,"bid":[[11.59,100]],"ask":[],"turnover":null})");
  REQUIRE(r.kind == LineKind::tick);
  CHECK(quote_name(r.q) == "平安 \"A\"");
  CHECK(r.q.status() == TradingStatus::Halted);
  CHECK(r.q.prev_close() == 115000);
  CHECK(r.q.bids()->Get(0)->price() == 115900);
  CHECK(r.q.turnover() == 0);
  CHECK(parse(p, R"({"symbol":"sz000001","x":1})").reason == Reject::unknown_field);
  CHECK(parse(p, R"({"symbol":"sz000001","symbol":"sz000002"})").reason == Reject::duplicate_field);
  CHECK(parse(p, R"({"symbol":"sz000001",)").reason == Reject::parse_error);
  CHECK(parse(p, R"({"symbol":"sz000001"} trailing)").reason == Reject::parse_error);
  CHECK(parse(p, R"({"symbol":{"a":1}})").reason == Reject::parse_error);
  CHECK(parse(p, R"({"symbol":"sz000001","last":"1e5"})").reason == Reject::bad_number);
}

TEST_CASE("validation refuses what must never be published, naming the reason") {
  LineParser p;
  parse(p, "symbol,name,market,prev_close,open,high,low,last,volume,ts");
  auto reason = [&](std::string line) { return parse(p, line).reason; };
  CHECK(parse(p, "sh600000,n,,10,10,11,9,10,5,1800000000000").kind == LineKind::tick);
  CHECK(reason("sh600000,n,,10,10,11,9,-10,5,1800000000000") == Reject::negative_price);
  CHECK(reason("sh600000,n,,10,10,9,11,10,5,1800000000000") == Reject::high_below_low);
  CHECK(reason("sh600000,n,,10,10,11,9,12,5,1800000000000") == Reject::last_out_of_range);
  CHECK(reason("sh600000,n,,10,10,11,9,10,-5,1800000000000") == Reject::negative_volume);
  CHECK(reason("sh600000,n,,10,10,11,9,10,5,1800000010000") == Reject::future_timestamp);
  CHECK(reason("sh600000,n,,10,10,11,9,10,5,0") == Reject::bad_timestamp);
  CHECK(reason("sh600000,n,sz,10,10,11,9,10,5,1800000000000") == Reject::bad_market);
  CHECK(reason("AAPL,n,,10,10,11,9,10,5,1800000000000") == Reject::bad_market);
  CHECK(parse(p, "AAPL,n,us,10,10,11,9,10,5,1800000000000").kind == LineKind::tick);
  CHECK(reason("sh600000000000000000,n,,10,10,11,9,10,5,1800000000000") == Reject::symbol_too_long);
  CHECK(reason("sh60 0000,n,,10,10,11,9,10,5,1800000000000") == Reject::bad_symbol);
  CHECK(reason(",n,,10,10,11,9,10,5,1800000000000") == Reject::missing_field);
  CHECK(reason("sh600000,n,,10,10,11,9,,5,1800000000000") == Reject::missing_field);
  CHECK(reason("sh600000,\xff\xfe,,10,10,11,9,10,5,1800000000000") == Reject::bad_name);
  CHECK(reason("sh600000,n,,10,10,11,9,10,5,12x") == Reject::bad_number);
}

TEST_CASE("source URIs: kinds, options, and clear errors") {
  auto s = parse_source_uri("file:/data/feed a.csv?follow=1&priority=3");
  CHECK(s.kind == SourceKind::file);
  CHECK(s.path == "/data/feed a.csv");
  CHECK(s.follow);
  CHECK(s.priority == 3);
  CHECK(s.name == "file:feed_a.csv");
  auto t = parse_source_uri("tcp://feed.example:9000?name=A");
  CHECK(t.host == "feed.example");
  CHECK(t.port == 9000);
  CHECK(t.name == "A");
  auto y = parse_source_uri("synthetic:?symbols=10&rate=0&seed=9&count=5");
  CHECK(y.symbols == 10);
  CHECK(y.rate == 0);
  CHECK(y.seed == 9);
  CHECK(y.count == 5);
  CHECK(parse_source_uri("stdin:").kind == SourceKind::stdin_);
  CHECK_THROWS_WITH_AS(parse_source_uri("ftp://x"), doctest::Contains("unknown scheme"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_source_uri("tcp://host"), doctest::Contains("HOST:PORT"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_source_uri("synthetic:?rate=fast"), doctest::Contains("rate=fast"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_source_uri("file:/x?symbols=3"), doctest::Contains("symbols"), std::invalid_argument);
  // follow=on or follow=2 used to mean "no follow", silently.
  CHECK_FALSE(parse_source_uri("file:/x?follow=no").follow);
  CHECK(parse_source_uri("file:/x?follow=true").follow);
  CHECK_THROWS_WITH_AS(parse_source_uri("file:/x?follow=on"), doctest::Contains("follow must be 1, true, yes, 0"),
                       std::invalid_argument);
  CHECK_THROWS_AS(parse_source_uri("file:/x?follow=2"), std::invalid_argument);
}

TEST_CASE("arbiter: first arrival wins, duplicates and stale ticks are dropped, priority breaks conflicting ties") {
  Arbiter a;
  SyntheticMarket m(4, 1);
  Quote q;
  m.next(&q, 1000);
  uint32_t id;
  bool added;
  CHECK(a.offer(q, 0, 2, &id, &added) == Verdict::accept);
  CHECK(added);
  Quote copy = q;
  copy.mutate_receive_ts_ns(5555);  // another feed received it later
  CHECK(a.offer(copy, 1, 1, &id, &added) == Verdict::duplicate);
  CHECK_FALSE(added);
  Quote older = q;
  older.mutate_exchange_ts_ns(999);
  CHECK(a.offer(older, 1, 1, &id, &added) == Verdict::stale);
  // Same timestamp, different content: the better-priority feed is preferred,
  // a worse one is not.
  Quote differs = q;
  differs.mutate_last(q.last() + 100);
  CHECK(a.offer(differs, 1, 1, &id, &added) == Verdict::accept);
  Quote worse = q;
  worse.mutate_last(q.last() + 200);
  CHECK(a.offer(worse, 2, 5, &id, &added) == Verdict::duplicate);
  Quote newer = q;
  newer.mutate_exchange_ts_ns(2000);
  CHECK(a.offer(newer, 2, 5, &id, &added) == Verdict::accept);
  CHECK(a.symbols() == 1);
  for (int i = 0; i < 10000; ++i) {
    m.next(&q, 3000 + i);
    a.offer(q, 0, 1, &id, &added);
  }
  CHECK(a.symbols() == 4);
}

TEST_CASE("symbol index keeps ids stable while growing") {
  SymbolIndex idx;
  SyntheticMarket m(5000, 3);
  Quote q;
  bool added;
  for (uint32_t i = 0; i < 5000; ++i) {
    m.next(&q, 1);
    CHECK(idx.find_or_add(q, &added) == i);
  }
  for (uint32_t i = 0; i < 5000; ++i) {
    m.next(&q, 2);
    REQUIRE(idx.find_or_add(q, &added) == i);
    REQUIRE_FALSE(added);
  }
}

TEST_CASE("breaker: opens on errors or silence, probes after the cool-down, closes after good ticks") {
  BreakerConfig c;
  c.error_threshold = 3;
  c.error_window_ns = 1000;
  c.silence_ns = 100;
  c.open_ns = 50;
  c.probe_ticks = 2;
  Breaker b(c, 0);
  const char* why = "";
  CHECK_FALSE(b.update(10, 5, 0, true, &why));
  CHECK(b.update(20, 6, 3, true, &why));
  CHECK(b.state() == BreakerState::open);
  CHECK(std::string(why) == "errors");
  CHECK_FALSE(b.update(60, 6, 3, true, &why));
  CHECK(b.update(71, 6, 3, true, &why));
  CHECK(b.state() == BreakerState::half_open);
  CHECK(b.update(80, 7, 4, true, &why));  // an error while probing
  CHECK(b.state() == BreakerState::open);
  CHECK(b.update(131, 7, 4, true, &why));
  CHECK_FALSE(b.update(140, 8, 4, true, &why));
  CHECK(b.update(150, 9, 4, true, &why));
  CHECK(b.state() == BreakerState::closed);
  CHECK(std::string(why) == "probe passed");
  // Silence only counts while somebody else delivers.
  CHECK_FALSE(b.update(400, 9, 4, false, &why));
  CHECK(b.update(401, 9, 4, true, &why));
  CHECK(std::string(why) == "silent");
}

TEST_CASE("synthetic market: deterministic per seed, inside the daily limit, valid") {
  SyntheticMarket a(100, 42), b(100, 42), c(100, 43);
  Quote qa, qb, qc;
  bool differs = false;
  for (int i = 0; i < 20000; ++i) {
    a.next(&qa, 1000 + i);
    b.next(&qb, 1000 + i);
    c.next(&qc, 1000 + i);
    REQUIRE(std::memcmp(&qa, &qb, sizeof qa) == 0);
    differs |= qa.last() != qc.last();
    REQUIRE(qa.last() <= qa.prev_close() * 11 / 10 + 100);
    REQUIRE(qa.last() >= qa.prev_close() * 9 / 10 - 100);
    Reject r;
    std::string d;
    REQUIRE(validate_tick(&qa, ~FieldSet{0}, 1000 + i, ValidateLimits{}, &r, &d));
  }
  CHECK(differs);
  CHECK(quote_symbol(a.quote(0)) == "sh600000");
  CHECK(quote_symbol(a.quote(50)) == "sz000001");
  CHECK(valid_display_name(quote_name(a.quote(7))));
  CHECK(!quote_name(a.quote(7)).empty());
}

TEST_CASE("snapshot cutting: parts of at most N quotes numbered from 1, then the end marker with marks") {
  std::vector<Quote> quotes(2500);
  SyntheticMarket m(2500, 1);
  for (auto& q : quotes) m.next(&q, 5);
  std::vector<SubjectSequence> marks{{"tickfan.q.sh.0", 7}, {"tickfan.q.sh.1", 0}};
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::vector<uint8_t>> sent;
  uint64_t parts = build_snapshot(fbb, "test", 99, quotes, marks, 1000,
                                  [&](const uint8_t* d, size_t n) { sent.emplace_back(d, d + n); });
  CHECK(parts == 3);
  REQUIRE(sent.size() == 4);
  size_t total = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    const wire::QuoteBatch* b = nullptr;
    REQUIRE(verify_batch(sent[i].data(), sent[i].size(), &b) == BatchError::ok);
    CHECK(b->epoch() == 99);
    if (i < 3) {
      CHECK(b->kind() == wire::BatchKind::SnapshotPart);
      CHECK(b->sequence() == i + 1);
      total += b->quotes()->size();
    } else {
      CHECK(b->kind() == wire::BatchKind::SnapshotEnd);
      CHECK(b->sequence() == 3);
      REQUIRE(b->marks()->size() == 2);
      CHECK(b->marks()->Get(0)->sequence() == 7);
    }
  }
  CHECK(total == 2500);
  uint32_t mask;
  std::string bad;
  CHECK(parse_market_filter("sh, sz", &mask, &bad));
  CHECK(market_in(mask, Market::SZ));
  CHECK_FALSE(market_in(mask, Market::HK));
  CHECK_FALSE(parse_market_filter("sh,zz", &mask, &bad));
  CHECK(bad == "zz");
}

#include "config.h"

namespace {
int parse_args(std::vector<std::string> args, tickfan::apiserver::Options* out) {
  args.insert(args.begin(), "tickfan-apiserver");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return tickfan::apiserver::parse_options(static_cast<int>(argv.size()), argv.data(), out);
}
}  // namespace

TEST_CASE("command line: units are converted, defaults hold, repeated sources and servers are kept") {
  Options o;
  REQUIRE(parse_args({"--source", "synthetic:", "--source", "file:/x.csv?priority=1", "--nats", "nats://a:1,nats://b:2",
                      "--max-future-ms", "100", "--max-delay-ms", "0.5", "--breaker-silence-ms", "300",
                      "--publisher-id", "p1", "--no-send-asap"},
                     &o) == -1);
  CHECK(o.server.sources.size() == 2);
  CHECK(o.server.sources[1].priority == 1);
  CHECK(o.server.nats.servers == std::vector<std::string>{"nats://a:1", "nats://b:2"});
  CHECK(o.server.limits.max_future_ns == 100'000'000);
  CHECK(o.server.max_delay_ns == 500'000);
  CHECK(o.server.breaker.silence_ns == 300'000'000);
  CHECK(o.server.publisher_id == "p1");
  CHECK_FALSE(o.server.nats.send_asap);
  CHECK(o.server.max_batch == 64);
  CHECK(o.server.shards == 4);
  CHECK(o.server.prefix == "tickfan.q");

  Options d;
  REQUIRE(parse_args({"--source", "stdin:"}, &d) == -1);
  CHECK(d.server.limits.max_future_ns == 5'000'000'000);
  CHECK(d.server.nats.send_asap);
  CHECK(d.server.nats.servers == std::vector<std::string>{"nats://127.0.0.1:4222"});
  CHECK(!d.server.publisher_id.empty());
  CHECK(d.metrics_port == 9321);

  Options bad;
  CHECK(parse_args({"--source", "synthetic:", "--ring-size", "1000"}, &bad) == 2);
  CHECK(parse_args({}, &bad) == 2);  // --source is required
  // Was accepted: two threads split one standard input's lines between them.
  CHECK(parse_args({"--source", "stdin:", "--source", "stdin:?name=b"}, &bad) == 2);
}

TEST_CASE("command line: numbers that cannot mean anything are usage errors (exit 2), not crashes or nonsense") {
  // Old behaviour, each accepted or worse: --max-future-ms went through
  // std::stoll (a word aborted the process with an uncaught exception, "1e3"
  // meant 1 ms, a huge value overflowed, a negative one refused every tick);
  // NaN passed CLI::Range and became an undefined nanosecond count; breaker
  // thresholds of 0 or below tripped at every check and large ones overflowed
  // int64 nanoseconds; --metrics-port 70000 listened on 70000 mod 65536; a
  // --prefix with a wildcard started and published where nobody can subscribe;
  // an empty --nats, a port past 65535 or an unclosed [ were retried for ever,
  // and so was a user, password or token libnats sends unescaped (a '"').
  const std::vector<std::vector<std::string>> bad = {
      {"--max-future-ms", "abc"},
      {"--max-future-ms", "1e3"},
      {"--max-future-ms", "-5"},
      {"--max-future-ms", "99999999999999999"},
      {"--max-delay-ms", "nan"},
      {"--refresh-s", "nan"},
      {"--state-interval-ms", "NaN"},
      {"--breaker-errors", "0"},
      {"--breaker-errors", "-1"},
      {"--breaker-window-ms", "99999999999999"},
      {"--breaker-window-ms", "0"},
      {"--breaker-silence-ms", "-5"},
      {"--breaker-open-ms", "0"},
      {"--breaker-probe-ticks", "0"},
      {"--metrics-port", "70000"},
      {"--metrics-port", "-7"},
      {"--prefix", "a.>"},
      {"--prefix", "a*b"},
      {"--prefix", "a b"},
      {"--prefix", "a..b"},
      {"--prefix", "a."},
      {"--prefix", std::string(201, 'x')},
      {"--nats", ""},
      {"--nats", "nats://127.0.0.1:99999"},
      {"--nats-user", "a\"b"},
      {"--nats-password", "p\\w"},
      {"--nats-token", "t\nx"},
      {"--nats", "nats://[::1"},
      {"--nats", "nats://h:x"},
      {"--nats", "nats://a:1,nats://b:0"},
  };
  for (const auto& args : bad) {
    CAPTURE(args[0] + " " + args[1]);
    Options o;
    std::vector<std::string> argv{"--source", "synthetic:"};
    argv.insert(argv.end(), args.begin(), args.end());
    CHECK(parse_args(argv, &o) == 2);
  }
  Options ok;
  REQUIRE(
      parse_args({"--source", "synthetic:", "--max-future-ms", "0", "--metrics-port", "-1", "--breaker-open-ms",
                  "86400000", "--prefix", "prod-1.q_x", "--nats", "nats://u:p@n1:4222,tls://[::1]:4222,n2,nats://n3/"},
                 &ok) == -1);
  CHECK(ok.server.limits.max_future_ns == 0);
  CHECK(ok.server.breaker.open_ns == 86'400'000'000'000);
  CHECK(ok.metrics_port == -1);
}

#include "process.h"

TEST_CASE("config file: an unknown key is a usage error naming it (was silently ignored)") {
  tickfan::testing::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    FILE* f = std::fopen(dir.file(name).c_str(), "w");
    REQUIRE(f);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return dir.file(name);
  };
  Options good;
  CHECK(parse_args({"--config", write("good.toml", "source = [\"synthetic:\"]\nmax-batch = 32\n")}, &good) == -1);
  CHECK(good.server.max_batch == 32);
  Options bad;
  std::string path = write("bad.toml", "source = [\"synthetic:\"]\nmax-batchx = 32\n");
  // CLI11 prints the error (naming the key) to stderr; the exit code is what we check here.
  CHECK(parse_args({"--config", path}, &bad) == 2);
  // The committed example parses.
  Options example;
  CHECK(parse_args({"--config", std::string(TICKFAN_SOURCE_DIR) + "/apiserver/apiserver.example.toml"}, &example) == -1);
}
