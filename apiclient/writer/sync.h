// sync.h — the snapshot + delta state machine of the apiclient (the "clone"
// pattern): subscribe first and buffer, request a snapshot, apply it, replay
// the buffered deltas newer than the snapshot's per-subject marks, then run
// live, checking that every subject's sequence is contiguous.
//
// It knows nothing of NATS or of the store: messages come in as verified
// batches, and everything it wants done (apply, ask for a snapshot, publish
// the state) goes out through SyncSink. That keeps the one piece of logic that
// decides correctness testable with plain function calls (tests/apiclient/writer/
// sync_test.cpp), and keeps the hot path to one hash lookup and a compare.
//
// Rules (docs/protocol.md has the wire side):
//  - A delta is applied only when it is the next sequence of its subject in the
//    current epoch. Lower sequence or older epoch: a duplicate or a stale tick
//    from a publisher's reconnect buffer; dropped and counted, never applied
//    (it would overwrite newer state). Higher sequence: a gap, newer epoch: the
//    apiserver restarted; both start a resync. A long run of older-epoch deltas
//    (an apiserver restarted with its clock behind) also resyncs, to follow it.
//  - A resync is: state `syncing`, a fresh request id (replies to older ids are
//    ignored), the buffer emptied (everything received so far was published
//    before the request and so is covered by the snapshot), deltas buffered
//    until SnapshotEnd arrives. Snapshot parts are applied as they arrive: they
//    are newer than anything already in the store.
//  - No reply (or a broken one) within the timeout: state `stale`, retry after
//    a backoff that doubles up to a ceiling. The store keeps the last good data.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quote.h"
#include "store.h"

namespace tickfan::apiclient {

using shm::SyncState;

// Keeps a message's bytes alive while a batch points into them (a natsMsg in
// the daemon, a byte vector in tests).
using Hold = std::unique_ptr<void, void (*)(void*)>;

// One verified message. `batch` and `subject` point into `hold` or `copy`.
struct Inbound {
  Hold hold{nullptr, nullptr};
  std::unique_ptr<uint64_t[]> copy;  // 8-byte aligned copy when the transport's bytes were not aligned
  const wire::QuoteBatch* batch = nullptr;
  std::string_view subject;
};

// What the state machine asks of the world. All calls come from the thread
// that drives the machine (the daemon's apply thread).
class SyncSink {
 public:
  virtual ~SyncSink() = default;
  // Writes the batch's quotes and commits (epoch, sequence). `delta` is false
  // for snapshot parts (their quotes are old; no latency accounting).
  virtual void apply(const wire::QuoteBatch& batch, bool delta) = 0;
  // Publishes a snapshot request whose replies must come back tagged with `request_id`.
  virtual void request_snapshot(uint64_t request_id) = 0;
  // The state or its counters changed (write them into the store header).
  virtual void state_changed(SyncState state, uint64_t gaps, uint64_t resyncs) = 0;
  // Whether a request sent now would leave at once. When not, the machine
  // sends none (a request would wait in the transport's reconnect buffer and
  // be answered late, once per retry) and waits for on_reconnected.
  virtual bool connected() const { return true; }
};

struct SyncOptions {
  int64_t snapshot_timeout_ns = 2'000'000'000;  // silence while waiting for a reply
  int64_t retry_min_ns = 250'000'000;           // first retry delay after a failed snapshot
  int64_t retry_max_ns = 5'000'000'000;         // backoff ceiling
  size_t max_buffered = 200'000;                // deltas held while syncing; overflow restarts the resync
  uint64_t older_epoch_resync = 64;             // live deltas in a row from an older epoch that force a resync
};

struct SyncCounters {
  uint64_t gaps = 0;            // sequence jumps seen on a subject
  uint64_t resyncs = 0;         // resyncs started after the first sync (gap, epoch, reconnect, loss)
  uint64_t epoch_changes = 0;   // newer epoch seen (apiserver restarted)
  uint64_t stale_dropped = 0;   // deltas at or below the subject's sequence, or from an older epoch
  uint64_t replay_dropped = 0;  // buffered deltas already covered by the snapshot
  uint64_t replay_applied = 0;  // buffered deltas applied after a snapshot
  uint64_t snapshot_requests = 0;
  uint64_t snapshot_failures = 0;  // timeouts and broken replies
  uint64_t snapshots_applied = 0;
  uint64_t snapshot_quotes = 0;  // quotes in the last complete snapshot
  int64_t last_sync_ns = 0;      // duration of the last complete resync (request to live)
  uint64_t buffer_overflows = 0;
  uint64_t unexpected = 0;  // wrong kind on a subject / epoch mismatch inside a reply
};

// Why a resync started; logged and counted.
enum class ResyncReason { start, gap, epoch, reconnect, lost, retry, overflow };
const char* resync_reason_name(ResyncReason r);

class SyncMachine {
 public:
  SyncMachine(SyncSink& sink, SyncOptions options);

  // First sync. Call once the subscriptions exist.
  void start(int64_t now_ns);
  // A verified Delta batch from a delta subject.
  void on_delta(Inbound&& m, int64_t now_ns);
  // A verified batch on the reply inbox, tagged with the request id its
  // subject carried.
  void on_reply(Inbound&& m, uint64_t request_id, int64_t now_ns);
  // The transport says nobody subscribes to the snapshot subject (NATS "no
  // responders", a 503 status message on the reply inbox): that request failed.
  void on_no_responders(uint64_t request_id, int64_t now_ns);
  // Connection lost: no deltas will come; readers should know the data is aging.
  void on_disconnected(int64_t now_ns);
  // Connection (re)established: whatever was published meanwhile is unknown.
  void on_reconnected(int64_t now_ns);
  // Messages were dropped before reaching us (slow consumer): resync.
  void on_messages_lost(int64_t now_ns);
  // Timeouts and retries; call at least every few hundred milliseconds.
  void on_tick(int64_t now_ns);

  SyncState state() const { return state_; }
  uint64_t epoch() const { return epoch_; }
  const SyncCounters& counters() const { return counters_; }
  size_t buffered() const { return buffer_.size(); }
  // True while buffered deltas are being replayed after a snapshot (their
  // latency includes the wait for the snapshot; benchmarks keep them apart).
  bool replaying() const { return replaying_; }
  // Next expected-minus-one sequence of a subject (0 when unknown); for tests.
  uint64_t last_sequence(std::string_view subject) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using SeqMap = std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>>;

  void begin_resync(ResyncReason reason, int64_t now_ns);
  void send_request(int64_t now_ns);
  void fail_snapshot(const char* why, int64_t now_ns);
  void finish_snapshot(const wire::QuoteBatch& end, int64_t now_ns);
  // Returns false when the delta revealed a gap or a newer epoch (a resync was started).
  bool apply_live(Inbound& m, int64_t now_ns);
  void set_state(SyncState s);

  SyncSink& sink_;
  SyncOptions opt_;
  SyncState state_ = SyncState::unknown;
  SyncCounters counters_;
  uint64_t epoch_ = 0;
  SeqMap last_seq_;

  // The resync in progress.
  bool in_flight_ = false;  // a request is waiting for its reply
  uint64_t request_id_ = 0;
  uint64_t parts_seen_ = 0;
  uint64_t part_epoch_ = 0;
  uint64_t part_quotes_ = 0;
  int64_t last_reply_ns_ = 0;  // request sent or last part received
  int64_t resync_start_ns_ = 0;
  int64_t retry_at_ns_ = 0;  // 0 = no retry scheduled
  int64_t backoff_ns_ = 0;
  bool started_ = false;
  bool disconnected_ = false;  // on_disconnected seen, on_reconnected not yet: never live
  bool replaying_ = false;
  uint64_t older_epoch_run_ = 0;  // consecutive live deltas from an older epoch
  std::deque<Inbound> buffer_;
};

}  // namespace tickfan::apiclient
