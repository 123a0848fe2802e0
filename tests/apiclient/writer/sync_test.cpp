// sync_test.cpp — the snapshot + delta state machine driven by plain calls:
// every recovery rule of apiclient/writer/sync.h, without NATS or a store.
#include "sync.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "batch.h"
#include "log.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::apiclient;
using tickfan::testing::make_quote;

namespace {

constexpr int64_t kMs = 1'000'000;
// The machine logs every transition; keep test output to failures.
const bool kQuiet = (log_set_level(LogLevel::error), true);

// Owns one encoded message: aligned bytes plus its subject.
struct Owned {
  std::vector<uint64_t> bytes;
  std::string subject;
};

Inbound make_msg(const std::string& subject, wire::BatchKind kind, uint64_t epoch, uint64_t seq,
                 std::vector<Quote> quotes = {}, std::vector<SubjectSequence> marks = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  BatchHeader h;
  h.publisher_id = "test";
  h.epoch = epoch;
  h.sequence = seq;
  h.kind = kind;
  encode_batch(fbb, h, quotes, marks);
  auto* o = new Owned;
  o->bytes.resize((fbb.GetSize() + 7) / 8);
  std::memcpy(o->bytes.data(), fbb.GetBufferPointer(), fbb.GetSize());
  o->subject = subject;
  Inbound in;
  REQUIRE(verify_batch(o->bytes.data(), fbb.GetSize(), &in.batch) == BatchError::ok);
  in.subject = o->subject;
  in.hold = Hold(o, [](void* p) { delete static_cast<Owned*>(p); });
  return in;
}

Inbound delta(const std::string& subject, uint64_t epoch, uint64_t seq, int64_t last = 100000) {
  return make_msg(subject, wire::BatchKind::Delta, epoch, seq, {make_quote("sh600000", last)});
}

// Records what the machine asked for.
struct Recorder : SyncSink {
  std::vector<std::pair<uint64_t, uint64_t>> applied_deltas;  // (epoch, seq)
  int parts = 0, ends = 0;
  std::vector<uint64_t> requests;
  SyncState state = SyncState::unknown;
  uint64_t gaps = 0, resyncs = 0;
  void apply(const wire::QuoteBatch& b, bool is_delta) override {
    if (is_delta) {
      applied_deltas.emplace_back(b.epoch(), b.sequence());
    } else if (b.kind() == wire::BatchKind::SnapshotPart) {
      ++parts;
    } else {
      ++ends;
    }
  }
  void request_snapshot(uint64_t id) override { requests.push_back(id); }
  bool is_connected = true;
  bool connected() const override { return is_connected; }
  void state_changed(SyncState s, uint64_t g, uint64_t r) override {
    state = s;
    gaps = g;
    resyncs = r;
  }
};

// Answers the latest request with `parts` parts and the given marks.
void answer(SyncMachine& m, Recorder& r, uint64_t epoch, std::vector<SubjectSequence> marks, int parts = 2,
            int64_t now = 0) {
  uint64_t id = r.requests.back();
  for (int i = 1; i <= parts; ++i) {
    m.on_reply(make_msg("", wire::BatchKind::SnapshotPart, epoch, static_cast<uint64_t>(i), {make_quote("sh600001")}),
               id, now);
  }
  m.on_reply(make_msg("", wire::BatchKind::SnapshotEnd, epoch, static_cast<uint64_t>(parts), {}, marks), id, now);
}

// Options for the timeout and retry tests: short, fixed backoff bounds.
SyncOptions retry_options(int64_t snapshot_timeout_ms) {
  SyncOptions o;
  o.snapshot_timeout_ns = snapshot_timeout_ms * kMs;
  o.retry_min_ns = 50 * kMs;
  o.retry_max_ns = 200 * kMs;
  return o;
}

}  // namespace

TEST_CASE("start requests a snapshot and goes live with the snapshot's marks") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  CHECK(r.requests.size() == 1);
  CHECK(r.state == SyncState::syncing);
  answer(m, r, 7, {{"q.sh.0", 10}, {"q.sh.1", 0}});
  CHECK(r.parts == 2);
  CHECK(r.ends == 1);
  CHECK(r.state == SyncState::live);
  CHECK(m.epoch() == 7);
  CHECK(m.last_sequence("q.sh.0") == 10);
  m.on_delta(delta("q.sh.0", 7, 11), 0);
  m.on_delta(delta("q.sh.1", 7, 1), 0);
  CHECK(r.applied_deltas.size() == 2);
  CHECK(r.gaps == 0);
}

TEST_CASE("deltas buffered during a snapshot are applied above the mark and dropped at or below it") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  for (uint64_t s = 8; s <= 13; ++s) m.on_delta(delta("q.sh.0", 7, s), 0);
  CHECK(r.applied_deltas.empty());
  CHECK(m.buffered() == 6);
  answer(m, r, 7, {{"q.sh.0", 10}});
  REQUIRE(r.applied_deltas.size() == 3);
  CHECK(r.applied_deltas[0].second == 11);
  CHECK(r.applied_deltas[2].second == 13);
  CHECK(m.counters().replay_dropped == 3);
  CHECK(r.state == SyncState::live);
}

TEST_CASE("a sequence jump counts a gap and resyncs; the repair applies what follows the new mark") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  m.on_delta(delta("q.sh.0", 7, 11), 0);
  m.on_delta(delta("q.sh.0", 7, 13), 0);  // 12 lost
  CHECK(r.gaps == 1);
  CHECK(r.resyncs == 1);
  CHECK(r.state == SyncState::syncing);
  CHECK(r.requests.size() == 2);
  m.on_delta(delta("q.sh.0", 7, 14), 0);
  answer(m, r, 7, {{"q.sh.0", 13}});
  CHECK(r.state == SyncState::live);
  CHECK(r.applied_deltas.back().second == 14);
  CHECK(m.last_sequence("q.sh.0") == 14);
}

TEST_CASE("duplicates and ticks from an older epoch are dropped, never applied") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  m.on_delta(delta("q.sh.0", 7, 10), 0);
  m.on_delta(delta("q.sh.0", 6, 50), 0);
  CHECK(r.applied_deltas.empty());
  CHECK(m.counters().stale_dropped == 2);
  CHECK(r.state == SyncState::live);
}

TEST_CASE("a newer epoch (apiserver restarted) resyncs and restarts sequences from the new marks") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  m.on_delta(delta("q.sh.0", 9, 1), 0);
  CHECK(m.counters().epoch_changes == 1);
  CHECK(r.state == SyncState::syncing);
  m.on_delta(delta("q.sh.0", 9, 2), 0);
  answer(m, r, 9, {{"q.sh.0", 1}});
  CHECK(m.epoch() == 9);
  REQUIRE(r.applied_deltas.size() == 1);
  CHECK(r.applied_deltas[0] == std::make_pair(uint64_t{9}, uint64_t{2}));
}

TEST_CASE("a buffer full of the old instance's deltas is dropped on replay, not taken for a clock that went back") {
  Recorder r;
  SyncOptions o;
  o.older_epoch_resync = 8;
  SyncMachine m(r, o);
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  m.on_delta(delta("q.sh.0", 9, 1), 0);  // the apiserver restarted: resync
  REQUIRE(r.state == SyncState::syncing);
  uint64_t resyncs = r.resyncs;
  // The old instance's last ticks arrive late, while the snapshot is asked for.
  for (uint64_t s = 11; s <= 30; ++s) m.on_delta(delta("q.sh.0", 7, s), 0);
  m.on_delta(delta("q.sh.0", 9, 2), 0);
  answer(m, r, 9, {{"q.sh.0", 1}});
  CHECK(r.state == SyncState::live);
  CHECK(r.resyncs == resyncs);  // no second resync
  CHECK(m.counters().replay_dropped >= 20);
  REQUIRE_FALSE(r.applied_deltas.empty());
  CHECK(r.applied_deltas.back() == std::make_pair(uint64_t{9}, uint64_t{2}));
}

TEST_CASE("no answer: stale after the timeout, retries with growing backoff, replies to old requests ignored") {
  Recorder r;
  SyncOptions o = retry_options(100);
  SyncMachine m(r, o);
  m.start(0);
  m.on_tick(101 * kMs);
  CHECK(r.state == SyncState::stale);
  CHECK(r.requests.size() == 1);
  m.on_tick(120 * kMs);
  CHECK(r.requests.size() == 1);  // still backing off
  m.on_tick(200 * kMs);
  CHECK(r.requests.size() == 2);
  CHECK(r.state == SyncState::stale);  // stays stale until a snapshot lands
  m.on_tick(301 * kMs);                // second timeout: backoff doubles
  m.on_tick(360 * kMs);
  CHECK(r.requests.size() == 2);
  m.on_tick(500 * kMs);
  CHECK(r.requests.size() == 3);
  // A late answer to request 1 is ignored; the answer to the current one lands.
  uint64_t old_id = r.requests.front();
  m.on_reply(make_msg("", wire::BatchKind::SnapshotEnd, 7, 0, {}, {{"q.sh.0", 3}}), old_id, 500 * kMs);
  CHECK(r.state == SyncState::stale);
  answer(m, r, 7, {{"q.sh.0", 3}}, 1, 510 * kMs);
  CHECK(r.state == SyncState::live);
  CHECK(m.counters().snapshot_failures == 2);
}

TEST_CASE("a snapshot whose part count does not match its end is refused and retried") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  uint64_t id = r.requests.back();
  m.on_reply(make_msg("", wire::BatchKind::SnapshotPart, 7, 1, {make_quote("sh600001")}), id, 0);
  m.on_reply(make_msg("", wire::BatchKind::SnapshotEnd, 7, 2, {}, {{"q.sh.0", 3}}), id, 0);
  CHECK(r.state == SyncState::stale);
  CHECK(m.counters().snapshot_failures == 1);
}

TEST_CASE("a missing snapshot part is refused") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  uint64_t id = r.requests.back();
  m.on_reply(make_msg("", wire::BatchKind::SnapshotPart, 7, 2, {make_quote("sh600001")}), id, 0);
  CHECK(r.state == SyncState::stale);
}

TEST_CASE("reconnect and lost messages resync; disconnect marks live data stale") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 1}});
  m.on_disconnected(0);
  CHECK(r.state == SyncState::stale);
  m.on_reconnected(0);
  CHECK(r.requests.size() == 2);
  answer(m, r, 7, {{"q.sh.0", 1}});
  CHECK(r.state == SyncState::live);
  m.on_messages_lost(0);
  CHECK(r.state == SyncState::syncing);
  CHECK(r.resyncs == 2);
}

TEST_CASE("a gap inside the replayed buffer starts another resync instead of applying past it") {
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  m.on_delta(delta("q.sh.0", 7, 11), 0);
  m.on_delta(delta("q.sh.0", 7, 13), 0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  REQUIRE(r.applied_deltas.size() == 1);
  CHECK(r.gaps == 1);
  CHECK(r.requests.size() == 2);
  CHECK(r.state == SyncState::syncing);
}

TEST_CASE("a full buffer restarts the resync rather than growing without bound") {
  Recorder r;
  SyncOptions o;
  o.max_buffered = 4;
  SyncMachine m(r, o);
  m.start(0);
  for (uint64_t s = 1; s <= 5; ++s) m.on_delta(delta("q.sh.0", 7, s), 0);
  CHECK(m.counters().buffer_overflows == 1);
  CHECK(r.requests.size() == 2);
  CHECK(m.buffered() == 0);
}

TEST_CASE("a steady stream from an older epoch (publisher clock went back) resyncs instead of dropping forever") {
  Recorder r;
  SyncOptions o;
  o.older_epoch_resync = 8;
  SyncMachine m(r, o);
  m.start(0);
  answer(m, r, 7, {{"q.sh.0", 10}});
  for (uint64_t s = 1; s <= 7; ++s) m.on_delta(delta("q.sh.0", 5, s), 0);
  CHECK(r.state == SyncState::live);  // a few: an old instance's buffer, dropped
  m.on_delta(delta("q.sh.0", 5, 8), 0);
  CHECK(r.state == SyncState::syncing);
  answer(m, r, 5, {{"q.sh.0", 8}});
  CHECK(m.epoch() == 5);
  m.on_delta(delta("q.sh.0", 5, 9), 0);
  CHECK(r.applied_deltas.back() == std::make_pair(uint64_t{5}, uint64_t{9}));
}

TEST_CASE("a reply completing after a disconnect leaves the machine stale, not live, until the reconnect resyncs") {
  // Found by tests/fuzz/sync_fuzz.cpp (corpus/sync/disconnect-mid-snapshot.bin):
  // the library delivers a reply it had queued before the connection dropped.
  Recorder r;
  SyncMachine m(r, {});
  m.start(0);
  m.on_disconnected(0);
  CHECK(r.state == SyncState::syncing);
  answer(m, r, 7, {{"q.sh.0", 10}});
  CHECK(r.parts == 2);
  CHECK(m.counters().snapshots_applied == 1);
  CHECK(r.state == SyncState::stale);
  m.on_delta(delta("q.sh.0", 7, 11), 0);  // still queued: nothing can follow it
  CHECK(r.applied_deltas.empty());
  m.on_reconnected(0);
  CHECK(r.requests.size() == 2);
  answer(m, r, 7, {{"q.sh.0", 12}});
  CHECK(r.state == SyncState::live);
}

TEST_CASE("no request is sent while disconnected (it would pile up in the reconnect buffer); the connect resyncs") {
  Recorder r;
  SyncOptions o = retry_options(100);
  SyncMachine m(r, o);
  r.is_connected = false;
  m.start(0);
  CHECK(r.requests.empty());
  CHECK(r.state == SyncState::stale);
  for (int64_t t = 0; t <= 8000; t += 10) m.on_tick(t * kMs);  // 8 s without a connection
  CHECK(r.requests.empty());                                   // was: one per retry, all answered on connect
  CHECK(m.counters().snapshot_failures == 0);
  r.is_connected = true;
  m.on_reconnected(8001 * kMs);
  CHECK(r.requests.size() == 1);
  answer(m, r, 7, {{"q.sh.0", 3}}, 1, 8002 * kMs);
  CHECK(r.state == SyncState::live);
  // Live, then the connection drops and a gap-triggered resync comes while it is down.
  r.is_connected = false;
  m.on_disconnected(8100 * kMs);
  m.on_messages_lost(8101 * kMs);
  CHECK(r.requests.size() == 1);
  CHECK(r.state == SyncState::stale);
  r.is_connected = true;
  m.on_reconnected(8200 * kMs);
  CHECK(r.requests.size() == 2);
}

TEST_CASE("a no-responders answer fails the attempt at once and retries with backoff; a stale one is ignored") {
  Recorder r;
  SyncOptions o = retry_options(10'000);
  SyncMachine m(r, o);
  m.start(0);
  REQUIRE(r.requests.size() == 1);
  m.on_no_responders(r.requests.back() + 1, 1 * kMs);  // not the current request
  CHECK(m.counters().snapshot_failures == 0);
  m.on_no_responders(r.requests.back(), 1 * kMs);
  CHECK(m.counters().snapshot_failures == 1);
  CHECK(r.state == SyncState::stale);
  m.on_tick(40 * kMs);
  CHECK(r.requests.size() == 1);  // backing off, long before the 10 s timeout
  m.on_tick(70 * kMs);
  CHECK(r.requests.size() == 2);
  answer(m, r, 7, {{"q.sh.0", 3}}, 1, 80 * kMs);
  CHECK(r.state == SyncState::live);
}
