// sync.cpp — the snapshot + delta state machine; the rules are in sync.h.
#include "sync.h"

#include "log.h"

namespace tickfan::apiclient {

namespace {
const char* state_name(SyncState s) {
  switch (s) {
    case SyncState::unknown: return "unknown";
    case SyncState::syncing: return "syncing";
    case SyncState::live: return "live";
    case SyncState::stale: return "stale";
  }
  return "?";
}
}  // namespace

const char* resync_reason_name(ResyncReason r) {
  switch (r) {
    case ResyncReason::start: return "start";
    case ResyncReason::gap: return "gap";
    case ResyncReason::epoch: return "epoch_change";
    case ResyncReason::reconnect: return "reconnect";
    case ResyncReason::lost: return "messages_lost";
    case ResyncReason::retry: return "retry";
    case ResyncReason::overflow: return "buffer_overflow";
  }
  return "?";
}

SyncMachine::SyncMachine(SyncSink& sink, SyncOptions options) : sink_(sink), opt_(options) {}

uint64_t SyncMachine::last_sequence(std::string_view subject) const {
  auto it = last_seq_.find(subject);
  return it == last_seq_.end() ? 0 : it->second;
}

void SyncMachine::set_state(SyncState s) {
  if (s != state_) LOG_INFO("sync", "state %s -> %s", state_name(state_), state_name(s));
  state_ = s;
  sink_.state_changed(state_, counters_.gaps, counters_.resyncs);
}

void SyncMachine::start(int64_t now_ns) { begin_resync(ResyncReason::start, now_ns); }

void SyncMachine::begin_resync(ResyncReason reason, int64_t now_ns) {
  if (reason != ResyncReason::start && reason != ResyncReason::retry) ++counters_.resyncs;
  if (reason != ResyncReason::retry) {
    LOG_INFO("sync", "resync reason=%s gaps=%llu resyncs=%llu", resync_reason_name(reason),
             static_cast<unsigned long long>(counters_.gaps), static_cast<unsigned long long>(counters_.resyncs));
    backoff_ns_ = 0;
  }
  started_ = true;
  resync_start_ns_ = reason == ResyncReason::retry && resync_start_ns_ ? resync_start_ns_ : now_ns;
  // A resync after stale keeps saying stale until it succeeds: the data is
  // still aging. From live or unknown it is a (short) syncing.
  set_state(state_ == SyncState::stale ? SyncState::stale : SyncState::syncing);
  send_request(now_ns);
}

void SyncMachine::send_request(int64_t now_ns) {
  older_epoch_run_ = 0;
  // Everything buffered so far was published before this request reaches the
  // apiserver, so the snapshot's marks cover it: drop it.
  buffer_.clear();
  if (!sink_.connected()) {
    // Every request (and retry) sent while disconnected used to wait in the
    // NATS reconnect buffer and be answered on connect: 26 full snapshots for
    // one client after an 8 s outage. The (re)connect starts a resync itself.
    in_flight_ = false;
    retry_at_ns_ = 0;
    LOG_INFO("sync", "snapshot request deferred: not connected to NATS; the connect resyncs");
    if (state_ != SyncState::stale) set_state(SyncState::stale);
    return;
  }
  ++request_id_;
  in_flight_ = true;
  parts_seen_ = 0;
  part_epoch_ = 0;
  part_quotes_ = 0;
  last_reply_ns_ = now_ns;
  retry_at_ns_ = 0;
  ++counters_.snapshot_requests;
  sink_.request_snapshot(request_id_);
}

void SyncMachine::fail_snapshot(const char* why, int64_t now_ns) {
  ++counters_.snapshot_failures;
  in_flight_ = false;
  buffer_.clear();
  backoff_ns_ = backoff_ns_ == 0 ? opt_.retry_min_ns : std::min(backoff_ns_ * 2, opt_.retry_max_ns);
  // Jitter (up to +25 %) so a fleet of front boxes does not retry in lockstep.
  int64_t jitter = static_cast<int64_t>((static_cast<uint64_t>(now_ns) * 2654435761u) % 1000) * backoff_ns_ / 4000;
  retry_at_ns_ = now_ns + backoff_ns_ + jitter;
  LOG_WARN("sync", "snapshot failed: %s; retry in %lld ms (attempt %llu)", why,
           static_cast<long long>((backoff_ns_ + jitter) / 1000000),
           static_cast<unsigned long long>(counters_.snapshot_failures));
  set_state(SyncState::stale);
}

void SyncMachine::on_tick(int64_t now_ns) {
  if (in_flight_ && now_ns - last_reply_ns_ > opt_.snapshot_timeout_ns) {
    fail_snapshot(parts_seen_ ? "reply stopped mid-way" : "no apiserver answered", now_ns);
  } else if (!in_flight_ && retry_at_ns_ != 0 && now_ns >= retry_at_ns_) {
    begin_resync(ResyncReason::retry, now_ns);
  }
}

void SyncMachine::on_no_responders(uint64_t request_id, int64_t now_ns) {
  if (!in_flight_ || request_id != request_id_) return;  // an abandoned request's
  fail_snapshot("no responders (no apiserver subscribed to the snapshot subject)", now_ns);
}

void SyncMachine::on_disconnected(int64_t now_ns) {
  (void)now_ns;
  disconnected_ = true;
  if (state_ == SyncState::live) set_state(SyncState::stale);
}

void SyncMachine::on_reconnected(int64_t now_ns) {
  disconnected_ = false;
  if (!started_) return;  // the first connect: start() does the first sync
  begin_resync(ResyncReason::reconnect, now_ns);
}

void SyncMachine::on_messages_lost(int64_t now_ns) {
  if (!started_) return;
  begin_resync(ResyncReason::lost, now_ns);
}

void SyncMachine::on_delta(Inbound&& m, int64_t now_ns) {
  if (state_ == SyncState::live) {
    apply_live(m, now_ns);
    return;
  }
  if (!in_flight_) {
    // Waiting to retry: the next request's snapshot covers this delta.
    return;
  }
  if (buffer_.size() >= opt_.max_buffered) {
    ++counters_.buffer_overflows;
    begin_resync(ResyncReason::overflow, now_ns);
    return;
  }
  buffer_.push_back(std::move(m));
}

bool SyncMachine::apply_live(Inbound& m, int64_t now_ns) {
  const wire::QuoteBatch& b = *m.batch;
  if (b.epoch() != epoch_) {
    if (b.epoch() < epoch_) {
      // An old instance's buffered ticks (a handful after its reconnect) are
      // dropped. A steady stream of them means the publisher restarted with a
      // clock behind the old epoch: follow it rather than drop it forever.
      ++counters_.stale_dropped;
      if (++older_epoch_run_ < opt_.older_epoch_resync) return true;
      LOG_WARN("sync", "%llu deltas in a row from older epoch %llu (current %llu): publisher clock went back?",
               static_cast<unsigned long long>(older_epoch_run_), static_cast<unsigned long long>(b.epoch()),
               static_cast<unsigned long long>(epoch_));
      ++counters_.epoch_changes;
      begin_resync(ResyncReason::epoch, now_ns);
      return false;
    }
    ++counters_.epoch_changes;
    LOG_INFO("sync", "epoch change %llu -> %llu on %.*s", static_cast<unsigned long long>(epoch_),
             static_cast<unsigned long long>(b.epoch()), static_cast<int>(m.subject.size()), m.subject.data());
    begin_resync(ResyncReason::epoch, now_ns);
    return false;
  }
  auto it = last_seq_.find(m.subject);
  if (it == last_seq_.end()) it = last_seq_.emplace(std::string(m.subject), 0).first;
  uint64_t expected = it->second + 1;
  older_epoch_run_ = 0;
  if (b.sequence() == expected) {
    sink_.apply(b, true);
    it->second = expected;
    return true;
  }
  if (b.sequence() < expected) {
    ++counters_.stale_dropped;
    return true;
  }
  ++counters_.gaps;
  LOG_WARN("sync", "gap on %.*s: expected %llu got %llu", static_cast<int>(m.subject.size()), m.subject.data(),
           static_cast<unsigned long long>(expected), static_cast<unsigned long long>(b.sequence()));
  begin_resync(ResyncReason::gap, now_ns);
  return false;
}

void SyncMachine::on_reply(Inbound&& m, uint64_t request_id, int64_t now_ns) {
  if (!in_flight_ || request_id != request_id_) return;  // a late reply to an abandoned request
  const wire::QuoteBatch& b = *m.batch;
  last_reply_ns_ = now_ns;
  if (parts_seen_ == 0 && part_epoch_ == 0) part_epoch_ = b.epoch();
  if (b.epoch() != part_epoch_) {
    ++counters_.unexpected;
    fail_snapshot("epoch changed inside a snapshot reply", now_ns);
    return;
  }
  if (b.kind() == wire::BatchKind::SnapshotPart) {
    if (b.sequence() != parts_seen_ + 1) {
      fail_snapshot("snapshot part missing or out of order", now_ns);
      return;
    }
    ++parts_seen_;
    if (parts_seen_ == 1) {
      LOG_DEBUG("sync", "snapshot first part after %.1f ms", static_cast<double>(now_ns - resync_start_ns_) / 1e6);
    }
    if (b.quotes()) part_quotes_ += b.quotes()->size();
    sink_.apply(b, false);
    return;
  }
  if (b.kind() == wire::BatchKind::SnapshotEnd) {
    LOG_DEBUG("sync", "snapshot end after %.1f ms parts=%llu", static_cast<double>(now_ns - resync_start_ns_) / 1e6,
              static_cast<unsigned long long>(parts_seen_));
    if (b.sequence() != parts_seen_) {
      fail_snapshot("snapshot part count does not match SnapshotEnd", now_ns);
      return;
    }
    finish_snapshot(b, now_ns);
    return;
  }
  ++counters_.unexpected;  // a Delta on the inbox: not part of the protocol
}

void SyncMachine::finish_snapshot(const wire::QuoteBatch& end, int64_t now_ns) {
  in_flight_ = false;
  retry_at_ns_ = 0;
  backoff_ns_ = 0;
  if (end.epoch() != epoch_) {
    // New apiserver instance: its sequences start again from 1.
    last_seq_.clear();
    epoch_ = end.epoch();
  }
  if (end.marks()) {
    for (const wire::SubjectMark* mark : *end.marks()) {
      if (!mark->subject()) continue;
      last_seq_[mark->subject()->str()] = mark->sequence();
    }
  }
  ++counters_.snapshots_applied;
  counters_.snapshot_quotes = part_quotes_;
  // The store's commit point for a snapshot: the reply's (epoch, part count).
  sink_.apply(end, false);
  std::deque<Inbound> pending;
  pending.swap(buffer_);
  size_t applied_before = counters_.replay_applied;
  replaying_ = true;
  while (!pending.empty()) {
    Inbound m = std::move(pending.front());
    pending.pop_front();
    const wire::QuoteBatch& b = *m.batch;
    // Covered by the snapshot: at or below its subject's mark, or published
    // by an instance older than the one that answered. The latter are not the
    // live "older epoch" stream apply_live counts towards a resync (the
    // publisher's clock going back): dropping them here keeps a buffer full
    // of a dead instance's ticks from starting a second, needless resync.
    if (b.epoch() < epoch_ || (b.epoch() == epoch_ && b.sequence() <= last_sequence(m.subject))) {
      ++counters_.replay_dropped;
      continue;
    }
    if (!apply_live(m, now_ns)) {
      // A gap or newer epoch inside the buffer: a new resync is already under
      // way and has emptied buffer_. The rest of `pending` predates its request.
      replaying_ = false;
      return;
    }
    ++counters_.replay_applied;
  }
  replaying_ = false;
  counters_.last_sync_ns = now_ns - resync_start_ns_;
  resync_start_ns_ = 0;
  LOG_INFO("sync", "synced epoch=%llu quotes=%llu replayed=%zu in %.1f ms", static_cast<unsigned long long>(epoch_),
           static_cast<unsigned long long>(part_quotes_),
           static_cast<size_t>(counters_.replay_applied - applied_before),
           static_cast<double>(counters_.last_sync_ns) / 1e6);
  // A reply the NATS library had queued before a disconnect can complete
  // after it (found by tests/fuzz/sync_fuzz.cpp): the data is good, but no
  // delta can keep it current until on_reconnected resyncs, so it is stale,
  // not live (and deltas still queued are dropped as in any stale state).
  set_state(disconnected_ ? SyncState::stale : SyncState::live);
}

}  // namespace tickfan::apiclient
