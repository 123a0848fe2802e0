// daemon.cpp — see daemon.h.
#include "daemon.h"

#include <chrono>
#include <cstring>

#include "batch.h"
#include "clock.h"
#include "log.h"
#include "subjects.h"

namespace tickfan::apiclient {

namespace {
void destroy_msg(void* p) { natsMsg_Destroy(static_cast<natsMsg*>(p)); }
}  // namespace

Daemon::Daemon(const Config& config, shm::StoreWriter& writer, MetricsRegistry& registry)
    : config_(config),
      metrics_(registry),
      samples_(config.latency_samples),
      applier_(writer, metrics_, samples_),
      sync_(*this, config.sync),
      gaps_total_(registry.counter("tickfan_apiclient_gaps_total", "Sequence gaps detected on delta subjects")),
      resyncs_total_(registry.counter("tickfan_apiclient_resyncs_total",
                                      "Resyncs started (gap, epoch change, reconnect, slow consumer)")),
      buffered_(registry.gauge("tickfan_apiclient_buffered_deltas", "Deltas held while a snapshot is in flight")),
      last_sync_seconds_(registry.gauge("tickfan_apiclient_last_sync_seconds", "Duration of the last complete sync")),
      snapshot_quotes_(registry.gauge("tickfan_apiclient_snapshot_quotes", "Quotes in the last complete snapshot")),
      stale_dropped_(registry.counter("tickfan_apiclient_stale_dropped_total",
                                      "Deltas dropped as duplicates, older epoch, or covered by a snapshot")),
      snapshot_failures_(registry.counter("tickfan_apiclient_snapshot_failures_total",
                                          "Snapshot requests that timed out or got a broken reply")),
      epoch_changes_(registry.counter("tickfan_apiclient_epoch_changes_total", "Apiserver restarts seen (new epoch)")) {
  snapshot_subject_ = snapshot_subject(config.subject_prefix);
  snapshot_payload_ = config.snapshot_request_payload();
  delta_subjects_ = config.delta_subjects();
  registry.gauge_fn("tickfan_apiclient_sync_state", "0 unknown, 1 syncing, 2 live, 3 stale",
                    [this] { return static_cast<double>(state_.load(std::memory_order_relaxed)); });
  registry.gauge_fn("tickfan_apiclient_newest_quote_age_seconds",
                    "Now minus the apiserver receive time of the newest quote applied", [this] {
                      double newest = metrics_.newest_quote_receive_ns.value();
                      return newest > 0 ? (static_cast<double>(wall_ns()) - newest) * 1e-9 : 0.0;
                    });
}

// Also on the way out of a run() that threw (a refused subscribe): the
// library's threads must be joined while every member their callbacks use
// still exists.
Daemon::~Daemon() { close_nats(); }

void Daemon::close_nats() {
  {
    // Waits out a callback in progress; later ones return at once.
    std::lock_guard<std::mutex> lock(handler_mu_);
    stopping_ = true;
  }
  if (nats_) nats_->close();  // joins the library's threads: the store is ours again
}

bool Daemon::healthy(std::string* reason) const {
  int s = state_.load(std::memory_order_relaxed);
  if (s == static_cast<int>(SyncState::live)) return true;
  *reason = s == static_cast<int>(SyncState::stale)     ? "stale: no live data from the apiserver"
            : s == static_cast<int>(SyncState::syncing) ? "syncing"
                                                         : "starting";
  return false;
}

void Daemon::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  stop_requested_ = true;
  stop_cv_.notify_all();
}

int Daemon::run() {
  nats_ = std::make_unique<NatsConn>(config_.nats, *this);
  nats_->subscribe(delta_subjects_);
  // The timer: heartbeat and timeouts even when the library delivers nothing
  // (no server yet, or a connection it closed). Its first run, at once,
  // starts the first sync now that the subscriptions exist — unless
  // subscribing already failed for good (a denied subject). The first sync
  // used to start on the delivery thread, woken by an empty "kick" published
  // to our own inbox; but a server that lets the apiclient publish only
  // snapshot requests answers that with a permissions violation, and those
  // are fatal now (nats_conn.h).
  const auto period = std::chrono::milliseconds(std::min<int64_t>(config_.heartbeat_ms, 100));
  std::string fatal;
  for (bool first = true;; first = false) {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      if (stop_cv_.wait_for(lock, first ? std::chrono::milliseconds(0) : period, [&] { return stop_requested_; })) {
        fatal = fatal_;
        break;
      }
    }
    on_timer();
  }
  close_nats();
  if (!fatal.empty()) {
    // A supervisor (systemd Restart=) starts a fresh process, which retries
    // the login or subscriptions and logs it again: better than a writer
    // holding the store lock with no connection and a stopped heartbeat, or
    // one saying live while the server drops every delta it should get.
    LOG_ERROR("nats", "%s; exiting", fatal.c_str());
  }
  applier_.heartbeat();
  shm::Status cs = applier_.checkpoint();
  const SyncCounters& c = sync_.counters();
  LOG_INFO(
      "main", "stopped batches=%llu quotes=%llu rejected=%llu gaps=%llu resyncs=%llu snapshots=%llu checkpoint=%s",
      static_cast<unsigned long long>(metrics_.batches_applied.value()),
      static_cast<unsigned long long>(metrics_.quotes_applied.value()),
      static_cast<unsigned long long>(metrics_.rejected_too_small.value() + metrics_.rejected_wrong_identifier.value() +
                                      metrics_.rejected_malformed.value() + metrics_.rejected_schema_too_new.value() +
                                      metrics_.rejected_bad_scale.value() + metrics_.rejected_unexpected_kind.value()),
      static_cast<unsigned long long>(c.gaps), static_cast<unsigned long long>(c.resyncs),
      static_cast<unsigned long long>(c.snapshots_applied), shm::status_name(cs));
  if (!config_.latency_samples_file.empty()) {
    std::string err;
    if (!samples_.write(config_.latency_samples_file, &err)) LOG_ERROR("main", "%s", err.c_str());
  }
  return cs == shm::Status::ok && fatal.empty() ? 0 : 1;
}

void Daemon::on_message(natsMsg* msg, bool reply) {
  std::lock_guard<std::mutex> lock(handler_mu_);
  if (stopping_) {
    natsMsg_Destroy(msg);
    return;
  }
  int64_t now = mono_ns();
  if (!started_) {
    // A delta that beat run()'s first timer call: the subscriptions exist.
    started_ = true;
    sync_.start(now);
  }
  if (has_events_.load(std::memory_order_acquire)) drain_events(now);
  uint64_t request_id = reply ? nats_->request_id_of(natsMsg_GetSubject(msg)) : 0;
  if (reply && request_id == 0) {
    natsMsg_Destroy(msg);  // `<inbox>.0` or not ours: no request of ours has that id
  } else if (reply && natsMsg_IsNoResponders(msg)) {
    // The server's 503 status (empty payload): nobody serves snapshots. A
    // failed attempt, not a corrupt payload.
    natsMsg_Destroy(msg);
    sync_.on_no_responders(request_id, now);
  } else {
    Inbound in;
    if (verify(msg, reply, &in)) {
      if (reply) {
        sync_.on_reply(std::move(in), request_id, now);
      } else {
        sync_.on_delta(std::move(in), now);
      }
    }
  }
  if (now >= next_tick_) tick(now);
}

void Daemon::on_timer() {
  std::lock_guard<std::mutex> lock(handler_mu_);
  if (stopping_) return;
  int64_t now = mono_ns();
  if (!started_) {
    started_ = true;
    sync_.start(now);
  }
  if (has_events_.load(std::memory_order_acquire)) drain_events(now);
  tick(now);
  nats_->watch();
}

void Daemon::on_event(NatsEvent e) {
  std::lock_guard<std::mutex> lock(event_mu_);
  events_.push_back(e);
  has_events_.store(true, std::memory_order_release);
}

void Daemon::on_fatal(const std::string& what) {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (fatal_.empty()) fatal_ = what;  // the first cause; later ones follow from it
  stop_requested_ = true;
  stop_cv_.notify_all();
}

void Daemon::drain_events(int64_t now) {
  std::vector<NatsEvent> events;
  {
    std::lock_guard<std::mutex> lock(event_mu_);
    events.swap(events_);
    has_events_.store(false, std::memory_order_relaxed);
  }
  for (NatsEvent e : events) {
    switch (e) {
      case NatsEvent::disconnected:
        metrics_.nats_disconnects.inc();
        LOG_WARN("nats", "disconnected; reconnecting");
        sync_.on_disconnected(now);
        break;
      case NatsEvent::reconnected:
        metrics_.nats_reconnects.inc();
        LOG_INFO("nats", "connected; resyncing");
        sync_.on_reconnected(now);
        break;
      case NatsEvent::slow_consumer:
        metrics_.slow_consumer.inc();
        last_lib_dropped_ = nats_->dropped();
        LOG_WARN("nats", "slow consumer: NATS dropped messages (total %lld); resyncing",
                 static_cast<long long>(last_lib_dropped_));
        sync_.on_messages_lost(now);
        break;
    }
  }
}

bool Daemon::verify(natsMsg* msg, bool reply, Inbound* in) {
  in->hold = Hold(msg, &destroy_msg);
  const char* data = natsMsg_GetData(msg);
  size_t size = static_cast<size_t>(natsMsg_GetDataLength(msg));
  const void* aligned = data;
  // NATS places payloads at arbitrary alignment; FlatBuffers reads int64
  // fields in place and the verifier insists on alignment.
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    in->copy.reset(new uint64_t[(size + 7) / 8]);
    if (size) std::memcpy(in->copy.get(), data, size);
    aligned = in->copy.get();
  }
  BatchError err = verify_batch(aligned, size, &in->batch);
  if (err == BatchError::ok) {
    wire::BatchKind k = in->batch->kind();
    bool kind_ok = reply ? k != wire::BatchKind::Delta : k == wire::BatchKind::Delta;
    if (kind_ok) {
      in->subject = natsMsg_GetSubject(msg);
      return true;
    }
  }
  switch (err) {
    case BatchError::too_small: metrics_.rejected_too_small.inc(); break;
    case BatchError::wrong_identifier: metrics_.rejected_wrong_identifier.inc(); break;
    case BatchError::malformed: metrics_.rejected_malformed.inc(); break;
    case BatchError::schema_too_new: metrics_.rejected_schema_too_new.inc(); break;
    case BatchError::bad_scale: metrics_.rejected_bad_scale.inc(); break;
    case BatchError::ok: metrics_.rejected_unexpected_kind.inc(); break;
  }
  static RateLimit limit(10, 1'000'000'000);
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_WARN("apply", "rejected payload subject=%s bytes=%zu reason=%s suppressed=%llu", natsMsg_GetSubject(msg), size,
             err == BatchError::ok ? "unexpected_kind" : batch_error_name(err),
             static_cast<unsigned long long>(suppressed));
  }
  return false;  // `in` (and the message) is released by the caller's scope
}

void Daemon::tick(int64_t now) {
  // Called by the timer, and from the message path at most every 10 ms.
  next_tick_ = now + 10'000'000;
  if (now >= next_heartbeat_) {
    applier_.heartbeat();
    next_heartbeat_ = now + config_.heartbeat_ms * 1'000'000;
    int64_t dropped = nats_->dropped();
    if (dropped > last_lib_dropped_) {
      // A drop whose NATS_SLOW_CONSUMER event we have not seen (yet).
      last_lib_dropped_ = dropped;
      metrics_.slow_consumer.inc();
      LOG_WARN("nats", "NATS dropped messages (total %lld); resyncing", static_cast<long long>(dropped));
      sync_.on_messages_lost(now);
    }
    export_counters();
    metrics_.pending.set(static_cast<double>(nats_->pending()));
  }
  sync_.on_tick(now);
}

void Daemon::export_counters() {
  const SyncCounters& c = sync_.counters();
  buffered_.set(static_cast<double>(sync_.buffered()));
  last_sync_seconds_.set(static_cast<double>(c.last_sync_ns) * 1e-9);
  snapshot_quotes_.set(static_cast<double>(c.snapshot_quotes));
  stale_dropped_.inc(c.stale_dropped + c.replay_dropped - exported_stale_);
  exported_stale_ = c.stale_dropped + c.replay_dropped;
  snapshot_failures_.inc(c.snapshot_failures - exported_failures_);
  exported_failures_ = c.snapshot_failures;
  epoch_changes_.inc(c.epoch_changes - exported_epochs_);
  exported_epochs_ = c.epoch_changes;
}

void Daemon::apply(const wire::QuoteBatch& batch, bool delta) { applier_.apply(batch, delta, !sync_.replaying()); }

void Daemon::request_snapshot(uint64_t request_id) {
  natsStatus s = nats_->request_snapshot(snapshot_subject_, snapshot_payload_, request_id);
  LOG_INFO("sync", "snapshot request id=%llu subject=%s markets=%s status=%s",
           static_cast<unsigned long long>(request_id), snapshot_subject_.c_str(),
           snapshot_payload_.empty() ? "all" : snapshot_payload_.c_str(), natsStatus_GetText(s));
}

bool Daemon::connected() const { return nats_ && nats_->connected(); }

void Daemon::state_changed(SyncState state, uint64_t gaps, uint64_t resyncs) {
  applier_.set_state(state, gaps, resyncs);
  state_.store(static_cast<int>(state), std::memory_order_relaxed);
  if (gaps > exported_gaps_) gaps_total_.inc(gaps - exported_gaps_);
  if (resyncs > exported_resyncs_) resyncs_total_.inc(resyncs - exported_resyncs_);
  exported_gaps_ = gaps;
  exported_resyncs_ = resyncs;
}

}  // namespace tickfan::apiclient
