// units_test.cpp — the pieces of tickfan-record/-replay on their own: the
// tick-line writer against the apiserver's own parser (the round trip that
// makes a replay faithful), the recording format (round trip, truncation,
// version refusal), time specs, loop period and the progress line.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "batch.h"
#include "parse.h"
#include "process.h"
#include "recording.h"
#include "replay.h"
#include "tick_input.h"
#include "tick_writer.h"
#include "validate.h"

using namespace tickfan;
using namespace tickfan::tools;

namespace {

const std::string kSample = std::string(TICKFAN_SOURCE_DIR) + "/tests/data/ticks-sample.csv";

std::vector<Quote> read_all(const std::string& path) {
  std::string err;
  auto in = TickInput::open(path, &err);
  REQUIRE_MESSAGE(in, err);
  std::vector<Quote> out;
  TickEvent ev;
  while (in->next(&ev)) out.push_back(ev.quote);
  return out;
}

// Parses one line as the apiserver does (parse + validate).
Quote reparse(apiserver::LineParser& p, std::string_view line) {
  Quote q;
  apiserver::FieldSet present = 0;
  apiserver::Reject reason{};
  std::string detail;
  auto kind = p.parse(line, &q, &present, &reason, &detail);
  REQUIRE_MESSAGE(kind == apiserver::LineKind::tick, "refused: ", apiserver::reject_name(reason), " ", detail, " in ",
                  line);
  REQUIRE(apiserver::validate_tick(&q, present, INT64_MAX / 4, {}, &reason, &detail));
  return q;
}

bool same_quote(const Quote& a, const Quote& b) { return std::memcmp(&a, &b, sizeof(Quote)) == 0; }

}  // namespace

TEST_CASE("the sample tick file parses completely with the apiserver's parser") {
  std::string err;
  auto in = TickInput::open(kSample, &err);
  REQUIRE(in);
  CHECK(std::string(in->kind()) == "tick file");
  TickEvent ev;
  uint64_t n = 0;
  int64_t prev = 0;
  while (in->next(&ev)) {
    ++n;
    CHECK(ev.event_ns == ev.quote.exchange_ts_ns());
    CHECK(ev.event_ns >= prev);
    prev = ev.event_ns;
  }
  CHECK(n == 300);
  CHECK(in->stats().rejected == 0);
  // rewind gives the same stream again
  REQUIRE(in->rewind());
  REQUIRE(in->next(&ev));
  CHECK(quote_symbol(ev.quote) == "sh600000");
}

TEST_CASE("tick lines written for a quote parse back to the identical quote (JSONL and CSV)") {
  auto quotes = read_all(kSample);
  REQUIRE(quotes.size() == 300);
  // One quote with everything a writer must escape or keep exact.
  Quote odd = quotes[0];
  set_name(odd, "A, \"quoted\" name");
  odd.mutate_exchange_ts_ns(1717378200123456789);  // ns precision survives (ts_ns, not ts)
  odd.mutable_bids()->GetMutablePointer(4)->mutate_price(123456789);
  odd.mutable_bids()->GetMutablePointer(4)->mutate_volume(7);
  odd.mutate_status(TradingStatus::Halted);
  quotes.push_back(odd);
  Quote unnamed = quotes[1];
  set_name(unnamed, "");
  quotes.push_back(unnamed);

  for (TickFormat f : {TickFormat::jsonl, TickFormat::csv}) {
    CAPTURE(static_cast<int>(f));
    apiserver::LineParser parser;
    if (f == TickFormat::csv) {
      std::string_view h = csv_header();
      h.remove_suffix(1);
      Quote dummy;
      apiserver::FieldSet present;
      apiserver::Reject reason;
      std::string detail;
      REQUIRE(parser.parse(h, &dummy, &present, &reason, &detail) == apiserver::LineKind::skipped);
    }
    for (const Quote& q : quotes) {
      std::string line;
      append_tick_line(q, f, &line);
      REQUIRE(line.back() == '\n');
      line.pop_back();
      CHECK(line.find('\n') == std::string::npos);
      Quote back = reparse(parser, line);
      CHECK_MESSAGE(same_quote(back, q), line);
    }
  }
}

TEST_CASE("a recording round-trips its records, and a truncated tail is reported, not misread") {
  testing::TempDir dir;
  const std::string path = dir.file("rec.tfr");
  flatbuffers::FlatBufferBuilder fbb;
  auto quotes = read_all(kSample);
  std::string err;
  {
    RecordingWriter w;
    REQUIRE_MESSAGE(w.open(path, "subjects=tickfan.q.>\n", &err), err);
    for (int i = 0; i < 3; ++i) {
      BatchHeader h{"test", 7, static_cast<uint64_t>(i + 1), wire::BatchKind::Delta, 0};
      encode_batch(fbb, h, std::span<const Quote>(quotes.data() + i * 10, 10));
      REQUIRE(w.append(1000 + i, "tickfan.q.sh." + std::to_string(i), fbb.GetBufferPointer(), fbb.GetSize()));
    }
    REQUIRE(w.append(2000, "tickfan.q.sz.0", "not a batch", 11));  // recorded anyway: evidence
    CHECK(w.records() == 4);
    REQUIRE(w.close(&err));
  }
  CHECK(is_recording(path));
  CHECK_FALSE(is_recording(kSample));

  RecordingReader r;
  REQUIRE_MESSAGE(r.open(path, &err), err);
  CHECK(r.version() == kRecordingVersion);
  CHECK(r.meta() == "subjects=tickfan.q.>\n");
  RecordView v;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(r.next(&v) == RecordingReader::Next::record);
    CHECK(v.receive_ns == 1000 + i);
    CHECK(v.subject == "tickfan.q.sh." + std::to_string(i));
    CHECK(reinterpret_cast<uintptr_t>(v.payload) % 8 == 0);
    const wire::QuoteBatch* b = nullptr;
    REQUIRE(verify_batch(v.payload, v.size, &b) == BatchError::ok);
    CHECK(b->sequence() == static_cast<uint64_t>(i + 1));
  }
  REQUIRE(r.next(&v) == RecordingReader::Next::record);
  CHECK(std::string_view(static_cast<const char*>(v.payload), v.size) == "not a batch");
  CHECK(r.next(&v) == RecordingReader::Next::end);
  CHECK(r.offset() == r.file_size());

  // As tick input: 30 quotes from 3 deltas, the foreign message counted.
  {
    auto in = TickInput::open(path, &err);
    REQUIRE(in);
    TickEvent ev;
    std::vector<TickEvent> got;
    while (in->next(&ev)) got.push_back(ev);
    REQUIRE(got.size() == 30);
    CHECK(got[0].event_ns == 1000);
    CHECK(got[29].event_ns == 1002);
    CHECK(same_quote(got[15].quote, quotes[15]));
    CHECK(in->stats().bad_messages == 1);
  }

  // Cut the file inside the last record: the complete ones still read.
  std::string bytes = testing::read_file(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<long>(bytes.size() - 5));
  RecordingReader t;
  REQUIRE(t.open(path, &err));
  int n = 0;
  RecordingReader::Next k;
  while ((k = t.next(&v)) == RecordingReader::Next::record) ++n;
  CHECK(n == 3);
  CHECK(k == RecordingReader::Next::truncated);
}

TEST_CASE("a recording from a newer format version is refused, naming both versions") {
  testing::TempDir dir;
  const std::string path = dir.file("new.tfr");
  std::string err;
  {
    RecordingWriter w;
    REQUIRE(w.open(path, "", &err));
    REQUIRE(w.close(&err));
  }
  std::string bytes = testing::read_file(path);
  uint32_t v = kRecordingVersion + 1;
  std::memcpy(bytes.data() + 8, &v, 4);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<long>(bytes.size()));
  RecordingReader r;
  CHECK_FALSE(r.open(path, &err));
  CHECK(err.find("version " + std::to_string(v)) != std::string::npos);
  CHECK(err.find("up to version " + std::to_string(kRecordingVersion)) != std::string::npos);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "symbol,last,prev_close,ts\nsh600000,1,1,1717378200000\n";
  RecordingReader r2;
  CHECK_FALSE(r2.open(path, &err));
  CHECK(err.find("not a tickfan recording") != std::string::npos);
}

TEST_CASE("time specs: relative offsets and absolute UTC times") {
  TimeSpec t;
  std::string err;
  REQUIRE(parse_time_spec("90", &t, &err));
  CHECK((!t.absolute && t.ns == 90'000'000'000));
  REQUIRE(parse_time_spec("+1m30s", &t, &err));
  CHECK(t.ns == 90'000'000'000);
  REQUIRE(parse_time_spec("1500ms", &t, &err));
  CHECK(t.ns == 1'500'000'000);
  REQUIRE(parse_time_spec("0.5s", &t, &err));
  CHECK(t.ns == 500'000'000);
  REQUIRE(parse_time_spec("1h", &t, &err));
  CHECK(t.ns == 3600'000'000'000);
  REQUIRE(parse_time_spec("2024-06-03T01:30:10Z", &t, &err));
  CHECK((t.absolute && t.ns == 1717378210'000'000'000));
  REQUIRE(parse_time_spec("2024-06-03T01:30:10.25Z", &t, &err));
  CHECK(t.ns == 1717378210'250'000'000);
  REQUIRE(parse_time_spec("1717378210000", &t, &err));
  CHECK((t.absolute && t.ns == 1717378210'000'000'000));
  CHECK(resolve_time(TimeSpec{true, false, 5}, 100) == 105);
  CHECK_FALSE(parse_time_spec("soon", &t, &err));
  CHECK(err.find("'soon'") != std::string::npos);
  CHECK_FALSE(parse_time_spec("10x", &t, &err));
  CHECK_FALSE(parse_time_spec("2024-06-03T01:30:10", &t, &err));  // no zone: refused, not guessed
  // Were accepted: an epoch ms or an offset past int64 nanoseconds overflowed
  // (the window was ignored, the whole file replayed), and timegm turned
  // month 13 or February 30 into another date.
  CHECK_FALSE(parse_time_spec("99999999999999999999", &t, &err));
  CHECK(err.find("out of range") != std::string::npos);
  CHECK_FALSE(parse_time_spec("9999999999999999s", &t, &err));
  CHECK(err.find("out of range") != std::string::npos);
  CHECK_FALSE(parse_time_spec("2024-13-01T00:00:00Z", &t, &err));
  CHECK_FALSE(parse_time_spec("2024-02-30T00:00:00Z", &t, &err));
  CHECK_FALSE(parse_time_spec("2024-06-03T24:00:00Z", &t, &err));
  REQUIRE(parse_time_spec("2024-02-29T23:59:59Z", &t, &err));  // a leap day is a date
}

TEST_CASE("loop period: the span plus one average gap, never less than 1 ms") {
  CHECK(loop_period_ns(0, 9'000'000'000, 10) == 10'000'000'000);
  CHECK(loop_period_ns(5, 5, 1) == 1'000'000);
  CHECK(loop_period_ns(0, 1000, 1000) == 1000 + 1'000'000);
}

TEST_CASE("shifted pass limit: the passes whose shift keeps the latest time inside int64") {
  CHECK(shifted_pass_limit(INT64_MAX - 10, 5) == 3);  // shifts 0, 5, 10
  CHECK(shifted_pass_limit(INT64_MAX, 1) == 1);       // only the unshifted pass
  CHECK(shifted_pass_limit(0, 1) == uint64_t{INT64_MAX} + 1);
  CHECK(shifted_pass_limit(-5, 1) == uint64_t{INT64_MAX} + 1);  // negative times count as 0
  CHECK(shifted_pass_limit(1000, 0) == UINT64_MAX);             // no period, no shift
}

TEST_CASE("the progress line shows position, rate and ETA") {
  Progress p;
  p.done = 150;
  p.total = 600;
  p.position_ns = 15'000'000'000;
  p.span_ns = 60'000'000'000;
  p.pass = 1;
  p.passes = 2;
  p.rate = 10;
  p.eta_s = 45;
  std::string line = format_progress(p);
  CHECK(line == "150/600 ticks (25.0%), pass 1/2, at 0:15.0 of 1:00.0, 10 ticks/s, ETA 0:45.0");
  p.total = 0;
  p.passes = 0;
  p.span_ns = 0;
  p.eta_s = -1;
  CHECK(format_progress(p) == "150 ticks, pass 1/inf, at 0:15.0, 10 ticks/s, ETA ?");
  CHECK(format_duration(3725) == "1:02:05");
}
