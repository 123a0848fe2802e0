// End-to-end: the real tickfan-apiserver against a real nats-server on a free
// loopback port; a test subscriber verifies and decodes every batch.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
#include <set>
#include <thread>

#include "harness.h"
#include "subjects.h"

using namespace tickfan;
using namespace tickfan::testing;

namespace {
const char* kHeader = "symbol,name,prev_close,open,high,low,last,volume,turnover,ts,bid1,bid1_vol,ask1,ask1_vol\n";

// Current time in ms, so ticks pass the future-timestamp check.
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string csv_line(int i, int64_t ts) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "sh6%05d,测试%d,10.00,10.01,10.50,9.90,10.%02d,%d,%d.5,%lld,10.19,100,10.21,200\n", i,
                i, i % 50, 1000 + i, 10000 + i, static_cast<long long>(ts));
  return buf;
}

std::set<std::string> symbols_of(const std::vector<Received>& batches) {
  std::set<std::string> out;
  for (const auto& b : batches) {
    for (const auto& q : b.quotes) out.insert(std::string(quote_symbol(q)));
  }
  return out;
}
}  // namespace

TEST_CASE("file source: every CSV and JSON tick reaches a subscriber, sequences contiguous per subject") {
  NatsServer nats;
  TempDir dir;
  int64_t ts = now_ms();
  {
    std::ofstream f(dir.file("ticks.csv"));
    f << "# a comment line\n" << kHeader;
    for (int i = 0; i < 300; ++i) f << csv_line(i, ts);
    for (int i = 0; i < 200; ++i) {
      f << "{\"symbol\":\"sz00" << (1000 + i) << "\",\"name\":\"\\u6df1\\u5733\",\"prev_close\":5,\"last\":\"5.1\","
        << "\"ts\":" << ts << ",\"volume\":10,\"bid\":[[5.09,100],[5.08,200]],\"ask\":[[5.11,300]]}\n";
    }
  }
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "file:" + dir.file("ticks.csv"), "--exit-when-done"});
  int status = api.proc().wait(20000);
  CHECK(exited_with(status, 0));
  REQUIRE(wait_until([&] { return sub.quote_count() >= 500; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto batches = sub.batches();
  CHECK(sub.errors() == 0);
  CHECK(sub.quote_count() == 500);
  CHECK(symbols_of(batches).size() == 500);
  auto seqs = sequences_by_subject(batches);
  CHECK(seqs.size() >= 4);
  for (const auto& [subject, list] : seqs) {
    INFO(subject);
    CHECK(contiguous_from_one(list));
    CHECK((subject.starts_with("tickfan.q.sh.") || subject.starts_with("tickfan.q.sz.")));
  }
  // Values survive the trip exactly (fixed point, names in UTF-8).
  bool found = false;
  for (const auto& b : batches) {
    for (const auto& q : b.quotes) {
      if (quote_symbol(q) == "sz001000") {
        found = true;
        CHECK(quote_name(q) == "深圳");
        CHECK(q.last() == 51000);
        CHECK(q.bids()->Get(1)->price() == 50800);
        CHECK(q.asks()->Get(0)->volume() == 300);
        CHECK(q.exchange_ts_ns() == ts * 1000000);
        CHECK(b.subject == "tickfan.q.sz." + std::to_string(shard_of("sz001000", 4)));
      }
    }
  }
  CHECK(found);
}

TEST_CASE("synthetic source: a fixed count of ticks arrives complete, one epoch, contiguous sequences") {
  NatsServer nats;
  TempDir dir;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(),
                {"--source", "synthetic:?symbols=1000&rate=100000&count=20000&seed=7", "--exit-when-done"});
  CHECK(exited_with(api.proc().wait(30000), 0));
  REQUIRE(wait_until([&] { return sub.quote_count() >= 20000; }, 5000));
  auto batches = sub.batches();
  CHECK(sub.quote_count() == 20000);
  CHECK(symbols_of(batches).size() == 1000);
  std::set<uint64_t> epochs;
  for (const auto& b : batches) epochs.insert(b.epoch);
  CHECK(epochs.size() == 1);
  for (const auto& [subject, list] : sequences_by_subject(batches)) {
    INFO(subject);
    CHECK(contiguous_from_one(list));
  }
}

TEST_CASE("snapshot: every symbol, parts numbered from 1, end marker consistent with the deltas seen") {
  NatsServer nats;
  TempDir dir;
  Subscriber sub(nats.url(), "tickfan.q.>");
  // 2 500 symbols at 20 000 ticks/s: the snapshot is taken while deltas flow.
  Apiserver api(dir, nats.url(), {"--source", "synthetic:?symbols=2500&rate=20000"});
  REQUIRE(wait_until([&] { return sub.quote_count() >= 5000; }, 10000));

  auto reply = request_snapshot(nats.url(), "");
  REQUIRE(reply.size() >= 2);
  const Received& end = reply.back();
  REQUIRE(end.kind == wire::BatchKind::SnapshotEnd);
  CHECK(end.sequence == reply.size() - 1);
  std::set<std::string> symbols;
  size_t total = 0;
  for (size_t i = 0; i + 1 < reply.size(); ++i) {
    CHECK(reply[i].kind == wire::BatchKind::SnapshotPart);
    CHECK(reply[i].sequence == i + 1);
    CHECK(reply[i].quotes.size() <= 1000);
    CHECK(reply[i].epoch == end.epoch);
    for (const auto& q : reply[i].quotes) symbols.insert(std::string(quote_symbol(q)));
    total += reply[i].quotes.size();
  }
  CHECK(symbols.size() == 2500);
  CHECK(total == 2500);
  CHECK(end.marks.size() == 5 * 4);  // every delta subject of every market

  // Consistency: for each symbol, the snapshot value is the one carried by
  // the last delta at or below the mark of its subject. The subscriber gets
  // those deltas on its own connection and thread, so it may still lag the
  // snapshot reply: wait until it has every subject up to its mark.
  REQUIRE(wait_until([&] { return sub.reached(end.marks, end.epoch); }, 10000));
  auto batches = sub.batches();
  std::map<std::string, uint64_t> mark;
  for (const auto& m : end.marks) mark[m.subject] = m.sequence;
  std::map<std::string, Quote> expected;
  for (const auto& b : batches) {
    if (b.epoch != end.epoch || b.sequence > mark[b.subject]) continue;
    for (const auto& q : b.quotes) expected[std::string(quote_symbol(q))] = q;
  }
  size_t checked = 0;
  for (size_t i = 0; i + 1 < reply.size(); ++i) {
    for (const auto& q : reply[i].quotes) {
      auto it = expected.find(std::string(quote_symbol(q)));
      REQUIRE(it != expected.end());
      CHECK(it->second.exchange_ts_ns() == q.exchange_ts_ns());
      CHECK(it->second.last() == q.last());
      ++checked;
    }
  }
  CHECK(checked == 2500);

  // Filtered by market: only Shanghai symbols, only Shanghai marks.
  auto sh = request_snapshot(nats.url(), "sh");
  REQUIRE(!sh.empty());
  size_t sh_quotes = 0;
  for (const auto& r : sh) {
    for (const auto& q : r.quotes) {
      CHECK(q.market() == Market::SH);
      ++sh_quotes;
    }
  }
  CHECK(sh_quotes == 1250);
  CHECK(sh.back().marks.size() == 4);
  for (const auto& m : sh.back().marks) CHECK(m.subject.starts_with("tickfan.q.sh."));

  // An unknown market still gets an answer: an empty end marker.
  auto bad = request_snapshot(nats.url(), "xx");
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].kind == wire::BatchKind::SnapshotEnd);
  CHECK(bad[0].sequence == 0);
  CHECK(bad[0].marks.empty());
}

TEST_CASE("two sources carrying the same ticks: each tick is published once, the copies are counted") {
  NatsServer nats;
  TempDir dir;
  int64_t ts = now_ms();
  std::string body = kHeader;
  for (int i = 0; i < 400; ++i) body += csv_line(i, ts);
  for (const char* name : {"a.csv", "b.csv"}) std::ofstream(dir.file(name)) << body;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(),
                {"--source", "file:" + dir.file("a.csv") + "?name=feedA&priority=1", "--source",
                 "file:" + dir.file("b.csv") + "?name=feedB&priority=2", "--metrics-addr", "127.0.0.1"});
  REQUIRE(wait_until([&] { return sub.quote_count() >= 400; }, 10000));
  REQUIRE(wait_until(
      [&] {
        return api.metric("tickfan_apiserver_dropped_total{source=\"feedA\",reason=\"duplicate\"}") +
                   api.metric("tickfan_apiserver_dropped_total{source=\"feedB\",reason=\"duplicate\"}") ==
               400;
      },
      5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(sub.quote_count() == 400);
  CHECK(symbols_of(sub.batches()).size() == 400);
  CHECK(api.metric("tickfan_apiserver_ticks_in_total{source=\"feedA\"}") == 400);
  CHECK(api.metric("tickfan_apiserver_ticks_in_total{source=\"feedB\"}") == 400);
  CHECK(api.metric("tickfan_apiserver_published_ticks_total") == 400);
}

TEST_CASE("a file with bad lines publishes every good line and counts each bad one by reason") {
  NatsServer nats;
  TempDir dir;
  int64_t ts = now_ms();
  {
    std::ofstream f(dir.file("mixed.csv"));
    f << kHeader;
    int good = 0;
    for (int i = 0; i < 100; ++i) {
      f << csv_line(i, ts);
      ++good;
      switch (i % 10) {
        case 1: f << "sh600001,x,10,10,10,10,-1,1,1," << ts << ",1,1,1,1\n"; break;                // negative_price
        case 2: f << "sh600002,x,10,10,9,11,10,1,1," << ts << ",1,1,1,1\n"; break;                 // high_below_low
        case 3: f << "sh60000000000000000003,x,10,10,10,10,10,1,1," << ts << ",1,1,1,1\n"; break;  // symbol_too_long
        case 4: f << "sh600004,x,10,10,10,10,abc,1,1," << ts << ",1,1,1,1\n"; break;               // bad_number
        case 5: f << "sh600005,x,10,10,10,10,10,1,1," << ts + 3600000 << ",1,1,1,1\n"; break;      // future_timestamp
        case 6: f << "{\"symbol\":\"sh600006\",\"colour\":\"red\"}\n"; break;                      // unknown_field
        case 7: f << "{\"symbol\":\"sh600007\",\n"; break;                                         // parse_error
        case 8: f << "sh600008,x,10\n"; break;                                                     // field_count
        default: break;
      }
    }
  }
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "file:" + dir.file("mixed.csv") + "?name=mixed"});
  REQUIRE(wait_until([&] { return sub.quote_count() >= 100; }, 10000));
  auto rejected = [&](const char* reason) {
    return api.metric(std::string("tickfan_apiserver_rejected_total{source=\"mixed\",reason=\"") + reason + "\"}");
  };
  REQUIRE(wait_until([&] { return rejected("field_count") == 10; }, 5000));
  CHECK(rejected("negative_price") == 10);
  CHECK(rejected("high_below_low") == 10);
  CHECK(rejected("symbol_too_long") == 10);
  CHECK(rejected("bad_number") == 10);
  CHECK(rejected("future_timestamp") == 10);
  CHECK(rejected("unknown_field") == 10);
  CHECK(rejected("parse_error") == 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(sub.quote_count() == 100);
  CHECK(symbols_of(sub.batches()).size() == 100);
  // The log names the source and the line of a bad record.
  std::string log = api.log();
  CHECK(log.find("rejected source=mixed line=4 reason=negative_price") != std::string::npos);
}

TEST_CASE("a silent source's breaker opens while another delivers, and closes once it delivers again") {
  NatsServer nats;
  TempDir dir;
  std::ofstream(dir.file("quiet.csv")) << kHeader;
  Apiserver api(dir, nats.url(),
                {"--source", "synthetic:?symbols=100&rate=2000&name=busy", "--source",
                 "file:" + dir.file("quiet.csv") + "?follow=1&name=quiet", "--breaker-silence-ms", "300",
                 "--breaker-open-ms", "200", "--breaker-probe-ticks", "5"});
  const std::string state = "tickfan_apiserver_source_state{source=\"quiet\"}";
  REQUIRE(wait_until([&] { return api.metric(state) == 1; }, 5000));  // open
  CHECK(api.log().find("source=quiet from=closed to=open reason=\"silent\"") != std::string::npos);
  // The quiet feed comes back: a line every 20 ms.
  std::ofstream f(dir.file("quiet.csv"), std::ios::app);
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    f << csv_line(i, now_ms()) << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (i % 10 == 9) closed = api.metric(state) == 0;
  }
  CHECK(closed);
  std::string log = api.log();
  CHECK(log.find("source=quiet from=open to=half_open") != std::string::npos);
  CHECK(log.find("source=quiet from=half_open to=closed reason=\"probe passed\"") != std::string::npos);
  CHECK(api.metric("tickfan_apiserver_source_state{source=\"busy\"}") == 0);
}

TEST_CASE("SIGTERM loses no accepted tick: everything read is published before exit") {
  NatsServer nats;
  TempDir dir;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "synthetic:?symbols=3000&rate=50000"});
  REQUIRE(wait_until([&] { return sub.quote_count() >= 10000; }, 10000));
  api.proc().signal(SIGTERM);
  CHECK(exited_with(api.proc().wait(10000), 0));
  std::string log = api.log();
  long long in_count = number_after(log, "stopped ticks_in=");
  long long published = number_after(log.substr(log.find("stopped ticks_in=") + 1), " published=");
  REQUIRE(in_count > 0);
  CHECK(in_count == published);
  size_t in = static_cast<size_t>(in_count);
  REQUIRE(wait_until([&] { return sub.quote_count() >= in; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(sub.quote_count() == in);
  for (const auto& [subject, list] : sequences_by_subject(sub.batches())) {
    INFO(subject);
    CHECK(contiguous_from_one(list));
  }
}

TEST_CASE("--refresh-s re-publishes every last value periodically, on the same contiguous sequences") {
  NatsServer nats;
  TempDir dir;
  int64_t ts = now_ms();
  {
    std::ofstream f(dir.file("ten.csv"));
    f << kHeader;
    for (int i = 0; i < 10; ++i) f << csv_line(i, ts);
  }
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "file:" + dir.file("ten.csv"), "--refresh-s", "0.2"});
  // The 10 ticks once, then all 10 again at least twice.
  REQUIRE(wait_until([&] { return sub.quote_count() >= 30; }, 5000));
  auto batches = sub.batches();
  std::map<std::string, int> times;
  for (const auto& b : batches) {
    for (const auto& q : b.quotes) times[std::string(quote_symbol(q))]++;
  }
  CHECK(times.size() == 10);
  for (const auto& [sym, n] : times) CHECK(n >= 2);
  for (const auto& [subject, list] : sequences_by_subject(batches)) {
    INFO(subject);
    CHECK(contiguous_from_one(list));
  }
}

TEST_CASE("a source sending a burst of bad lines has its breaker opened for errors, the other keeps publishing") {
  NatsServer nats;
  TempDir dir;
  {
    std::ofstream f(dir.file("junk.csv"));
    f << kHeader;
    for (int i = 0; i < 50; ++i) f << "sh600000,x,10\n";  // field_count, 50 times
  }
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(
      dir, nats.url(),
      {"--source", "synthetic:?symbols=100&rate=2000&name=good", "--source",
       "file:" + dir.file("junk.csv") + "?follow=1&name=junk", "--breaker-errors", "20", "--breaker-open-ms", "60000"});
  const std::string state = "tickfan_apiserver_source_state{source=\"junk\"}";
  REQUIRE(wait_until([&] { return api.metric(state) == 1; }, 5000));
  CHECK(api.log().find("source=junk from=closed to=open reason=\"errors\"") != std::string::npos);
  // The breaker opens at the 20th error, possibly while the source thread is
  // still counting the other 30: all 50 are counted, but maybe not yet.
  CHECK(wait_until(
      [&] { return api.metric("tickfan_apiserver_rejected_total{source=\"junk\",reason=\"field_count\"}") == 50; },
      5000));
  CHECK(api.metric("tickfan_apiserver_source_state{source=\"good\"}") == 0);
  // Ticks from the open source are dropped and counted while "good" is healthy.
  std::ofstream(dir.file("junk.csv"), std::ios::app) << csv_line(1, now_ms()) << std::flush;
  CHECK(wait_until(
      [&] { return api.metric("tickfan_apiserver_dropped_total{source=\"junk\",reason=\"breaker_open\"}") == 1; },
      5000));
  size_t before = sub.quote_count();
  CHECK(wait_until([&] { return sub.quote_count() > before + 100; }, 5000));
}
